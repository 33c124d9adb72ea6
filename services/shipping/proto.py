"""Shipment aggregate <-> protobuf messages (used by the API and for events)."""

from __future__ import annotations

from orderdesk.events import timestamp
from orderdesk.v1 import shipping_pb2
from services.shipping.domain import Shipment


def shipment_to_proto(shipment: Shipment) -> shipping_pb2.Shipment:
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
    )
