"""Per-partner rate limits at the edge: a token bucket per API key and route class, and a cap on each
partner's open streams (long polls and Server-Sent Events). Plain Python, no I/O.

Route classes (README "Partner API", "Limits"):
  submit  every POST, PATCH and DELETE outside /v1/admin (orders, batches, CSV, changes, shipments' events,
          returns, webhooks)
  read    every GET outside the classes below
  feed    GET /v1/events (the event feed, long poll and SSE)
  admin   /v1/admin/... and /v1/reports/... (imports, receipts, production, the desk's numbers)

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; each request takes one. An
empty bucket refuses with the seconds until a token is back (429, Retry-After). Buckets live in the
gateway process: with N gateway replicas behind a balancer a key gets up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

SUBMIT, READ, FEED, ADMIN = "submit", "read", "feed", "admin"
ROUTE_CLASSES = (SUBMIT, READ, FEED, ADMIN)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def route_class(method: str, path: str) -> str:
    if path.startswith(("/v1/admin/", "/v1/reports/")):
        return ADMIN
    if path == "/v1/events":
        return FEED
    return READ if method in READ_METHODS else SUBMIT


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens a second; 0 = unlimited
    burst: int  # the bucket's size: requests that may come at once

    @property
    def window(self) -> float:
        """Seconds an empty bucket takes to fill: the policy's window."""
        return self.burst / self.rate if self.rate else 0.0


DEFAULT_LIMITS = {
    SUBMIT: Limit(50, 200),
    READ: Limit(100, 400),
    FEED: Limit(10, 40),
    ADMIN: Limit(50, 200),
}


def parse_limits(text: str, defaults: dict[str, Limit] = DEFAULT_LIMITS) -> dict[str, Limit]:
    """ "submit=20/40,read=50/100" (class=rate/burst, rate per second; 0 = unlimited) over the defaults.
    Anything else raises ValueError naming the part."""
    limits = dict(defaults)
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, value = part.partition("=")
        rate_text, _, burst_text = value.partition("/")
        name = name.strip()
        if name not in ROUTE_CLASSES:
            raise ValueError(f"unknown route class {name!r} in {part!r}; classes: {', '.join(ROUTE_CLASSES)}")
        try:
            rate = float(rate_text)
            burst = int(burst_text) if burst_text else max(1, math.ceil(rate))
        except ValueError:
            raise ValueError(f"{part!r}: write class=rate/burst, e.g. submit=20/40") from None
        if not (rate >= 0 and math.isfinite(rate)) or burst < 1:
            raise ValueError(f"{part!r}: the rate must be >= 0 and the burst >= 1")
        limits[name] = Limit(rate, burst)
    return limits


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int  # the bucket's size (RateLimit-Limit)
    remaining: int  # whole tokens left after this request (RateLimit-Remaining)
    reset: int  # seconds until the bucket is full again (RateLimit-Reset)
    retry_after: int  # when refused: seconds until a token is back (Retry-After); else 0
    policy: str  # RateLimit-Policy: "<burst>;w=<seconds>"

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers-06, and Retry-After."""
        fields = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
            (b"ratelimit-policy", self.policy.encode()),
        ]
        if not self.allowed:
            fields.append((b"retry-after", str(self.retry_after).encode()))
        return fields


class TokenBucket:
    __slots__ = ("limit", "tokens", "stamp")

    def __init__(self, limit: Limit, now: float):
        self.limit, self.tokens, self.stamp = limit, float(limit.burst), now

    def take(self, now: float) -> Decision:
        limit = self.limit
        self.tokens = min(float(limit.burst), self.tokens + (now - self.stamp) * limit.rate)
        self.stamp = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        missing = limit.burst - self.tokens
        return Decision(
            allowed=allowed,
            limit=limit.burst,
            remaining=int(self.tokens),
            reset=math.ceil(missing / limit.rate),
            retry_after=0 if allowed else max(1, math.ceil((1.0 - self.tokens) / limit.rate)),
            policy=f"{limit.burst};w={math.ceil(limit.window)}",
        )

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.limit.rate >= self.limit.burst


class RateLimiter:
    """One bucket per (key, route class). Idle buckets (full again) are dropped when the table grows past
    `max_buckets`, so a flood of keys cannot grow it without bound."""

    def __init__(
        self,
        limits: dict[str, Limit] = DEFAULT_LIMITS,
        max_buckets: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.limits, self.max_buckets, self.clock = limits, max_buckets, clock
        self._buckets: dict[tuple[Hashable, str], TokenBucket] = {}

    def take(self, key: Hashable, route_class: str) -> Decision | None:
        """The decision for one request of this key in this class; None when the class is unlimited."""
        limit = self.limits[route_class]
        if not limit.rate:
            return None
        now = self.clock()
        bucket = self._buckets.get((key, route_class))
        if bucket is None:
            if len(self._buckets) >= self.max_buckets:
                self._prune(now)
            bucket = self._buckets[(key, route_class)] = TokenBucket(limit, now)
        return bucket.take(now)

    def _prune(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if b.full(now)]
        for k in idle:
            del self._buckets[k]
        if len(self._buckets) >= self.max_buckets:  # all busy: start over rather than grow
            self._buckets.clear()


class StreamSlots:
    """How many streams (long polls, SSE) each partner has open, capped at `per_partner` (0: no cap)."""

    def __init__(self, per_partner: int):
        self.per_partner = per_partner
        self._open: dict[str, int] = {}

    def acquire(self, partner_id: str) -> bool:
        held = self._open.get(partner_id, 0)
        if self.per_partner and held >= self.per_partner:
            return False
        self._open[partner_id] = held + 1
        return True

    def release(self, partner_id: str) -> None:
        held = self._open.get(partner_id, 0) - 1
        if held > 0:
            self._open[partner_id] = held
        else:
            self._open.pop(partner_id, None)

    def held(self, partner_id: str) -> int:
        return self._open.get(partner_id, 0)


def is_stream(method: str, path: str, query_string: bytes, accept: str) -> bool:
    """A request that may hold its connection open: the feed as SSE, or long-polled (`wait` > 0)."""
    if method != "GET" or path != "/v1/events":
        return False
    if "text/event-stream" in accept:
        return True
    for pair in query_string.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"wait":
            try:
                return float(value.decode("latin-1")) > 0
            except ValueError:
                return False  # the route answers 422 for it
    return False
