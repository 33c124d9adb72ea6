"""IntakeService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from orderdesk import erasure, errors, logs
from orderdesk.grouping import GroupCommit
from orderdesk.v1 import common_pb2, intake_pb2, intake_pb2_grpc
from services.intake import approval, customers, finance, quotes, review
from services.intake.erasure import IntakeErasure
from services.intake.proto import customer_to_proto, line_quote_to_proto, submission_from_proto
from services.intake.service import IntakeService, Submitted

log = logging.getLogger("intake.grpc")

STREAM_CHANNEL = "grpc"
# Orders of one stream taken at once (a chunk: one transaction, one call to orders): large
# enough to amortise both, small enough that one partner's surge cannot hold intake for long.
STREAM_IN_FLIGHT = 100
# Single orders (SubmitOrder) arriving while a group is being entered wait for it and go together as the
# next group, as a stream's chunk does (orderdesk.grouping): at most this many.
GROUP_LIMIT = STREAM_IN_FLIGHT


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
    """A refused order of a stream or batch: the status SubmitOrder would have sent (its code, message, reason
    and field violations). Anything but a domain error (a peer's refusal intake does not translate
    included) is what the runtime's interceptor makes of it for SubmitOrder: INTERNAL, with no detail."""
    if isinstance(exc, errors.DomainError):
        violations = getattr(exc, "violations", [])
        return intake_pb2.SubmitOrderResult(
            index=index,
            error_code=exc.code,
            error_message=exc.message,
            error_reason=exc.reason,
            errors=[
                common_pb2.Reason(code=v.reason, message=v.description, field=v.field) for v in violations
            ],
        )
    return intake_pb2.SubmitOrderResult(
        index=index, error_code="INTERNAL", error_message=f"internal error ({type(exc).__name__})"
    )


class IntakeApi(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(
        self,
        service: IntakeService,
        in_flight: int = STREAM_IN_FLIGHT,
        *,
        erasure: IntakeErasure | None = None,
    ):
        self.service = service
        self.in_flight = in_flight
        self.erasure = erasure
        self.singles: GroupCommit[tuple[intake_pb2.SubmitOrderRequest, str], Submitted] = GroupCommit(
            self._submit_group, limit=GROUP_LIMIT, name="intake-submit-order"
        )

    async def SubmitOrder(self, request, context):
        """One partner's order, entered with the others that arrive meanwhile (one transaction, one call to
        orders for the group), answered on its own: its events carry its own correlation id."""
        cid = request.correlation_id or logs.correlation_id.get()
        return accepted_to_proto(await self.singles.submit((request, cid)))

    async def _submit_group(self, group: list[tuple[intake_pb2.SubmitOrderRequest, str]]) -> list:
        return await self._submit_chunk([request for request, _ in group], [cid for _, cid in group])

    async def SubmitOrderStream(
        self, request_iterator, context
    ) -> AsyncIterator[intake_pb2.SubmitOrderResult]:
        """Orders in chunks as they arrive (up to `in_flight` at once), answered in the order sent.

        A chunk is what has arrived by the time the previous one is done: its orders are
        checked, claimed in one transaction and entered with one orders.CreateOrders call
        (IntakeService.submit_many), which is most of the saving of a stream over single
        calls. The runtime's interceptor wraps unary calls only, so every error is turned
        into that order's result here and the stream itself always completes."""
        arrived: asyncio.Queue[intake_pb2.SubmitOrderRequest | None] = asyncio.Queue(
            maxsize=2 * self.in_flight
        )

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await arrived.put(request)
            finally:
                await arrived.put(None)

        reader = asyncio.create_task(read())
        index = 0
        try:
            ended = False
            while not ended:
                first = await arrived.get()
                if first is None:
                    break
                chunk = [first]
                while len(chunk) < self.in_flight:
                    if arrived.empty():
                        await asyncio.sleep(0)  # let the reader hand over what the transport holds
                        if arrived.empty():
                            break
                    following = arrived.get_nowait()
                    if following is None:
                        ended = True
                        break
                    chunk.append(following)
                for request in chunk:
                    request.channel = request.channel or STREAM_CHANNEL
                # One stream, one request: its orders run under the stream's own correlation id (an order
                # that names its own, under that).
                for answer in await self._submit_chunk(chunk, [r.correlation_id for r in chunk]):
                    yield self._result(index, answer)
                    index += 1
            await reader  # a broken request stream surfaces here
        finally:
            reader.cancel()

    async def SubmitOrders(self, request, context) -> intake_pb2.SubmitOrdersResponse:
        """A batch in one message: SubmitOrderStream's results for the same orders, taken in chunks of
        `in_flight` (each checked, claimed and entered as a stream's chunk is), without a message per order
        each way. An order that names its correlation id (single orders the gateway gathered from several
        requests) is entered under it, its events carry it; else under the call's."""
        orders = list(request.orders)
        results: list[intake_pb2.SubmitOrderResult] = []
        for start in range(0, len(orders), self.in_flight):
            chunk = orders[start : start + self.in_flight]
            for order in chunk:
                order.channel = order.channel or STREAM_CHANNEL
            for answer in await self._submit_chunk(chunk, [order.correlation_id for order in chunk]):
                results.append(self._result(len(results), answer))
        return intake_pb2.SubmitOrdersResponse(results=results)

    async def _submit_chunk(
        self, chunk: list[intake_pb2.SubmitOrderRequest], correlation_ids: list[str]
    ) -> list:
        """A stream's chunk or a group of single orders, answered in order: an order's refusal is its answer,
        an exception. `correlation_ids`: each order's own ("": the request's in progress)."""
        try:
            return await self.service.submit_many([submission_from_proto(r) for r in chunk], correlation_ids)
        except asyncio.CancelledError:
            raise
        except Exception:  # something broke for the chunk as a whole: each order on its own then
            log.exception("a chunk of %d orders failed; submitting them one by one", len(chunk))
            answers = []
            for request, cid in zip(chunk, correlation_ids, strict=True):
                try:
                    with logs.correlated(cid):
                        answers.append(await self.service.submit(submission_from_proto(request)))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    answers.append(exc)
            return answers

    @staticmethod
    def _result(index: int, answer) -> intake_pb2.SubmitOrderResult:
        if isinstance(answer, Submitted):
            return intake_pb2.SubmitOrderResult(index=index, accepted=accepted_to_proto(answer))
        if not isinstance(answer, errors.DomainError):
            log.error("unhandled error in SubmitOrderStream (order %d): %r", index, answer)
        return refused_to_proto(index, answer)

    async def ReviewChange(self, request, context):
        reasons = await review.review_change(self.service, request)
        return intake_pb2.ReviewChangeResponse(
            hold_reasons=[common_pb2.Reason(code=r.code, message=r.message, field=r.field) for r in reasons]
        )

    async def ApproveHeldOrder(self, request, context):
        return await approval.approve_held(self.service, request)

    # --- the desk's customers (customers.py) ------------------------------------------------------
    async def SearchCustomers(self, request, context):
        page, cursor = await customers.search(self.service.db, request.query, request.limit, request.cursor)
        return intake_pb2.SearchCustomersResponse(
            items=[customer_to_proto(v) for v in page], next_cursor=cursor
        )

    async def GetCustomer(self, request, context):
        errors.require(request.customer_id, "customer_id")
        return customer_to_proto(await customers.get(self.service.db, request.customer_id))

    async def QuoteLines(self, request, context):
        errors.require(request.customer_id, "customer_id")
        found = await quotes.quote(
            self.service,
            request.customer_id,
            request.ship_to_country,
            [quotes.Query(q.product, q.quantity) for q in request.lines],
        )
        return intake_pb2.QuoteLinesResponse(lines=[line_quote_to_proto(f) for f in found])

    async def EraseCustomer(self, request, context):
        if self.erasure is None:
            raise errors.Unavailable("erasure is not set up in this process")
        return (await self.erasure.erase(erasure.Request.from_proto(request))).to_proto()

    # --- the money of an order (finance.py) -------------------------------------------------------------
    async def RecordFinanceDocument(self, request, context):
        return await finance.record(self.service, request)

    async def GetOrderAccount(self, request, context):
        return await finance.get(self.service, request)

    async def ListCreditNotes(self, request, context):
        return await finance.credit_notes(self.service, request)

    async def ImportMasterData(self, request, context):
        rows = await self.service.import_master_data(request.kind, request.csv)
        return common_pb2.ImportCsvResponse(rows=rows)
