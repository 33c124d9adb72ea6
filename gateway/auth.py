"""API keys: hashing, scopes and the in-memory key cache. Plain Python, no I/O here.

Keys are generated only: `odk_` and 256 random bits (new_key). They are high-entropy tokens, so one keyed
hash is the right one: a slow password hash would buy nothing against brute force and cost every request.
The store keeps HMAC-SHA256(pepper, key) (hash_key), the pepper coming from configuration
(ORDERDESK_KEY_PEPPER, a Kubernetes Secret), so a copy of the database alone cannot even test guesses.
Keys stored before the pepper (plain sha256, legacy_hash) still authenticate and are re-hashed with the
pepper at their first use (gateway.store). The key itself is never stored or logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from gateway.problems import forbidden, unauthenticated
from orderdesk import actors
from orderdesk.masterdata import SCOPES

KEY_PREFIX = "odk_"
MAX_KEY_LENGTH = 256
ADMIN = "admin"
FULFILLMENT = "fulfillment"


def hash_key(key: str, pepper: bytes) -> str:
    """What the store keeps of a key: HMAC-SHA256 keyed with the pepper, hex (hmac.digest: one C call, on
    every request)."""
    return hmac.digest(pepper, key.encode(), "sha256").hex()


def legacy_hash(key: str) -> str:
    """How keys were stored before the pepper (migration 0002 marks those rows `sha256`)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, with a prefix secret scanners recognise."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_scopes(text: str | Iterable[str]) -> tuple[str, ...]:
    """ "orders,returns" or "orders returns" -> ("orders", "returns"); unknown scopes raise ValueError."""
    words = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = [w for w in words if w not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(words))


@dataclass(frozen=True)
class Principal:
    """Who is calling: the partner behind the key, and what the key may do."""

    partner_id: str
    key_name: str
    scopes: frozenset[str]
    expires_at: dt.datetime | None = None  # the cache never keeps a principal past it
    warehouse: str = ""  # a fulfillment key tied to one warehouse: only its shipments
    carrier: str = ""  # a key tied to one carrier: only that carrier's tracking route

    def allows(self, needed: Iterable[str]) -> bool:
        # admin may do everything; otherwise any one of the route's scopes is enough.
        return ADMIN in self.scopes or any(s in self.scopes for s in needed)

    def require(self, needed: tuple[str, ...]) -> None:
        if not self.allows(needed):
            raise forbidden(needed)

    @property
    def actor(self) -> str:
        """Who a change made with this key is recorded as: the key by its name, and its partner."""
        return actors.api_key(self.key_name, self.partner_id)

    @property
    def order_scope(self) -> str:
        """partner_id for order RPCs: empty (every order) for admin, else the partner's own orders only."""
        return "" if ADMIN in self.scopes else self.partner_id

    @property
    def fulfillment_scope(self) -> str:
        """partner_id for shipment and return RPCs: fulfillment and admin keys reach every order's."""
        return "" if ADMIN in self.scopes or FULFILLMENT in self.scopes else self.partner_id

    @property
    def warehouse_scope(self) -> str:
        """warehouse for shipment RPCs: a key tied to a warehouse reaches only its shipments (else "")."""
        return self.warehouse


def bearer_token(authorization: str | None) -> str:
    """The key from `Authorization: Bearer <key>`; a Problem 401 when absent or malformed."""
    if not authorization:
        raise unauthenticated("send your API key as 'Authorization: Bearer <key>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthenticated("the Authorization header must be 'Bearer <key>'")
    if len(token) > MAX_KEY_LENGTH:
        raise unauthenticated("unknown API key")
    return token


class KeyCache:
    """Key hash -> Principal (or None for an unknown key) with a short time to live.

    A revoked, expired or re-scoped key takes effect within `ttl` seconds (1: every replica stops a revoked
    key within a second, at the cost of one primary-key lookup per key and replica a second); a principal
    is never kept past its key's expiry. An unknown key is remembered only briefly (`negative_ttl`) so a key
    created a moment ago works at once. The size is bounded so a flood of random keys cannot grow it
    without limit.
    """

    def __init__(
        self,
        ttl: float = 1.0,
        negative_ttl: float = 1.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self.ttl, self.negative_ttl, self.max_entries, self.clock = ttl, negative_ttl, max_entries, clock
        self.wall_clock = wall_clock
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def get(self, key_hash: str) -> tuple[bool, Principal | None]:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] <= self.clock():
            return False, None
        return True, entry[1]

    def put(self, key_hash: str, principal: Principal | None) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; the hot keys come back on the next request
        ttl = self.ttl if principal is not None else self.negative_ttl
        if principal is not None and principal.expires_at is not None:
            ttl = min(ttl, (principal.expires_at - self.wall_clock()).total_seconds())
        self._entries[key_hash] = (self.clock() + ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


class Authenticator:
    """Turns a bearer key into a Principal: cache first, the store only on a miss.

    Concurrent misses for one key share a single store lookup, so a burst of a
    partner's first requests costs one query, not one per request. `lookup(key_hash, legacy_hash)` finds
    the key by its peppered hash, or by its pre-pepper hash (and re-hashes it).
    """

    def __init__(
        self,
        lookup: Callable[[str, str], Awaitable[Principal | None]],
        pepper: bytes,
        cache: KeyCache | None = None,
    ):
        self.lookup = lookup
        self.pepper = pepper
        self.cache = cache or KeyCache()
        self._inflight: dict[str, asyncio.Future] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        key = bearer_token(authorization)
        key_hash = hash_key(key, self.pepper)
        hit, principal = self.cache.get(key_hash)
        if not hit:
            principal = await self._load(key_hash, legacy_hash(key))
        if principal is None:
            raise unauthenticated("unknown API key")
        return principal

    async def _load(self, key_hash: str, legacy: str) -> Principal | None:
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            principal = await self.lookup(key_hash, legacy)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved, so a future nobody else awaited does not warn
            raise
        finally:
            self._inflight.pop(key_hash, None)
        self.cache.put(key_hash, principal)
        future.set_result(principal)
        return principal
