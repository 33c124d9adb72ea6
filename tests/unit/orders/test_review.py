"""The desk's approval with an accepted proposal: a new date, or a split into one order per date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.orders.domain import Line, Order, Status, split_parts

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
LATE = {"code": "delivery_date_infeasible", "message": "m", "field": "requested_delivery_date"}
SPLIT = {
    "kind": "split",
    "delivery_date": "",
    "parts": [
        {"sku": "A", "quantity": 2, "delivery_date": "2026-12-01"},
        {"sku": "A", "quantity": 3, "delivery_date": "2026-12-20"},
        {"sku": "B", "quantity": 1, "delivery_date": "2026-12-01"},
    ],
}
EARLIEST = {"kind": "earliest_date", "delivery_date": "2026-12-20", "parts": []}


def held(proposals=(SPLIT, EARLIEST), lines=None) -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=[LATE],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"country": "US"},
        lines=lines or [Line("A", 5, Decimal("2.50")), Line("B", 1, Decimal("10"))],
        requested_delivery_date="2026-12-01",
        payment_terms="NET30",
        currency="USD",
        priority=140,
        proposals=list(proposals),
        urgent=True,
    )
    order.transitions.clear()
    return order


def test_accepting_the_earliest_date_moves_the_whole_order():
    order = held()
    assert order.approve(NOW, "desk-anna", "customer agreed", "earliest_date") == []
    assert order.status is Status.CONFIRMED and order.requested_delivery_date == "2026-12-20"
    assert "accepted the earliest date 2026-12-20 (requested 2026-12-01)" in order.history[-1].reason
    assert order.history[-1].actor == "desk-anna" and order.history[-1].reason.startswith("customer agreed")


def test_accepting_a_split_keeps_the_first_date_and_splits_the_rest_off():
    order = held()
    (later,) = order.approve(NOW, "desk-anna", "ok", "split")
    assert [(x.sku, x.quantity) for x in order.lines] == [("A", 2), ("B", 1)] and order.lines_changed
    assert order.requested_delivery_date == "2026-12-01" and order.split_into == ["ORD-1-2"]
    assert order.total_amount == Decimal("15.00")
    assert later.order_id == "ORD-1-2" and later.split_from == "ORD-1" and later.external_ref == "PO-1/2"
    assert [(x.sku, x.quantity, x.unit_price) for x in later.lines] == [("A", 3, Decimal("2.50"))]
    assert later.requested_delivery_date == "2026-12-20" and later.status is Status.CONFIRMED
    assert (later.priority, later.urgent, later.customer_id, later.partner_id) == (140, True, "C1", "P-SHOP")
    assert [t.status.value for t in later.transitions] == ["received", "confirmed"]
    assert "ORD-1-2 delivers A x3 on 2026-12-20" in order.history[-1].reason


def test_a_proposal_the_order_does_not_have_or_an_unknown_kind_is_refused_and_changes_nothing():
    order = held(proposals=[EARLIEST])
    with pytest.raises(FailedPrecondition) as err:
        order.approve(NOW, "desk", "", "split")
    assert err.value.rule == "no_such_proposal"
    with pytest.raises(InvalidArgument):
        order.approve(NOW, "desk", "", "half")
    assert order.status is Status.ON_HOLD and order.requested_delivery_date == "2026-12-01"


def test_a_stale_split_is_refused():
    order = held(lines=[Line("A", 4, Decimal("2.50")), Line("B", 1, Decimal("10"))])  # 4 ordered, parts say 5
    with pytest.raises(FailedPrecondition) as err:
        order.approve(NOW, "desk", "", "split")
    assert err.value.rule == "proposal_stale" and order.status is Status.ON_HOLD


@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.integers(1, 9), st.sampled_from(["d1", "d2", "d3"])),
        min_size=1,
        max_size=8,
    )
)
def test_split_parts_accepts_exactly_the_order_quantities_over_two_dates_or_more(parts):
    lines: dict[str, int] = {}
    for sku, qty, _ in parts:
        lines[sku] = lines.get(sku, 0) + qty
    proposal = {
        "kind": "split",
        "parts": [{"sku": s, "quantity": q, "delivery_date": d} for s, q, d in parts],
    }
    found = split_parts(proposal, [Line(s, q, Decimal(1)) for s, q in lines.items()])
    dates = {d for _, _, d in parts}
    if len(dates) < 2:
        assert found is None
    else:
        assert found is not None and set(found) == dates
        assert sum(q for day in found.values() for _, q in day) == sum(lines.values())
    first = next(iter(lines))
    assert split_parts(proposal, [Line(s, q + (s == first), Decimal(1)) for s, q in lines.items()]) is None
