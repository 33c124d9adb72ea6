"""Two replicas of a service on one database and one JetStream: one relay and one allocator at a time
(a lease per job, taken over when the holder dies), consumers sharing a durable without doing anything twice.

On PostgreSQL two "replicas" (separate connections, leases, NATS connections) run side by side; SQLite is
one process per file, so there the single replica must simply do the job.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import pytest

from orderdesk import events, leases
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.db import Database
from orderdesk.outbox import OutboxRelay
from orderdesk.v1 import common_pb2, events_pb2, inventory_pb2, orders_pb2
from services.orders.allocator import Allocator
from services.orders.service import OrdersService
from services.orders.store import OrderRepository

ORDERS_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


@pytest.fixture
async def connections(nats_url):
    made = []

    async def connect():
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await events.ensure_streams(js)
        made.append(nc)
        return nc, js

    yield connect
    for nc in made:
        await nc.close()


def _replica_count(db: Database) -> int:
    return 2 if db.dialect == "postgresql" else 1


async def _die(lease: leases.Lease, task: asyncio.Task) -> None:
    """What kill -9 does to a replica: its session vanishes without an unlock, its loops stop."""
    if isinstance(lease, leases.AdvisoryLease) and lease._conn is not None:
        lease._conn.terminate()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _wait_for(check, timeout: float = 20.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not check():
        if loop.time() - started > timeout:
            raise AssertionError(f"not reached within {timeout}s")
        await asyncio.sleep(0.05)
    return loop.time() - started


def test_lease_kind_follows_the_database():
    assert isinstance(
        leases.for_database("postgresql+asyncpg://u@h/db", "outbox-orders"), leases.AdvisoryLease
    )
    sqlite = leases.for_database("sqlite+aiosqlite:///var/orders.db", "outbox-orders")
    assert not sqlite.exclusive and type(sqlite) is leases.Lease
    a, b = (
        leases.AdvisoryLease("outbox-orders", "postgresql://x/y"),
        leases.AdvisoryLease("outbox-orders", "postgresql://z/w"),
    )
    assert a.key == b.key != leases.AdvisoryLease("outbox-intake", "postgresql://x/y").key


async def test_relays_of_two_replicas_publish_every_event_once_in_order_per_order_and_take_over(
    make_database, connections
):
    db = await make_database(ORDERS_MIGRATIONS)
    replicas = []
    for _ in range(_replica_count(db)):
        nc, js = await connections()
        replica_db = Database(db.url)  # each replica its own engine, as in its own process
        relay = OutboxRelay(replica_db, js, "orders", nc=nc)
        replicas.append((replica_db, relay, asyncio.create_task(relay.run())))
    run = uuid.uuid4().hex[:8].upper()
    order_ids = [f"ORD-R{run}{n:02d}" for n in range(12)]
    versions = 25
    both_held = []

    async def writer(order_id: str, replica_db: Database) -> None:
        for v in range(1, versions + 1):
            async with replica_db.transaction() as tx:
                await tx.emit(
                    events.new_event(
                        "order.confirmed",
                        aggregate_id=order_id,
                        version=v,
                        order_id=order_id,
                        order=events_pb2.OrderEvent(status="confirmed"),
                    )
                )
            await asyncio.sleep(0.01)

    async def watch() -> None:
        while True:
            both_held.append(sum(r.lease.held for _, r, _ in replicas) > 1)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    writers = [
        asyncio.create_task(writer(o, replicas[n % len(replicas)][0])) for n, o in enumerate(order_ids)
    ]
    takeover = None
    try:
        await _wait_for(lambda: any(r.lease.held for _, r, _ in replicas))
        await asyncio.sleep(0.3)
        if len(replicas) == 2:  # the holder dies mid-stream; the other replica must take over
            holder = next(i for i, (_, r, _) in enumerate(replicas) if r.lease.held)
            _, dead_relay, dead_task = replicas[holder]
            await _die(dead_relay.lease, dead_task)
            survivor = replicas[1 - holder][1]
            takeover = await _wait_for(lambda: survivor.lease.held)
        await asyncio.gather(*writers)
        live = next(r for _, r, t in replicas if not t.done())
        for _ in range(200):
            if not await live.pending_count():
                break
            await asyncio.sleep(0.1)
        assert await live.pending_count() == 0
    finally:
        watcher.cancel()
        for replica_db, relay, task in replicas:
            relay.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await replica_db.close()

    assert not any(both_held), "two replicas held the relay lease at once"
    if takeover is not None:
        assert takeover < 5.0, f"takeover took {takeover:.1f}s"
    nc, js = await connections()
    sub = await js.subscribe("orderdesk.order.*.confirmed", ordered_consumer=True, deliver_policy="all")
    got: dict[str, list[int]] = {o: [] for o in order_ids}
    try:
        while True:
            msg = await sub.next_msg(timeout=1.0)
            event = events_pb2.Event.FromString(msg.data)
            if event.order_id in got:
                got[event.order_id].append(event.aggregate_version)
    except nats.errors.TimeoutError:
        pass
    for order_id in order_ids:  # exactly once each, in version order
        assert got[order_id] == list(range(1, versions + 1)), order_id


class CountingInventory:
    """Inventory's Reserve as the allocator sees it: full reservation; records calls and overlaps."""

    def __init__(self):
        self.calls: list[str] = []
        self.in_flight: set[str] = set()
        self.overlaps: list[str] = []

    async def Reserve(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        if request.order_id in self.in_flight:
            self.overlaps.append(request.order_id)
        self.in_flight.add(request.order_id)
        self.calls.append(request.order_id)
        try:
            await asyncio.sleep(0.005)
            return inventory_pb2.ReserveResponse(
                reservations=[
                    inventory_pb2.Reservation(sku=line.sku, warehouse="WH-1", quantity=line.quantity)
                    for line in request.lines
                ]
            )
        finally:
            self.in_flight.discard(request.order_id)

    async def ReserveMany(self, request, timeout=None, metadata=None):  # noqa: N802 - gRPC stub method name
        return inventory_pb2.ReserveManyResponse(
            results=[
                inventory_pb2.ReserveResult(order_id=r.order_id, response=await self.Reserve(r))
                for r in request.orders
            ]
        )


def _order(order_id: str, priority: int) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        channel="api",
        external_ref=order_id,
        customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="C", postal_code="1", country="US"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        priority=priority,
        currency="USD",
    )


async def test_allocators_of_two_replicas_reserve_each_order_once_by_priority_and_take_over(make_database):
    db = await make_database(ORDERS_MIGRATIONS)
    inventory = CountingInventory()
    run = uuid.uuid4().hex[:8].upper()
    first = [(f"ORD-A{run}{n:02d}", (n * 37) % 100) for n in range(30)]
    replicas: list = []
    # Confirming an order wakes the allocator as in the service (there: the holder, through its Wakeup).
    creator = OrdersService(db, on_confirmed=lambda: [r[1].wake() for r in replicas])
    for order_id, priority in first:
        await creator.create(_order(order_id, priority))

    for _ in range(_replica_count(db)):
        replica_db = Database(db.url)
        allocator = Allocator(replica_db, inventory, timeout=5)
        lease = leases.for_database(db.url, "orders-allocator")
        replicas.append(
            (
                replica_db,
                allocator,
                lease,
                asyncio.create_task(leases.run_while_held(lease, allocator.run, service="orders")),
            )
        )

    async def allocated(ids) -> bool:
        async with db.read() as conn:
            repo = OrderRepository(conn)
            return all([(await repo.get(i)).status.value == "allocated" for i in ids])

    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not await allocated([o for o, _ in first]):
            assert asyncio.get_running_loop().time() < deadline, "first orders not allocated"
            await asyncio.sleep(0.1)
        assert sorted(inventory.calls) == sorted(o for o, _ in first), (
            "an order was reserved twice (or never)"
        )
        by_priority = {o: p for o, p in first}
        # Started in priority order, CONCURRENCY at a time: no call overtakes one a whole window earlier.
        seen = [by_priority[o] for o in inventory.calls]
        window = Allocator.CONCURRENCY
        assert all(seen[i] >= seen[j] for i in range(len(seen)) for j in range(i + window, len(seen))), seen
        assert not inventory.overlaps

        if len(replicas) == 2:  # the holder dies; the other allocates what comes next
            holder = next(i for i, r in enumerate(replicas) if r[2].held)
            await _die(replicas[holder][2], replicas[holder][3])
            survivor_lease = replicas[1 - holder][2]
            await _wait_for(lambda: survivor_lease.held, timeout=5)
        later = [(f"ORD-B{run}{n:02d}", 50) for n in range(5)]
        for order_id, priority in later:
            await creator.create(_order(order_id, priority))
        deadline = asyncio.get_running_loop().time() + 30
        while not await allocated([o for o, _ in later]):
            assert asyncio.get_running_loop().time() < deadline, "orders after the takeover not allocated"
            await asyncio.sleep(0.1)
        assert sorted(inventory.calls) == sorted(o for o, _ in first + later)
        assert not inventory.overlaps
    finally:
        for replica_db, _, _, task in replicas:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await replica_db.close()


async def test_two_subscribers_on_one_durable_share_the_work_and_apply_each_event_once(
    make_database, connections
):
    db = await make_database(ORDERS_MIGRATIONS)
    run = uuid.uuid4().hex[:8].upper()
    applied: list[str] = []
    by_replica = {0: 0, 1: 0}

    def handler_for(replica: int):
        async def handler(tx, event):
            if not event.order_id.startswith(f"S{run}"):
                return  # another test's event on the shared stream
            applied.append(event.event_id)
            by_replica[replica] += 1

        return handler

    durable = f"test-shared-{run.lower()}"
    consumers = []
    for replica in (0, 1):
        _, js = await connections()
        consumer = EventConsumer(
            Database(db.url),
            js,
            Subscription(durable, "orderdesk.order.*.confirmed", handler_for(replica), batch=8),
        )
        await consumer.start()
        consumers.append((consumer, asyncio.create_task(consumer.run())))
    _, js = await connections()
    sent = []
    for n in range(200):
        e = events.new_event(
            "order.confirmed",
            aggregate_id=f"S{run}{n}",
            version=1,
            order_id=f"S{run}{n}",
            order=events_pb2.OrderEvent(status="confirmed"),
        )
        sent.append(e.event_id)
        await js.publish(events.subject(e), e.SerializeToString())
        if n % 10 == 0:  # a redelivery of the same event (as after a lost ack): must be skipped
            await js.publish(events.subject(e), e.SerializeToString())
    try:
        await _wait_for(lambda: len(set(applied)) >= len(sent), timeout=30)
        await asyncio.sleep(0.5)
    finally:
        for consumer, task in consumers:
            consumer.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await consumer.db.close()
        await js.delete_consumer(events.STREAM, durable)
    assert sorted(applied) == sorted(sent), "an event was applied twice or not at all"
    assert by_replica[0] > 0 and by_replica[1] > 0, f"one subscriber did all the work: {by_replica}"
