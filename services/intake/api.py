"""IntakeService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

from orderdesk.v1 import common_pb2, intake_pb2, intake_pb2_grpc
from services.intake.proto import submission_from_proto
from services.intake.service import IntakeService


class IntakeApi(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, service: IntakeService):
        self.service = service

    async def SubmitOrder(self, request, context):
        submitted = await self.service.submit(submission_from_proto(request))
        return intake_pb2.SubmitOrderResponse(
            order_id=submitted.order.order_id,
            status=submitted.order.status,
            hold_reasons=submitted.order.hold_reasons,
            replayed=submitted.replayed,
            proposals=submitted.order.proposals,
            priority=submitted.order.priority,
        )

    async def ImportMasterData(self, request, context):
        rows = await self.service.import_master_data(request.kind, request.csv)
        return common_pb2.ImportCsvResponse(rows=rows)
