"""The services behind the gateway (orderdesk.clients.Services: one channel each, a deadline on every call).

`Backends.call` is the one way a handler talks to a service: it sends the
correlation id along and turns a failed call into a Problem (gateway.problems).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import grpc

from gateway.problems import from_rpc_failure
from orderdesk import rpc
from orderdesk.clients import Services

log = logging.getLogger("gateway.backends")
BATCH_ORDERS_PER_DEADLINE = 50  # intake checks 32 at once; 50 per deadline leaves room for a slow database


class Backends(Services):
    async def call(
        self, method, request, *, field_aliases: Mapping[str, str] | None = None, timeout: float | None = None
    ):
        """`await backends.call(backends.orders.GetOrder, request)`: the answer, or a Problem raised.

        `timeout` replaces the usual deadline for a call that waits on purpose (a long poll)."""
        try:
            return await self.invoke(method, request, timeout=timeout)
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            problem = from_rpc_failure(failure, field_aliases)
            if problem.status >= 500:
                log.warning("gRPC call failed: %s %s", failure.code.name, failure.message)
            raise problem from None

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
