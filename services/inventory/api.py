"""InventoryService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

from orderdesk.errors import require
from orderdesk.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc
from services.inventory import reallocation
from services.inventory.proto import reserve_response, stock_level_to_proto
from services.inventory.service import InventoryService


class InventoryApi(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService):
        self.service = service

    async def Reserve(self, request, context):
        result = await self.service.reserve(
            request.order_id, [(line.sku, line.quantity) for line in request.lines], request.priority
        )
        return reserve_response(result)

    async def GetStock(self, request, context):
        require(request.sku, "sku")
        return stock_level_to_proto(request.sku, await self.service.levels(request.sku))

    async def Restock(self, request, context):
        levels = await self.service.restock(request.sku, request.warehouse, request.quantity, request.reference)
        return stock_level_to_proto(request.sku, levels)

    async def Reallocate(self, request, context):
        held = await reallocation.reallocate(self.service.db, request.order_id, request.sku, request.warehouse,
                                             request.quantity, request.reference)
        return inventory_pb2.ReserveResponse(
            reservations=[inventory_pb2.Reservation(sku=s, warehouse=w, quantity=q) for s, w, q in held])

    async def ImportMasterData(self, request, context):
        return common_pb2.ImportCsvResponse(rows=await self.service.import_csv(request.kind, request.csv))
