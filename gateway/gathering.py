"""Single orders (POST /v1/orders) gathered into one intake.SubmitOrders call, each answered on its own.

The shape is intake's own for its single orders (orderdesk.grouping.GroupCommit): a request that finds no call
in flight goes at once, alone, and waits for nothing; requests arriving while a call is in flight go together
as the next call when it returns, at most GATHER_LIMIT of them, or at once as a second call in flight when
GATHER_LIMIT of them are waiting (a full call never waits for another). No timer decides anything. Intake
answers each order of the call with the result SubmitOrder would have given it (services/intake/api.py), so
each request gets the answer of its own single call: the order's response, or the failure its status would
have been (`failure_of`). A failure of the call as a whole (intake down, its deadline, overload) is each
request's own failure, as its own call would have failed.

Each order carries its own request's correlation id (SubmitOrderRequest.correlation_id): intake enters it,
and its events go out, under that id, not the call's.

Deadlines: a request waits at most the deadline its single call had (`Services.timeout` from the moment it is
submitted here), its wait for a call in flight included: past it, it is answered as a call past its deadline
is (DEADLINE_EXCEEDED, a 503). The call's own deadline is the latest of its requests', so a request that
waited behind another call does not cut the time left to those gathered with it; each earlier one gives up at
its own. What it asked for may still be entered after it gave up (GroupCommit keeps a caller that gave up in
its run), as with a single call past its deadline: the idempotency key makes the retry safe.
"""

from __future__ import annotations

import asyncio

import grpc

from orderdesk import errors, logs
from orderdesk.clients import Services
from orderdesk.grouping import GroupCommit
from orderdesk.rpc import RpcFailure, describe
from orderdesk.v1 import intake_pb2

# Orders per call at most: a larger burst goes in calls of this many, one after another, so an answer is not
# held back by too many others' (intake takes up to 100 a group: a call is one group, one commit).
GATHER_LIMIT = 32
# Calls in flight at most: a second goes only with a full group (orderdesk.grouping), so on a busy intake the
# calls overlap without getting smaller.
GATHER_IN_FLIGHT = 2
GATHER_GROUP = "gateway-single-orders"  # orderdesk_group_runs_total / _items_total name the gathering by it

Outcome = intake_pb2.SubmitOrderResponse | RpcFailure


def failure_of(result: intake_pb2.SubmitOrderResult) -> RpcFailure:
    """A refused order's result as the status its SubmitOrder would have failed with (code, message, the
    ErrorInfo reason, field violations): gateway.problems makes the same Problem of it."""
    code = getattr(grpc.StatusCode, result.error_code, None) if result.error_code else None
    return RpcFailure(
        code=code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN,
        message=result.error_message,
        reason=result.error_reason,
        violations=[errors.FieldViolation(e.field, e.message, e.code) for e in result.errors],
    )


class SingleOrders:
    """`await single_orders.submit(request)`: intake's answer to the order, or the failure its own call would
    have had, the order sent with the others submitted meanwhile."""

    def __init__(self, services: Services, limit: int = GATHER_LIMIT):
        self._services = services
        self._group: GroupCommit[tuple[intake_pb2.SubmitOrderRequest, float], Outcome] = GroupCommit(
            self._send, limit, name=GATHER_GROUP, in_flight=GATHER_IN_FLIGHT
        )

    async def submit(self, request: intake_pb2.SubmitOrderRequest) -> Outcome:
        request.correlation_id = logs.correlation_id.get()
        deadline = asyncio.get_running_loop().time() + self._services.timeout
        try:
            async with asyncio.timeout_at(deadline):
                return await self._group.submit((request, deadline))
        except TimeoutError:
            return RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded waiting for intake")

    async def _send(self, gathered: list[tuple[intake_pb2.SubmitOrderRequest, float]]) -> list[Outcome]:
        orders = [request for request, _ in gathered]
        timeout = max(deadline for _, deadline in gathered) - asyncio.get_running_loop().time()
        # The call's own metadata: the first request's id (each order carries its own), not whichever
        # request's context the gathering task happened to start in.
        with logs.correlated(orders[0].correlation_id):
            try:
                answer = await self._services.invoke(
                    self._services.intake.SubmitOrders,
                    intake_pb2.SubmitOrdersRequest(orders=orders),
                    timeout=max(timeout, 0.001),
                )
            except grpc.RpcError as exc:
                failure = describe(exc)
                return [failure] * len(orders)  # each request's own call would have failed alike
        results = answer.results
        if len(results) != len(orders) or any(r.index != n for n, r in enumerate(results)):
            raise RuntimeError(f"intake answered {len(results)} results for {len(orders)} orders")
        return [r.accepted if r.HasField("accepted") else failure_of(r) for r in results]
