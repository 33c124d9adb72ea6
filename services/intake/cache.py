"""Intake's master data in memory: every order reads its customer, products, prices and the
warehouses (with their calendars and lanes), and they change only by import.

An import through this process clears the cache at once; entries also expire after
`ttl` seconds, which bounds how long another replica's import stays unseen here
(ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS, default 5; 0 turns the cache off).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orderdesk.calendar import CalendarBook
from orderdesk.calendar_store import CalendarRepository
from orderdesk.masterdata import Customer, CustomerPrice, Product, Warehouse
from services.intake.store import MasterDataRepository

_MISSING = object()


class MasterDataCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 200_000):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[Any, tuple[float, Any]] = {}

    def clear(self) -> None:
        self._entries.clear()

    def _get(self, key: Any) -> Any:
        hit = self._entries.get(key)
        if hit is None or hit[0] < self.clock():
            return _MISSING
        return hit[1]

    def _put(self, key: Any, value: Any) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; a full reload costs one query per key
        self._entries[key] = (self.clock() + self.ttl, value)

    # --- what is known already, without a unit of work (None: something must be read) -----------------
    def known_customer(self, customer_id: str) -> tuple[Customer | None] | None:
        """(the customer, or None for one known not to exist), or None when it must be read."""
        found = self._get(("customer", customer_id))
        return None if found is _MISSING else (found,)

    def known_products(self, skus: set[str]) -> dict[str, Product] | None:
        """products() when every SKU is known (an unknown SKU known as unknown is left out); else None."""
        found: dict[str, Product] = {}
        for sku in skus:
            hit = self._get(("product", sku))
            if hit is _MISSING:
                return None
            if hit is not None:
                found[sku] = hit
        return found

    def known_prices(self, customer_id: str, skus: set[str]) -> dict[str, CustomerPrice] | None:
        prices = self._get(("prices", customer_id))
        if prices is _MISSING:
            return None
        return {sku: prices[sku] for sku in skus if sku in prices}

    def known_book(self) -> CalendarBook | None:
        found = self._get(("calendar",))
        return None if found is _MISSING else found

    # --- read on a miss ---------------------------------------------------------------------------------
    async def customer(self, repo: MasterDataRepository, customer_id: str) -> Customer | None:
        key = ("customer", customer_id)
        found = self._get(key)
        if found is _MISSING:
            found = await repo.customer(customer_id)
            self._put(key, found)
        return found

    async def products(self, repo: MasterDataRepository, skus: set[str]) -> dict[str, Product]:
        found: dict[str, Product] = {}
        missing: set[str] = set()
        for sku in skus:
            hit = self._get(("product", sku))
            if hit is _MISSING:
                missing.add(sku)
            elif hit is not None:
                found[sku] = hit
        if missing:
            loaded = await repo.products(missing)
            for sku in missing:
                self._put(("product", sku), loaded.get(sku))  # an unknown SKU is remembered as unknown
            found.update(loaded)
        return found

    async def customer_prices(
        self, repo: MasterDataRepository, customer_id: str, skus: set[str]
    ) -> dict[str, CustomerPrice]:
        key = ("prices", customer_id)
        prices = self._get(key)
        if prices is _MISSING:
            prices = await repo.customer_prices(customer_id, None)  # the customer's whole price list
            self._put(key, prices)
        return {sku: prices[sku] for sku in skus if sku in prices}

    async def warehouses(self, repo: MasterDataRepository) -> dict[str, Warehouse]:
        found = self._get(("warehouses",))
        if found is _MISSING:
            found = await repo.warehouses()
            self._put(("warehouses",), found)
        return found

    async def book(self, work) -> CalendarBook:
        """Warehouses, holidays and lanes (orderdesk.calendar), read on the unit of work `work`."""
        found = self._get(("calendar",))
        if found is _MISSING:
            warehouses = await self.warehouses(work.repo(MasterDataRepository))
            found = await work.repo(CalendarRepository).book(warehouses)
            self._put(("calendar",), found)
        return found
