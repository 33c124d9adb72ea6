"""The order aggregate's lifecycle rules, without I/O."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.orders.domain import TRANSITIONS, Allocation, Line, Order, ShipmentView, Status

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def new_order(hold: list[dict] | None = None, lines: list[Line] | None = None) -> Order:
    order = Order.receive(
        at=NOW,
        actor="P-SHOP",
        hold_reasons=hold or [],
        order_id="ORD-1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C1",
        ship_to={"country": "US"},
        lines=lines if lines is not None else [Line("A", 3, Decimal("2.50")), Line("B", 1, Decimal("10"))],
        requested_delivery_date="",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    order.transitions.clear()
    order.loaded_version = order.version
    return order


def statuses(order: Order) -> list[str]:
    return [h.status.value for h in order.history]


def allocate(order: Order) -> None:
    order.apply_reservation(NOW, [Allocation("A", "W1", 3), Allocation("B", "W2", 1)], {})


def ship(
    order: Order, sid: str, warehouse: str, lines: dict, status: str, on_time: bool | None = None
) -> None:
    order.record_shipment(NOW, ShipmentView(sid, warehouse, status, lines=lines, on_time=on_time))


def test_clean_order_is_confirmed_at_once():
    order = new_order()
    assert statuses(order) == ["received", "confirmed"]
    assert order.version == 2 and order.total_amount == Decimal("17.50")


def test_doubtful_order_is_held_with_reasons_then_approved_or_rejected():
    held = new_order(hold=[{"code": "price_mismatch", "message": "m", "field": "lines[0].unit_price"}])
    assert held.status is Status.ON_HOLD and held.hold_reasons[0]["code"] == "price_mismatch"
    held.approve(NOW, "desk-anna", "checked")
    assert held.status is Status.CONFIRMED and held.history[-1].actor == "desk-anna"
    other = new_order(hold=[{"code": "customer_blocked", "message": "m", "field": "customer_id"}])
    other.reject(NOW, "desk-anna", "blocked")
    assert other.status is Status.REJECTED
    with pytest.raises(FailedPrecondition) as err:
        other.approve(NOW, "desk", "late")
    assert err.value.rule == "approve_only_on_hold"


def test_an_order_needs_lines():
    with pytest.raises(InvalidArgument):
        new_order(lines=[])


def test_full_reservation_allocates_partial_schedules_then_allocates():
    order = new_order()
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {"A": 1, "B": 1})
    assert order.status is Status.SCHEDULED
    assert [line.allocated for line in order.lines] == [2, 0]
    version = order.version
    order.apply_reservation(
        NOW, [Allocation("A", "W1", 2)], {"A": 1, "B": 1}
    )  # still short: no new transition
    assert statuses(order).count("scheduled") == 1 and order.version == version + 1
    allocate(order)
    assert order.status is Status.ALLOCATED and [line.allocated for line in order.lines] == [3, 1]
    assert order.expected_shipments() == {"W1", "W2"}


def test_shipments_drive_partially_shipped_shipped_completed():
    order = new_order()
    allocate(order)
    ship(order, "S1", "W1", {"A": 3}, "created")
    assert order.status is Status.ALLOCATED
    ship(order, "S1", "W1", {"A": 3}, "shipped")
    assert order.status is Status.PARTIALLY_SHIPPED and order.lines[0].shipped == 3
    ship(order, "S1", "W1", {"A": 3}, "delivered", on_time=True)
    assert order.status is Status.PARTIALLY_SHIPPED and order.lines[0].delivered == 3
    ship(order, "S2", "W2", {"B": 1}, "shipped")
    assert order.status is Status.SHIPPED
    ship(order, "S2", "W2", {"B": 1}, "delivered", on_time=False)
    assert order.status is Status.COMPLETED
    assert statuses(order)[-4:] == ["allocated", "partially_shipped", "shipped", "completed"]
    assert order.delivered_on_time is False


def test_single_shipment_goes_straight_to_shipped():
    order = new_order(lines=[Line("A", 2, Decimal("1"))])
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {})
    ship(order, "S1", "W1", {"A": 2}, "shipped")
    assert order.status is Status.SHIPPED


def test_cancel_allowed_until_goods_leave():
    order = new_order()
    allocate(order)
    order.cancel(NOW, "P-SHOP", "changed mind")
    assert order.status is Status.CANCELLED and order.history[-1].reason == "changed mind"
    shipped = new_order()
    allocate(shipped)
    ship(shipped, "S1", "W1", {"A": 3}, "shipped")
    with pytest.raises(FailedPrecondition) as err:
        shipped.cancel(NOW, "P-SHOP", "too late")
    assert err.value.rule == "cancel_before_shipment"
    rejected = new_order(hold=[{"code": "x", "message": "", "field": ""}])
    rejected.reject(NOW, "desk", "no")
    with pytest.raises(FailedPrecondition):
        rejected.cancel(NOW, "P-SHOP", "x")


def test_reservation_only_while_awaiting_stock():
    order = new_order()
    order.cancel(NOW, "P", "x")
    with pytest.raises(FailedPrecondition):
        allocate(order)


def test_returns_count_against_delivered_units():
    order = new_order()
    allocate(order)
    ship(order, "S1", "W1", {"A": 3}, "delivered", on_time=True)
    order.record_return({"A": 2})
    order.record_return({"A": 5})
    assert order.lines[0].returned == 3  # never more than delivered


ACTIONS = ["approve", "reject", "cancel", "allocate", "schedule", "ship_one", "ship_all", "deliver_all"]


@given(st.booleans(), st.lists(st.sampled_from(ACTIONS), max_size=12))
def test_any_sequence_of_commands_only_takes_allowed_transitions(held, actions):
    order = new_order(hold=[{"code": "x", "message": "", "field": ""}] if held else None)
    for action in actions:
        try:
            if action in ("approve", "reject", "cancel"):
                getattr(order, action)(NOW, "actor", "why")
            elif action == "allocate":
                allocate(order)
            elif action == "schedule":
                order.apply_reservation(NOW, [], {"A": 3, "B": 1})
            elif action == "ship_one":
                ship(order, "S1", "W1", {"A": 3}, "shipped")
            elif action == "ship_all":
                ship(order, "S1", "W1", {"A": 3}, "shipped")
                ship(order, "S2", "W2", {"B": 1}, "shipped")
            else:
                ship(order, "S1", "W1", {"A": 3}, "delivered", on_time=True)
                ship(order, "S2", "W2", {"B": 1}, "delivered", on_time=True)
        except FailedPrecondition:
            pass
    history = [h.status for h in order.history]
    assert history[0] is Status.RECEIVED
    for before, after in zip(history, history[1:], strict=False):
        assert after in TRANSITIONS[before]
    assert order.status is history[-1]
    assert all(line.shipped <= line.quantity and line.delivered <= line.shipped for line in order.lines)


def test_proposals_and_urgent_round_trip_through_the_order_message():
    from orderdesk.v1 import common_pb2
    from services.orders.proto import order_to_proto, proposal_to_dict, proposal_to_proto

    split = common_pb2.DeliveryProposal(
        kind="split",
        parts=[
            common_pb2.ProposalPart(sku="A", quantity=2, delivery_date="2026-06-10"),
            common_pb2.ProposalPart(sku="A", quantity=1, delivery_date="2026-06-30"),
        ],
    )
    earliest = common_pb2.DeliveryProposal(kind="earliest_date", delivery_date="2026-06-30")
    order = new_order()
    order.proposals = [proposal_to_dict(earliest), proposal_to_dict(split)]
    order.urgent = True
    message = order_to_proto(order)
    assert list(message.proposals) == [earliest, split] and message.urgent
    assert proposal_to_proto(proposal_to_dict(split)) == split
    assert not order_to_proto(new_order()).urgent and not order_to_proto(new_order()).proposals


def test_listing_cursors_belong_to_their_ordering():
    from services.orders.domain import Listing

    queue = Listing.parse("priority", "price_mismatch", "")
    assert queue.by_priority and queue.cursor_after(300, 17) == "p300.17"
    assert Listing.parse("priority", "", "p300.17").after == (300, 17)
    assert Listing.parse("", "", "17").after == (0, 17)
    for order_by, cursor in (("priority", "17"), ("newest", "p300.17"), ("priority", "p1"), ("sideways", "")):
        with pytest.raises(InvalidArgument):
            Listing.parse(order_by, "", cursor)


def test_supply_that_moves_re_dates_a_scheduled_order_as_a_change_the_partner_hears():
    order = new_order()
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {"A": 1, "B": 1}, ("2026-12-10", "2026-12-14"))
    order.events.clear()
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {"A": 1, "B": 1}, ("2026-12-01", "2026-12-03"))
    assert (order.expected_ship_date, order.expected_delivery_date) == ("2026-12-01", "2026-12-03")
    [record] = order.change_log
    assert record.kinds == ("expected_date",) and record.reason == "supply moved"
    assert [(c.field, c.before, c.after) for c in record.changes] == [
        ("expected_ship_date", "2026-12-10", "2026-12-01"),
        ("expected_delivery_date", "2026-12-14", "2026-12-03"),
    ]
    assert [type(e).__name__ for e in order.events] == ["OrderChanged"]
    order.apply_reservation(NOW, [Allocation("A", "W1", 2)], {"A": 1, "B": 1}, ("2026-12-01", "2026-12-03"))
    assert len(order.change_log) == 1  # the same dates again: no news
