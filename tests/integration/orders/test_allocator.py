"""The allocator's batched pass on a real database (SQLite and PostgreSQL), with a fake inventory:
ReserveMany in chunks in priority order, each chunk's answers saved in one transaction with their
events, and every per-order check of a single allocation kept."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
from sqlalchemy import select

from orderdesk.v1 import inventory_pb2, orders_pb2
from services.orders.allocator import Allocator
from services.orders.change_requests import ChangeRequests
from services.orders.service import OrdersService
from services.orders.store import OrderRepository, order_lines, order_warehouses
from services.orders.store import orders as order_table
from services.orders.surge import SurgeGate
from tests.integration.orders.test_desk import MIGRATIONS, change, create, published


class BatchInventory:
    """ReserveMany over a shared pool per SKU, taken in call order (so the first in a call win)."""

    def __init__(self, stock: dict[str, int], released=(), refused=()):
        self.stock = dict(stock)
        self.held: dict[str, dict[str, int]] = {}
        self.released = set(released)
        self.refused = set(refused)
        self.chunks: list[list[str]] = []
        self.singles: list[str] = []
        self.before_answer = None  # called with the chunk's ids before it is answered

    def _reserve(self, request) -> inventory_pb2.ReserveResponse:
        held = self.held.setdefault(request.order_id, {})
        response = inventory_pb2.ReserveResponse()
        for line in request.lines:
            have = held.get(line.sku, 0)
            take = max(0, min(line.quantity - have, self.stock.get(line.sku, 0)))
            self.stock[line.sku] = self.stock.get(line.sku, 0) - take
            held[line.sku] = have + take
            response.reservations.add(sku=line.sku, warehouse="W1", quantity=held[line.sku])
            if held[line.sku] < line.quantity:
                response.backordered.add(sku=line.sku, quantity=line.quantity - held[line.sku])
        return response

    async def ReserveMany(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        ids = [r.order_id for r in request.orders]
        self.chunks.append(ids)
        if self.before_answer is not None:
            await self.before_answer(ids)
        answer = inventory_pb2.ReserveManyResponse()
        for r in request.orders:
            if r.order_id in self.released:
                answer.results.add(
                    order_id=r.order_id, error_code="FAILED_PRECONDITION", error_reason="order_released"
                )
            elif r.order_id in self.refused:
                answer.results.add(order_id=r.order_id, error_code="INVALID_ARGUMENT", error_message="bad")
            else:
                answer.results.add(order_id=r.order_id, response=self._reserve(r))
        return answer

    async def Reserve(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        self.singles.append(request.order_id)
        return self._reserve(request)


class Unimplemented(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNIMPLEMENTED


class OldInventory(BatchInventory):
    """An inventory from before ReserveMany."""

    async def ReserveMany(self, request, timeout=None, metadata=None):  # noqa: N802
        raise Unimplemented()


@pytest.fixture
async def orders(make_database):
    return OrdersService(await make_database(MIGRATIONS))


def order(order_id: str, priority: int, sku: str = "A", quantity: int = 1) -> orders_pb2.CreateOrderRequest:
    request = create(order_id)
    request.priority = priority
    del request.lines[:]
    request.lines.add(sku=sku, quantity=quantity, unit_price="1.00")
    return request


async def one_pass(allocator: Allocator) -> int:
    """What Allocator.run does in one pass: the backlog by priority in one read, then allocate_many."""
    return await allocator.allocate_many(await allocator.backlog(include_scheduled=True))


async def statuses(orders: OrdersService, ids) -> dict[str, str]:
    async with orders.db.read() as conn:
        return {o.order_id: o.status.value for o in await OrderRepository(conn).get_many(list(ids))}


async def test_the_backlog_is_reserved_highest_priority_first_in_chunks_and_saved_with_its_events(orders):
    priorities = {f"ORD-P{n}": p for n, p in enumerate([5, 90, 5, 40, 90, 10, 70, 5, 40, 1])}
    for order_id, priority in priorities.items():
        await orders.create(order(order_id, priority))
    inventory = BatchInventory({"A": 4})
    allocator = Allocator(orders.db, inventory, 1.0, clock=orders.clock)
    allocator.CHUNK = 3
    assert await one_pass(allocator) == 10
    called = [o for chunk in inventory.chunks for o in chunk]
    # highest priority first, first come within a priority, in chunks of 3, one chunk at a time
    assert called == sorted(priorities, key=lambda o: (-priorities[o], int(o[5:])))
    assert [len(c) for c in inventory.chunks] == [3, 3, 3, 1]
    assert not inventory.singles
    now = await statuses(orders, priorities)
    assert {o for o, s in now.items() if s == "allocated"} == set(called[:4])  # the scarce stock: the top 4
    assert {o for o, s in now.items() if s == "scheduled"} == set(called[4:])
    events = [e for e in await published(orders) if e.type in ("order.allocated", "order.scheduled")]
    assert Counter(e.order_id for e in events) == Counter(
        list(priorities)
    )  # each status change once, with its event
    for e in events:
        assert e.type == f"order.{now[e.order_id]}" and e.order.order.status == now[e.order_id]
    # a second pass: still short by the same amount, nothing to record, no event
    assert await one_pass(allocator) == 0
    assert len([e for e in await published(orders) if e.type.startswith("order.s")]) == 6


async def test_a_cancel_or_change_racing_a_chunk_is_respected_and_the_others_are_saved(orders):
    for n in range(6):
        await orders.create(order(f"ORD-R{n}", 100 - n))
    inventory = BatchInventory({"A": 100}, released={"ORD-R3"}, refused={"ORD-R4"})
    changes = ChangeRequests(orders, inventory, 1.0)

    async def race(ids):
        if "ORD-R1" in ids:  # while inventory reserves the chunk: a cancel and a change request land
            inventory.before_answer = None
            await orders.decide("ORD-R1", "P-SHOP", "cancel", "P-SHOP", "not needed")
            current = await orders.get("ORD-R2", "")
            await changes.change(
                change("ORD-R2", current.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=3)])
            )

    inventory.before_answer = race
    allocator = Allocator(orders.db, inventory, 1.0, clock=orders.clock)
    assert await one_pass(allocator) == 2
    assert await statuses(orders, [f"ORD-R{n}" for n in range(6)]) == {
        "ORD-R0": "allocated",
        "ORD-R1": "cancelled",
        "ORD-R2": "confirmed",  # saved nothing for the old lines
        "ORD-R3": "confirmed",
        "ORD-R4": "confirmed",
        "ORD-R5": "allocated",
    }
    inventory.released.clear()
    inventory.refused.clear()
    assert await one_pass(allocator) == 3  # the next pass reserves the new quantities
    changed = await orders.get("ORD-R2", "")
    assert changed.status.value == "allocated" and [(a.sku, a.quantity) for a in changed.allocations] == [
        ("A", 3)
    ]
    assert inventory.chunks[-1] == ["ORD-R2", "ORD-R3", "ORD-R4"]


async def test_a_conflict_saving_one_order_of_a_chunk_loses_none_of_them(orders):
    """The chunk is saved in a few statements for all its orders (OrderRepository.save_many), each row still
    guarded by the version read: another writer's change to one of them while inventory answers (a note,
    which leaves it confirmed) is detected, the chunk rolled back and each order recorded on its own from
    a fresh read, the note kept."""
    ids = [f"ORD-K{n}" for n in range(5)]
    for n, order_id in enumerate(ids):
        await orders.create(order(order_id, 50 - n))
    inventory = BatchInventory({"A": 100})

    async def note_on_k2(chunk_ids):
        inventory.before_answer = None
        await orders.add_note("ORD-K2", "P-SHOP", "desk", "call the customer")

    inventory.before_answer = note_on_k2
    assert await one_pass(Allocator(orders.db, inventory, 1.0, clock=orders.clock)) == 5
    assert set((await statuses(orders, ids)).values()) == {"allocated"}
    k2 = await orders.get("ORD-K2", "")
    assert [n.text for n in k2.notes] == ["call the customer"]  # not overwritten by the chunk
    assert [h.status.value for h in k2.history] == ["received", "confirmed", "allocated"]
    allocated_events = [e.order_id for e in await published(orders) if e.type == "order.allocated"]
    assert sorted(allocated_events) == ids  # once each: the rolled-back chunk published nothing


async def test_a_chunk_is_saved_as_each_order_alone_would_be(orders):
    """save_many writes what save writes, for the whole chunk at once: the rows, the lines that moved,
    the history and the order_warehouses rows (made on the first reservation, their keys moved on the
    next), read back."""
    ids = [f"ORD-G{n}" for n in range(4)]
    for n, order_id in enumerate(ids):
        await orders.create(order(order_id, 50 - n, quantity=2))
    inventory = BatchInventory({"A": 5})
    allocator = Allocator(orders.db, inventory, 1.0, clock=orders.clock)
    assert await one_pass(allocator) == 4
    first = {"ORD-G0": "allocated", "ORD-G1": "allocated", "ORD-G2": "scheduled", "ORD-G3": "scheduled"}
    assert await statuses(orders, ids) == first
    assert await saved_rows(orders, ids) == {
        o: (first[o], 2 if first[o] == "allocated" else 1 if o == "ORD-G2" else 0) for o in ids
    }
    assert await warehouse_rows(orders, ids) == {o: [("W1", first[o])] for o in ids}
    inventory.stock["A"] += 10  # stock came: the scheduled two are allocated (same warehouse, new status)
    assert await one_pass(allocator) == 2
    assert await statuses(orders, ids) == dict.fromkeys(ids, "allocated")
    assert await saved_rows(orders, ids) == {o: ("allocated", 2) for o in ids}
    assert await warehouse_rows(orders, ids) == {o: [("W1", "allocated")] for o in ids}
    for order_id in ids:
        saved = await orders.get(order_id, "")
        want = [
            "received",
            "confirmed",
            *(["scheduled"] if first[order_id] == "scheduled" else []),
            "allocated",
        ]
        assert [h.status.value for h in saved.history] == want
        events = [e for e in await published(orders) if e.order_id == order_id]
        assert [e.aggregate_version for e in events] == sorted({e.aggregate_version for e in events})
        assert events[-1].aggregate_version == saved.version


async def saved_rows(orders: OrdersService, ids) -> dict[str, tuple[str, int]]:
    """Each order's stored status and its line's allocated units, as the tables hold them."""
    async with orders.db.read() as conn:
        rows = await conn.execute(
            select(order_table.c.order_id, order_table.c.status, order_lines.c.allocated)
            .join(order_lines, order_lines.c.order_id == order_table.c.order_id)
            .where(order_table.c.order_id.in_(list(ids)))
        )
        return {r.order_id: (r.status, r.allocated) for r in rows}


async def warehouse_rows(orders: OrdersService, ids) -> dict[str, list[tuple[str, str]]]:
    async with orders.db.read() as conn:
        rows = await conn.execute(
            select(order_table.c.order_id, order_warehouses.c.warehouse, order_warehouses.c.status)
            .join(order_warehouses, order_warehouses.c.seq == order_table.c.seq)
            .where(order_table.c.order_id.in_(list(ids)))
            .order_by(order_table.c.order_id, order_warehouses.c.warehouse)
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for r in rows:
            found.setdefault(r.order_id, []).append((r.warehouse, r.status))
        return found


async def test_an_inventory_without_reserve_many_gets_one_reserve_per_order(orders):
    ids = [f"ORD-U{n}" for n in range(4)]
    for n, order_id in enumerate(ids):
        await orders.create(order(order_id, n))
    inventory = OldInventory({"A": 100})
    assert await one_pass(Allocator(orders.db, inventory, 1.0, clock=orders.clock)) == 4
    assert sorted(inventory.singles) == ids
    assert set((await statuses(orders, ids)).values()) == {"allocated"}


@pytest.mark.parametrize(
    ("pouring_in", "calls"),
    [
        (False, [3, 3, 3, 1]),  # draining: passes of DRAIN_BATCH (6), reserved DRAIN_CHUNK (3) at a time
        (True, [2, 1, 2, 1, 2, 1, 1]),  # orders still pour in: passes of BATCH (3) in calls of CHUNK (2)
    ],
)
async def test_a_backlog_is_drained_in_larger_passes_once_orders_stop_pouring_in(orders, pouring_in, calls):
    ids = [f"ORD-D{n}" for n in range(10)]
    for n, order_id in enumerate(ids):
        await orders.create(order(order_id, 100 - n))
    inventory = BatchInventory({"A": 100})
    # max_defer 0: a pass every time round, so the gate's passes run here without waiting out a surge; the
    # arrivals count for a minute, so a slow machine's passes do not outlast them
    gate = SurgeGate(rate=1, max_defer=0, window=60)
    allocator = Allocator(orders.db, inventory, 1.0, clock=orders.clock, surge=gate)
    allocator.BATCH, allocator.CHUNK, allocator.DRAIN_BATCH, allocator.DRAIN_CHUNK = 3, 2, 6, 3
    loop = asyncio.get_running_loop()
    if pouring_in:
        gate.arrived(1000, loop.time())  # more than `rate` a second over the gate's window
    running = asyncio.create_task(allocator.run())
    try:
        for _ in range(2000):  # 20 s at most
            if set((await statuses(orders, ids)).values()) == {"allocated"}:
                break
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert set((await statuses(orders, ids)).values()) == {"allocated"}
    assert [len(c) for c in inventory.chunks] == calls
    assert [o for c in inventory.chunks for o in c] == ids  # highest priority first either way
