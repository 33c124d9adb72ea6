"""API keys: hashing, scopes and the in-memory key cache. Plain Python, no I/O here.

Keys are high-entropy random tokens, so one sha256 is the right hash: a slow
password hash would buy nothing against brute force and cost every request.
The store keeps only the hex digest; the key itself is never stored or logged.
"""

from __future__ import annotations

import asyncio
import hashlib
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


def hash_key(key: str) -> str:
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

    A revoked or re-scoped key takes effect within `ttl` seconds; an unknown key is
    remembered only briefly (`negative_ttl`) so a key created a moment ago works at once.
    The size is bounded so a flood of random keys cannot grow it without limit.
    """

    def __init__(
        self,
        ttl: float = 5.0,
        negative_ttl: float = 1.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ttl, self.negative_ttl, self.max_entries, self.clock = ttl, negative_ttl, max_entries, clock
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
        self._entries[key_hash] = (self.clock() + ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


class Authenticator:
    """Turns a bearer key into a Principal: cache first, the store only on a miss.

    Concurrent misses for one key share a single store lookup, so a burst of a
    partner's first requests costs one query, not one per request.
    """

    def __init__(self, lookup: Callable[[str], Awaitable[Principal | None]], cache: KeyCache | None = None):
        self.lookup = lookup
        self.cache = cache or KeyCache()
        self._inflight: dict[str, asyncio.Future] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        key_hash = hash_key(bearer_token(authorization))
        hit, principal = self.cache.get(key_hash)
        if not hit:
            principal = await self._load(key_hash)
        if principal is None:
            raise unauthenticated("unknown API key")
        return principal

    async def _load(self, key_hash: str) -> Principal | None:
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            principal = await self.lookup(key_hash)
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
