"""ShippingService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

import datetime as dt

from orderdesk.errors import require
from orderdesk.v1 import common_pb2, shipping_pb2, shipping_pb2_grpc
from services.shipping.proto import shipment_to_proto
from services.shipping.service import ShippingService


class ShippingApi(shipping_pb2_grpc.ShippingServiceServicer):
    def __init__(self, service: ShippingService):
        self.service = service

    async def ListShipments(self, request, context):
        require(request.order_id, "order_id")
        items = await self.service.list_for_order(request.order_id, request.partner_id)
        return shipping_pb2.ListShipmentsResponse(items=[shipment_to_proto(s) for s in items])

    async def GetShipment(self, request, context):
        require(request.shipment_id, "shipment_id")
        return shipment_to_proto(await self.service.get(request.shipment_id, request.partner_id))

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
        )
        return shipment_to_proto(shipment)

    async def ImportMasterData(self, request, context):
        require(request.kind, "kind")
        return common_pb2.ImportCsvResponse(
            rows=await self.service.import_master_data(request.kind, request.csv)
        )
