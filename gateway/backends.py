"""The services behind the gateway: one grpc.aio channel each, a deadline on every call.

`Backends.call` is the one way a handler talks to a service: it sends the
correlation id along and turns a failed call into a Problem (gateway.problems).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.problems import from_rpc_failure
from orderdesk import rpc
from orderdesk.config import SERVICES, Settings, grpc_target
from orderdesk.v1 import (
    intake_pb2_grpc,
    inventory_pb2_grpc,
    notifier_pb2_grpc,
    orders_pb2_grpc,
    returns_pb2_grpc,
    shipping_pb2_grpc,
)

log = logging.getLogger("gateway.backends")
HEALTH_TIMEOUT = 1.0
STREAM_ORDERS_PER_DEADLINE = 50  # intake checks 32 at once; 50 per deadline leaves room for a slow database


class Backends:
    def __init__(self, settings: Settings):
        self.timeout = settings.rpc_timeout
        self.channels: dict[str, grpc.aio.Channel] = {
            name: self._channel(settings.peers[name]) for name in SERVICES
        }
        self.intake = intake_pb2_grpc.IntakeServiceStub(self.channels["intake"])
        self.orders = orders_pb2_grpc.OrdersServiceStub(self.channels["orders"])
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self.channels["inventory"])
        self.shipping = shipping_pb2_grpc.ShippingServiceStub(self.channels["shipping"])
        self.returns = returns_pb2_grpc.ReturnsServiceStub(self.channels["returns"])
        self.notifier = notifier_pb2_grpc.NotifierServiceStub(self.channels["notifier"])

    @staticmethod
    def _channel(peer: str) -> grpc.aio.Channel:
        target, options = grpc_target(peer)  # replicas: round robin over every address
        return grpc.aio.insecure_channel(
            target, options=[*options, ("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        )

    async def call(
        self, method, request, *, field_aliases: Mapping[str, str] | None = None, timeout: float | None = None
    ):
        """`await backends.call(backends.orders.GetOrder, request)`: the answer, or a Problem raised.

        `timeout` replaces the usual deadline for a call that waits on purpose (a long poll)."""
        try:
            return await method(request, timeout=timeout or self.timeout, metadata=rpc.metadata())
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            problem = from_rpc_failure(failure, field_aliases)
            if problem.status >= 500:
                log.warning("gRPC call failed: %s %s", failure.code.name, failure.message)
            raise problem from None

    async def stream(
        self, method, requests: Sequence, *, field_aliases: Mapping[str, str] | None = None
    ) -> list:
        """`await backends.stream(backends.intake.SubmitOrderStream, requests)`: every answer, or a Problem raised.

        One stream for the whole batch; its deadline grows with the batch (one call's
        deadline per STREAM_ORDERS_PER_DEADLINE requests), a stream that fails midway is a 503.
        """
        if not requests:
            return []
        timeout = self.timeout * (1 + len(requests) / STREAM_ORDERS_PER_DEADLINE)
        try:
            call = method(iter(requests), timeout=timeout, metadata=rpc.metadata())
            return [answer async for answer in call]
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            problem = from_rpc_failure(failure, field_aliases)
            log.warning("gRPC stream failed: %s %s", failure.code.name, failure.message)
            raise problem from None

    async def health(self) -> dict[str, str]:
        """Each service's standard gRPC health answer, asked concurrently with a short deadline."""

        async def check(name: str) -> str:
            try:
                answer = await health_pb2_grpc.HealthStub(self.channels[name]).Check(
                    health_pb2.HealthCheckRequest(), timeout=HEALTH_TIMEOUT, metadata=rpc.metadata()
                )
                return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
            except grpc.RpcError:
                return "UNREACHABLE"

        answers = await asyncio.gather(*(check(name) for name in SERVICES))
        return dict(zip(SERVICES, answers, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self.channels.values()), return_exceptions=True)
