"""The services behind the gateway (orderdesk.clients.Services: one channel each, a deadline on every call).

`Backends.call` is the one way a handler talks to a service: it sends the
correlation id along and turns a failed call into a Problem (gateway.problems). `Backends.submit_order` is
intake.SubmitOrder's answer the same way, the order gathered with others into one call (gateway.gathering).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc

from gateway.gathering import SingleOrders
from gateway.problems import Problem, from_rpc_failure
from orderdesk import rpc
from orderdesk.clients import Services
from orderdesk.config import Settings
from orderdesk.v1 import intake_pb2

log = logging.getLogger("gateway.backends")
BATCH_ORDERS_PER_DEADLINE = 50  # intake checks 32 at once; 50 per deadline leaves room for a slow database


def _problem(failure: rpc.RpcFailure, field_aliases: Mapping[str, str] | None, what: str) -> Problem:
    problem = from_rpc_failure(failure, field_aliases)
    if problem.status >= 500:
        log.warning("%s failed: %s %s", what, failure.code.name, failure.message)
    return problem


class Backends(Services):
    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.single_orders = SingleOrders(self)

    async def call(
        self, method, request, *, field_aliases: Mapping[str, str] | None = None, timeout: float | None = None
    ):
        """`await backends.call(backends.orders.GetOrder, request)`: the answer, or a Problem raised.

        `timeout` replaces the usual deadline for a call that waits on purpose (a long poll)."""
        try:
            return await self.invoke(method, request, timeout=timeout)
        except grpc.RpcError as exc:
            raise _problem(rpc.describe(exc), field_aliases, "gRPC call") from None

    async def submit_order(
        self, request: intake_pb2.SubmitOrderRequest, *, field_aliases: Mapping[str, str] | None = None
    ) -> intake_pb2.SubmitOrderResponse:
        """intake.SubmitOrder's answer for one order, or the Problem its failure is, as `call` gives them; the
        order travels with the others submitted meanwhile in one SubmitOrders call (gateway.gathering)."""
        outcome = await self.single_orders.submit(request)
        if isinstance(outcome, rpc.RpcFailure):
            raise _problem(outcome, field_aliases, "gRPC call (gathered)")
        return outcome

    async def batch(self, method, request, orders: int, *, field_aliases: Mapping[str, str] | None = None):
        """`await backends.batch(backends.intake.SubmitOrders, request, n)`: one call for a batch of `n` orders,
        the answer, or a Problem raised. Its deadline grows with the batch (one call's deadline per
        BATCH_ORDERS_PER_DEADLINE orders); a failed call is a 503 (or what the service said)."""
        timeout = self.timeout * (1 + orders / BATCH_ORDERS_PER_DEADLINE)
        try:
            return await self.invoke(method, request, timeout=timeout)
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            problem = from_rpc_failure(failure, field_aliases)
            log.warning("gRPC batch call failed: %s %s", failure.code.name, failure.message)
            raise problem from None
