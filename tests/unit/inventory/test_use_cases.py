"""Inventory's use cases against a fake unit of work (tests/unit/fakes.py): Reserve's retries,
a shipment consumed per SKU, available to promise. The store itself is tested on real
databases in tests/integration/inventory."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from orderdesk import errors, metrics
from orderdesk.calendar import MONDAY_TO_FRIDAY
from orderdesk.calendar_store import CalendarRepository
from orderdesk.masterdata import Warehouse
from services.inventory.domain import OrderReservations, OrderState, StockLevel
from services.inventory.service import RESERVE_ATTEMPTS, InventoryService
from services.inventory.store import StockRepository
from services.inventory.supply import Run
from tests.unit.fakes import FakeCalendars, FakeDatabase

TODAY = dt.date(2026, 12, 1)
WAREHOUSES = [
    Warehouse("WH-A", "A", "US", "America/Chicago", dt.time(15), MONDAY_TO_FRIDAY, 2, 6),
    Warehouse("WH-B", "B", "US", "America/Chicago", dt.time(15), MONDAY_TO_FRIDAY, 3, 7),
]


class RacedStock:
    """Stock another replica has just taken from: an unlocked read still shows the old numbers,
    a locked read (and the guarded update) the real ones."""

    def __init__(self, real: dict[str, int], stale: dict[str, int]):
        self.real, self.stale = dict(real), stale
        self.reads: list[bool] = []  # lock flag of each read of the levels
        self.created_order = False

    async def lock_order(self, order_id, priority=0, *, country="", placed_at=None):
        self.created_order = True
        return OrderReservations(order_id, priority=priority)

    async def available(self, skus, *, lock):
        self.reads.append(lock)
        return {sku: dict(self.real if lock else self.stale) for sku in skus}

    async def warehouses(self):
        return WAREHOUSES

    async def hold(self, order_id, sku, warehouse, quantity):
        pass  # the reservation row; what the order holds is read from the answer

    async def take_stock(self, sku, warehouse, quantity):
        if self.real.get(warehouse, 0) < quantity:  # the guard of the real update
            raise errors.Conflict(f"{sku} at {warehouse} no longer has {quantity} available; retry")
        self.real[warehouse] -= quantity

    async def save_order_state(self, order):
        pass


async def test_reserve_from_stale_levels_is_refused_then_planned_from_locked_levels():
    stock = RacedStock(real={"WH-A": 2, "WH-B": 2}, stale={"WH-A": 5, "WH-B": 2})
    db = FakeDatabase({StockRepository: stock, CalendarRepository: FakeCalendars()})
    retries = metrics.RESERVE_RETRIES._value.get()

    result = await InventoryService(db).reserve("O1", [("A", 4)], country="US")

    assert result.reservations == [("A", "WH-A", 2), ("A", "WH-B", 2)] and result.backordered == {}
    assert stock.reads == [False] * (RESERVE_ATTEMPTS - 1) + [True]  # optimistic, then locked last
    assert db.rolled_back == RESERVE_ATTEMPTS - 1 and db.committed == 1
    assert metrics.RESERVE_RETRIES._value.get() == retries + RESERVE_ATTEMPTS - 1
    assert stock.real == {"WH-A": 0, "WH-B": 0}


class Shipping:
    def __init__(self, held: dict[tuple[str, str], int]):
        self.held = held
        self.consumed: list[tuple[str, str, str, int]] = []
        self.saved: list[OrderState] = []

    async def lock_order(self, order_id, priority=0, *, country="", placed_at=None):
        return OrderReservations(order_id, held=dict(self.held))

    async def consume(self, order_id, sku, warehouse, quantity):
        self.consumed.append((order_id, sku, warehouse, quantity))

    async def save_order_state(self, order):
        self.saved.append(order.state)


async def test_a_shipment_is_consumed_once_per_sku_and_the_order_ends_consumed():
    repo = Shipping({("A", "WH-A"): 3, ("B", "WH-A"): 1})
    db = FakeDatabase({StockRepository: repo})
    line = SimpleNamespace
    shipment = SimpleNamespace(
        order_id="O1",
        warehouse="WH-A",
        lines=[line(sku="B", quantity=1), line(sku="A", quantity=1), line(sku="A", quantity=2)],
    )
    async with db.transaction() as tx:
        await InventoryService(db).consume_shipment(tx, shipment)
    assert repo.consumed == [("O1", "A", "WH-A", 3), ("O1", "B", "WH-A", 1)]
    assert repo.saved == [OrderState.CONSUMED]


class Supply:
    def __init__(self, levels=(), runs=(), owed=0, product=None):
        self._levels, self._runs, self.owed, self._product = list(levels), list(runs), owed, product

    async def levels(self, sku):
        return self._levels

    async def open_runs(self, sku):
        return self._runs

    async def open_inbound(self, sku):
        return []  # no supplier has announced a receipt

    async def backordered_units(self, sku):
        return self.owed

    async def product(self, sku):
        return self._product


async def test_available_to_promise_nets_the_backorders_against_stock_then_runs():
    repo = Supply(
        levels=[StockLevel("WH-A", 5, 2)],
        owed=4,
        runs=[Run("PRD-1", "A", "WH-B", 10, TODAY + dt.timedelta(days=3))],
    )
    atp = await InventoryService(
        FakeDatabase({StockRepository: repo}), clock=lambda: dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    ).available_to_promise("A")
    assert (atp.available_now, atp.backordered, atp.in_production) == (3, 4, 10)
    assert [(p.date, p.total) for p in atp.points] == [(TODAY, 0), (TODAY + dt.timedelta(days=3), 9)]


async def test_available_to_promise_of_a_sku_inventory_never_heard_of_is_not_found():
    with pytest.raises(errors.NotFound):
        await InventoryService(FakeDatabase({StockRepository: Supply()})).available_to_promise("NOPE")
