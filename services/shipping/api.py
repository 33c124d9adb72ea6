"""ShippingService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

import datetime as dt

from orderdesk import actors, clock
from orderdesk.errors import require
from orderdesk.v1 import common_pb2, shipping_pb2, shipping_pb2_grpc
from services.shipping.proto import shipment_to_proto
from services.shipping.service import ShippingService
from services.shipping.tracking import Reported, TrackingEntry, normalise


def reported_from_proto(source: str, event: shipping_pb2.CarrierEvent, received_at: dt.datetime) -> Reported:
    """One carrier event as the domain takes it: its status normalised onto the vocabulary."""
    return Reported(
        TrackingEntry(
            source=source,
            event_id=event.event_id.strip(),
            status=normalise(event.status),
            occurred_at=(
                event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else received_at
            ),
            carrier_status=event.carrier_status or event.status,
            message=event.message,
            location=event.location,
            expected_delivery_date=event.expected_delivery_date,
            carrier=event.carrier.strip(),
            tracking_number=event.tracking_number.strip(),
            received_at=received_at,
        ),
        shipment_id=event.shipment_id.strip(),
    )


class ShippingApi(shipping_pb2_grpc.ShippingServiceServicer):
    def __init__(self, service: ShippingService):
        self.service = service

    async def ListShipments(self, request, context):
        require(request.order_id, "order_id")
        items = await self.service.list_for_order(request.order_id, request.partner_id, request.warehouse)
        ids = [s.shipment_id for s in items]
        timelines, claims = await self.service.timelines(ids), await self.service.carrier_claims(ids)
        return shipping_pb2.ListShipmentsResponse(
            items=[shipment_to_proto(s, timelines[s.shipment_id], claims[s.shipment_id]) for s in items]
        )

    async def GetShipment(self, request, context):
        require(request.shipment_id, "shipment_id")
        shipment = await self.service.get(request.shipment_id, request.partner_id, request.warehouse)
        timelines = await self.service.timelines([shipment.shipment_id])
        claims = await self.service.carrier_claims([shipment.shipment_id])
        return shipment_to_proto(shipment, timelines[shipment.shipment_id], claims[shipment.shipment_id])

    async def RecordShipmentEvent(self, request, context):
        require(request.shipment_id, "shipment_id")
        require(request.type, "type")
        occurred_at = (
            request.occurred_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("occurred_at") else None
        )
        shipment = await self.service.record_event(
            request.shipment_id,
            request.type,
            carrier=request.carrier,
            tracking_number=request.tracking_number,
            occurred_at=occurred_at,
            actor=request.actor or "unknown",
            cause=request.cause,
            expected_delivery_date=request.expected_delivery_date,
            warehouse=request.warehouse,
        )
        return shipment_to_proto(shipment)

    async def RecordCarrierEvents(self, request, context):
        require(request.source, "source")
        received_at = clock.now()
        reported = [reported_from_proto(request.source, e, received_at) for e in request.events]
        results = await self.service.record_carrier_events(
            reported, actor=request.actor or actors.carrier(request.source), warehouse=request.warehouse
        )
        return shipping_pb2.CarrierEventsResponse(
            results=[
                shipping_pb2.CarrierEventResult(
                    event_id=entry.event_id,
                    outcome=outcome.value,
                    shipment_id=shipment.shipment_id if shipment else "",
                    status=shipment.status.value if shipment else "",
                    tracking_status=entry.status.value,
                )
                for entry, outcome, shipment in results
            ]
        )

    async def ImportMasterData(self, request, context):
        require(request.kind, "kind")
        return common_pb2.ImportCsvResponse(
            rows=await self.service.import_master_data(request.kind, request.csv)
        )
