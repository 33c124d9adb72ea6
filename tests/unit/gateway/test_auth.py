"""API keys: hashing, bearer parsing, scopes and partner scoping, the cache and its single lookup."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac

import pytest

from gateway.auth import (
    Authenticator,
    KeyCache,
    Principal,
    bearer_token,
    hash_key,
    legacy_hash,
    new_key,
    parse_scopes,
)
from gateway.problems import Problem


def principal(*scopes: str, partner: str = "P-SHOP") -> Principal:
    return Principal(partner_id=partner, key_name="k", scopes=frozenset(scopes))


PEPPER = b"p" * 32


def test_keys_are_stored_as_hmac_sha256_with_the_pepper():
    assert hash_key("odk_x", PEPPER) == hmac.new(PEPPER, b"odk_x", hashlib.sha256).hexdigest()
    assert len(hash_key("x", PEPPER)) == 64
    assert hash_key("odk_x", PEPPER) != hash_key("odk_x", b"q" * 32)  # a database copy alone tests nothing
    assert hash_key("odk_x", PEPPER) != legacy_hash("odk_x") == hashlib.sha256(b"odk_x").hexdigest()


def test_new_keys_carry_at_least_128_random_bits():
    key = new_key()
    body = key.removeprefix("odk_")
    assert len(body) * 6 >= 256  # token_urlsafe(32): 43 characters of 6 bits


def test_new_keys_are_random_and_long():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("odk_") and len(k) >= 40 for k in keys)


@pytest.mark.parametrize(
    "header, key", [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("BEARER x.y-z", "x.y-z")]
)
def test_bearer_token(header, key):
    assert bearer_token(header) == key


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "abc", "Bearer " + "k" * 300])
def test_bad_authorization_headers_are_401(header):
    with pytest.raises(Problem) as caught:
        bearer_token(header)
    assert caught.value.status == 401 and caught.value.headers["WWW-Authenticate"] == "Bearer"


def test_parse_scopes():
    assert parse_scopes("orders,returns") == ("orders", "returns")
    assert parse_scopes("orders returns orders") == ("orders", "returns")
    with pytest.raises(ValueError, match="wizardry"):
        parse_scopes("orders,wizardry")


def test_scope_checks():
    shop = principal("orders", "returns")
    assert shop.allows(("orders",)) and shop.allows(("fulfillment", "returns"))
    assert not shop.allows(("admin",)) and not shop.allows(("fulfillment",))
    with pytest.raises(Problem) as caught:
        shop.require(("admin",))
    assert caught.value.status == 403
    assert principal("admin").allows(("fulfillment",))  # admin may do everything


def test_partner_scoping():
    shop, tpl, admin = (
        principal("orders", "returns"),
        principal("fulfillment", partner="P-3PL"),
        principal("admin"),
    )
    assert (shop.order_scope, shop.fulfillment_scope) == ("P-SHOP", "P-SHOP")
    assert tpl.fulfillment_scope == ""  # every order's shipments and returns
    assert tpl.order_scope == "P-3PL"  # but not every order
    assert (admin.order_scope, admin.fulfillment_scope) == ("", "")
    both = principal("orders", "fulfillment")
    assert (both.order_scope, both.fulfillment_scope) == ("P-SHOP", "")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_cache_expires_hits_and_remembers_misses_briefly():
    clock = Clock()
    cache = KeyCache(ttl=5, negative_ttl=1, clock=clock)
    cache.put("a", principal("orders"))
    cache.put("b", None)
    assert cache.get("a") == (True, principal("orders")) and cache.get("b") == (True, None)
    clock.now = 1.5
    assert cache.get("a")[0] and not cache.get("b")[0]
    clock.now = 5.5
    assert cache.get("a") == (False, None)


def test_cache_never_keeps_a_principal_past_its_keys_expiry():
    clock = Clock()
    wall = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    cache = KeyCache(ttl=1, clock=clock, wall_clock=lambda: wall)
    expiring = Principal("P-SHOP", "k", frozenset({"orders"}), expires_at=wall + dt.timedelta(seconds=0.3))
    cache.put("a", expiring)
    assert cache.get("a")[0]
    clock.now = 0.31
    assert cache.get("a") == (False, None)


def test_the_default_cache_forgets_within_a_second():
    clock = Clock()
    cache = KeyCache(clock=clock)
    cache.put("a", principal("orders"))
    clock.now = 1.0
    assert cache.get("a") == (False, None)


def test_cache_is_bounded():
    cache = KeyCache(max_entries=3)
    for n in range(10):
        cache.put(str(n), None)
    assert len(cache._entries) <= 3


async def test_authenticator_looks_a_key_up_once_for_a_burst():
    calls: list[str] = []

    async def lookup(key_hash: str, legacy: str):
        calls.append(key_hash)
        assert legacy == legacy_hash("good") or key_hash != hash_key("good", PEPPER)
        await asyncio.sleep(0.01)
        return principal("orders") if key_hash == hash_key("good", PEPPER) else None

    auth = Authenticator(lookup, PEPPER)
    results = await asyncio.gather(*[auth.authenticate("Bearer good") for _ in range(20)])
    assert all(r.partner_id == "P-SHOP" for r in results)
    assert calls == [hash_key("good", PEPPER)]
    await auth.authenticate("Bearer good")
    assert len(calls) == 1  # cached
    with pytest.raises(Problem) as caught:
        await auth.authenticate("Bearer bad")
    assert caught.value.status == 401


async def test_a_failed_lookup_is_not_cached():
    attempts = []

    async def lookup(key_hash: str, legacy: str):
        attempts.append(key_hash)
        if len(attempts) == 1:
            raise ConnectionError("database restarting")
        return principal("orders")

    auth = Authenticator(lookup, PEPPER)
    with pytest.raises(ConnectionError):
        await auth.authenticate("Bearer k")
    assert (await auth.authenticate("Bearer k")).partner_id == "P-SHOP"
