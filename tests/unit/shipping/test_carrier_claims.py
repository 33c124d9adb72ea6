"""Carrier claims (issue 14): which shipments a damaged-in-transit claim opens one on, and for what."""

from __future__ import annotations

import datetime as dt

from services.shipping.domain import (
    CARRIER_CLAIM_OPENED_EVENT,
    CarrierClaim,
    Shipment,
    Status,
    carrier_claim_id,
    plan_carrier_claims,
)

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


def shipment(sid: str, lines: dict[str, int], status=Status.DELIVERED, carrier="DHL") -> Shipment:
    return Shipment(
        shipment_id=sid,
        order_id="ORD-1",
        partner_id="P1",
        warehouse="WH-HAM",
        lines=lines,
        promised_delivery_date="2026-12-12",
        status=status,
        carrier=carrier,
        tracking_number=f"TRK-{sid}",
    )


def test_the_damaged_units_are_taken_from_the_shipments_that_carried_them_in_order():
    a = shipment("SHP-A", {"VASE": 2, "MUG": 1})
    b = shipment("SHP-B", {"VASE": 3})
    c = shipment("SHP-C", {"PLATE": 4})
    plan = plan_carrier_claims({"VASE": 4}, [c, b, a])
    assert [(s.shipment_id, lines) for s, lines in plan] == [("SHP-A", {"VASE": 2}), ("SHP-B", {"VASE": 2})]


def test_a_shipment_that_never_left_with_a_carrier_gets_none():
    waiting = shipment("SHP-A", {"VASE": 2}, status=Status.PACKED)
    no_carrier = shipment("SHP-B", {"VASE": 2}, carrier="")
    gone = shipment("SHP-C", {"VASE": 2}, status=Status.SHIPPED)
    plan = plan_carrier_claims({"VASE": 2}, [waiting, no_carrier, gone])
    assert [s.shipment_id for s, _ in plan] == ["SHP-C"]


def test_opening_one_is_noted_on_the_shipment_and_its_id_follows_the_claim():
    s = shipment("SHP-A", {"VASE": 2})
    claim_id = carrier_claim_id("RMA-0A1B", 0)
    assert claim_id == carrier_claim_id("RMA-0A1B", 0) == "CC-0A1B-0"
    s.open_carrier_claim(CarrierClaim(claim_id, "SHP-A", "RMA-0A1B", "DHL", "TRK", {"VASE": 2}), T0, "desk")
    (change,) = s.changes
    assert change.event_type == f"shipment.{CARRIER_CLAIM_OPENED_EVENT}" and change.status is Status.DELIVERED
    assert s.version == 1 and "CC-0A1B-0" in change.reason
