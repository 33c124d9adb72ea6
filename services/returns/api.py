"""ReturnsService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

from orderdesk.errors import require
from orderdesk.v1 import common_pb2, returns_pb2, returns_pb2_grpc
from services.returns.domain import Inspection
from services.returns.proto import return_to_proto
from services.returns.service import ReturnsService


class ReturnsApi(returns_pb2_grpc.ReturnsServiceServicer):
    def __init__(self, service: ReturnsService):
        self.service = service

    async def CreateReturn(self, request, context):
        require(request.order_id, "order_id")
        return return_to_proto(await self.service.create(request))

    async def CreateClaim(self, request, context):
        require(request.order_id, "order_id")
        return return_to_proto(await self.service.create_claim(request))

    async def GetReturn(self, request, context):
        require(request.rma_id, "rma_id")
        return return_to_proto(await self.service.get(request.rma_id, request.partner_id))

    async def ListReturns(self, request, context):
        if request.order_id or not request.status:
            require(request.order_id, "order_id")
            found = await self.service.list_for_order(request.order_id, request.partner_id)
        else:
            found = await self.service.list_in_status(request.status, request.partner_id, request.limit)
        return returns_pb2.ListReturnsResponse(items=[return_to_proto(r) for r in found])

    async def ReceiveReturn(self, request, context):
        require(request.rma_id, "rma_id")
        actor = request.actor or request.partner_id or "unknown"
        return return_to_proto(await self.service.receive(request.rma_id, request.partner_id, actor))

    async def InspectReturn(self, request, context):
        require(request.rma_id, "rma_id")
        actor = request.actor or request.partner_id or "unknown"
        inspections = [Inspection(line.sku, line.quantity, line.outcome) for line in request.lines]
        return return_to_proto(
            await self.service.inspect(request.rma_id, request.partner_id, inspections, actor)
        )

    async def AuthoriseReturn(self, request, context):
        require(request.rma_id, "rma_id")
        return return_to_proto(await self.service.authorise(request.rma_id, _actor(request), request.reason))

    async def RefuseReturn(self, request, context):
        require(request.rma_id, "rma_id")
        return return_to_proto(await self.service.refuse(request.rma_id, _actor(request), request.reason))

    async def CancelReturn(self, request, context):
        require(request.rma_id, "rma_id")
        return return_to_proto(
            await self.service.cancel(request.rma_id, request.partner_id, _actor(request), request.reason)
        )

    async def ImportMasterData(self, request, context):
        return common_pb2.ImportCsvResponse(rows=await self.service.import_csv(request.kind, request.csv))


def _actor(request) -> str:
    return request.actor or request.partner_id or "unknown"
