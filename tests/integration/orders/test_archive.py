"""The archive on a real database (SQLite and PostgreSQL): closed orders move whole out of the hot tables,
are still found by id and by partner reference, still count in the KPI report, are exported, are never
moved twice, and are never lost to a consumer racing the archive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from orderdesk import errors
from orderdesk.config import ArchiveSettings
from orderdesk.db import utcnow
from orderdesk.v1 import common_pb2, orders_pb2, returns_pb2, shipping_pb2
from services.orders.archive.job import Archiver
from services.orders.archive.store import MOVES, OrderArchive
from services.orders.domain import Allocation, Status
from services.orders.kpi import report_to_proto
from services.orders.kpi import store as kpi_store
from services.orders.proto import order_to_proto
from services.orders.service import OrdersService
from services.orders.store import ARCHIVE, HOT, OrderRepository

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"
T1 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
# Orders' updated_at is the wall clock: the archive is run "later" instead of waiting for them to age.
LATER = dt.timedelta(days=45)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def setup(make_database):
    clock = Clock(T1)
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    archiver = Archiver(service.db, ArchiveSettings(after_days=30, batch=2))  # several batches per pass
    return service, archiver, clock


def request(order_id: str, ref: str, *, sku: str = "A", hold: bool = False, partner: str = "P-SHOP"):
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id=partner,
        channel="api",
        external_ref=ref,
        customer_id="C0001",
        ship_to=common_pb2.Address(name="Ada", line1="1 Main St", city="Springfield", country="US"),
        lines=[orders_pb2.OrderLine(sku=sku, quantity=2, unit_price="3.25")],
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="m", field="lines[0].unit_price")]
        if hold
        else [],
        priority=100,
        currency="USD",
    )


def shipment(order_id: str, status: str) -> shipping_pb2.Shipment:
    return shipping_pb2.Shipment(
        shipment_id=f"SHP-{order_id}",
        order_id=order_id,
        warehouse="W1",
        status=status,
        on_time=True,
        version={"shipped": 2, "delivered": 3}[status],
        lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
    )


def refund(order_id: str, rma: str = "RMA-1") -> returns_pb2.Return:
    return returns_pb2.Return(
        rma_id=rma,
        order_id=order_id,
        status="refunded",
        lines=[returns_pb2.ReturnLine(sku="A", quantity=1, reason="damaged: dented", restocked_quantity=1)],
    )


async def complete(orders: OrdersService, clock: Clock, order_id: str, ref: str) -> None:
    """Received, reserved, shipped, delivered: completed, with a ledger row (first allocation)."""
    await orders.create(request(order_id, ref))
    clock.now += HOUR
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx, order_id, lambda o: o.apply_reservation(clock(), [Allocation("A", "W1", 2)], {})
        )
    for status in ("shipped", "delivered"):
        clock.now += DAY
        async with orders.db.transaction() as tx:
            await orders.record_shipment(tx, shipment(order_id, status))


async def a_month(orders: OrdersService, clock: Clock) -> None:
    """Three closed orders (completed with a return, cancelled, rejected) and an open one."""
    await complete(orders, clock, "ORD-DONE", "PO-DONE")
    async with orders.db.transaction() as tx:
        await orders.record_return(tx, refund("ORD-DONE"))
    await orders.create(request("ORD-CXL", "PO-CXL"))
    await orders.decide("ORD-CXL", "", "cancel", "P-SHOP", "customer_request: ordered twice")
    await orders.create(request("ORD-REJ", "PO-REJ", hold=True, sku="B"))
    await orders.decide("ORD-REJ", "", "reject", "desk", "price not agreed")
    await orders.create(request("ORD-OPEN", "PO-OPEN"))


async def kpis(orders: OrdersService) -> orders_pb2.KpiReport:
    """The report as GetKpiReport answers it (the use case: one snapshot on PostgreSQL)."""
    return report_to_proto(await orders.kpi_report("2026-11-01", "2026-11-30", "week"))


async def rows(orders: OrdersService, table, order_id: str) -> int:
    async with orders.db.read() as conn:
        return (
            await conn.execute(select(func.count()).select_from(table).where(table.c.order_id == order_id))
        ).scalar_one()


def as_read(order) -> orders_pb2.Order:
    message = order_to_proto(order)
    message.archived = False
    return message


async def test_closed_orders_move_whole_and_are_still_found_counted_and_exported(setup):
    orders, archiver, clock = setup
    await a_month(orders, clock)
    closed = ("ORD-DONE", "ORD-CXL", "ORD-REJ")
    before = {i: await orders.get(i, "") for i in (*closed, "ORD-OPEN")}
    report_before = await kpis(orders)
    assert report_before.total.orders_received == 4 and report_before.returns_by_sku

    # Not old enough yet: nothing moves.
    early = await archiver.run_pass(now=utcnow() + dt.timedelta(days=29))
    assert (early.archived, early.skipped) == (0, 0)

    done = await archiver.run_pass(now=utcnow() + LATER)
    assert (done.archived, done.skipped, done.batches) == (3, 0, 2)  # batches of 2

    for order_id in closed:
        found = await orders.get(order_id, "")
        assert found.archived is True and order_to_proto(found).archived
        assert as_read(found) == order_to_proto(before[order_id])  # whole: lines, history, changes …
        assert (await orders.get(order_id, "P-SHOP")).order_id == order_id
        with pytest.raises(errors.NotFound):  # another partner's: not found, as for hot orders
            await orders.get(order_id, "P-OTHER")
        for hot, _archive in MOVES:  # out of every hot table, into its archive twin
            assert await rows(orders, hot, order_id) == 0
        assert await rows(orders, ARCHIVE.orders, order_id) == 1
    assert await rows(orders, ARCHIVE.lines, "ORD-DONE") == 1
    assert await rows(orders, ARCHIVE.history, "ORD-DONE") == len(before["ORD-DONE"].history)
    assert await rows(orders, kpi_store.archived_order_facts, "ORD-DONE") == 2  # first allocation, return
    assert (await orders.get("ORD-OPEN", "")).archived is False
    assert await rows(orders, HOT.orders, "ORD-OPEN") == 1

    # A plain listing reads the hot tables only; a search (ListOrders' filters) finds archived orders too.
    listed, _ = await orders.list("P-SHOP", "", 50, "")
    assert [o.order_id for o in listed] == ["ORD-OPEN"]

    async def search(partner: str = "", limit: int = 50, **by: str) -> list[tuple[str, bool]]:
        found, cursor, pages = [], "", 0
        while True:  # every page, following the cursor
            page, cursor = await orders.list(partner, "", limit, cursor, **by)
            found += [(o.order_id, o.archived) for o in page]
            pages += 1
            assert pages < 10
            if not cursor:
                return found

    assert await search("P-SHOP", external_ref="PO-CXL") == [("ORD-CXL", True)]
    assert await search("P-OTHER", external_ref="PO-CXL") == []  # a partner finds only its own
    assert await search(sku="B") == [("ORD-REJ", True)]
    newest_first = [("ORD-OPEN", False), ("ORD-REJ", True), ("ORD-CXL", True), ("ORD-DONE", True)]
    assert await search(customer_id="C0001") == newest_first
    assert await search(customer_id="C0001", limit=1) == newest_first  # pages across both, none twice
    assert await search(channel="api", limit=3) == newest_first
    window = await search(created_from=str((T1 + 2 * DAY).date()), created_to=str((T1 + 2 * DAY).date()))
    assert sorted(window) == [("ORD-CXL", True), ("ORD-OPEN", False), ("ORD-REJ", True)]
    queue, _ = await orders.list("", "rejected", 50, "", order_by="priority", customer_id="C0001")
    assert [(o.order_id, o.archived) for o in queue] == [("ORD-REJ", True)]

    # The desk's numbers are the same, figure for figure.
    assert await kpis(orders) == report_before

    # A second pass moves nothing twice.
    again = await archiver.run_pass(now=utcnow() + LATER)
    assert (again.archived, again.skipped) == (0, 0)
    async with orders.db.reading() as work:
        assert await work.repo(OrderArchive).count() == 3

    # The export: every archived order of the period, whole, by archive time or by creation time.
    when = (utcnow() + LATER).date()
    pages = [p async for p in orders.export_archive(str(when), str(when), "archived", page=2)]
    assert [len(p) for p in pages] == [2, 1]
    exported = {e.order.order_id: e for page in pages for e in page}
    assert sorted(exported) == sorted(closed)
    done_order = exported["ORD-DONE"]
    assert as_read(done_order.order) == order_to_proto(before["ORD-DONE"])
    assert done_order.closed_at == before["ORD-DONE"].history[-1].at and done_order.created_at == T1
    assert done_order.archived_at.date() == when
    created = [p async for p in orders.export_archive("2026-11-10", "2026-11-10", "created")]
    assert [e.order.order_id for page in created for e in page] == ["ORD-DONE"]
    with pytest.raises(errors.InvalidArgument):
        [p async for p in orders.export_archive("2026-11-01", "2026-11-30", "shipped")]


async def test_a_late_event_brings_an_archived_order_back_and_counts(setup):
    orders, archiver, clock = setup
    await complete(orders, clock, "ORD-LATE", "PO-LATE")
    await orders.create(request("ORD-NEXT", "PO-NEXT"))  # the newest order is never archived: see below
    assert (await archiver.run_pass(now=utcnow() + LATER)).archived == 1
    archived = await orders.get("ORD-LATE", "")
    assert archived.archived and archived.lines[0].returned == 0

    # A return refunded after the order was archived: applied, not dropped; the order is hot again.
    clock.now = T1 + 5 * DAY
    async with orders.db.transaction() as tx:
        await orders.record_return(tx, refund("ORD-LATE", "RMA-LATE"))
    back = await orders.get("ORD-LATE", "")
    assert back.archived is False and back.lines[0].returned == 1 and back.version == archived.version + 1
    assert await rows(orders, ARCHIVE.orders, "ORD-LATE") == 0
    assert await rows(orders, kpi_store.order_facts, "ORD-LATE") == 2  # the first allocation came back too
    assert [(r.reason, r.units) for r in (await kpis(orders)).returns_by_reason] == [("damaged", 1)]
    # Changed just now: it stays hot until it is old again.
    assert (await archiver.run_pass(now=utcnow() + dt.timedelta(days=29))).archived == 0
    assert (await archiver.run_pass(now=utcnow() + LATER)).archived == 1


async def test_the_archive_takes_only_orders_at_the_version_it_read(setup):
    orders, archiver, clock = setup
    await complete(orders, clock, "ORD-R1", "PO-R1")
    await complete(orders, clock, "ORD-R2", "PO-R2")
    await orders.create(request("ORD-NEXT", "PO-NEXT"))
    now = utcnow() + LATER
    async with orders.db.reading() as work:
        candidates = await work.repo(OrderArchive).candidates(now - 30 * DAY, 10)
    assert sorted(c.order_id for c in candidates) == ["ORD-R1", "ORD-R2"]

    # A consumer changes ORD-R1 after the archive read it, before it moved.
    async with orders.db.transaction() as tx:
        await orders.record_return(tx, refund("ORD-R1"))
    async with orders.db.transaction() as tx:
        moved = await tx.repo(OrderArchive).move(candidates, now)
    assert moved == ["ORD-R2"]
    kept = await orders.get("ORD-R1", "")
    assert kept.archived is False and kept.lines[0].returned == 1  # the change is there, in the hot tables
    assert (await orders.get("ORD-R2", "")).archived is True


async def test_a_consumer_that_read_an_order_before_it_moved_retries_and_loses_nothing(setup):
    orders, archiver, clock = setup
    await complete(orders, clock, "ORD-C", "PO-C")
    await orders.create(request("ORD-NEXT", "PO-NEXT"))
    async with orders.db.reading() as work:
        stale = await work.repo(OrderRepository).get("ORD-C")
    assert stale is not None and not stale.archived
    assert (await archiver.run_pass(now=utcnow() + LATER)).archived == 1

    stale.record_return({"A": 1})  # the consumer's change, on the copy it read before the move
    with pytest.raises(errors.Conflict):
        async with orders.db.transaction() as tx:
            await tx.repo(OrderRepository).save(stale)
    # Its retry reads the order again (from the archive) and saves it back into the hot tables.
    async with orders.db.transaction() as tx:
        await orders.record_return(tx, refund("ORD-C"))
    back = await orders.get("ORD-C", "")
    assert back.archived is False and back.lines[0].returned == 1 and back.status is Status.COMPLETED
    assert await rows(orders, ARCHIVE.orders, "ORD-C") == 0 and await rows(orders, HOT.lines, "ORD-C") == 1


async def test_the_newest_order_stays_so_no_new_order_takes_an_archived_seq(setup):
    """SQLite numbers a new row after the highest rowid present: were the newest order archived, the next
    one would take its seq, and listings (merged by seq) and a restore (which keeps it) would clash."""
    orders, archiver, clock = setup
    await orders.create(request("ORD-A", "PO-A"))
    await orders.decide("ORD-A", "", "cancel", "P-SHOP", "customer_request")
    await orders.create(request("ORD-B", "PO-B"))
    await orders.decide("ORD-B", "", "cancel", "P-SHOP", "customer_request")
    assert (await archiver.run_pass(after_days=0)).archived == 1  # every closed order, but the newest
    assert [(await orders.get(i, "")).archived for i in ("ORD-A", "ORD-B")] == [True, False]
    await orders.create(request("ORD-C", "PO-C"))
    assert (await archiver.run_pass(after_days=0)).archived == 1  # ORD-B now, not the open ORD-C
    async with orders.db.read() as conn:
        archived = [r[0] for r in await conn.execute(select(ARCHIVE.orders.c.seq))]
        hot = [r[0] for r in await conn.execute(select(HOT.orders.c.seq))]
    await orders.create(request("ORD-D", "PO-D"))
    async with orders.db.read() as conn:
        newest = (await conn.execute(select(func.max(HOT.orders.c.seq)))).scalar_one()
    assert len(archived) == 2 and newest > max(archived + hot)
    found, _ = await orders.list("P-SHOP", "", 50, "", external_ref="PO-A")
    assert [(o.order_id, o.archived) for o in found] == [("ORD-A", True)]


async def test_the_migrated_archive_tables_mirror_the_hot_ones(setup):
    orders, _archiver, _clock = setup

    def columns(sync_conn) -> dict[str, set[str]]:
        found = inspect(sync_conn)
        return {t.name: {c["name"] for c in found.get_columns(t.name)} for pair in MOVES for t in pair}

    async with orders.db.read() as conn:
        migrated = await conn.run_sync(columns)
    for hot, archive in MOVES:
        expected = {c.name for c in hot.columns} | ({"archived_at"} if archive is ARCHIVE.orders else set())
        assert migrated[hot.name] == {c.name for c in hot.columns}
        assert migrated[archive.name] == expected == {c.name for c in archive.columns}


async def test_a_batch_of_late_shipment_events_brings_its_archived_orders_back(setup):
    """The shipment consumer's group commit reads a batch's orders at once, archived ones too, and its one
    save per order brings each archived one back into the hot tables, as one event at a time would."""
    from tests.integration.fetched import FetchedMsg
    from tests.integration.orders.test_shipment_batches import consumer
    from tests.integration.orders.test_shipment_batches import shipment as shipment_event

    orders, archiver, clock = setup
    await complete(orders, clock, "ORD-A1", "PO-A1")
    await complete(orders, clock, "ORD-A2", "PO-A2")
    await orders.create(request("ORD-NEXT", "PO-NEXT"))
    assert (await archiver.run_pass(now=utcnow() + LATER)).archived == 2
    before = {i: (await orders.get(i, "")).version for i in ("ORD-A1", "ORD-A2")}

    # The carrier's late word on both parcels (v4 of each shipment, still delivered), twice for ORD-A1.
    msgs = [
        FetchedMsg(shipment_event("ORD-A1", "delivered", 4)),
        FetchedMsg(shipment_event("ORD-A2", "delivered", 4)),
        FetchedMsg(shipment_event("ORD-A1", "delivered", 5)),
    ]
    assert await consumer(orders).handle_together(msgs)
    assert all(m.acked for m in msgs)
    for order_id, version in (("ORD-A1", 5), ("ORD-A2", 4)):
        back = await orders.get(order_id, "")
        assert back.archived is False and back.status is Status.COMPLETED
        assert [s.version for s in back.shipments.values()] == [version]
        assert back.version == before[order_id] + (2 if order_id == "ORD-A1" else 1)
        assert (
            await rows(orders, ARCHIVE.orders, order_id) == 0 and await rows(orders, HOT.lines, order_id) == 1
        )
