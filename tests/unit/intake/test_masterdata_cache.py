"""Intake's master data cache: hits, expiry, unknown keys, and clearing on import."""

from __future__ import annotations

from decimal import Decimal

from orderdesk.masterdata import CustomerPrice
from services.intake import domain
from services.intake.cache import MasterDataCache


class CountingRepo:
    """Stands in for MasterDataRepository and counts the look-ups that reach 'the database'."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.products_known = {"A": "product-A", "B": "product-B"}

    async def customer(self, customer_id):
        self.calls.append(("customer", customer_id))
        return f"customer-{customer_id}" if customer_id != "NOPE" else None

    async def products(self, skus):
        self.calls.append(("products", frozenset(skus)))
        return {s: self.products_known[s] for s in skus if s in self.products_known}

    async def customer_prices(self, customer_id, skus):
        self.calls.append(("prices", customer_id, skus))
        return {"A": CustomerPrice(customer_id, "A", Decimal("9.50"), "USD")}

    async def warehouses(self):
        self.calls.append(("warehouses",))
        return {"WH": "wh"}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


async def test_hits_are_served_from_memory_until_they_expire():
    repo, clock = CountingRepo(), Clock()
    cache = MasterDataCache(ttl=5, clock=clock)
    assert await cache.customer(repo, "C1") == "customer-C1"
    assert await cache.customer(repo, "C1") == "customer-C1"
    assert repo.calls == [("customer", "C1")]
    clock.now = 6
    await cache.customer(repo, "C1")
    assert repo.calls == [("customer", "C1")] * 2


async def test_unknown_keys_are_remembered_as_unknown():
    repo = CountingRepo()
    cache = MasterDataCache(ttl=5, clock=Clock())
    assert await cache.customer(repo, "NOPE") is None
    assert await cache.customer(repo, "NOPE") is None
    assert await cache.products(repo, {"A", "Z"}) == {"A": "product-A"}
    assert await cache.products(repo, {"A", "Z", "B"}) == {"A": "product-A", "B": "product-B"}
    assert repo.calls == [
        ("customer", "NOPE"),
        ("products", frozenset({"A", "Z"})),
        ("products", frozenset({"B"})),
    ]


async def test_a_customer_price_list_is_loaded_whole_once():
    repo = CountingRepo()
    cache = MasterDataCache(ttl=5, clock=Clock())
    assert set(await cache.customer_prices(repo, "C1", {"A", "B"})) == {"A"}
    assert await cache.customer_prices(repo, "C1", {"B"}) == {}
    assert repo.calls == [("prices", "C1", None)]


async def test_clear_forgets_everything_and_ttl_zero_caches_nothing():
    repo = CountingRepo()
    cache = MasterDataCache(ttl=5, clock=Clock())
    await cache.warehouses(repo)
    cache.clear()
    await cache.warehouses(repo)
    assert repo.calls == [("warehouses",)] * 2
    off = MasterDataCache(ttl=0, clock=Clock())
    await off.warehouses(repo)
    await off.warehouses(repo)
    assert len(repo.calls) == 4


def test_only_moves_between_open_and_closed_change_exposure():
    assert domain.exposure_changes("order.confirmed", "confirmed", "received")
    assert domain.exposure_changes("order.confirmed", "confirmed", "on_hold")
    assert domain.exposure_changes("order.cancelled", "cancelled", "allocated")
    assert domain.exposure_changes("order.completed", "completed", "shipped")
    assert domain.exposure_changes("order.changed", "allocated", "allocated")  # lines or prices may differ
    assert not domain.exposure_changes("order.allocated", "allocated", "confirmed")
    assert not domain.exposure_changes("order.shipped", "shipped", "partially_shipped")
    assert not domain.exposure_changes("order.on_hold", "on_hold", "received")
    assert not domain.exposure_changes("order.received", "received", "")


def test_the_cache_ttl_setting_is_checked():
    assert domain.IntakeConfig.from_env({}).masterdata_ttl_seconds == 5
    assert (
        domain.IntakeConfig.from_env({"ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS": "0"}).masterdata_ttl_seconds
        == 0
    )
    import pytest

    for bad in ("-1", "soon", "99999"):
        with pytest.raises(ValueError, match="MASTERDATA_TTL"):
            domain.IntakeConfig.from_env({"ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS": bad})
