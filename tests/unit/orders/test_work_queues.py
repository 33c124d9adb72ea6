"""The desk's work queues (console Today): an order's queue keys (Order.queue_keys) and the listing's
orderings and cursors for them (Listing). Plain Python."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk.errors import InvalidArgument
from services.orders import exceptions as ex
from services.orders.domain import Allocation, Listing, ShipmentView, tokens
from tests.unit.orders.test_lifecycle import NOW, new_order


def exception(exception_id: str, type: str) -> ex.OrderException:
    fields = {"shipment_id": "S1"} if type != "production_delay" else {}
    return ex.OrderException.create(
        exception_id=exception_id, type=type, cause="late", at=NOW, actor="desk", **fields
    )


def test_tokens_are_sorted_unique_and_blank_free():
    assert tokens(["b", "a", "b", ""]) == " a b "
    assert tokens([]) == ""


def test_a_held_order_is_keyed_by_its_reasons_only_while_on_hold():
    order = new_order(
        hold=[{"code": "price_mismatch", "message": "m"}, {"code": "credit_limit", "message": "m"}]
    )
    assert order.queue_keys.hold_codes == " credit_limit price_mismatch "
    order.approve(NOW, "desk", "fine")
    assert order.queue_keys.hold_codes == ""


def test_open_exceptions_of_open_orders_only_and_every_warehouse():
    order = new_order()
    order.record_exception(exception("X1", "production_delay"))
    order.record_exception(exception("X2", "lost_parcel"))
    order.allocations = [Allocation("A", "WH-LYON", 3), Allocation("B", "WH-PARIS", 1)]
    order.shipments = {"S1": ShipmentView(shipment_id="S1", warehouse="WH-GENT", status="shipped")}
    keys = order.queue_keys
    assert keys.exception_types == " lost_parcel production_delay "
    assert keys.warehouses == " WH-GENT WH-LYON WH-PARIS "
    order.resolve_exception("X2", "reship", at=NOW, actor="desk", note="", details={})
    assert order.queue_keys.exception_types == " production_delay "
    order.shipments = {}
    order.cancel(NOW + dt.timedelta(hours=1), "desk", "no longer wanted")
    assert order.queue_keys.exception_types == ""  # a closed order is nobody's work


def test_the_backorders_key_is_the_expected_ship_date_and_none_comes_last():
    order = new_order()
    assert order.queue_keys.expected_ship_key == Listing.NO_DATE
    order.expected_ship_date = "2026-12-24"
    assert order.queue_keys.expected_ship_key == "2026-12-24" < Listing.NO_DATE


def test_each_ordering_has_its_own_cursor():
    assert Listing.parse("oldest", "", "").cursor_after(0, 17) == "o17"
    assert Listing.parse("oldest", "", "o17").after == (0, 17)
    backorders = Listing.parse("expected", "", "")
    assert backorders.cursor_after(0, 9, expected="2026-12-24") == "e2026-12-24.9"
    assert backorders.cursor_after(0, 9) == f"e{Listing.NO_DATE}.9"  # none expected: last
    assert Listing.parse("expected", "", "e2026-12-24.9").after == ("2026-12-24", 9)
    for order_by, cursor in (
        ("oldest", "17"),
        ("expected", "o17"),
        ("expected", "e2026-13-01.9"),
        ("newest", "o1"),
    ):
        with pytest.raises(InvalidArgument) as refused:
            Listing.parse(order_by, "", cursor)
        assert [v.field for v in refused.value.violations] == ["cursor"]


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"exception_type": "lost_parcel"}, "exception_type"),  # only with open_exception
        ({"open_exception": True, "exception_type": "storm"}, "exception_type"),
        ({"warehouse": "WH LYON"}, "warehouse"),
        ({"warehouse": "W" * 129}, "warehouse"),
    ],
)
def test_queue_filters_refuse_what_they_cannot_mean(given, field):
    with pytest.raises(InvalidArgument) as refused:
        Listing.parse("", "", "", **given)
    assert [v.field for v in refused.value.violations] == [field]


def test_queue_filters_are_no_search():
    queue = Listing.parse(
        "priority", "", "", open_exception=True, exception_type="lost_parcel", warehouse="W1"
    )
    assert queue.open_exception and queue.warehouse == "W1" and not queue.narrowed
    assert Listing.parse("", "", "", customer_id="C1").narrowed


def test_a_saved_row_carries_every_queue_key_as_its_column():
    # The store names the keys one by one (no dataclasses.asdict): a new QueueKeys field must reach its column.
    from dataclasses import asdict

    from services.orders.store import _order_row, orders

    order = new_order(hold=[{"code": "price_mismatch", "message": "m"}])
    order.allocations = [Allocation("A", "WH-2", 1)]
    keys = asdict(order.queue_keys)
    row = _order_row(order, None)
    assert {name: row[name] for name in keys} == keys
    assert set(keys) <= set(orders.c.keys())
