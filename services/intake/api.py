"""IntakeService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from orderdesk import errors, rpc
from orderdesk.v1 import common_pb2, intake_pb2, intake_pb2_grpc
from services.intake import approval, review
from services.intake.proto import submission_from_proto
from services.intake.service import IntakeService, Submitted

log = logging.getLogger("intake.grpc")

STREAM_CHANNEL = "grpc"
# Orders of one stream checked at the same time: enough to hide the round trips to
# orders and inventory, few enough that one partner's surge cannot take every connection.
STREAM_IN_FLIGHT = 32


def accepted_to_proto(submitted: Submitted) -> intake_pb2.SubmitOrderResponse:
    """The answer to an entered order, the same for SubmitOrder and each result of SubmitOrderStream."""
    return intake_pb2.SubmitOrderResponse(
        order_id=submitted.order.order_id,
        status=submitted.order.status,
        hold_reasons=submitted.order.hold_reasons,
        replayed=submitted.replayed,
        proposals=submitted.order.proposals,
        priority=submitted.order.priority,
    )


def refused_to_proto(index: int, exc: Exception) -> intake_pb2.SubmitOrderResult:
    """A refused order of a stream: the error code and field violations SubmitOrder would have sent as status."""
    if isinstance(exc, errors.DomainError):
        violations = getattr(exc, "violations", [])
        return intake_pb2.SubmitOrderResult(
            index=index, error_code=exc.code, error_message=exc.message,
            errors=[common_pb2.Reason(code=v.reason, message=v.description, field=v.field) for v in violations],
        )
    if isinstance(exc, grpc.RpcError):  # a peer's refusal passed through (e.g. orders.CreateOrder)
        failure = rpc.describe(exc)
        trusted = bool(failure.reason)  # only our own domain messages are fit for the partner
        return intake_pb2.SubmitOrderResult(
            index=index, error_code=failure.code.name,
            error_message=failure.message if trusted else "a service behind intake refused the order",
            errors=[common_pb2.Reason(code=v.reason, message=v.description, field=v.field)
                    for v in failure.violations],
        )
    return intake_pb2.SubmitOrderResult(index=index, error_code="INTERNAL",
                                        error_message=f"internal error ({type(exc).__name__})")


class IntakeApi(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self, service: IntakeService, in_flight: int = STREAM_IN_FLIGHT):
        self.service = service
        self.in_flight = in_flight

    async def SubmitOrder(self, request, context):
        return accepted_to_proto(await self.service.submit(submission_from_proto(request)))

    async def SubmitOrderStream(self, request_iterator, context) -> AsyncIterator[intake_pb2.SubmitOrderResult]:
        """Each order on its own (a bad one refuses only itself), up to `in_flight` at once, answered in order.

        The runtime's interceptor wraps unary calls only, so every error is turned
        into that order's result here and the stream itself always completes.
        """
        slots = asyncio.Semaphore(self.in_flight)

        async def one(index: int, request: intake_pb2.SubmitOrderRequest) -> intake_pb2.SubmitOrderResult:
            try:
                if not request.channel:
                    request.channel = STREAM_CHANNEL
                submitted = await self.service.submit(submission_from_proto(request))
                return intake_pb2.SubmitOrderResult(index=index, accepted=accepted_to_proto(submitted))
            except asyncio.CancelledError:
                raise
            except errors.DomainError as exc:
                return refused_to_proto(index, exc)
            except grpc.RpcError as exc:
                return refused_to_proto(index, exc)
            except Exception as exc:
                log.exception("unhandled error in SubmitOrderStream (order %d)", index)
                return refused_to_proto(index, exc)
            finally:
                slots.release()

        # Reading ahead stops at `in_flight` unanswered orders; answers leave in the order sent.
        pending: asyncio.Queue[asyncio.Task | None] = asyncio.Queue()

        async def read() -> None:
            try:
                index = 0
                async for request in request_iterator:
                    await slots.acquire()
                    await pending.put(asyncio.create_task(one(index, request)))
                    index += 1
            finally:
                await pending.put(None)

        reader = asyncio.create_task(read())
        started: list[asyncio.Task] = []
        try:
            while (task := await pending.get()) is not None:
                started.append(task)
                yield await task
                started.pop()
            await reader  # a broken request stream surfaces here
        finally:
            reader.cancel()
            for task in started:
                task.cancel()
            while not pending.empty():
                if (task := pending.get_nowait()) is not None:
                    task.cancel()

    async def ReviewChange(self, request, context):
        reasons = await review.review_change(self.service, request)
        return intake_pb2.ReviewChangeResponse(
            hold_reasons=[common_pb2.Reason(code=r.code, message=r.message, field=r.field) for r in reasons])

    async def ApproveHeldOrder(self, request, context):
        return await approval.approve_held(self.service, request)

    async def ImportMasterData(self, request, context):
        rows = await self.service.import_master_data(request.kind, request.csv)
        return common_pb2.ImportCsvResponse(rows=rows)
