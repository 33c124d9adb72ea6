"""Change requests: the policy table (every status x change type x shipment stage) and applying a change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.orders.changes import (
    POLICY,
    ChangeRequest,
    ChangeType,
    NewLine,
    Stage,
    check_allowed,
    needs_review,
    order_stage,
    refusing_rule,
)
from services.orders.domain import Allocation, Line, Order, OrderChanged, ShipmentView, Status
from services.orders.kpi import rules as kpis

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
OPEN = {"received", "on_hold", "confirmed", "scheduled"}
ADDRESS = {
    "name": "Jo",
    "line1": "1 New St",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "phone": "",
}


def test_the_table_covers_every_status_and_change_type():
    assert set(POLICY) == {s.value for s in Status}
    for status, row in POLICY.items():
        assert set(row) == set(ChangeType), status


# The expected answer for every combination, written out independently of the table's shape.
def expected_rule(status: str, change: ChangeType, stage: Stage) -> str | None:
    if status in OPEN:
        return None
    if status in ("cancelled", "rejected"):
        return "order_closed"
    if status in ("shipped", "completed"):
        return "returns_only_after_shipment"
    limits = {
        ChangeType.SHIP_TO: (Stage.PACKED, "address_until_packed"),
        ChangeType.QUANTITY: (Stage.PICKED, "quantity_until_picked"),
        ChangeType.ADD_LINE: (Stage.PICKED, "lines_until_picking"),
        ChangeType.REMOVE_LINE: (Stage.PICKED, "lines_until_picking"),
        ChangeType.CANCEL_LINES: (Stage.SHIPPED, "cancel_before_shipment"),
        ChangeType.CANCEL: (Stage.SHIPPED, "cancel_before_shipment"),
    }
    until, rule = limits[change]  # allocated, and a partially shipped order's remainder alike
    return rule if stage >= until else None


@pytest.mark.parametrize("status", [s.value for s in Status])
@pytest.mark.parametrize("change", list(ChangeType))
@pytest.mark.parametrize("stage", list(Stage))
def test_every_status_change_and_stage(status, change, stage):
    assert refusing_rule(status, change, stage) == expected_rule(status, change, stage)
    if expected_rule(status, change, stage) is None:
        check_allowed(status, change, stage)
    else:
        with pytest.raises(FailedPrecondition) as refused:
            check_allowed(status, change, stage, "ORD-1")
        assert refused.value.rule == expected_rule(status, change, stage)


@given(
    st.sampled_from([s.value for s in Status]),
    st.sampled_from(list(ChangeType)),
    st.lists(st.sampled_from(list(Stage)), min_size=2, max_size=2),
)
def test_going_further_never_allows_more(status, change, stages):
    """Monotone: once goods are further along, whatever was refused stays refused."""
    early, late = sorted(stages)
    if refusing_rule(status, change, early) is not None:
        assert refusing_rule(status, change, late) is not None


# --- applying changes ----------------------------------------------------------------------------------
def order(status: str = "confirmed", shipments: dict | None = None) -> Order:
    o = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"line1": "1 Old St", "city": "Lyon", "country": "FR"},
        lines=[Line("A", 3, Decimal("2.50")), Line("B", 1, Decimal("10"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    if status == "allocated":
        o.apply_reservation(NOW, [Allocation("A", "W1", 3), Allocation("B", "W2", 1)], {})
    for sid, (wh, st_, lines) in (shipments or {}).items():
        o.record_shipment(NOW, ShipmentView(sid, wh, st_, lines=lines))
    o.transitions.clear()
    o.loaded_version = o.version
    return o


def test_address_change_records_before_and_after():
    o = order()
    before = o.version
    record = o.change(ChangeRequest(ship_to=ADDRESS, reason="moved"), at=NOW, actor="P-SHOP")
    assert o.ship_to["city"] == "Berlin" and o.version == before + 1
    assert ("ship_to.city", "Lyon", "Berlin") in [(c.field, c.before, c.after) for c in record.changes]
    assert record.kinds == ("ship_to",) and record.actor == "P-SHOP" and record.at == NOW
    assert o.change_log == [record] and o.events == [OrderChanged(record)]
    assert needs_review(record)


def test_quantity_up_down_add_remove():
    o = order()
    record = o.change(
        ChangeRequest(quantities={"A": 5, "B": 0}, add_lines=[NewLine("C", 2, "4.00")]), at=NOW, actor="P"
    )
    assert [(line.sku, line.quantity) for line in o.lines] == [("A", 5), ("C", 2)]
    assert {(c.field, c.before, c.after) for c in record.changes} == {
        ("lines[A].quantity", "3", "5"),
        ("lines[B]", "1 x 10", ""),
        ("lines[C]", "", "2 x 4.00"),
    }
    assert set(record.kinds) == {"quantity", "remove_line", "add_line"}
    assert o.lines_changed and o.total_amount == Decimal("20.50")
    down = o.change(ChangeRequest(quantities={"A": 1}), at=NOW, actor="P")
    assert not needs_review(down)


def test_cancel_some_units_then_all_cancels_the_order():
    o = order()
    o.change(ChangeRequest(cancel={"A": 2}), at=NOW, actor="P")
    assert [(line.sku, line.quantity) for line in o.lines] == [("A", 1), ("B", 1)]
    assert o.change(ChangeRequest(cancel={"A": 1, "B": 1}), at=NOW, actor="P") is None
    assert o.status is Status.CANCELLED


def test_cancel_more_than_open_is_invalid_and_changes_nothing():
    o = order()
    with pytest.raises(InvalidArgument) as bad:
        o.change(ChangeRequest(cancel={"A": 4}, ship_to=ADDRESS), at=NOW, actor="P")
    assert bad.value.violations[0].field == "lines[0].quantity"
    assert o.ship_to["city"] == "Lyon" and o.lines[0].quantity == 3 and not o.change_log


def test_bad_requests_name_each_field():
    o = order()
    with pytest.raises(InvalidArgument) as bad:
        o.change(
            ChangeRequest(
                quantities={"Z": 1, "A": -1},
                add_lines=[NewLine("A", 0, "x")],
                ship_to={"line1": "", "city": "X", "country": "DEU"},
            ),
            at=NOW,
            actor="P",
        )
    fields = {v.field for v in bad.value.violations}
    assert {
        "lines[0].sku",
        "lines[1].quantity",
        "add_lines[0].sku",
        "add_lines[0].quantity",
        "add_lines[0].unit_price",
        "ship_to.line1",
        "ship_to.country",
    } <= fields
    with pytest.raises(InvalidArgument):
        o.change(ChangeRequest(), at=NOW, actor="P")


def test_removing_every_line_is_refused():
    with pytest.raises(FailedPrecondition) as refused:
        order().change(ChangeRequest(remove_skus=["A", "B"]), at=NOW, actor="P")
    assert refused.value.rule == "order_needs_a_line"


def test_allocated_order_quantity_refused_once_its_line_is_picked_but_other_lines_change():
    o = order("allocated", {"S1": ("W1", "picked", {"A": 3}), "S2": ("W2", "pending", {"B": 1})})
    with pytest.raises(FailedPrecondition) as refused:
        o.change(ChangeRequest(quantities={"A": 2}), at=NOW, actor="P")
    assert refused.value.rule == "quantity_until_picked"
    o.change(ChangeRequest(quantities={"B": 2}), at=NOW, actor="P")  # B's shipment is not picked yet
    with pytest.raises(FailedPrecondition) as refused:
        o.change(ChangeRequest(add_lines=[NewLine("C", 1, "1")]), at=NOW, actor="P")
    assert refused.value.rule == "lines_until_picking"
    o.change(ChangeRequest(ship_to=ADDRESS), at=NOW, actor="P")  # nothing packed yet
    o.change(ChangeRequest(cancel={"A": 1}), at=NOW, actor="P")  # picked is before shipped


def test_packed_shipment_refuses_address_change():
    o = order("allocated", {"S1": ("W1", "packed", {"A": 3})})
    with pytest.raises(FailedPrecondition) as refused:
        o.change(ChangeRequest(ship_to=ADDRESS), at=NOW, actor="P")
    assert refused.value.rule == "address_until_packed"


def test_after_shipment_only_returns():
    o = order("allocated", {"S1": ("W1", "shipped", {"A": 3}), "S2": ("W2", "shipped", {"B": 1})})
    assert o.status is Status.SHIPPED
    for request in (
        ChangeRequest(ship_to=ADDRESS),
        ChangeRequest(quantities={"A": 1}),
        ChangeRequest(cancel={"B": 1}),
    ):
        with pytest.raises(FailedPrecondition) as refused:
            o.change(request, at=NOW, actor="P")
        assert refused.value.rule == "returns_only_after_shipment"


@given(
    st.dictionaries(st.sampled_from(["A", "B"]), st.integers(0, 6), min_size=1),
    st.sampled_from(["confirmed", "on_hold", "scheduled"]),
)
def test_any_quantity_change_keeps_totals_consistent(quantities, status):
    o = order()
    o.status = Status(status)
    try:
        record = o.change(ChangeRequest(quantities=quantities), at=NOW, actor="P")
    except FailedPrecondition as refused:
        assert refused.rule == "order_needs_a_line" and all(q == 0 for q in quantities.values())
        return
    expected = {"A": 3, "B": 1, **quantities}
    assert {line.sku: line.quantity for line in o.lines} == {k: v for k, v in expected.items() if v}
    if record is None:
        assert quantities == {k: v for k, v in {"A": 3, "B": 1}.items() if k in quantities}
    else:
        assert o.change_log[-1] is record and o.version == record.version


# --- the change log tells the whole story ---------------------------------------------------------------
def replay(lines: dict[str, int], log) -> dict[str, int]:
    """Rebuilds the quantities from the original ones and the log's before/after alone."""
    state = dict(lines)
    for record in log:
        for c in record.changes:
            if c.field.endswith(".quantity"):
                sku = c.field[len("lines[") : -len("].quantity")]
                assert state[sku] == int(c.before)
                state[sku] = int(c.after)
            elif c.field.startswith("lines["):
                sku = c.field[len("lines[") : -1]
                if c.after:
                    assert sku not in state and not c.before
                    state[sku] = int(c.after.split(" x ")[0])
                else:
                    assert state[sku] == int(c.before.split(" x ")[0])
                    del state[sku]
    return state


requests = st.one_of(
    st.builds(lambda sku, q: ChangeRequest(quantities={sku: q}), st.sampled_from("ABCD"), st.integers(0, 9)),
    st.builds(
        lambda sku, q: ChangeRequest(add_lines=[NewLine(sku, q, "1.00")]),
        st.sampled_from("ABCD"),
        st.integers(1, 9),
    ),
    st.builds(lambda sku: ChangeRequest(remove_skus=[sku]), st.sampled_from("ABCD")),
    st.builds(lambda sku, q: ChangeRequest(cancel={sku: q}), st.sampled_from("ABCD"), st.integers(1, 9)),
)


@given(st.lists(requests, max_size=12))
def test_the_change_log_replays_to_the_order_as_it_is(sequence):
    o = order()
    original = {line.sku: line.quantity for line in o.lines}
    for request in sequence:
        version = o.version
        try:
            record = o.change(request, at=NOW, actor="P")
        except (InvalidArgument, FailedPrecondition):
            assert o.version == version  # a refused request changes nothing
            continue
        if o.status is Status.CANCELLED:
            break
        if record is None:
            assert o.version == version
        else:
            assert o.version == version + 1 == record.version
    if o.status is not Status.CANCELLED:
        assert replay(original, o.change_log) == {line.sku: line.quantity for line in o.lines}
        assert all(line.quantity > 0 for line in o.lines) and o.lines
        assert [r.version for r in o.change_log] == sorted({r.version for r in o.change_log})


# --- the remainder of a partially shipped order ---------------------------------------------------------------
def partly_shipped(remainder_status: str = "pending", *, delivered: bool = False) -> Order:
    """A shipped from W1 (3 units, delivered when asked), B still in W2 (1 unit) at `remainder_status`."""
    first = "delivered" if delivered else "shipped"
    o = order("allocated", {"S1": ("W1", first, {"A": 3}), "S2": ("W2", remainder_status, {"B": 1})})
    assert o.status is Status.PARTIALLY_SHIPPED
    return o


def test_the_remainder_changes_as_an_allocated_order_until_its_own_shipment_moves():
    o = partly_shipped("pending")
    o.change(ChangeRequest(ship_to=ADDRESS), at=NOW, actor="P")  # the parcel that left keeps its address
    o.change(ChangeRequest(quantities={"B": 2}), at=NOW, actor="P")
    o.change(ChangeRequest(add_lines=[NewLine("C", 1, "1.00")]), at=NOW, actor="P")
    assert [(line.sku, line.quantity) for line in o.lines] == [("A", 3), ("B", 2), ("C", 1)]
    assert o.status is Status.PARTIALLY_SHIPPED and o.shipments["S1"].status == "shipped"

    picked = partly_shipped("picked")
    with pytest.raises(FailedPrecondition) as refused:
        picked.change(ChangeRequest(quantities={"B": 2}), at=NOW, actor="P")
    assert refused.value.rule == "quantity_until_picked"
    picked.change(ChangeRequest(ship_to=ADDRESS), at=NOW, actor="P")  # picked is before packed

    packed = partly_shipped("packed")
    with pytest.raises(FailedPrecondition) as refused:
        packed.change(ChangeRequest(ship_to=ADDRESS), at=NOW, actor="P")
    assert refused.value.rule == "address_until_packed"


def test_units_that_shipped_are_never_cut_and_the_field_is_named():
    o = partly_shipped()
    with pytest.raises(InvalidArgument) as bad:
        o.change(ChangeRequest(quantities={"B": 2, "A": 2}), at=NOW, actor="P")
    assert [(v.field, v.reason) for v in bad.value.violations] == [("lines[1].quantity", "below_shipped")]
    with pytest.raises(InvalidArgument) as bad:
        o.change(ChangeRequest(remove_skus=["A"]), at=NOW, actor="P")
    assert [(v.field, v.reason) for v in bad.value.violations] == [("remove_lines[0]", "below_shipped")]
    with pytest.raises(InvalidArgument) as bad:
        o.change(ChangeRequest(cancel={"A": 1}), at=NOW, actor="P")
    assert bad.value.violations[0].reason == "more_than_open"
    assert not o.change_log and [(line.sku, line.quantity) for line in o.lines] == [("A", 3), ("B", 1)]


def test_cancelling_the_remainder_ends_the_order_shipped_with_the_units_cancelled():
    o = partly_shipped("packed")  # packed is still in the warehouse: it can be cancelled
    request = o.remainder_cancel("customer_request: no longer needed")
    assert request.cancel == {"B": 1}
    record = o.change(request, at=NOW, actor="P")
    assert [(line.sku, line.quantity, line.shipped) for line in o.lines] == [("A", 3, 3)]
    assert o.status is Status.SHIPPED and [t.status for t in o.transitions] == [Status.SHIPPED]
    assert record.kinds == ("cancel_lines",) and ("lines[B]", "1 x 10", "") in [
        (c.field, c.before, c.after) for c in record.changes
    ]
    # Published in version order: order.shipped, then order.changed with what was cancelled.
    assert o.transitions[0].version < record.version and o.events == [OrderChanged(record)]
    facts = kpis.facts_of(o)
    assert [(f.kind, f.sku, f.quantity, f.ref) for f in facts] == [
        ("cancelled", "B", 1, f"change-v{record.version}")
    ]
    with pytest.raises(FailedPrecondition) as refused:  # a second cancel: nothing is left
        o.remainder_cancel("again")
    assert refused.value.rule == "cancel_before_shipment"
    with pytest.raises(FailedPrecondition) as refused:
        o.change(ChangeRequest(cancel={"A": 1}), at=NOW, actor="P")
    assert refused.value.rule == "returns_only_after_shipment"


def test_cancelling_the_remainder_after_everything_shipped_was_delivered_completes_the_order():
    o = partly_shipped("pending", delivered=True)
    o.change(ChangeRequest(cancel={"B": 1}), at=NOW, actor="P")
    assert o.status is Status.COMPLETED
    assert [t.status for t in o.transitions] == [Status.SHIPPED, Status.COMPLETED]


def test_only_a_partially_shipped_order_cancels_a_remainder():
    for o in (order("allocated"), order("confirmed")):
        with pytest.raises(FailedPrecondition) as refused:
            o.remainder_cancel("")
        assert refused.value.rule == "cancel_before_shipment"


def test_the_reservation_of_the_remainder_keeps_the_shipped_units_in_the_allocations():
    o = partly_shipped()
    o.change(ChangeRequest(cancel={"B": 1}), at=NOW, actor="P")
    o.follow_reservation([])  # inventory holds nothing more for the order
    assert o.allocations == [Allocation("A", "W1", 3)]
    assert o.change_log[-1].changes[-1].field == "allocations[B]"
    assert o.open_units() == {}


def test_a_sku_partly_shipped_keeps_its_shipped_units_and_cancels_the_rest():
    o = order()
    o.apply_reservation(
        NOW, [Allocation("A", "W1", 2), Allocation("A", "W2", 1), Allocation("B", "W2", 1)], {}
    )
    o.record_shipment(NOW, ShipmentView("S1", "W1", "shipped", lines={"A": 2}))
    o.record_shipment(NOW, ShipmentView("S2", "W2", "pending", lines={"A": 1, "B": 1}))
    assert o.status is Status.PARTIALLY_SHIPPED and o.open_units() == {"A": 1, "B": 1}
    request = o.remainder_cancel("")
    assert request.cancel == {"A": 1, "B": 1}
    o.change(request, at=NOW, actor="P")
    assert [(line.sku, line.quantity) for line in o.lines] == [("A", 2)] and o.status is Status.SHIPPED


STEPS = ["pending", "picked", "packed", "shipped", "delivered", "cancelled"]


@given(
    st.sampled_from(STEPS),
    st.sampled_from(STEPS),
    st.lists(requests | st.just(ChangeRequest(ship_to=ADDRESS)), min_size=1, max_size=6),
)
@example(
    "shipped", "shipped", [ChangeRequest(quantities={"A": 3})]
)  # all shipped; the request changes nothing
def test_the_remainder_never_goes_below_what_shipped_nor_past_its_own_steps(step_a, step_b, sequence):
    """A and B from two warehouses in any steps; whatever change requests follow, an accepted one never cuts
    shipped units, never touches the parcels that left, and was allowed by the remainder's own steps."""
    o = order("allocated", {"S1": ("W1", step_a, {"A": 3}), "S2": ("W2", step_b, {"B": 1})})
    left = {
        sid: (s.status, dict(s.lines))
        for sid, s in o.shipments.items()
        if s.status in ("shipped", "delivered")
    }
    for request in sequence:
        status, stages = o.status, {sku: stage_of_remainder(o, sku) for sku in "ABCD"}
        whole = stage_of_remainder(o, None)
        shipped = {line.sku: line.shipped for line in o.lines}
        try:
            record = o.change(request, at=NOW, actor="P")
        except (InvalidArgument, FailedPrecondition):
            continue
        # accepted only before shipment or on the remainder (a request that changes nothing is None anywhere)
        assert (
            record is None or status in (Status.ALLOCATED, Status.PARTIALLY_SHIPPED) or status.value in OPEN
        )
        for sku, units in shipped.items():
            assert sum(line.quantity for line in o.lines if line.sku == sku) >= units
        assert {sid: (o.shipments[sid].status, o.shipments[sid].lines) for sid in left} == left
        if record is None or status.value in OPEN:
            continue
        for kind in record.kinds:
            if kind == "ship_to":
                assert whole < Stage.PACKED
            elif kind in ("add_line", "remove_line"):
                assert whole < Stage.PICKED
            elif kind == "quantity":
                assert any(
                    stages[c.field[6]] < Stage.PICKED for c in record.changes if c.field.endswith("quantity")
                )
        if o.status is not Status.PARTIALLY_SHIPPED and status is Status.PARTIALLY_SHIPPED:
            assert all(line.shipped == line.quantity for line in o.lines)  # it ended because nothing is open


def stage_of_remainder(o: Order, sku: str | None) -> Stage:
    return order_stage(o.status.value, list(o.shipments.values()), sku)
