"""Resolutions that change the order (issue 4): split_delivery (what is reserved ships now, the rest becomes a
linked order) and accept_delay (the accepted date becomes the promise)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.domain import units_per_sku
from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.orders.domain import (
    Allocation,
    Line,
    Order,
    OrderChanged,
    ShipmentView,
    Status,
    check_split_lines,
    parse_split_lines,
    split_off,
    split_quantities,
)

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def scheduled(lines=None, held=(("A", "WH-HAM", 3),)) -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"country": "FR", "city": "Paris"},
        lines=lines or [Line("A", 5, Decimal("2.50")), Line("B", 2, Decimal("10"))],
        requested_delivery_date="2026-12-01",
        payment_terms="NET30",
        currency="EUR",
        priority=140,
        urgent=True,
    )
    allocations = [Allocation(*a) for a in held]
    reserved = {a.sku: a.quantity for a in allocations}
    order.apply_reservation(
        NOW,
        allocations,
        {line.sku: line.quantity - reserved.get(line.sku, 0) for line in order.lines},
        ("2026-12-10", "2026-12-14"),
    )
    order.transitions.clear()
    return order


def units(lines: list[Line]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return totals


def test_the_reserved_units_stay_and_the_rest_becomes_a_linked_order():
    order = scheduled()
    assert order.status is Status.SCHEDULED
    v = order.version
    child = order.split_delivery(
        [Allocation("A", "WH-HAM", 3)],
        at=NOW,
        actor="desk-anna",
        delivery_date="2027-01-15",
        reason="split delivery for EX-1",
    )
    assert [(x.sku, x.quantity, x.allocated) for x in order.lines] == [("A", 3, 3)]
    assert order.status is Status.ALLOCATED and order.split_into == ["ORD-1-2"]
    assert order.expected_delivery_date == "" and order.allocations == [Allocation("A", "WH-HAM", 3)]
    assert [(x.sku, x.quantity, x.unit_price, x.allocated) for x in child.lines] == [
        ("A", 2, Decimal("2.50"), 0),
        ("B", 2, Decimal("10"), 0),
    ]
    assert child.order_id == "ORD-1-2" and child.split_from == "ORD-1" and child.external_ref == "PO-1/2"
    assert child.status is Status.CONFIRMED and [t.status for t in child.transitions] == [
        Status.RECEIVED,
        Status.CONFIRMED,
    ]
    assert (
        child.customer_id,
        child.ship_to,
        child.payment_terms,
        child.currency,
        child.priority,
        child.urgent,
    ) == ("C1", {"country": "FR", "city": "Paris"}, "NET30", "EUR", 140, True)
    assert child.requested_delivery_date == "2027-01-15" and order.requested_delivery_date == "2026-12-01"
    # the parent: allocated, then one change record (before/after and the link), published as order.changed
    assert [t.status for t in order.transitions] == [Status.ALLOCATED] and order.version == v + 2
    [record] = order.change_log
    assert record.kinds == ("split_delivery",) and record.actor == "desk-anna" and record.version == v + 2
    fields = {c.field: (c.before, c.after) for c in record.changes}
    assert fields["lines[A].quantity"] == ("5", "3") and fields["lines[B]"] == ("2 x 10", "")
    assert fields["split_into"] == ("", "ORD-1-2")
    assert order.events == [OrderChanged(record)]


def test_a_second_split_gets_the_next_number():
    order = scheduled()
    order.split_into = ["ORD-1-2"]  # split at approval already
    child = order.split_delivery(
        [Allocation("A", "WH-HAM", 3)], at=NOW, actor="d", delivery_date="", reason=""
    )
    assert child.order_id == "ORD-1-3" and order.split_into == ["ORD-1-2", "ORD-1-3"]
    assert child.requested_delivery_date == "2026-12-01"  # no new date known: the order's own


@pytest.mark.parametrize(
    "held, rule",
    [
        ((), "split_nothing_allocated"),
        ((("A", "WH-HAM", 5), ("B", "WH-HAM", 2)), "split_nothing_missing"),
    ],
)
def test_nothing_to_split_is_refused_and_changes_nothing(held, rule):
    order = scheduled()
    before = (order.version, [(x.sku, x.quantity) for x in order.lines], order.status)
    with pytest.raises(FailedPrecondition) as refused:
        order.split_delivery([Allocation(*a) for a in held], at=NOW, actor="d", delivery_date="", reason="")
    assert refused.value.rule == rule
    assert (order.version, [(x.sku, x.quantity) for x in order.lines], order.status) == before
    assert order.split_into == [] and order.change_log == []


def test_units_missing_at_picking_split_off_an_allocated_order():
    order = scheduled(held=(("A", "WH-HAM", 5), ("B", "WH-HAM", 2)))
    assert order.status is Status.ALLOCATED
    order.check_split_delivery()
    with pytest.raises(FailedPrecondition) as refused:  # everything held: nothing to deliver later
        order.split_delivery(order.allocations, at=NOW, actor="d", delivery_date="", reason="")
    assert refused.value.rule == "split_nothing_missing"
    v = order.version
    # 2 of A were not on the shelf (written off): the order ships 3 of A and the 2 of B, the rest comes later
    child = order.split_delivery(
        [Allocation("A", "WH-HAM", 3), Allocation("B", "WH-HAM", 2)],
        at=NOW,
        actor="d",
        delivery_date="2027-01-15",
        reason="short at pick",
    )
    assert order.status is Status.ALLOCATED and order.transitions == [] and order.version == v + 1
    assert [(x.sku, x.quantity) for x in order.lines] == [("A", 3), ("B", 2)]
    assert [(x.sku, x.quantity) for x in child.lines] == [("A", 2)]
    assert {c.field: c.after for c in order.change_log[-1].changes}["allocations[A]"] == "WH-HAM x3"


def test_a_cancelled_order_cannot_split():
    order = scheduled(held=(("A", "WH-HAM", 5), ("B", "WH-HAM", 2)))
    order.cancel(NOW, "desk", "no longer needed")
    with pytest.raises(FailedPrecondition) as refused:
        order.split_delivery([Allocation("A", "WH-HAM", 1)], at=NOW, actor="d", delivery_date="", reason="")
    assert refused.value.rule == "split_not_allowed_in_status"


LINES = st.lists(
    st.tuples(st.sampled_from("ABC"), st.integers(1, 20), st.sampled_from(["1", "2.5"])),
    min_size=1,
    max_size=6,
)


@given(LINES, st.dictionaries(st.sampled_from("ABCD"), st.integers(0, 40)))
def test_split_arithmetic_loses_and_invents_nothing(lines, held):
    original = [Line(sku, qty, Decimal(price)) for sku, qty, price in lines]
    kept, rest = split_quantities(original, held)
    assert all(x.quantity > 0 for x in kept + rest)
    want, k, r = units(original), units(kept), units(rest)
    for sku, qty in want.items():
        assert k.get(sku, 0) + r.get(sku, 0) == qty
        assert k.get(sku, 0) == min(qty, held.get(sku, 0))  # what is held, never more
    assert set(k) | set(r) <= set(want)
    assert all(x.allocated == x.quantity for x in kept) and all(x.allocated == 0 for x in rest)
    prices = {(x.sku, x.unit_price) for x in original}
    assert {(x.sku, x.unit_price) for x in kept + rest} <= prices


@given(LINES, st.dictionaries(st.sampled_from("ABC"), st.integers(0, 40)))
def test_a_split_order_and_its_linked_order_add_up_to_the_original(lines, held):
    order = scheduled(lines=[Line(sku, qty, Decimal(price)) for sku, qty, price in lines], held=())
    want = units(order.lines)
    allocations = [
        Allocation(sku, "WH-HAM", min(q, want.get(sku, 0))) for sku, q in held.items() if sku in want
    ]
    try:
        child = order.split_delivery(allocations, at=NOW, actor="d", delivery_date="2027-01-01", reason="")
    except FailedPrecondition as refused:
        kept = sum(a.quantity for a in allocations)
        assert (refused.rule == "split_nothing_allocated") == (kept == 0)
        assert units(order.lines) == want
        return
    parent, rest = units(order.lines), units(child.lines)
    assert {s: parent.get(s, 0) + rest.get(s, 0) for s in want} == want
    assert all(x.quantity > 0 for x in order.lines + child.lines)
    assert all(x.allocated == x.quantity for x in order.lines)  # the parent keeps exactly what is reserved
    assert sum(a.quantity for a in order.allocations) == sum(parent.values())


def test_accepting_a_delay_moves_the_promise_and_records_it():
    order = scheduled()
    v = order.version
    order.accept_delay("2027-01-15", at=NOW, actor="desk-anna", reason="delay accepted (EX-1): by phone")
    assert order.requested_delivery_date == "2027-01-15" and order.version == v + 1
    [record] = order.change_log
    assert record.kinds == ("accept_delay",) and [(c.field, c.before, c.after) for c in record.changes] == [
        ("requested_delivery_date", "2026-12-01", "2027-01-15")
    ]
    assert order.events == [OrderChanged(record)] and order.transitions == []
    order.accept_delay("2027-01-15", at=NOW, actor="desk", reason="again")  # the same date: nothing new
    assert order.version == v + 1 and len(order.change_log) == 1
    order.cancel(NOW, "desk", "gone")
    with pytest.raises(FailedPrecondition) as refused:
        order.accept_delay("2027-02-01", at=NOW, actor="desk", reason="")
    assert refused.value.rule == "order_closed"


def test_the_accepted_date_is_the_exceptions_else_one_given():
    from orderdesk.errors import InvalidArgument
    from services.orders import exceptions as ex

    def delay(date):
        return ex.OrderException.create(
            exception_id="EX-1",
            type="production_delay",
            cause="press",
            at=NOW,
            actor="desk",
            expected_date=date,
        )

    assert ex.accepted_date(delay("2027-01-15"), {}) == "2027-01-15"
    assert ex.accepted_date(delay(""), {"expected_date": "2027-02-01"}) == "2027-02-01"
    for details in ({}, {"expected_date": "soon"}):
        with pytest.raises(InvalidArgument) as refused:
            ex.accepted_date(delay(""), details)
        assert refused.value.violations[0].field == "details.expected_date"


def test_after_a_split_the_announced_date_is_the_linked_orders_not_the_parents():
    from services.orders import exceptions as ex

    order = scheduled()
    order.record_exception(
        ex.OrderException.create(
            exception_id="EX-1",
            type="production_delay",
            cause="press",
            at=NOW,
            actor="desk",
            expected_date="2027-01-15",
        )
    )
    order.resolve_exception("EX-1", "split_delivery", at=NOW, actor="desk")
    assert ex.expected_date(order.exceptions) == "" and not order.at_risk


# --- the remainder of a partially shipped order (issue 14) -----------------------------------------------------
def partly_shipped(remainder_status: str = "pending", *, delivered: bool = False) -> Order:
    """A x5 and B x2, allocated at WH-HAM (A) and WH-CHI (B); the WH-HAM parcel (A x5) left, the
    WH-CHI shipment (B x2) is at `remainder_status`."""
    order = scheduled(held=(("A", "WH-HAM", 5), ("B", "WH-CHI", 2)))
    assert order.status is Status.ALLOCATED
    order.record_shipment(
        NOW, ShipmentView("S1", "WH-HAM", "delivered" if delivered else "shipped", lines={"A": 5})
    )
    order.record_shipment(NOW, ShipmentView("S2", "WH-CHI", remainder_status, lines={"B": 2}))
    assert order.status is Status.PARTIALLY_SHIPPED
    order.transitions.clear()
    order.events.clear()
    return order


def test_a_partially_shipped_order_splits_off_only_units_not_yet_shipped():
    order = partly_shipped()
    v = order.version
    assert order.open_allocations() == [Allocation("B", "WH-CHI", 2)]
    child = order.split_delivery(
        [Allocation("B", "WH-CHI", 1)],  # inventory holds only B x1 for it now
        at=NOW,
        actor="desk",
        delivery_date="2027-01-15",
        reason="split delivery for EX-1",
        later={"B": 1},
    )
    # the shipped units stay on the order with their counts; the remainder keeps B x1
    assert [(x.sku, x.quantity, x.shipped, x.allocated) for x in order.lines] == [
        ("A", 5, 5, 5),
        ("B", 1, 0, 1),
    ]
    assert order.status is Status.PARTIALLY_SHIPPED and not order.transitions
    assert order.allocations == [Allocation("A", "WH-HAM", 5), Allocation("B", "WH-CHI", 1)]
    assert order.open_units() == {"B": 1} and order.split_into == ["ORD-1-2"]
    assert [(x.sku, x.quantity, x.shipped) for x in child.lines] == [("B", 1, 0)]
    assert child.split_from == "ORD-1" and child.status is Status.CONFIRMED
    assert "not yet shipped" in child.history[0].reason
    [record] = order.change_log
    assert record.kinds == ("split_delivery",) and record.version == v + 1
    fields = {c.field: (c.before, c.after) for c in record.changes}
    assert fields["lines[B].quantity"] == ("2", "1") and fields["split_into"] == ("", "ORD-1-2")
    assert fields["allocations[B]"] == ("WH-CHI x2", "WH-CHI x1") and "lines[A].quantity" not in fields
    assert order.events == [OrderChanged(record)]


def test_splitting_off_the_whole_remainder_leaves_the_order_shipped_then_completed():
    order = partly_shipped("picked")  # implicit split: what is not held goes (B was short at picking)
    child = order.split_delivery([], at=NOW, actor="desk", delivery_date="", reason="short at pick")
    assert [(x.sku, x.quantity, x.shipped) for x in order.lines] == [("A", 5, 5)]
    assert [(x.sku, x.quantity) for x in child.lines] == [("B", 2)]
    assert order.status is Status.SHIPPED and [t.status for t in order.transitions] == [Status.SHIPPED]
    assert order.allocations == [Allocation("A", "WH-HAM", 5)] and order.open_units() == {}
    # versions publish in order: order.shipped, then order.changed
    assert order.transitions[0].version < order.change_log[-1].version

    done = partly_shipped(delivered=True)
    done.split_delivery([], at=NOW, actor="desk", delivery_date="", reason="", later={"B": 2})
    assert done.status is Status.COMPLETED
    assert [t.status for t in done.transitions] == [Status.SHIPPED, Status.COMPLETED]


def after_of(order: Order):
    return (order.version, [(x.sku, x.quantity, x.shipped) for x in order.lines], list(order.allocations))


@pytest.mark.parametrize(
    "later, reason",
    [
        ({"A": 1}, "beyond_remainder"),  # A shipped in full
        ({"B": 3}, "beyond_remainder"),
        ({"Z": 1}, "unknown_line"),
    ],
)
def test_a_split_asking_for_more_than_the_remainder_names_the_field_and_changes_nothing(later, reason):
    order = partly_shipped()
    before = after_of(order)
    with pytest.raises(InvalidArgument) as refused:
        order.split_delivery(
            order.open_allocations(), at=NOW, actor="d", delivery_date="", reason="", later=later
        )
    [violation] = refused.value.violations
    assert (violation.field, violation.reason) == ("details.split_lines", reason)
    assert after_of(order) == before and not order.events and not order.split_into


def test_the_message_says_how_many_shipped():
    order = partly_shipped()
    with pytest.raises(InvalidArgument) as refused:
        order.check_split_lines({"A": 2})
    assert refused.value.violations[0].description == "2 of A asked; 0 not yet shipped (5 shipped)"


def test_a_chosen_split_follows_the_remainders_own_steps():
    order = partly_shipped("picked")
    with pytest.raises(FailedPrecondition) as refused:
        order.check_split_lines({"B": 1})
    assert refused.value.rule == "quantity_until_picked"
    partly_shipped("pending").check_split_lines({"B": 1})


def test_a_chosen_split_of_an_unshipped_order_keeps_something():
    order = scheduled(held=(("A", "WH-HAM", 5), ("B", "WH-HAM", 2)))
    with pytest.raises(InvalidArgument) as refused:
        order.check_split_lines({"A": 5, "B": 2})
    assert refused.value.violations[0].reason == "nothing_stays"
    child = order.split_delivery(
        [Allocation("A", "WH-HAM", 5)], at=NOW, actor="d", delivery_date="", reason="", later={"B": 2}
    )
    assert [(x.sku, x.quantity) for x in child.lines] == [("B", 2)]
    assert [(x.sku, x.quantity, x.allocated) for x in order.lines] == [("A", 5, 5)]
    assert order.status is Status.ALLOCATED and order.expected_delivery_date == ""


def test_a_chosen_split_of_an_order_still_waiting_keeps_it_waiting_with_its_dates():
    order = scheduled()  # A x5 (3 held), B x2: the 2 of A and the B are awaited
    assert order.expected_delivery_date == "2026-12-14"
    child = order.split_delivery(
        [Allocation("A", "WH-HAM", 3)], at=NOW, actor="d", delivery_date="", reason="", later={"B": 2}
    )
    assert [(x.sku, x.quantity) for x in child.lines] == [("B", 2)]
    assert [(x.sku, x.quantity, x.allocated) for x in order.lines] == [("A", 5, 3)]
    assert order.status is Status.SCHEDULED and order.expected_delivery_date == "2026-12-14"
    assert not order.transitions


def test_a_shortage_can_only_be_units_still_to_ship_from_that_warehouse():
    order = partly_shipped()
    order.check_shortage("B", "WH-CHI", 2)
    for sku, wh, qty in (("B", "WH-CHI", 3), ("A", "WH-HAM", 1)):
        with pytest.raises(InvalidArgument) as refused:
            order.check_shortage(sku, wh, qty)
        assert [(v.field, v.reason) for v in refused.value.violations] == [("quantity", "beyond_remainder")]


@pytest.mark.parametrize(
    "text, units",
    [("", {}), ("B=1", {"B": 1}), (" A=2 ; B=1;", {"A": 2, "B": 1}), ("A=1;A=2", {"A": 3})],
)
def test_split_lines_parse(text, units):
    assert parse_split_lines(text) == units


@pytest.mark.parametrize("text", ["B", "B=0", "=2", "B=-1", "B=x"])
def test_malformed_split_lines_name_the_field(text):
    with pytest.raises(InvalidArgument) as refused:
        parse_split_lines(text)
    assert [(v.field, v.reason) for v in refused.value.violations] == [("details.split_lines", "malformed")]


@given(
    st.lists(st.tuples(st.sampled_from("AB"), st.integers(1, 6), st.integers(0, 6)), min_size=1, max_size=4),
    st.dictionaries(st.sampled_from("AB"), st.integers(1, 12)),
)
def test_a_chosen_split_never_takes_shipped_units_and_loses_nothing(spec, later):
    lines = [Line(sku, qty, Decimal("1"), shipped=min(shipped, qty)) for sku, qty, shipped in spec]
    try:
        check_split_lines(lines, later)
    except InvalidArgument:
        return
    kept, rest = split_off(lines, later)
    assert units(kept + rest) == units(lines) and units(rest) == later
    shipped = units_per_sku(lines, lambda x: x.shipped)
    assert units_per_sku(kept, lambda x: x.shipped) == {
        s: n for s, n in shipped.items() if n or s in units(kept)
    }
    assert all(x.quantity >= x.shipped and x.quantity > 0 for x in kept + rest)
