"""InventoryService over gRPC: protobuf in, use case, protobuf out."""

from __future__ import annotations

from orderdesk.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc
from services.inventory.domain import StockLevel
from services.inventory.service import InventoryService


def stock_level(sku: str, levels: list[StockLevel]) -> inventory_pb2.StockLevel:
    return inventory_pb2.StockLevel(
        sku=sku,
        warehouses=[
            inventory_pb2.WarehouseStock(warehouse=lv.warehouse, on_hand=lv.on_hand, reserved=lv.reserved,
                                         available=lv.available)
            for lv in levels
        ],
    )


class InventoryApi(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService):
        self.service = service

    async def Reserve(self, request, context):
        held, backordered = await self.service.reserve(
            request.order_id, [(line.sku, line.quantity) for line in request.lines]
        )
        return inventory_pb2.ReserveResponse(
            reservations=[inventory_pb2.Reservation(sku=s, warehouse=w, quantity=q)
                          for (s, w), q in sorted(held.items())],
            backordered=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in sorted(backordered.items())],
        )

    async def GetStock(self, request, context):
        return stock_level(request.sku, await self.service.levels(request.sku))

    async def Restock(self, request, context):
        levels = await self.service.restock(request.sku, request.warehouse, request.quantity, request.reference)
        return stock_level(request.sku, levels)

    async def ImportMasterData(self, request, context):
        return common_pb2.ImportCsvResponse(rows=await self.service.import_csv(request.kind, request.csv))
