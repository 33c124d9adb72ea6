"""An order's one timeline for the desk, and what its status page may show, without I/O."""

from __future__ import annotations

import datetime as dt

from services.orders.changes import ChangeRecord, FieldChange
from services.orders.domain import ShipmentView
from services.orders.exceptions import OrderException
from services.orders.proto import order_to_proto, status_to_proto, timeline_to_proto
from services.orders.timeline import timeline
from tests.unit.orders.test_lifecycle import NOW, new_order

CLERK = "desk:ann@acme.example (clerk)"
KEY = "key:erp@P-SHOP"


def at(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def test_every_step_with_who_and_when_in_time_order():
    order = new_order(hold=[{"code": "price_mismatch", "message": "m", "field": ""}])
    order.add_note(at(3), CLERK, "asked the buyer about the price")  # made before the approval below
    order.approve(at(5), CLERK, "agreed by phone")
    order.change_log.append(
        ChangeRecord(
            9, at(10), KEY, ("quantity",), "more needed", (FieldChange("lines[A].quantity", "3", "4"),)
        )
    )
    order.record_exception(
        OrderException.create(
            exception_id="EX-1",
            type="production_delay",
            cause="line down",
            at=at(20),
            actor="system",
            expected_date="2027-01-20",
        )
    )
    order.resolve_exception("EX-1", "accept_delay", at=at(30), actor=CLERK, note="customer agreed")
    order.add_note(at(40), CLERK, "Your order arrives on Jan 20.", "customer")

    steps = timeline(order)
    assert [(s.kind, s.at, s.actor) for s in steps] == [
        ("status", NOW, "P-SHOP"),
        ("status", NOW, "system"),  # received and held at the same instant, in that order
        ("note", at(3), CLERK),
        ("status", at(5), CLERK),
        ("change", at(10), KEY),
        ("exception_opened", at(20), "system"),
        ("exception_resolved", at(30), CLERK),
        ("message", at(40), CLERK),
    ]
    assert [s.status for s in steps if s.kind == "status"] == ["received", "on_hold", "confirmed"]
    change = steps[4]
    assert change.changes == (FieldChange("lines[A].quantity", "3", "4"),) and change.reason == "more needed"
    assert "lines[A].quantity" in change.summary and change.version == 9
    assert (steps[5].exception_id, steps[5].reason, steps[5].expected_date) == (
        "EX-1",
        "line down",
        "2027-01-20",
    )
    assert (steps[6].action, steps[6].reason) == ("accept_delay", "customer agreed")
    assert steps[2].text == "asked the buyer about the price" and steps[7].note_id == "N2"

    wire = timeline_to_proto(order)
    assert [e.kind for e in wire.entries] == [s.kind for s in steps]
    assert wire.entries[4].changes[0].before == "3" and wire.entries[4].changes[0].after == "4"


def test_the_status_page_shows_status_date_and_parcels_only():
    order = new_order()
    order.requested_delivery_date = "2027-01-10"
    order.shipments = {
        "SHP-1": ShipmentView("SHP-1", "WH-HAM", "shipped", "DHL", "JD1", {"A": 3}, None, 4),
        "SHP-2": ShipmentView("SHP-2", "WH-CHI", "cancelled", "", "", {"B": 1}, None, 2),
    }
    shown = status_to_proto(order)
    assert (shown.status, shown.expected_delivery_date) == ("confirmed", "2027-01-10")
    assert [(p.status, p.carrier, p.tracking_number) for p in shown.shipments] == [("shipped", "DHL", "JD1")]
    order.expected_delivery_date = "2027-01-14"  # a backorder's date comes before the requested one
    assert status_to_proto(order).expected_delivery_date == "2027-01-14"
    order.record_exception(
        OrderException.create(
            exception_id="EX-1",
            type="production_delay",
            cause="c",
            at=NOW,
            actor="system",
            expected_date="2027-01-20",
        )
    )
    assert (
        status_to_proto(order).expected_delivery_date == "2027-01-20"
    )  # an exception's announced date first


def test_a_replacement_order_begins_with_the_return_it_replaces():
    order = new_order()
    order.channel, order.external_ref = "exchange", "RMA-ABC"
    entries = timeline(order)
    assert (entries[0].kind, entries[0].details, entries[0].summary) == (
        "exchange",
        {"rma_id": "RMA-ABC"},
        "replacement for return RMA-ABC",
    )
    assert entries[0].at == order.history[0].at and entries[1].kind == "status"
    assert [e.kind for e in timeline(new_order())][0] == "status"
    proto = timeline_to_proto(order)
    assert proto.entries[0].kind == "exchange"


def test_the_original_order_shows_the_replacements_of_its_return_and_claim():
    from services.orders.replacements import Replacement

    order = new_order()
    exchange = Replacement("RMA-1", "ORD-R1", "return", at(30), "system")
    claim = Replacement("RMA-2", "ORD-R2", "claim", at(40), "system")
    version = order.version
    assert order.record_replacement(exchange) and order.record_replacement(claim)
    assert not order.record_replacement(Replacement("RMA-1", "ORD-R1", "return", at(50), "system"))  # again
    assert order.version == version + 2 and order.events == []  # recorded, published nowhere
    entries = [e for e in timeline(order) if e.kind == "replacement"]
    assert [(e.at, e.summary, e.details) for e in entries] == [
        (
            at(30),
            "replacement order ORD-R1 for return RMA-1",
            {"rma_id": "RMA-1", "order_id": "ORD-R1", "rma_kind": "return"},
        ),
        (
            at(40),
            "replacement order ORD-R2 for claim RMA-2",
            {"rma_id": "RMA-2", "order_id": "ORD-R2", "rma_kind": "claim"},
        ),
    ]
    proto = order_to_proto(order)
    assert [(r.rma_id, r.order_id, r.kind) for r in proto.replacements] == [
        ("RMA-1", "ORD-R1", "return"),
        ("RMA-2", "ORD-R2", "claim"),
    ]
    assert Replacement.from_json(claim.to_json()) == claim
    assert [e.kind for e in timeline_to_proto(order).entries].count("replacement") == 2
