"""Today's queues as the console asks for them (no server): each queue's ListOrders request, what the address
may carry, and every count by the key the page marks it with."""

from __future__ import annotations

import pytest

from console.screens.today import QUEUES, Asked, counted
from orderdesk.v1 import orders_pb2


def test_each_queue_asks_the_orders_service_for_its_own_orders():
    asked = Asked(customer="C0001", channel="api", warehouse="WH-LYON")
    held = QUEUES["held"].request(Asked(reason="price_mismatch"), "")
    assert (held.status, held.hold_reason, held.order_by) == ("on_hold", "price_mismatch", "priority")
    exceptions = QUEUES["exceptions"].request(
        Asked(queue="exceptions", reason="lost_parcel", sort="newest"), ""
    )
    assert exceptions.open_exception and exceptions.exception_type == "lost_parcel"
    assert exceptions.order_by == "newest"
    at_risk = QUEUES["at_risk"].request(Asked(queue="at_risk", reason="supply_late"), "u2026-12-01.1.7")
    assert at_risk.at_risk and at_risk.risk == "supply_late" and at_risk.cursor == "u2026-12-01.1.7"
    backorders = QUEUES["backorders"].request(asked, "")
    assert (backorders.status, backorders.order_by) == ("scheduled", "expected")
    assert (backorders.customer_id, backorders.channel, backorders.warehouse) == ("C0001", "api", "WH-LYON")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"queue": "held", "reason": "lost_parcel"}, "reason"),  # an exception type is no hold reason
        ({"queue": "at_risk", "sort": "oldest"}, "sort"),
        ({"channel": "pigeon"}, "channel"),
        ({"queue": "backorders", "reason": "price_mismatch"}, "reason"),
    ],
)
def test_what_a_queue_cannot_take_is_named(query, field):
    assert list(Asked.of(query).check().fields) == [field]


def test_an_unknown_queue_is_said_above_the_form():
    found = Asked.of({"queue": "sideways"}).check()
    assert found.general == "There is no such work queue. Choose one of the tabs." and not found.fields


def test_an_address_without_a_queue_is_the_held_queue_trimmed():
    asked = Asked.of({"customer": " C0001 "})
    assert asked.queue == "held" and asked.customer == "C0001" and not asked.check()
    assert asked.given() == {"queue": "held", "customer": "C0001"} and asked.filtered()


def test_every_count_by_its_key():
    counts = orders_pb2.QueueCounts(
        held=3,
        held_by_reason=[orders_pb2.QueueCount(code="price_mismatch", count=2)],
        exceptions=1,
        exceptions_by_type=[orders_pb2.QueueCount(code="lost_parcel", count=1)],
        at_risk_by_risk=[],
        backorders=4,
    )
    assert counted(counts) == {
        "held": 3,
        "exceptions": 1,
        "at_risk": 0,
        "backorders": 4,
        "held.price_mismatch": 2,
        "exceptions.lost_parcel": 1,
    }
