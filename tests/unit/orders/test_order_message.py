"""The order's message (services.orders.proto.order_to_proto), which every order event carries and the API
answers with: each list the order holds is in it, and a list it lacks is simply empty."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from orderdesk.v1 import orders_pb2
from services.orders.changes import ChangeRecord, FieldChange
from services.orders.domain import Allocation, Line, Order, ShipmentView
from services.orders.exceptions import ExceptionType, OrderException
from services.orders.promise import Risk, RiskCode
from services.orders.proto import order_to_proto
from services.orders.replacements import Replacement

AT = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)
# Every repeated field of orders.v1.Order, and how many entries the full order below gives each.
LISTS = {
    "lines": 2,
    "hold_reasons": 1,
    "history": 2,
    "shipments": 1,
    "allocations": 2,
    "proposals": 1,
    "changes": 1,
    "exceptions": 1,
    "split_into": 2,
    "risks": 1,
    "replacements": 1,
}


def order() -> Order:
    return Order.receive(
        at=AT,
        actor="P-SHOP",
        hold_reasons=[],
        order_id="ORD-M1",
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C0001",
        ship_to={"name": "N", "line1": "L", "city": "C", "postal_code": "1", "country": "US"},
        lines=[Line("A", 2, Decimal("3.25")), Line("B", 1, Decimal("1.00"))],
        requested_delivery_date="2026-12-24",
        payment_terms="NET30",
        currency="USD",
        priority=100,
        proposals=[],
        urgent=False,
    )


def full() -> Order:
    o = order()
    o.hold_reasons = [{"code": "price_mismatch", "message": "m", "field": "lines[0].unit_price"}]
    o.shipments = {"SHP-1": ShipmentView("SHP-1", "W1", "picked", "UPS", "1Z", {"A": 2})}
    o.allocations = [Allocation("A", "W1", 2), Allocation("B", "W2", 1)]
    o.proposals = [{"kind": "earliest_date", "delivery_date": "2026-12-30", "parts": []}]
    o.change_log = [
        ChangeRecord(2, AT, "desk", ("address",), "moved", (FieldChange("ship_to.city", "C", "D"),))
    ]
    o.exceptions = [
        OrderException("EX-1", ExceptionType.CARRIER_DELAY, "late", AT, "carrier", source="shipping")
    ]
    o.split_into = ["ORD-M1-2", "ORD-M1-3"]
    o.risks = [Risk(RiskCode.SUPPLY_LATE, "2026-12-30", 6, "late supply", since=AT)]
    o.replacements = [Replacement("RMA-1", "ORD-X1", "return", AT, "desk")]
    return o


def test_every_list_the_order_holds_is_in_its_message():
    # A list field added to the message is one to add here (and to order_to_proto).
    assert {f.name for f in orders_pb2.Order.DESCRIPTOR.fields if f.is_repeated} == set(LISTS)
    message = order_to_proto(full())
    assert {name: len(getattr(message, name)) for name in LISTS} == LISTS
    assert message.hold_reasons[0].code == "price_mismatch" and message.shipments[0].tracking_number == "1Z"
    assert [a.warehouse for a in message.allocations] == ["W1", "W2"] and message.split_into == [
        "ORD-M1-2",
        "ORD-M1-3",
    ]
    assert message.changes[0].changes[0].after == "D" and message.exceptions[0].type == "carrier_delay"
    assert message.risks[0].code == "supply_late" and message.replacements[0].order_id == "ORD-X1"
    assert message.proposals[0].delivery_date == "2026-12-30" and message.at_risk


def test_a_list_the_order_lacks_is_empty_and_the_rest_is_as_full():
    bare, message = order(), order_to_proto(order())
    assert {name: len(getattr(message, name)) for name in LISTS} == {
        name: (2 if name in ("lines", "history") else 0) for name in LISTS
    }
    # Apart from its lists the bare order's message is the full one's: the same scalar fields.
    whole = order_to_proto(full())
    for name in LISTS.keys() - {"lines", "history"}:
        whole.ClearField(name)
    whole.at_risk, whole.exception_expected_date = False, ""
    assert whole.SerializeToString() == message.SerializeToString() and bare.version == message.version
