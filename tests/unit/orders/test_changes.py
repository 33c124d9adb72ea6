"""Change requests: the policy table (every status x change type x shipment stage) and applying a change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
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
    refusing_rule,
)
from services.orders.domain import Allocation, Line, Order, OrderChanged, ShipmentView, Status

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
    until, rule = limits[change]
    if status == "partially_shipped":
        return rule
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
