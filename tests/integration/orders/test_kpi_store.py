"""The desk's numbers on a real database (SQLite and PostgreSQL): the ledger rows the use cases write,
and the query that gathers a period's facts for the report."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from orderdesk.v1 import common_pb2, orders_pb2, returns_pb2, shipping_pb2
from services.orders.domain import Allocation
from services.orders.kpi import store as kpi_store
from services.orders.kpi.rules import compute_report, parse_period
from services.orders.service import OrdersService

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"
T1 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def setup(make_database):
    clock = Clock(T1)
    return OrdersService(await make_database(MIGRATIONS), clock=clock), clock


def request(
    order_id: str, sku: str = "A", quantity: int = 2, hold: bool = False
) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C0001",
        ship_to=common_pb2.Address(country="US"),
        lines=[orders_pb2.OrderLine(sku=sku, quantity=quantity, unit_price="3.25")],
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="m", field="lines[0].unit_price")]
        if hold
        else [],
        priority=100,
        currency="USD",
    )


async def report(
    orders: OrdersService, start: str = "2026-11-01", end: str = "2026-11-30", group_by: str = ""
):
    period = parse_period(start, end, group_by, now=T1)
    async with orders.db.read() as conn:
        gathered = await kpi_store.gather(conn, period.start, period.end)
        skus = await kpi_store.known_skus(conn)
    return gathered, compute_report(gathered, period, skus)


async def ledger(orders: OrdersService) -> list[tuple]:
    async with orders.db.read() as conn:
        rows = await conn.execute(
            kpi_store.order_facts.select().order_by(
                kpi_store.order_facts.c.order_id,
                kpi_store.order_facts.c.kind,
                kpi_store.order_facts.c.line_no,
            )
        )
        return [(r.order_id, r.kind, r.sku, r.quantity, r.filled, r.code, r.at) for r in rows]


async def test_a_scripted_month_is_recorded_and_gathered(setup):
    orders, clock = setup
    clock.now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    await orders.create(request("ORD-OLD", sku="OLD"))  # October: outside the period
    clock.now = T1
    await orders.create(request("ORD-1"))
    await orders.create(request("ORD-2", hold=True))

    clock.now = T1 + HOUR  # first reservation: 1 of 2; the second one later covers the rest
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx, "ORD-1", lambda o: o.apply_reservation(clock(), [Allocation("A", "W1", 1)], {"A": 1})
        )
    await orders.decide("ORD-2", "", "cancel", "P-SHOP", "customer_request: ordered twice")
    clock.now = T1 + 2 * HOUR
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx, "ORD-1", lambda o: o.apply_reservation(clock(), [Allocation("A", "W1", 2)], {})
        )
    for status, when in (("shipped", T1 + DAY), ("delivered", T1 + 2 * DAY)):
        clock.now = when
        async with orders.db.transaction() as tx:
            await orders.record_shipment(
                tx,
                shipping_pb2.Shipment(
                    shipment_id="SHP-1",
                    order_id="ORD-1",
                    warehouse="W1",
                    status=status,
                    on_time=False,
                    lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
                ),
            )
    clock.now = T1 + 3 * DAY
    refund = returns_pb2.Return(
        rma_id="RMA-1",
        order_id="ORD-1",
        status="refunded",
        lines=[returns_pb2.ReturnLine(sku="A", quantity=1, reason="damaged: dented", restocked_quantity=1)],
    )
    for _ in range(2):  # a repeat (another consumer replica, a replay) adds no row
        async with orders.db.transaction() as tx:
            await orders.record_return(tx, refund)

    rows = await ledger(orders)
    assert [r[:6] for r in rows] == [
        ("ORD-1", "first_allocation", "A", 2, 1, ""),
        ("ORD-1", "returned", "A", 1, 0, "damaged"),
        ("ORD-2", "cancelled", "A", 2, 0, "customer_request"),
        ("ORD-2", "held", "", 0, 0, "price_mismatch"),
    ]
    assert [r[6] for r in rows] == [T1 + HOUR, T1 + 3 * DAY, T1 + HOUR, T1]

    gathered, kpis = await report(orders)
    assert sorted(o.order_id for o in gathered) == ["ORD-1", "ORD-2"]  # ORD-OLD had nothing in November
    one = next(o for o in gathered if o.order_id == "ORD-1")
    assert [h.status for h in one.history] == [
        "received",
        "confirmed",
        "scheduled",
        "allocated",
        "shipped",
        "completed",
    ]
    assert one.on_time is False and one.lines[0].delivered == 2 and one.lines[0].unit_price == Decimal("3.25")
    t = kpis.total
    assert (t.orders_received, t.order_value) == (2, {"USD": Decimal("13.00")})  # 2 x 2 x 3.25
    assert (t.orders_held, t.orders_cancelled, t.hold_rate, t.cancellation_rate) == (1, 1, 0.5, 0.5)
    assert (t.lines_first_allocated, t.lines_filled, t.units_first_allocated, t.units_filled) == (1, 0, 2, 1)
    assert (t.orders_delivered, t.orders_on_time, t.on_time_rate) == (1, 0, 0.0)
    assert [(r.reason, r.orders, r.units) for r in kpis.cancellations_by_reason] == [
        ("customer_request", 1, 2)
    ]
    assert [(r.sku, r.units, r.base_units, r.rate) for r in kpis.cancellations_by_sku] == [("A", 2, 4, 0.5)]
    assert [(r.reason, r.orders) for r in kpis.holds_by_reason] == [("price_mismatch", 1)]
    assert [(r.sku, r.units, r.base_units, r.rate) for r in kpis.returns_by_sku] == [("A", 1, 2, 0.5)]
    assert [(s.sku, s.units) for s in kpis.best_sellers] == [("A", 2)]  # ORD-2 was cancelled
    assert [(s.sku, s.units) for s in kpis.slow_sellers] == [("OLD", 0), ("A", 2)]
    stages = {c.stage: c for c in kpis.cycle_times}
    assert (stages["received_to_confirmed"].count, stages["received_to_confirmed"].average_seconds) == (
        1,
        0.0,
    )
    assert stages["received_to_delivered"].average_seconds == (2 * DAY).total_seconds()

    # A period that ends before the first reservation sees only the receipts and the hold.
    _, early = await report(orders, "2026-11-10T09:00:00Z", "2026-11-10T09:30:00Z")
    assert (early.total.orders_received, early.total.orders_held, early.total.lines_first_allocated) == (
        2,
        1,
        0,
    )
    # October: ORD-OLD only.
    gathered, october = await report(orders, "2026-10-01", "2026-10-31", "day")
    assert [o.order_id for o in gathered] == ["ORD-OLD"]
    assert [(g.key, g.orders_received) for g in october.groups] == [("2026-10-01", 1)]


async def test_units_cancelled_by_a_change_request_are_in_the_ledger(setup):
    from services.orders.change_requests import ChangeRequests

    orders, clock = setup
    await orders.create(request("ORD-P", quantity=5))
    changes = ChangeRequests(orders, inventory=None, timeout=1.0)
    clock.now = T1 + HOUR
    await changes.change(
        orders_pb2.ChangeOrderRequest(
            order_id="ORD-P",
            partner_id="P-SHOP",
            actor=common_pb2.Actor(id="P-SHOP", reason="out_of_stock: only 2"),
            cancel_lines=[orders_pb2.ChangeLine(sku="A", quantity=3)],
        )
    )
    rows = await ledger(orders)
    assert [r[:6] for r in rows] == [("ORD-P", "cancelled", "A", 3, 0, "out_of_stock")]
    _, kpis = await report(orders)
    # 3 of the 5 units ordered were cancelled; the order itself lives on (not a cancelled order).
    assert [(r.sku, r.units, r.base_units) for r in kpis.cancellations_by_sku] == [("A", 3, 5)]
    assert kpis.total.orders_cancelled == 0 and [(s.sku, s.units) for s in kpis.best_sellers] == [("A", 2)]
