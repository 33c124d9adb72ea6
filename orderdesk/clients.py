"""The services as a client sees them (the gateway, the console): one grpc.aio channel per service,
a stub for each, a deadline on every call, and the standard health check.

Each client wraps `Services` with its own way of showing a refusal (the gateway: problem+json,
gateway/backends.py; the console: a page, console/web.py); the channels and stubs live here, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orderdesk import rpc, tls
from orderdesk.config import SERVICES, Settings, grpc_target
from orderdesk.v1 import (
    intake_pb2_grpc,
    inventory_pb2_grpc,
    notifier_pb2_grpc,
    orders_pb2_grpc,
    returns_pb2_grpc,
    shipping_pb2_grpc,
)

HEALTH_TIMEOUT = 1.0
MAX_RECEIVE_BYTES = 16 * 1024 * 1024


class Services:
    def __init__(self, settings: Settings):
        self.timeout = settings.rpc_timeout
        self.tls = settings.tls
        self.channels: dict[str, grpc.aio.Channel] = {
            name: self._channel(name, settings.peers[name], settings.tls) for name in SERVICES
        }
        self.intake = intake_pb2_grpc.IntakeServiceStub(self.channels["intake"])
        self.orders = orders_pb2_grpc.OrdersServiceStub(self.channels["orders"])
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self.channels["inventory"])
        self.shipping = shipping_pb2_grpc.ShippingServiceStub(self.channels["shipping"])
        self.returns = returns_pb2_grpc.ReturnsServiceStub(self.channels["returns"])
        self.notifier = notifier_pb2_grpc.NotifierServiceStub(self.channels["notifier"])

    @staticmethod
    def _channel(name: str, address: str, settings: tls.TlsSettings) -> grpc.aio.Channel:
        target, options = grpc_target(address)  # replicas: round robin over every address
        return tls.aio_channel(
            target,
            settings,
            peer=name,
            options=[*options, ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES)],
        )

    async def invoke(self, method, request, *, timeout: float | None = None):
        """One unary call with the deadline and the correlation id; a failure raises grpc.RpcError."""
        return await method(request, timeout=timeout or self.timeout, metadata=rpc.metadata())

    async def invoke_stream(self, method, requests: Sequence, *, timeout: float) -> list:
        """One request stream, every answer; a failure raises grpc.RpcError."""
        call = method(iter(requests), timeout=timeout, metadata=rpc.metadata())
        return [answer async for answer in call]

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
