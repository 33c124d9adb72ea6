"""OrdersService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

from orderdesk import erasure, errors
from orderdesk.errors import require
from orderdesk.v1 import orders_pb2, orders_pb2_grpc
from services.orders.archive.job import Archiver
from services.orders.change_requests import ChangeRequests
from services.orders.domain import SEARCH_FIELDS, Status
from services.orders.erasure import OrdersErasure
from services.orders.exception_resolutions import ExceptionResolutions
from services.orders.kpi import report_to_proto
from services.orders.proto import (
    archived_to_proto,
    as_published,
    desk_order_to_proto,
    order_to_proto,
    status_to_proto,
    timeline_to_proto,
)
from services.orders.service import OrdersService


class OrdersApi(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(
        self,
        service: OrdersService,
        change_requests: ChangeRequests,
        exception_resolutions: ExceptionResolutions,
        archiver: Archiver | None = None,
        erasure: OrdersErasure | None = None,
    ):
        self.service = service
        self.change_requests = change_requests
        self.exception_resolutions = exception_resolutions
        self.archiver = archiver
        self.erasure = erasure

    # --- change requests and exceptions (change_requests.py, exception_resolutions.py) ---------------
    async def ChangeOrder(self, request, context):
        require(request.order_id, "order_id")
        return order_to_proto(await self.change_requests.change(request))

    async def RecordException(self, request, context):
        require(request.order_id, "order_id")
        return order_to_proto(await self.exception_resolutions.record(request))

    async def ResolveException(self, request, context):
        require(request.order_id, "order_id")
        require(request.exception_id, "exception_id")
        return order_to_proto(await self.exception_resolutions.resolve(request))

    async def CreateOrder(self, request, context):
        require(request.order_id, "order_id")
        require(request.customer_id, "customer_id")
        return as_published(await self.service.create(request))

    async def CreateOrders(self, request, context):
        for n, one in enumerate(request.orders):
            require(one.order_id, f"orders[{n}].order_id")
            require(one.customer_id, f"orders[{n}].customer_id")
        created = await self.service.create_many(list(request.orders))
        return orders_pb2.CreateOrdersResponse(orders=[as_published(o) for o in created])

    async def GetOrder(self, request, context):
        require(request.order_id, "order_id")
        return order_to_proto(await self.service.get(request.order_id, request.partner_id))

    async def ListOrders(self, request, context):
        items, cursor = await self.service.list(
            request.partner_id,
            request.status,
            request.limit,
            request.cursor,
            hold_reason=request.hold_reason,
            order_by=request.order_by,
            **{name: getattr(request, name) for name in SEARCH_FIELDS},
            at_risk=request.at_risk,
            risk=request.risk,
            open_exception=request.open_exception,
            exception_type=request.exception_type,
            warehouse=request.warehouse,
        )
        return orders_pb2.ListOrdersResponse(items=[order_to_proto(o) for o in items], next_cursor=cursor)

    async def CountQueues(self, request, context):
        counts = await self.service.queue_counts()

        def per_code(found: dict[str, int]) -> list:
            return [orders_pb2.QueueCount(code=code, count=n) for code, n in sorted(found.items())]

        return orders_pb2.QueueCounts(
            held=counts.held,
            held_by_reason=per_code(counts.held_by_reason),
            exceptions=counts.exceptions,
            exceptions_by_type=per_code(counts.exceptions_by_type),
            at_risk=counts.at_risk,
            at_risk_by_risk=per_code(counts.at_risk_by_risk),
            backorders=counts.backorders,
        )

    # --- the desk's own view: never called by the gateway (internal notes are for the desk only) -----
    async def AddOrderNote(self, request, context):
        require(request.order_id, "order_id")
        require(request.actor.id, "actor.id")
        order = await self.service.add_note(
            request.order_id,
            request.partner_id,
            request.actor.id,
            request.text,
            request.visibility,
            expected_version=request.expected_version,
        )
        return desk_order_to_proto(order)

    async def GetDeskOrder(self, request, context):
        require(request.order_id, "order_id")
        return desk_order_to_proto(await self.service.get(request.order_id, request.partner_id))

    async def GetOrderStatus(self, request, context):
        require(request.order_id, "order_id")
        return status_to_proto(await self.service.get(request.order_id, ""))

    async def GetOrderTimeline(self, request, context):
        require(request.order_id, "order_id")
        return timeline_to_proto(await self.service.get(request.order_id, request.partner_id))

    async def CancelOrder(self, request, context):
        try:
            return await self._decide(request, "cancel")
        except errors.FailedPrecondition as refused:
            # Some goods shipped: a partially shipped order's cancel is a change request for its remainder
            # (it releases stock and shipments as a change does); any other keeps the refusal.
            if refused.rule != "cancel_before_shipment":
                raise
            order = await self.service.get(request.order_id, request.partner_id)
            if order.status is not Status.PARTIALLY_SHIPPED:
                raise
        changed = await self.change_requests.cancel_remainder(
            request.order_id,
            request.partner_id,
            request.expected_version,
            request.actor.id or request.partner_id or "unknown",
            request.actor.reason,
        )
        return order_to_proto(changed)

    async def ApproveOrder(self, request, context):
        return await self._decide(request, "approve")

    async def RejectOrder(self, request, context):
        return await self._decide(request, "reject")

    async def GetKpiReport(self, request, context):
        return report_to_proto(
            await self.service.kpi_report(getattr(request, "from"), request.to, request.group_by)
        )

    # --- the archive (services/orders/archive) -----------------------------------------------------
    async def RunArchive(self, request, context):
        if self.archiver is None:
            raise errors.Unavailable("the archive job does not run in this process")
        after_days = request.after_days if request.HasField("after_days") else None
        if after_days is not None and not 0 <= after_days < 100_000:
            raise errors.InvalidArgument(
                "after_days must be 0 or more days",
                [errors.FieldViolation("after_days", "0 or more days (0: every closed order)")],
            )
        done = await self.archiver.run_pass(after_days=after_days)
        return orders_pb2.RunArchiveResponse(
            archived=done.archived, skipped=done.skipped, batches=done.batches, seconds=done.seconds
        )

    async def ExportArchive(self, request, context):
        async for page in self.service.export_archive(getattr(request, "from"), request.to, request.by):
            yield orders_pb2.ExportArchiveChunk(orders=[archived_to_proto(found) for found in page])

    # --- a customer's personal data (services/orders/erasure.py) ---------------------------------------
    async def EraseCustomer(self, request, context):
        if self.erasure is None:
            raise errors.Unavailable("erasure is not set up in this process")
        return (await self.erasure.erase(erasure.Request.from_proto(request))).to_proto()

    async def _decide(self, request, decision: str):
        require(request.order_id, "order_id")
        actor = request.actor.id or request.partner_id or "unknown"
        order = await self.service.decide(
            request.order_id,
            request.partner_id,
            decision,
            actor,
            request.actor.reason,
            accept_proposal=request.accept_proposal,
            expected_version=request.expected_version,
        )
        return order_to_proto(order)
