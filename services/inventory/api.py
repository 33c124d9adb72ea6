"""InventoryService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

import datetime as dt

from orderdesk.errors import require
from orderdesk.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc
from services.inventory import reallocation
from services.inventory.proto import (
    atp_to_proto,
    quotes_to_proto,
    reserve_response,
    run_to_proto,
    stock_level_to_proto,
)
from services.inventory.service import InventoryService, ReserveCall, ReserveResult


class InventoryApi(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService):
        self.service = service

    async def Reserve(self, request, context):
        result = await self.service.reserve(
            request.order_id,
            [(line.sku, line.quantity) for line in request.lines],
            request.priority,
            country=request.ship_to_country,
            placed_at=request.placed_at.ToDatetime(tzinfo=dt.UTC) if request.HasField("placed_at") else None,
        )
        return reserve_response(result)

    async def ReserveMany(self, request, context):
        calls = [
            ReserveCall(
                r.order_id,
                [(line.sku, line.quantity) for line in r.lines],
                r.priority,
                r.ship_to_country,
                r.placed_at.ToDatetime(tzinfo=dt.UTC) if r.HasField("placed_at") else None,
            )
            for r in request.orders
        ]
        results = await self.service.reserve_many(calls)
        return inventory_pb2.ReserveManyResponse(
            results=[
                inventory_pb2.ReserveResult(order_id=call.order_id, response=reserve_response(result))
                if isinstance(result, ReserveResult)
                else inventory_pb2.ReserveResult(
                    order_id=call.order_id,
                    error_code=result.code,
                    error_reason=result.reason,
                    error_message=result.message,
                )
                for call, result in zip(calls, results, strict=True)
            ]
        )

    async def GetStock(self, request, context):
        require(request.sku, "sku")
        levels = await self.service.levels(request.sku)
        return stock_level_to_proto(request.sku, levels, await self.service.recent_receipts(request.sku))

    async def Restock(self, request, context):
        levels = await self.service.restock(
            request.sku, request.warehouse, request.quantity, request.reference, request.actor.id
        )
        return stock_level_to_proto(request.sku, levels)

    async def Reallocate(self, request, context):
        held = await reallocation.reallocate(
            self.service.db,
            request.order_id,
            request.sku,
            request.warehouse,
            request.quantity,
            request.reference,
            write_off_only=request.write_off_only,
        )
        return inventory_pb2.ReserveResponse(
            reservations=[inventory_pb2.Reservation(sku=s, warehouse=w, quantity=q) for s, w, q in held]
        )

    async def ImportMasterData(self, request, context):
        return common_pb2.ImportCsvResponse(rows=await self.service.import_csv(request.kind, request.csv))

    async def ListProduction(self, request, context):
        runs = await self.service.production(request.sku, request.status)
        return inventory_pb2.ListProductionResponse(runs=[run_to_proto(r, s) for r, s in runs])

    async def CompleteProduction(self, request, context):
        return run_to_proto(
            *await self.service.complete_production(
                request.production_id, request.quantity, request.reference
            )
        )

    async def AnnounceInbound(self, request, context):
        inbound = await self.service.announce_inbound(
            request.reference, request.sku, request.warehouse, request.quantity, request.expected_date
        )
        return inventory_pb2.InboundReceipt(
            reference=inbound.reference,
            sku=inbound.sku,
            warehouse=inbound.warehouse,
            quantity=inbound.quantity,
            expected_date=inbound.expected_date.isoformat(),
            status=inbound.status,
        )

    async def RescheduleProduction(self, request, context):
        return run_to_proto(
            *await self.service.reschedule_production(request.production_id, request.expected_date)
        )

    async def GetAvailableToPromise(self, request, context):
        return atp_to_proto(await self.service.available_to_promise(request.sku))

    async def QuoteSupply(self, request, context):
        quotes = await self.service.quote_supply(
            request.ship_to_country, [(line.sku, line.quantity) for line in request.lines]
        )
        return quotes_to_proto(quotes)
