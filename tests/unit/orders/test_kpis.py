"""The desk's numbers on a scripted history whose answers are worked out by hand below."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from orderdesk.errors import InvalidArgument
from orderdesk.v1 import returns_pb2
from services.orders.domain import Allocation, Line, Order
from services.orders.kpi import rules as kpis
from services.orders.kpi.rules import Fact, LineFacts, OrderFacts, StatusAt, compute_report, p90, parse_period

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
NOVEMBER = parse_period("2026-11-01", "2026-11-30", "", now=T0)  # [Nov 1 00:00, Dec 1 00:00)


def at(month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def order(
    order_id, customer, channel, currency, status, history, lines, facts=(), on_time=None
) -> OrderFacts:
    return OrderFacts(
        order_id,
        customer,
        channel,
        currency,
        status,
        tuple(StatusAt(s, t) for s, t in history),
        tuple(lines),
        tuple(facts),
        on_time,
    )


# A: delivered on time; one Y returned as damaged.
A = order(
    "A",
    "C1",
    "api",
    "USD",
    "completed",
    [
        ("received", T0),
        ("confirmed", T0 + dt.timedelta(seconds=60)),
        ("allocated", T0 + HOUR),
        ("shipped", at(11, 11)),
        ("completed", at(11, 13)),
    ],
    [LineFacts("X", 2, Decimal("10"), delivered=2), LineFacts("Y", 1, Decimal("5"), delivered=1)],
    [
        Fact("first_allocation", T0 + HOUR, 0, "X", 2, filled=2),
        Fact("first_allocation", T0 + HOUR, 1, "Y", 1, filled=1),
        Fact("returned", at(11, 15), 0, "Y", 1, code="damaged", reason="damaged: box crushed", ref="RMA-1"),
    ],
    on_time=True,
)
# B: backordered at first (1 of 4 reserved), delivered late.
B = order(
    "B",
    "C2",
    "edi",
    "USD",
    "completed",
    [
        ("received", at(11, 11)),
        ("confirmed", at(11, 11, 9, 2)),
        ("scheduled", at(11, 11, 11)),
        ("allocated", at(11, 12)),
        ("shipped", at(11, 13)),
        ("completed", at(11, 20)),
    ],
    [LineFacts("X", 4, Decimal("10"), delivered=4)],
    [Fact("first_allocation", at(11, 11, 11), 0, "X", 4, filled=1)],
    on_time=False,
)
# C: held for two reasons, approved, then cancelled by the customer before any reservation.
C = order(
    "C",
    "C1",
    "api",
    "USD",
    "cancelled",
    [
        ("received", at(11, 15, 10)),
        ("on_hold", at(11, 15, 10)),
        ("confirmed", at(11, 16, 10)),
        ("cancelled", at(11, 16, 12)),
    ],
    [LineFacts("Z", 3, Decimal("2"))],
    [
        Fact("held", at(11, 15, 10), 0, code="price_mismatch"),
        Fact("held", at(11, 15, 10), 1, code="credit_limit_exceeded"),
        Fact("cancelled", at(11, 16, 12), 0, "Z", 3, code="customer_request", reason="customer_request: no"),
    ],
)
# D: held (blocked customer) and rejected; in EUR.
D = order(
    "D",
    "C3",
    "api",
    "EUR",
    "rejected",
    [("received", at(11, 20, 10)), ("on_hold", at(11, 20, 10)), ("rejected", at(11, 21, 10))],
    [LineFacts("X", 1, Decimal("12"))],
    [Fact("held", at(11, 20, 10), 0, code="customer_blocked")],
)
# E: received in October, shipped and delivered (on time) in November.
E = order(
    "E",
    "C1",
    "api",
    "USD",
    "completed",
    [
        ("received", at(10, 30)),
        ("confirmed", at(10, 30, 9, 0, 30)),
        ("allocated", at(10, 31)),
        ("shipped", at(11, 2)),
        ("completed", at(11, 4)),
    ],
    [LineFacts("W", 5, Decimal("1"), delivered=5)],
    [Fact("first_allocation", at(10, 31), 0, "W", 5, filled=5)],
    on_time=True,
)
# F: received exactly when the period ends (excluded: the end is exclusive).
F = order(
    "F",
    "C1",
    "api",
    "USD",
    "confirmed",
    [("received", at(12, 1, 0)), ("confirmed", at(12, 1, 0, 0, 10))],
    [LineFacts("X", 9, Decimal("10"))],
)
HISTORY = [A, B, C, D, E, F]


def test_headline_figures_of_the_scripted_month():
    report = compute_report(HISTORY, NOVEMBER, known_skus=["W", "X", "Y", "Z"])
    t = report.total
    # Received in November: A, B, C, D (E in October, F at the exclusive end).
    assert t.orders_received == 4
    # USD: A 2x10 + 1x5 = 25, B 4x10 = 40, C 3x2 = 6 -> 71; EUR: D 1x12 = 12.
    assert t.order_value == {"USD": Decimal("71"), "EUR": Decimal("12")}
    # First allocations in November: A's X (2 of 2) and Y (1 of 1), B's X (1 of 4); E's was in October.
    # Lines: 2 of 3 filled; units: filled 2 + 1 + 1 = 4 of 2 + 1 + 4 = 7.
    assert (t.lines_first_allocated, t.lines_filled, t.units_first_allocated, t.units_filled) == (3, 2, 7, 4)
    assert t.line_fill_rate == pytest.approx(2 / 3) and t.unit_fill_rate == pytest.approx(4 / 7)
    # Completed in November: A (on time), B (late), E (on time) -> 2 of 3.
    assert (t.orders_delivered, t.orders_on_time) == (3, 2) and t.on_time_rate == pytest.approx(2 / 3)
    # Cancelled: C -> 1 of 4 received; held: C and D -> 2 of 4.
    assert (t.orders_cancelled, t.cancellation_rate) == (1, 0.25)
    assert (t.orders_held, t.hold_rate) == (2, 0.5)
    assert report.groups == []


def test_reasons_sellers_and_returns():
    report = compute_report(HISTORY, NOVEMBER, known_skus=["W", "X", "Y", "Z"])
    # Hold reasons: C's two and D's one, one order each; ties by code.
    assert [(r.reason, r.orders) for r in report.holds_by_reason] == [
        ("credit_limit_exceeded", 1),
        ("customer_blocked", 1),
        ("price_mismatch", 1),
    ]
    # C cancelled 3 Z of the 3 Z ordered in November.
    assert [(r.reason, r.orders, r.units) for r in report.cancellations_by_reason] == [
        ("customer_request", 1, 3)
    ]
    assert [(r.sku, r.units, r.base_units, r.rate) for r in report.cancellations_by_sku] == [("Z", 3, 3, 1.0)]
    # Sold (received in November, not cancelled or rejected): X 2 (A) + 4 (B) = 6 for 60; Y 1 for 5.
    assert [(s.sku, s.currency, s.units, s.value) for s in report.best_sellers] == [
        ("X", "USD", 6, Decimal("60")),
        ("Y", "USD", 1, Decimal("5")),
    ]
    # Slow: the known SKUs that sold nothing (W: only in October; Z: cancelled) first, then the lowest.
    assert [(s.sku, s.units) for s in report.slow_sellers] == [("W", 0), ("Z", 0), ("Y", 1), ("X", 6)]
    # Returned in November: 1 Y; delivered (orders completed in November): Y 1 (A) -> rate 1.0.
    assert [(r.sku, r.units, r.base_units, r.rate) for r in report.returns_by_sku] == [("Y", 1, 1, 1.0)]
    assert [(r.reason, r.orders, r.units) for r in report.returns_by_reason] == [("damaged", 1, 1)]


def test_cycle_times_average_and_p90():
    times = {c.stage: c for c in compute_report(HISTORY, NOVEMBER).cycle_times}
    # received->confirmed ending in November: A 60 s, B 120 s, C 1 day = 86400 s (E's ended in October, D never).
    # average (60 + 120 + 86400) / 3 = 28860; p90 by nearest rank: ceil(0.9 * 3) = 3rd smallest = 86400.
    rc = times["received_to_confirmed"]
    assert (rc.count, rc.average_seconds, rc.p90_seconds) == (3, 28860, 86400)
    # confirmed->shipped (shipped in November): A 1 d - 60 s = 86340; B 2 d - 120 s = 172680; E 3 d - 30 s = 259170.
    # average 518190 / 3 = 172730; p90 259170.
    cs = times["confirmed_to_shipped"]
    assert (cs.count, cs.average_seconds, cs.p90_seconds) == (3, 172730, 259170)
    # shipped->delivered: A 2 d, B 7 d, E 2 d = 172800 + 604800 + 172800 = 950400 -> 316800; p90 604800.
    sd = times["shipped_to_delivered"]
    assert (sd.count, sd.average_seconds, sd.p90_seconds) == (3, 316800, 604800)
    # received->delivered: A 3 d, B 9 d, E 5 d = 259200 + 777600 + 432000 = 1468800 -> 489600; p90 777600.
    rd = times["received_to_delivered"]
    assert (rd.count, rd.average_seconds, rd.p90_seconds) == (3, 489600, 777600)


def test_groups_by_customer_and_by_day():
    by_customer = {
        h.key: h
        for h in compute_report(HISTORY, parse_period("2026-11-01", "2026-11-30", "customer", now=T0)).groups
    }
    assert sorted(by_customer) == ["C1", "C2", "C3"]
    c1 = by_customer["C1"]
    # C1: received A and C (25 + 6 USD); C held and cancelled; A and E delivered on time; A's two lines filled.
    assert (c1.orders_received, c1.order_value, c1.orders_held, c1.orders_cancelled) == (
        2,
        {"USD": Decimal("31")},
        1,
        1,
    )
    assert (c1.orders_delivered, c1.orders_on_time, c1.lines_first_allocated, c1.lines_filled) == (2, 2, 2, 2)
    assert (by_customer["C2"].line_fill_rate, by_customer["C2"].on_time_rate) == (0.0, 0.0)
    assert by_customer["C3"].order_value == {"EUR": Decimal("12")} and by_customer["C3"].hold_rate == 1.0
    by_day = {
        h.key: h
        for h in compute_report(HISTORY, parse_period("2026-11-01", "2026-11-30", "day", now=T0)).groups
    }
    # Each fact in the bucket of its own time: C held on the 15th, cancelled on the 16th (no order received
    # that day: the rate is None, not 0 or infinity).
    assert by_day["2026-11-15"].orders_held == 1 and by_day["2026-11-15"].orders_received == 1
    assert by_day["2026-11-16"].orders_cancelled == 1 and by_day["2026-11-16"].cancellation_rate is None
    assert by_day["2026-11-04"].orders_delivered == 1  # E
    assert sum(h.orders_received for h in by_day.values()) == 4
    weeks = compute_report(HISTORY, parse_period("2026-11-01", "2026-11-30", "week", now=T0)).groups
    assert [w.key for w in weeks] == ["2026-W45", "2026-W46", "2026-W47"]
    months = compute_report(HISTORY, parse_period("2026-10-01", "2026-12-31", "month", now=T0)).groups
    assert [(m.key, m.orders_received) for m in months] == [("2026-10", 1), ("2026-11", 4), ("2026-12", 1)]


def test_empty_period_has_no_rates():
    report = compute_report(HISTORY, parse_period("2025-01-01", "2025-01-31", "", now=T0))
    t = report.total
    assert t.orders_received == 0 and t.order_value == {}
    assert (
        None is t.line_fill_rate is t.unit_fill_rate is t.on_time_rate is t.cancellation_rate is t.hold_rate
    )
    assert all(
        c.count == 0 and c.average_seconds is None and c.p90_seconds is None for c in report.cycle_times
    )
    assert report.best_sellers == [] and report.returns_by_sku == [] and report.holds_by_reason == []
    assert compute_report([], NOVEMBER).total.orders_received == 0


def test_returns_rate_is_none_without_deliveries_in_the_period():
    late_return = order(
        "G",
        "C1",
        "api",
        "USD",
        "completed",
        [("received", at(10, 1))],
        [LineFacts("Q", 1, Decimal("1"), delivered=1)],
        [Fact("returned", at(11, 2), 0, "Q", 1, code="other")],
    )
    assert [(r.sku, r.rate) for r in compute_report([late_return], NOVEMBER).returns_by_sku] == [("Q", None)]


def test_p90_with_few_samples():
    assert p90([]) is None
    assert p90([7.0]) == 7.0
    assert p90([3.0, 1.0]) == 3.0  # ceil(1.8) = 2nd smallest
    assert p90([float(n) for n in range(1, 11)]) == 9.0  # ceil(9.0) = 9th
    assert p90([float(n) for n in range(1, 12)]) == 10.0  # ceil(9.9) = 10th


def test_period_parsing():
    p = parse_period("2026-11-01T08:00:00+01:00", "2026-11-02", "week", now=T0)
    assert (p.start, p.end, p.group_by) == (at(11, 1, 7), at(11, 3, 0), "week")
    default = parse_period("", "", "", now=T0)
    assert (default.start, default.end) == (T0 - 30 * DAY, T0)
    for args, fields in (
        (("yesterday", "", ""), ["from"]),
        (("", "2026-13-01", ""), ["to"]),
        (("2026-11-02", "2026-11-01", ""), ["to"]),
        (("", "", "year"), ["group_by"]),
        (("2026-11-01T00:00:00", "", "hour"), ["from", "group_by"]),
    ):
        with pytest.raises(InvalidArgument) as raised:
            parse_period(*args, now=T0)
        assert [v.field for v in raised.value.violations] == fields


def test_reason_classes_are_bounded():
    assert kpis.reason_class("out_of_stock: supplier late", kpis.CANCEL_REASONS) == "out_of_stock"
    assert kpis.reason_class("Customer_Request", kpis.CANCEL_REASONS) == "customer_request"
    assert kpis.reason_class("customer changed mind", kpis.CANCEL_REASONS) == "other"
    assert kpis.reason_class("", kpis.RETURN_REASONS) == "other"
    assert kpis.reason_class("damaged - box crushed", kpis.RETURN_REASONS) == "damaged"
    assert kpis.hold_code("price_mismatch") == "price_mismatch" and kpis.hold_code("Bad Code!") == "other"


# --- the ledger rows the order's own transitions produce --------------------------------------------
def new_order(hold: list[dict] | None = None) -> Order:
    o = Order.receive(
        at=T0,
        actor="P-SHOP",
        hold_reasons=hold or [],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={},
        lines=[Line("A", 3, Decimal("2.50")), Line("B", 2, Decimal("10"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    return o


def saved(o: Order) -> Order:
    o.transitions.clear()
    return o


def test_first_reservation_records_what_it_covered_and_later_ones_nothing():
    o = saved(new_order())
    o.apply_reservation(T0 + HOUR, [Allocation("A", "W1", 3), Allocation("B", "W1", 1)], {"B": 1})
    assert [(f.kind, f.line_no, f.sku, f.quantity, f.filled, f.at) for f in kpis.facts_of(o)] == [
        ("first_allocation", 0, "A", 3, 3, T0 + HOUR),
        ("first_allocation", 1, "B", 2, 1, T0 + HOUR),
    ]
    saved(o).apply_reservation(T0 + DAY, [Allocation("A", "W1", 3), Allocation("B", "W1", 2)], {})
    assert o.status.value == "allocated" and kpis.facts_of(o) == []


def test_holds_and_cancellations_record_their_reasons():
    o = new_order(
        hold=[
            {"code": "price_mismatch", "message": "m", "field": "f"},
            {"code": "credit_limit_exceeded", "message": "c", "field": ""},
        ]
    )
    assert [(f.kind, f.code, f.ref) for f in kpis.facts_of(o)] == [
        ("held", "price_mismatch", "v2"),
        ("held", "credit_limit_exceeded", "v2"),
    ]
    saved(o).cancel(T0 + DAY, "P-SHOP", "out_of_stock: waited too long")
    assert [(f.kind, f.sku, f.quantity, f.code) for f in kpis.facts_of(o)] == [
        ("cancelled", "A", 3, "out_of_stock"),
        ("cancelled", "B", 2, "out_of_stock"),
    ]
    assert kpis.facts_of(saved(new_order())) == []


def test_return_lines_become_returned_rows():
    class ReturnLine:
        def __init__(self, sku, reason, restocked, scrapped):
            self.sku, self.reason, self.restocked_quantity, self.scrapped_quantity = (
                sku,
                reason,
                restocked,
                scrapped,
            )

    rows = kpis.return_facts(
        "RMA-9",
        [
            ReturnLine("A", "defective", 1, 1),
            ReturnLine("B", "meh", 0, 0),
            ReturnLine("C", "changed my mind", 1, 0),
        ],
        T0,
    )
    assert [(f.line_no, f.sku, f.quantity, f.code, f.ref) for f in rows] == [
        (0, "A", 2, "defective", "RMA-9"),
        (2, "C", 1, "other", "RMA-9"),
    ]


def test_the_report_through_protobuf_the_gateway_model_and_the_csv():
    import csv
    import io

    from cli.main import format_report, report_csv
    from gateway.reports import KpiReportOut
    from services.orders.kpi import report_to_proto

    period = parse_period("2026-11-01", "2026-11-30", "customer", now=T0)
    body = KpiReportOut.from_proto(report_to_proto(compute_report(HISTORY, period, ["W"]))).model_dump(
        mode="json"
    )
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert body["total"]["order_value"] == [
        {"currency": "EUR", "amount": "12"},
        {"currency": "USD", "amount": "71"},
    ]
    c3 = next(g for g in body["groups"] if g["key"] == "C3")
    assert (
        c3["line_fill_rate"] is None and c3["on_time_rate"] is None and c3["hold_rate"] == 1.0
    )  # null, not 0
    cells = {
        (r["section"], r["group"], r["item"], r["figure"]): r["value"]
        for r in csv.DictReader(io.StringIO(report_csv(body)))
    }
    assert cells[("headline", "total", "", "cancellation_rate")] == "0.25"
    assert cells[("headline", "C3", "", "line_fill_rate")] == ""
    assert cells[("best_sellers", "USD", "X", "units")] == "6"
    assert cells[("cycle_time", "", "shipped_to_delivered", "p90_seconds")] == "604800.0"
    text = format_report(body)
    assert "66.7% (2/3)" in text and "price_mismatch" in text


def test_units_cancelled_by_a_change_request_count_for_their_sku_and_reason():
    from services.orders.changes import ChangeRecord, FieldChange
    from services.orders.domain import OrderChanged

    record = ChangeRecord(
        version=4,
        at=T0 + DAY,
        actor="P-SHOP",
        kinds=("cancel_lines",),
        reason="out_of_stock: partial",
        changes=(FieldChange("lines[X].quantity", "5", "2"), FieldChange("lines[Y]", "1 x 5.00", "")),
    )
    rows = kpis.change_cancellations(record)
    assert [(f.sku, f.quantity, f.code, f.ref, f.at) for f in rows] == [
        ("X", 3, "out_of_stock", "change-v4", T0 + DAY),
        ("Y", 1, "out_of_stock", "change-v4", T0 + DAY),
    ]

    class Pending:  # an order with a saved-but-unpublished change request (Order.events)
        transitions: list = []
        events = [OrderChanged(record)]

    assert kpis.facts_of(Pending()) == rows
    Pending.events = [
        OrderChanged(
            ChangeRecord(5, T0, "P", ("quantity",), "", (FieldChange("lines[X].quantity", "5", "2"),))
        )
    ]
    assert kpis.facts_of(Pending()) == []  # a quantity change is not a cancellation
    # X was ordered 5 and is now 2 after the change: 3 of the 5 ordered units were cancelled, order not cancelled.
    trimmed = order(
        "T",
        "C1",
        "api",
        "USD",
        "confirmed",
        [("received", T0), ("confirmed", T0)],
        [LineFacts("X", 2, Decimal("1"))],
        rows[:1],
    )
    report = compute_report([trimmed], NOVEMBER)
    assert [(r.sku, r.units, r.base_units, r.rate) for r in report.cancellations_by_sku] == [("X", 3, 5, 0.6)]
    # By reason: 3 units, but no order cancelled (orders counts whole-order cancellations, as the counter does).
    assert [(r.reason, r.orders, r.units) for r in report.cancellations_by_reason] == [("out_of_stock", 0, 3)]
    assert report.total.orders_cancelled == 0 and report.total.cancellation_rate == 0.0


def test_warned_before_late_counts_late_orders_flagged_at_least_a_day_before():
    """Late = the promised day ended before the order completed (or was cancelled/rejected); warned = the
    promise watch's first at_risk fact at least a day before that moment."""
    line = [LineFacts("X", 1, Decimal("1"))]

    def promised(order_id, date, history, facts=()):
        o = order(order_id, "C1", "api", "USD", history[-1][0], history, line, facts)
        return OrderFacts(
            *[
                getattr(o, f)
                for f in (
                    "order_id",
                    "customer_id",
                    "channel",
                    "currency",
                    "status",
                    "history",
                    "lines",
                    "facts",
                    "on_time",
                )
            ],
            promised=date,
        )

    risk = lambda t: Fact("at_risk", t, 0, code="supply_late", ref="first")  # noqa: E731
    orders = [
        # late on Nov 21 00:00, flagged Nov 19 09:00: warned
        promised("W", "2026-11-20", [("received", at(11, 1)), ("scheduled", at(11, 1))], [risk(at(11, 19))]),
        # late on Nov 21 00:00, flagged Nov 20 09:00: less than a day ahead, not warned
        promised("N", "2026-11-20", [("received", at(11, 1)), ("scheduled", at(11, 1))], [risk(at(11, 20))]),
        # completed after its promised day, never flagged: late, not warned
        promised("C", "2026-11-10", [("received", at(11, 1)), ("completed", at(11, 12))]),
        # completed on its promised day: not late
        promised(
            "T", "2026-11-10", [("received", at(11, 1)), ("completed", at(11, 10, 23))], [risk(at(11, 2))]
        ),
        # cancelled before its day ended: not late
        promised("X", "2026-11-10", [("received", at(11, 1)), ("cancelled", at(11, 5))]),
        # late after the period (Dec 2): not counted
        promised("D", "2026-12-01", [("received", at(11, 1)), ("scheduled", at(11, 1))], [risk(at(11, 2))]),
        # no promise: never late
        promised("Z", "", [("received", at(11, 1)), ("scheduled", at(11, 1))]),
    ]
    report = compute_report(orders, NOVEMBER)
    assert (report.total.orders_late, report.total.orders_warned) == (3, 1)
    assert report.total.warned_before_late_rate == pytest.approx(1 / 3)
    # not late yet at the time of the report: nothing counted
    early = compute_report(orders, NOVEMBER, now=at(11, 15))
    assert (early.total.orders_late, early.total.orders_warned) == (1, 0)
    assert compute_report([], NOVEMBER).total.warned_before_late_rate is None


def test_the_first_at_risk_of_an_order_becomes_a_ledger_row():
    from services.orders.promise import Risk, RiskCode

    o = new_order()
    o.watch([Risk(RiskCode.SUPPLY_LATE, "2026-12-24", 4, "late")], T0)
    assert [(f.kind, f.code, f.ref, f.at) for f in kpis.facts_of(o)] == [
        ("at_risk", "supply_late", "first", T0)
    ]


def test_exchange_and_claim_rates_by_reason_and_sku():
    """Issue 14: exchanged units by the return reason, claimed units by the claim's reason, each per SKU
    against the units delivered in the period (a fact outside the period does not count)."""
    delivered = order(
        "H",
        "C1",
        "api",
        "USD",
        "completed",
        [("received", at(11, 1)), ("completed", at(11, 3))],
        [LineFacts("M", 4, Decimal("10"), delivered=4), LineFacts("P", 2, Decimal("5"), delivered=2)],
        [
            Fact("exchanged", at(11, 5), 0, "M", 1, code="wrong_item", ref="RMA-1"),
            Fact("claimed", at(11, 6), 0, "M", 2, code="wrong_item", ref="RMA-2"),
            Fact("claimed", at(11, 6), 1, "P", 1, code="damaged_in_transit", ref="RMA-2"),
            Fact("claimed", at(10, 30), 0, "P", 1, code="missing_items", ref="RMA-0"),  # October
        ],
    )
    report = compute_report([delivered], NOVEMBER)
    assert [(r.sku, r.units, r.base_units, r.rate) for r in report.exchanges_by_sku] == [("M", 1, 4, 0.25)]
    assert [(r.reason, r.orders, r.units) for r in report.exchanges_by_reason] == [("wrong_item", 1, 1)]
    assert [(r.sku, r.units, r.base_units, r.rate) for r in report.claims_by_sku] == [
        ("M", 2, 4, 0.5),
        ("P", 1, 2, 0.5),
    ]
    assert [(r.reason, r.orders, r.units) for r in report.claims_by_reason] == [
        ("wrong_item", 1, 2),
        ("damaged_in_transit", 1, 1),
    ]


def test_claim_and_exchange_facts_from_returns_events():
    claim = returns_pb2.Return(
        rma_id="RMA-2",
        kind="claim",
        claim_reason="damaged_in_transit",
        lines=[returns_pb2.ReturnLine(sku="P", quantity=2, resolution="refund")],
    )
    (fact,) = kpis.claim_facts(claim, T0)
    assert (fact.kind, fact.sku, fact.quantity, fact.code, fact.ref) == (
        "claimed",
        "P",
        2,
        "damaged_in_transit",
        "RMA-2",
    )
    assert kpis.claim_facts(returns_pb2.Return(rma_id="RMA-3", lines=claim.lines), T0) == []
    lines = [
        returns_pb2.ReturnLine(sku="M", quantity=1, resolution="exchange", reason_code="wrong_item"),
        returns_pb2.ReturnLine(sku="P", quantity=1, resolution="refund", reason_code="damaged"),
    ]
    assert [(f.kind, f.sku, f.code) for f in kpis.exchange_facts("RMA-1", lines, T0)] == [
        ("exchanged", "M", "wrong_item")
    ]
