"""The promise watch on a real database (SQLite and PostgreSQL) with a clock the test moves: risks raised
and cleared once each through the outbox, orders due when saved and when their time comes, nothing
assessed before, settled orders left alone, priorities aged, the at-risk listing and the gauge."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orderdesk import metrics
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2
from services.orders.domain import Allocation
from services.orders.promise import AT_ONCE, current_priority
from services.orders.service import OrdersService
from services.orders.store import OrderRepository, orders
from services.orders.watch import Watch
from tests.integration.orders.test_store import MIGRATIONS

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


def watching(db, clock, **options) -> Watch:
    """The watch, wired as the service wires it: every save sets watch_at by its rule, policy and clock."""
    watch = Watch(db, clock=clock, **options)
    db.repositories[OrderRepository] = watch.repository
    return watch


def request(order_id: str, date: str = "2026-12-20", hold: bool = False) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="C", postal_code="1", country="DE"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        requested_delivery_date=date,
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="m")] if hold else [],
        priority=100,
        currency="EUR",
    )


async def events_of(db, order_id: str) -> list[events_pb2.Event]:
    async with db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
    found = [events_pb2.Event.FromString(r.payload) for r in rows]
    return [e for e in found if e.order_id == order_id and e.type in ("order.at_risk", "order.back_on_track")]


async def backorder(db, clock, order_id: str, expected_delivery: str) -> None:
    """The allocator's record of inventory's answer: short, with the date supply gives."""
    async with db.transaction() as tx:
        repo = tx.repo(OrderRepository)
        order = await repo.get(order_id)
        order.apply_reservation(
            clock(), [Allocation("A", "W1", 1)], {"A": 1}, ("2026-12-18", expected_delivery)
        )
        await repo.save(order)


async def test_a_late_backorder_is_told_once_and_its_recovery_once(make_database):
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock)
    await service.create(request("ORD-W1"))
    await service.create(request("ORD-W2", date="2027-03-01"))
    await backorder(db, clock, "ORD-W1", "2026-12-23")

    assert await watch.pass_once() == 2  # ORD-W2 too: its priority to age (intake's would be aged already)
    [raised] = await events_of(db, "ORD-W1")
    assert raised.type == "order.at_risk" and raised.order.risk.code == "supply_late"
    assert raised.order.expected_date == "2026-12-23" and raised.order.risk.slip_days == 3
    assert "after the promised 2026-12-20" in raised.order.risk.evidence and raised.order.order.at_risk
    order = await service.get("ORD-W1", "")
    assert [r.code.value for r in order.risks] == ["supply_late"] and order.risks[0].since == T0
    assert await events_of(db, "ORD-W2") == []

    # Saved again with the same date: nothing new to tell, so not due before its recheck; looked at
    # then, the same risk is not told twice.
    await backorder(db, clock, "ORD-W1", "2026-12-23")
    clock.advance(minutes=30)
    assert await watch.pass_once() == 0  # neither is due before its hourly recheck
    clock.advance(minutes=30)
    assert await watch.pass_once() == 2
    assert len(await events_of(db, "ORD-W1")) == 1

    # The at-risk queue and the gauge.
    listed, _ = await service.list("", "", 50, "", at_risk=True)
    assert [o.order_id for o in listed] == ["ORD-W1"]
    assert [
        o.order_id for o in (await service.list("", "", 50, "", at_risk=True, risk="supply_late"))[0]
    ] == ["ORD-W1"]
    assert (await service.list("", "", 50, "", at_risk=True, risk="carrier_silent"))[0] == []
    counts = await watch.count()
    assert counts["supply_late"] == 1 and counts["carrier_silent"] == 0
    report = await service.kpi_report("2026-12-01", "2026-12-31", "")
    assert report.orders_at_risk_now == 1 and [(r.reason, r.orders) for r in report.at_risk_now] == [
        ("supply_late", 1)
    ]
    # The promised day passes while it is still backordered: late, and warned more than a day before.
    clock.advance(days=11)
    late = await service.kpi_report("2026-12-01", "2026-12-31", "")
    assert (late.total.orders_late, late.total.orders_warned) == (1, 1)
    clock.now = T0 + dt.timedelta(hours=1)  # back to the morning it was
    assert metrics.ORDERS_AT_RISK.labels("supply_late")._value.get() == 1

    # Supply comes back in time: back on track, once.
    await backorder(db, clock, "ORD-W1", "2026-12-19")
    clock.advance(minutes=1)
    assert await watch.pass_once() == 1
    assert [e.type for e in await events_of(db, "ORD-W1")] == ["order.at_risk", "order.back_on_track"]
    cleared = (await events_of(db, "ORD-W1"))[1]
    assert cleared.order.risk.code == "supply_late" and not cleared.order.order.at_risk
    assert (await service.get("ORD-W1", "")).risks == []
    assert (await watch.count())["supply_late"] == 0


async def test_time_alone_raises_a_risk_when_its_moment_comes_and_not_before(make_database):
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock)
    await service.create(request("ORD-H", hold=True))
    assert await watch.pass_once() == 1 and await events_of(db, "ORD-H") == []  # its priority aged
    async with db.read() as conn:
        due = (await conn.execute(orders.select().where(orders.c.order_id == "ORD-H"))).mappings().one()
    assert due["watch_at"] == T0 + dt.timedelta(hours=1)  # at the latest the recheck
    clock.advance(minutes=30)
    assert await watch.pass_once() == 0  # nothing due yet: nothing read
    for _ in range(23):  # hourly rechecks while it waits
        clock.advance(hours=1)
        assert await watch.pass_once() == 1
    assert await events_of(db, "ORD-H") == []  # 23 h 30 on hold
    clock.advance(minutes=30)
    assert await watch.pass_once() == 1
    [raised] = await events_of(db, "ORD-H")
    assert raised.order.risk.code == "hold_too_long" and "24 h" in raised.order.risk.evidence

    # Approved: the save makes it due at once (a risk to clear), the risk clears; cancelled: settled by
    # its own save, never looked at again.
    await service.decide("ORD-H", "", "approve", "desk", "ok")
    assert await watch.pass_once() == 1
    assert [e.type for e in await events_of(db, "ORD-H")] == ["order.at_risk", "order.back_on_track"]
    await service.decide("ORD-H", "", "cancel", "desk", "no")
    assert await watch.pass_once() == 0
    clock.advance(days=30)
    assert await watch.pass_once() == 0
    async with db.read() as conn:
        row = (await conn.execute(orders.select().where(orders.c.order_id == "ORD-H"))).mappings().one()
    assert row["watch_at"] is None


async def test_priorities_age_and_an_order_changed_meanwhile_stays_due(make_database):
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock, batch=1)
    await service.create(request("ORD-P1", date=""))
    await service.create(request("ORD-P2", date=""))
    clock.advance(days=7)
    assert await watch.pass_once() == 1  # bounded: one per pass
    assert await watch.pass_once() == 1
    assert (await service.get("ORD-P1", "")).priority == 114  # a week waiting: 100 + 7 x 2

    # A writer saves the order between the watch's read and its write: the watch's write does not stick.
    clock.advance(hours=2)

    class Racing(Watch):
        async def due(self, now):
            found = await super().due(now)
            await service.decide("ORD-P1", "", "cancel", "desk", "meanwhile")
            return found

    assert await Racing(db, clock=clock, batch=1).pass_once() == 1
    async with db.read() as conn:
        row = (await conn.execute(orders.select().where(orders.c.order_id == "ORD-P1"))).mappings().one()
    # The cancel's save settled it; the watch's write from its older read did not stick.
    assert row["status"] == "cancelled" and row["watch_at"] is None
    assert await watch.pass_once() >= 1
    async with db.read() as conn:
        row = (await conn.execute(orders.select().where(orders.c.order_id == "ORD-P1"))).mappings().one()
    assert row["watch_at"] is None


async def test_an_order_not_allocated_in_time_is_at_risk_until_it_is(make_database):
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock)
    await service.create(request("ORD-A"))  # promised the 20th, waiting for stock
    assert await watch.pass_once() == 1 and await events_of(db, "ORD-A") == []

    # Saturday the 19th, still not allocated: released now it cannot arrive by the 20th.
    clock.now = dt.datetime(2026, 12, 19, 9, 0, tzinfo=dt.UTC)
    assert await watch.pass_once() == 1
    [raised] = await events_of(db, "ORD-A")
    assert raised.order.risk.code == "not_allocatable_in_time"
    assert raised.order.expected_date > "2026-12-20" and raised.order.risk.slip_days > 0
    assert "not allocated on 2026-12-19" in raised.order.risk.evidence

    # The stock comes: allocated, back on track.
    async with db.transaction() as tx:
        repo = tx.repo(OrderRepository)
        order = await repo.get("ORD-A")
        order.apply_reservation(clock(), [Allocation("A", "W1", 2)], {})
        await repo.save(order)
    assert await watch.pass_once() == 1
    assert [e.type for e in await events_of(db, "ORD-A")] == ["order.at_risk", "order.back_on_track"]
    assert (await service.get("ORD-A", "")).risks == []


async def test_a_save_marks_an_order_due_when_the_watch_has_something_to_do_and_not_before(make_database):
    """Every save sets watch_at by the watch's own rule: at once when a look would tell something (a slip the
    save brought), else the next moment time alone could (a slip time brings is still flagged then)."""
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock)
    aged = current_priority(100, requested=dt.date(2026, 12, 20), placed=T0.date(), today=T0.date())
    for order_id in ("ORD-S1", "ORD-S2", "ORD-S3"):
        placed = request(order_id)
        placed.priority = aged  # as intake places it: nothing for the watch to age today
        await service.create(placed)

    async def watch_at(order_id: str):
        async with db.read() as conn:
            found = await conn.execute(select(orders.c.watch_at).where(orders.c.order_id == order_id))
            return found.scalar_one()

    assert [await watch_at(i) for i in ("ORD-S1", "ORD-S2", "ORD-S3")] == [T0 + dt.timedelta(hours=1)] * 3
    assert await watch.pass_once() == 0  # nothing to tell: not read at all

    # A backorder whose supply comes too late: the save brings a slip, so it is due at once and told.
    await backorder(db, clock, "ORD-S1", "2026-12-23")
    await backorder(db, clock, "ORD-S2", "2026-12-19")  # in time: nothing to tell
    assert await watch_at("ORD-S1") == AT_ONCE and await watch_at("ORD-S2") > clock()
    assert await watch.pass_once() == 1
    [raised] = await events_of(db, "ORD-S1")
    assert raised.type == "order.at_risk" and raised.order.risk.code == "supply_late"
    assert await events_of(db, "ORD-S2") == []

    # Time alone: the 18th, ORD-S3 still not allocated can no longer arrive by the 20th. Its saved moment
    # has long passed, so the watch looks and flags it.
    clock.now = dt.datetime(2026, 12, 18, 9, 0, tzinfo=dt.UTC)
    assert await watch.pass_once() == 3
    [late] = await events_of(db, "ORD-S3")
    assert late.type == "order.at_risk" and late.order.risk.code == "not_allocatable_in_time"


async def watched_outcome(make_database, batch: int) -> tuple[list, list]:
    """Four orders, three of them to be told (not allocated in time on the 19th, one settled with a risk
    to drop), assessed `batch` at a time: every order event and every order row after the passes."""
    db = await make_database(MIGRATIONS)
    clock = Clock(T0)
    service = OrdersService(db, clock)
    watch = watching(db, clock, batch=batch)
    for order_id in ("ORD-B1", "ORD-B2", "ORD-B3", "ORD-B4"):
        await service.create(request(order_id, date="2026-12-20" if order_id != "ORD-B4" else ""))
    while await watch.pass_once():
        pass
    clock.now = dt.datetime(2026, 12, 19, 9, 0, tzinfo=dt.UTC)
    while await watch.pass_once():
        pass
    await service.decide("ORD-B2", "", "cancel", "desk", "no longer wanted")  # a risk the watch drops
    while await watch.pass_once():
        pass
    async with db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
        saved = (await conn.execute(orders.select().order_by(orders.c.order_id))).mappings().all()
    told = []
    for r in rows:
        event = events_pb2.Event.FromString(r.payload)
        event.ClearField("event_id")
        told.append(event)
    return told, [{k: v for k, v in row.items() if k not in ("seq", "updated_at")} for row in saved]


async def test_orders_told_together_are_saved_and_told_as_one_by_one(make_database):
    """A pass saves the orders whose risks changed together (save_many, publish_many): the same events, in
    the same order, and the same rows as passes of one order each."""
    together = await watched_outcome(make_database, batch=500)
    one_by_one = await watched_outcome(make_database, batch=1)
    assert together == one_by_one
    told, saved = together
    assert [e.type for e in told if e.order_id == "ORD-B1"][-1] == "order.at_risk"
    assert {row["order_id"]: row["risk_codes"] for row in saved}["ORD-B2"] == ""


async def test_an_order_changed_meanwhile_does_not_stop_the_others_being_told(make_database):
    """One of the orders to be told is saved by another writer between the watch's read and its write: the
    others are saved and told all the same, that one stays due and is told by the next pass."""
    db = await make_database(MIGRATIONS)
    clock = Clock(dt.datetime(2026, 12, 19, 9, 0, tzinfo=dt.UTC))
    service = OrdersService(db, clock)
    for order_id in ("ORD-R1", "ORD-R2", "ORD-R3"):
        await service.create(request(order_id))  # promised the 20th: on the 19th not allocatable in time

    class Racing(Watch):
        async def due(self, now):
            found = await super().due(now)
            await backorder(db, clock, "ORD-R2", "2026-12-23")  # another writer, after the watch read it
            return found

    watch = Racing(db, clock=clock)
    db.repositories[OrderRepository] = watch.repository
    assert await watch.pass_once() == 3
    assert [e.type for e in await events_of(db, "ORD-R1")] == ["order.at_risk"]
    assert [e.type for e in await events_of(db, "ORD-R3")] == ["order.at_risk"]
    assert await events_of(db, "ORD-R2") == []  # its write did not stick: still due
    assert await watching(db, clock).pass_once() == 1
    [told] = await events_of(db, "ORD-R2")
    assert told.type == "order.at_risk" and told.order.risk.code == "supply_late"  # as it now is
