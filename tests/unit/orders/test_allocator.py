"""The allocator's use cases on a fake unit of work (no database, no inventory process): the backlog
is reserved in the order given, in chunks, scarce stock going to the first; a lost race saving an
order is retried from a fresh read. The real storage is covered by tests/integration/orders."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from orderdesk import errors
from orderdesk.v1 import events_pb2, inventory_pb2
from services.orders import consumers
from services.orders.allocator import Allocator
from services.orders.domain import Line, Order
from services.orders.kpi.store import KpiLedger
from services.orders.store import OrderRepository
from tests.unit.fakes import FakeDatabase

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def confirmed(order_id: str, priority: int, quantity: int = 1) -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[],
        order_id=order_id,
        partner_id="P-SHOP",
        channel="api",
        external_ref=order_id,
        customer_id="C1",
        ship_to={"country": "US"},
        lines=[Line("A", quantity, Decimal("2.50"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=priority,
    )
    order.transitions.clear()
    order.loaded_version = order.version
    return order


class FakeOrders:
    """OrderRepository's reads and guarded save over copies (a saved order is what the next read sees)."""

    def __init__(self, orders: list[Order]):
        self.rows = {o.order_id: copy.deepcopy(o) for o in orders}
        self.lose_next_save: set[str] = set()  # these ids lose one race each: another writer saved first

    def _loaded(self, order_id: str) -> Order | None:
        row = self.rows.get(order_id)
        if row is None:
            return None
        order = copy.deepcopy(row)
        order.transitions.clear()
        order.loaded_version = order.version
        return order

    async def get(self, order_id: str, partner_id: str = "") -> Order | None:
        return self._loaded(order_id)

    async def get_many(self, order_ids: list[str]) -> list[Order]:
        return [o for o in map(self._loaded, order_ids) if o is not None]

    async def save(self, order: Order) -> None:
        if order.order_id in self.lose_next_save:
            self.lose_next_save.discard(order.order_id)
            self.rows[order.order_id].version += 1  # the other writer's change
            raise errors.Conflict(f"order {order.order_id} was changed concurrently; retry")
        if self.rows[order.order_id].version != order.loaded_version:
            raise errors.Conflict(f"order {order.order_id} was changed concurrently; retry")
        self.rows[order.order_id] = copy.deepcopy(order)

    async def save_many(self, changed: list[Order]) -> None:
        """All or none, as the one transaction of the real one: Conflict when any of them lost a race."""
        for order in changed:
            if order.order_id in self.lose_next_save:
                self.lose_next_save.discard(order.order_id)
                self.rows[order.order_id].version += 1  # the other writer's change
            if self.rows[order.order_id].version != order.loaded_version:
                raise errors.Conflict(f"order {order.order_id} was changed concurrently; retry")
        for order in changed:
            self.rows[order.order_id] = copy.deepcopy(order)


class ScarceInventory:
    """Reserve and ReserveMany over one pool of SKU "A", taken in call order."""

    def __init__(self, units: int):
        self.units = units
        self.chunks: list[list[str]] = []
        self.singles: list[str] = []

    def _reserve(self, request) -> inventory_pb2.ReserveResponse:
        wanted = sum(line.quantity for line in request.lines)
        take = min(wanted, self.units)
        self.units -= take
        response = inventory_pb2.ReserveResponse()
        response.reservations.add(sku="A", warehouse="W1", quantity=take)
        if take < wanted:
            response.backordered.add(sku="A", quantity=wanted - take)
        return response

    async def ReserveMany(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        self.chunks.append([r.order_id for r in request.orders])
        answer = inventory_pb2.ReserveManyResponse()
        for r in request.orders:
            answer.results.add(order_id=r.order_id, response=self._reserve(r))
        return answer

    async def Reserve(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        self.singles.append(request.order_id)
        return self._reserve(request)


class FakeLedger:
    """The KPI ledger the publisher writes to, in memory."""

    def __init__(self):
        self.facts: dict[str, list] = {}

    async def record(self, order_id, facts, *, count_new=False) -> int:
        self.facts.setdefault(order_id, []).extend(facts)
        return len(facts)

    async def record_many(self, facts) -> None:
        for order_id, of_order in facts:
            await self.record(order_id, of_order)


def fake_db(orders: FakeOrders | None = None) -> FakeDatabase:
    return FakeDatabase({OrderRepository: orders or FakeOrders([]), KpiLedger: FakeLedger()})


def published(db: FakeDatabase) -> list[tuple[str, str]]:
    return [(e.order_id, e.type) for e in db.events]


async def test_the_backlog_is_reserved_in_its_order_in_chunks_and_scarce_stock_goes_to_the_first():
    backlog = [confirmed(f"ORD-{n:03d}", priority=1000 - n) for n in range(Allocator.CHUNK * 2 + 2)]
    repo = FakeOrders(backlog)
    db = fake_db(repo)
    inventory = ScarceInventory(units=Allocator.CHUNK + 10)

    moved = await Allocator(db, inventory, 1.0, clock=lambda: NOW).allocate_many(backlog)

    ids = [o.order_id for o in backlog]
    assert inventory.chunks == [
        ids[: Allocator.CHUNK],
        ids[Allocator.CHUNK : 2 * Allocator.CHUNK],
        ids[2 * Allocator.CHUNK :],
    ]
    assert moved == len(ids) and db.committed == 3  # one transaction per chunk
    first = Allocator.CHUNK + 10
    assert [repo.rows[i].status.value for i in ids] == ["allocated"] * first + ["scheduled"] * (
        len(ids) - first
    )
    assert published(db) == [(i, "order.allocated") for i in ids[:first]] + [
        (i, "order.scheduled") for i in ids[first:]
    ]


async def test_orders_no_longer_awaiting_stock_are_not_reserved():
    backlog = [confirmed("ORD-1", 10), confirmed("ORD-2", 5)]
    backlog[0].cancel(NOW, "desk", "customer_request")
    db = fake_db(FakeOrders(backlog))
    inventory = ScarceInventory(units=5)

    assert await Allocator(db, inventory, 1.0, clock=lambda: NOW).allocate_many(backlog) == 1
    assert inventory.chunks == [["ORD-2"]] and published(db) == [("ORD-2", "order.allocated")]


async def test_a_lost_race_recording_one_order_is_retried_from_a_fresh_read():
    repo = FakeOrders([confirmed("ORD-1", 10, quantity=2)])
    repo.lose_next_save.add("ORD-1")
    db = fake_db(repo)
    inventory = ScarceInventory(units=5)

    assert await Allocator(db, inventory, 1.0, clock=lambda: NOW).allocate("ORD-1")
    assert inventory.singles == ["ORD-1"] and inventory.units == 3
    assert db.rolled_back == 1 and db.committed == 1
    assert repo.rows["ORD-1"].status.value == "allocated" and published(db) == [("ORD-1", "order.allocated")]


async def test_an_order_that_is_gone_or_changed_lines_meanwhile_records_nothing():
    repo = FakeOrders([confirmed("ORD-1", 10, quantity=2)])
    db = fake_db(repo)
    inventory = ScarceInventory(units=5)
    allocator = Allocator(db, inventory, 1.0, clock=lambda: NOW)
    backlog = await repo.get_many(["ORD-1"])
    # A change request moved the lines after the backlog was read (a save: a new version).
    repo.rows["ORD-1"].lines[0].quantity = 3
    repo.rows["ORD-1"].version += 1

    assert await allocator.allocate_many(backlog) == 0
    assert repo.rows["ORD-1"].status.value == "confirmed" and published(db) == []
    assert await allocator.allocate("ORD-404") is False and inventory.singles == []


async def test_a_restock_wakes_the_allocator_and_records_the_filled_backorders_once_committed():
    woken: list[dict] = []
    filled: list[list[str]] = []
    handlers = {
        s.durable: s.handler
        for s in consumers.subscriptions(
            service=None, wake_allocator=lambda **kw: woken.append(kw), allocate_soon=filled.append
        )
    }
    restocked = events_pb2.Event(
        type="stock.restocked", stock=events_pb2.StockEvent(filled_order_ids=["ORD-1", "ORD-2"])
    )
    db = fake_db()

    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await handlers["orders-stock-restocked"](tx, restocked)
            raise RuntimeError("the consumer's transaction rolls back")
    assert filled == []  # nothing reserved is recorded for a restock that was not handled

    async with db.transaction() as tx:
        await handlers["orders-stock-restocked"](tx, restocked)
    assert woken == [{"scheduled": True}] * 2 and filled == [["ORD-1", "ORD-2"]]


async def test_the_allocator_serves_and_sends_the_aged_priority():
    """A week-old standard order (placed with 100) ranks above a new one placed with 110 today: its
    priority aged to 114 (services/orders/promise.py); the backlog is read by the stored priority and
    ordered by today's, and inventory is told today's."""
    old, new = confirmed("ORD-OLD", priority=100), confirmed("ORD-NEW", priority=110)
    old.created_at = NOW - dt.timedelta(days=7)
    repo = FakeOrders([new, old])

    async def awaiting_stock_orders(*, limit, include_scheduled):
        return await repo.get_many(["ORD-NEW", "ORD-OLD"])  # the stored priorities' order

    repo.awaiting_stock_orders = awaiting_stock_orders
    allocator = Allocator(fake_db(repo), ScarceInventory(units=1), 1.0, clock=lambda: NOW)
    backlog = await allocator.backlog(include_scheduled=False)
    assert [o.order_id for o in backlog] == ["ORD-OLD", "ORD-NEW"]
    assert [allocator._reserve_request(o).priority for o in backlog] == [114, 110]
