"""A carrier's trouble, as shipping publishes it, opens the matching exception on the order."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk import events
from orderdesk.v1 import events_pb2, shipping_pb2
from services.orders.consumers import exception_of
from services.orders.exceptions import NEEDS, RESOLUTIONS, Action, ExceptionType

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)


def shipment_event(kind: str, version: int = 7) -> events_pb2.Event:
    shipment = shipping_pb2.Shipment(shipment_id="SHP-1-WH-HAM", order_id="ORD-1", status="shipped")
    return events.new_event(
        f"shipment.{kind}",
        aggregate_id="SHP-1-WH-HAM",
        version=version,
        order_id="ORD-1",
        actor="carrier:dhl",
        reason="nobody home",
        at=NOW,
        shipment=events_pb2.ShipmentEvent(shipment=shipment),
    )


@pytest.mark.parametrize(
    ("kind", "opened"),
    [
        ("delivery_attempted", ExceptionType.DELIVERY_FAILED),
        ("exception", ExceptionType.CARRIER_EXCEPTION),
        ("returning_to_sender", ExceptionType.RETURNING_TO_SENDER),
        ("delayed", ExceptionType.CARRIER_DELAY),
        ("lost", ExceptionType.LOST_PARCEL),
    ],
)
def test_carrier_trouble_opens_its_exception(kind, opened):
    exception = exception_of(shipment_event(kind), NOW)
    assert exception is not None
    assert (exception.type, exception.shipment_id, exception.cause) == (opened, "SHP-1-WH-HAM", "nobody home")
    assert exception.exception_id == "EX-SHP-1-WH-HAM-7"  # a redelivered event opens nothing new
    assert exception.opened_by == "carrier:dhl" and exception.opened_at == NOW


@pytest.mark.parametrize("kind", ["tracked", "shipped", "delivered", "returned"])
def test_other_words_open_nothing(kind):
    assert exception_of(shipment_event(kind), NOW) is None


def test_the_carriers_exceptions_name_their_shipment_and_can_be_resolved():
    for kind in (
        ExceptionType.DELIVERY_FAILED,
        ExceptionType.CARRIER_EXCEPTION,
        ExceptionType.RETURNING_TO_SENDER,
    ):
        assert NEEDS[kind] == ("shipment_id",)
        assert {Action.RESHIP, Action.CHANGE_CARRIER} <= RESOLUTIONS[kind]


def test_an_order_completes_at_the_carriers_delivery_time_in_history_order():
    from services.orders.domain import HistoryEntry, Status, delivered_at

    shipped = [HistoryEntry(status=Status.SHIPPED, at=NOW - dt.timedelta(hours=5), actor="system", reason="")]
    carrier = NOW - dt.timedelta(hours=2)
    assert delivered_at(NOW, "delivered", carrier, shipped) == carrier
    assert delivered_at(NOW, "delivered", NOW + dt.timedelta(hours=1), shipped) == NOW  # never in the future
    assert delivered_at(NOW, "delivered", NOW - dt.timedelta(days=1), shipped) == shipped[-1].at  # in order
    assert delivered_at(NOW, "tracked", carrier, shipped) == NOW
    assert delivered_at(NOW, "delivered", None, shipped) == NOW
