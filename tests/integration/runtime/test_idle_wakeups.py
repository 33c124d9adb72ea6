"""An idle service sleeps (issue 15): its loops wake on events, not on timers that fire every second, and
lose no latency for it. On a real database (SQLite and PostgreSQL) and a real JetStream:

- a consumer long-polls: one pull request for many seconds of nothing, and an event that comes during it
  is handled at once; a reconnect's `refetch` issues a new pull request and the consumer keeps working;
- the outbox relay wakes when events commit, and a row no one told it of (another process's) is still
  sent by its safety-net poll; commits that follow one another within its linger go out in one round;
- the allocator does no pass while nothing happens, allocates at once when woken (orders confirmed within
  its linger in the same pass), and an order no one woke it for within its safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
import uuid
from pathlib import Path

import nats
import pytest

from orderdesk import events
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.outbox import OutboxRelay, append_rows, row
from orderdesk.v1 import events_pb2
from services.orders.allocator import Allocator
from services.orders.service import OrdersService
from services.orders.store import OrderRepository
from tests.integration.runtime.test_replicas import CountingInventory, _order

ORDERS_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


@pytest.fixture
async def nc(nats_url):
    nc = await nats.connect(nats_url)
    await events.ensure_streams(nc.jetstream())
    yield nc
    await nc.close()


@pytest.fixture
def js(nc):
    return nc.jetstream()


def _event(order_id: str, n: int) -> events_pb2.Event:
    return events.new_event(
        "order.confirmed",
        aggregate_id=order_id,
        version=n,
        order_id=order_id,
        order=events_pb2.OrderEvent(status="confirmed"),
    )


async def _within(seconds: float, check) -> float:
    """Seconds until `check()` holds (a plain or an async predicate); fails after `seconds`."""
    started = time.monotonic()
    while not (await answer if inspect.isawaitable(answer := check()) else answer):
        assert time.monotonic() - started < seconds, f"not within {seconds}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def _counted(loop, method: str) -> dict[str, int]:
    """Counts the calls of a loop's async `method` (one a pass) in the returned {"n": …}."""
    passes = {"n": 0}
    original = getattr(loop, method)

    async def counted(*args, **kwargs):
        passes["n"] += 1
        return await original(*args, **kwargs)

    setattr(loop, method, counted)
    return passes


@contextlib.asynccontextmanager
async def running(coro):
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_idle_consumer_long_polls_and_handles_an_event_the_moment_it_comes(make_database, js):
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-I{uuid.uuid4().hex[:10].upper()}"
    applied: list[int] = []

    async def handler(tx, event):
        applied.append(event.aggregate_version)

    durable = f"test-idle-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(db, js, Subscription(durable, f"orderdesk.order.{order_id}.>", handler))
    await consumer.start()
    pulls = {"n": 0}
    pull = consumer._pull

    async def counted(psub):
        pulls["n"] += 1
        return await pull(psub)

    consumer._pull = counted  # type: ignore[method-assign]

    async def publish(n: int) -> None:
        e = _event(order_id, n)
        await js.publish(events.subject(e), e.SerializeToString())

    try:
        async with running(consumer.run()):
            await asyncio.sleep(3.0)  # nothing to read: one pull request stays open (a poll a second: 3)
            assert pulls["n"] == 1, pulls
            await publish(1)
            took = await _within(5, lambda: 1 in applied)
            assert took < 1.0, f"an event waited {took:.2f}s for an idle consumer"
            # A reconnect (perhaps to another node, where the pull request is unknown) asks again at once.
            before = pulls["n"]
            consumer.refetch()
            await _within(2, lambda: pulls["n"] > before)
            await publish(2)
            assert await _within(5, lambda: 2 in applied) < 1.0
    finally:
        await js.delete_consumer(events.STREAM, durable)  # leave a shared test server as we found it
    assert applied == [1, 2]


async def test_a_stale_status_leaves_no_pull_request_behind_to_hold_the_next_event(make_database, nc, js):
    """A status meant for an earlier pull request (its expiry, when the client stopped waiting first) must not
    leave a request on the server that takes a later event and sits on it: each event is handled at once."""
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-I{uuid.uuid4().hex[:10].upper()}"
    applied: dict[int, float] = {}

    async def handler(tx, event):
        applied[event.aggregate_version] = time.monotonic()

    durable = f"test-stale-{uuid.uuid4().hex[:8]}"
    consumer = EventConsumer(db, js, Subscription(durable, f"orderdesk.order.{order_id}.>", handler))
    await consumer.start()
    psub = consumer._psub
    try:
        async with running(consumer.run()):
            await asyncio.sleep(0.5)
            # What a pull request the client gave up on sends later: a 408 on the consumer's inbox.
            stale = {"batch": 1, "expires": int(0.05 * 1e9)}
            await nc.publish(psub._nms, json.dumps(stale).encode(), reply=psub._deliver)
            await asyncio.sleep(0.5)
            for n in (1, 2, 3):
                e = _event(order_id, n)
                sent = time.monotonic()
                await js.publish(events.subject(e), e.SerializeToString())
                await _within(15, lambda n=n: n in applied)
                assert applied[n] - sent < 1.0, f"event {n} waited {applied[n] - sent:.2f}s"
                await asyncio.sleep(0.3)
    finally:
        await js.delete_consumer(events.STREAM, durable)


async def test_the_relay_wakes_on_commit_and_its_safety_net_sends_rows_no_one_told_it_of(
    make_database, nc, js
):
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-I{uuid.uuid4().hex[:10].upper()}"
    relay = OutboxRelay(db, js, f"idle{uuid.uuid4().hex[:6]}")
    passes = _counted(relay, "publish_pending")  # the relay's passes
    got: list[int] = []

    async def received(msg) -> None:
        got.append(events_pb2.Event.FromString(msg.data).aggregate_version)

    sub = await nc.subscribe(f"orderdesk.order.{order_id}.>", cb=received)
    try:
        async with running(relay.run()):
            await asyncio.sleep(2.5)
            assert passes["n"] == 1, passes  # the first pass at start, then asleep (a poll a second: 3)
            async with db.transaction() as tx:
                await tx.emit(_event(order_id, 1))
            assert await _within(5, lambda: got == [1]) < 1.0

            async def marked() -> bool:  # else stopping it before its UPDATE commits re-sends row 1 below
                return await relay.pending_count() == 0

            await _within(5, marked)
        # A row committed by another process (no poke reaches this one): the safety net sends it.
        relay.POLL_SECONDS = 0.5
        async with db.begin() as conn:
            await append_rows(conn, [row(_event(order_id, 2))])
        async with running(relay.run()):
            await asyncio.sleep(0.2)  # the first pass
            await _within(5, lambda: got == [1, 2])
            async with db.begin() as conn:
                await append_rows(conn, [row(_event(order_id, 3))])
            assert await _within(5, lambda: got == [1, 2, 3]) < 2.0
    finally:
        await sub.unsubscribe()


async def test_commits_within_the_relays_linger_go_out_in_one_round(make_database, nc, js):
    db = await make_database(ORDERS_MIGRATIONS)
    order_id = f"ORD-L{uuid.uuid4().hex[:10].upper()}"
    relay = OutboxRelay(db, js, f"linger{uuid.uuid4().hex[:6]}")
    relay.LINGER_SECONDS = 1.0  # wide, so that five commits fit in it on a slow machine too
    passes = _counted(relay, "publish_pending")  # the relay's passes
    got: list[tuple[int, float]] = []

    async def received(msg) -> None:
        got.append((events_pb2.Event.FromString(msg.data).aggregate_version, time.monotonic()))

    sub = await nc.subscribe(f"orderdesk.order.{order_id}.>", cb=received)
    try:
        async with running(relay.run()):
            await _within(5, lambda: passes["n"] == 1)  # the first pass at start, then asleep
            first = time.monotonic()
            for n in range(1, 6):
                async with db.transaction() as tx:
                    await tx.emit(_event(order_id, n))
            committed = time.monotonic()
            await _within(10, lambda: len(got) == 5)
            assert committed - first < relay.LINGER_SECONDS, "the five commits took longer than the linger"
            assert [version for version, _ in got] == [1, 2, 3, 4, 5]
            assert passes["n"] == 2, passes  # one round for the five, not one each
            assert got[0][1] - first >= relay.LINGER_SECONDS  # the first waited for the others
    finally:
        await sub.unsubscribe()


async def test_an_idle_allocator_sleeps_wakes_for_an_order_and_its_safety_net_finds_one_no_one_told(
    make_database,
):
    db = await make_database(ORDERS_MIGRATIONS)
    run = uuid.uuid4().hex[:8].upper()
    allocator = Allocator(db, CountingInventory(), timeout=5)
    passes = _counted(allocator, "backlog")  # the allocator's passes: one read of its backlog each
    told = OrdersService(db, on_confirmed=allocator.wake)
    untold = OrdersService(db)  # as another replica whose poke was lost

    async def allocated(order_id: str) -> bool:
        async with db.read() as conn:
            return (await OrderRepository(conn).get(order_id)).status.value == "allocated"

    async with running(allocator.run()):
        await asyncio.sleep(2.5)
        assert passes["n"] == 1, passes  # the first pass at start, then asleep (a pass a second: 3)
        await told.create(_order(f"ORD-W{run}", 10))
        assert await _within(5, lambda: allocated(f"ORD-W{run}")) < 1.0
    allocator.SAFETY_NET_SECONDS = 0.5
    async with running(allocator.run()):
        await asyncio.sleep(0.2)  # the first pass
        await untold.create(_order(f"ORD-U{run}", 10))
        assert await _within(5, lambda: allocated(f"ORD-U{run}")) < 2.0


async def test_orders_confirmed_within_the_allocators_linger_share_its_pass(make_database):
    db = await make_database(ORDERS_MIGRATIONS)
    run = uuid.uuid4().hex[:8].upper()
    allocator = Allocator(db, CountingInventory(), timeout=5)
    allocator.LINGER_SECONDS = 1.0  # wide, so that three orders fit in it on a slow machine too
    passes = _counted(allocator, "backlog")  # the allocator's passes: one read of its backlog each
    told = OrdersService(db, on_confirmed=allocator.wake)
    ids = [f"ORD-L{run}{n}" for n in range(3)]

    async def all_allocated() -> bool:
        async with db.read() as conn:
            found = await OrderRepository(conn).get_many(ids)
        return [o.status.value for o in found] == ["allocated"] * 3

    async with running(allocator.run()):
        await _within(5, lambda: passes["n"] == 1)  # the first pass at start, then asleep
        first = time.monotonic()
        for order_id in ids:
            await told.create(_order(order_id, 10))
        created = time.monotonic()
        waited = await _within(10, all_allocated)
        assert created - first < allocator.LINGER_SECONDS, "the three orders took longer than the linger"
        assert passes["n"] == 2, passes  # one pass for the three, not one each
        assert created - first + waited >= allocator.LINGER_SECONDS  # the pass waited for the others
