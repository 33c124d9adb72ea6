"""Shipment aggregate <-> protobuf messages (used by the API and for events)."""

from __future__ import annotations

from collections.abc import Sequence

from orderdesk.events import timestamp
from orderdesk.v1 import shipping_pb2
from services.shipping.domain import CarrierClaim, Shipment
from services.shipping.tracking import TrackingEntry


def tracking_to_proto(entry: TrackingEntry) -> shipping_pb2.TrackingEntry:
    return shipping_pb2.TrackingEntry(
        event_id=entry.event_id,
        source=entry.source,
        carrier=entry.carrier_name,
        status=entry.status.value,
        carrier_status=entry.carrier_status,
        message=entry.message,
        location=entry.location,
        occurred_at=timestamp(entry.occurred_at),
        received_at=timestamp(entry.received_at) if entry.received_at else None,
        expected_delivery_date=entry.expected_delivery_date,
        tracking_number=entry.tracking_number,
    )


def carrier_claim_to_proto(claim: CarrierClaim) -> shipping_pb2.CarrierClaim:
    return shipping_pb2.CarrierClaim(
        claim_id=claim.claim_id,
        rma_id=claim.rma_id,
        carrier=claim.carrier,
        tracking_number=claim.tracking_number,
        status=claim.status,
        lines=[shipping_pb2.ShipmentLine(sku=sku, quantity=qty) for sku, qty in claim.lines.items()],
        reason=claim.reason,
        opened_by=claim.opened_by,
        opened_at=timestamp(claim.opened_at) if claim.opened_at else None,
    )


def shipment_to_proto(
    shipment: Shipment, timeline: Sequence[TrackingEntry] = (), claims: Sequence[CarrierClaim] = ()
) -> shipping_pb2.Shipment:
    """The shipment as it now is; `timeline`: its carrier events, `claims`: its carrier claims (reads only:
    events carry neither)."""
    return shipping_pb2.Shipment(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        warehouse=shipment.warehouse,
        status=shipment.status.value,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        lines=[shipping_pb2.ShipmentLine(sku=sku, quantity=qty) for sku, qty in shipment.lines.items()],
        promised_delivery_date=shipment.promised_delivery_date,
        delivered_on=shipment.delivered_on,
        on_time=bool(shipment.on_time),
        expected_delivery_date=shipment.expected_delivery_date,
        version=shipment.version,
        partner_id=shipment.partner_id,
        created_at=timestamp(shipment.created_at) if shipment.created_at else None,
        pick_by=timestamp(shipment.pick_by) if shipment.pick_by else None,
        deliver_by=shipment.deliver_by,
        tracking_status=shipment.tracking_status,
        tracked_at=timestamp(shipment.tracked_at) if shipment.tracked_at else None,
        tracking=[tracking_to_proto(e) for e in timeline],
        carrier_claims=[carrier_claim_to_proto(c) for c in claims],
    )
