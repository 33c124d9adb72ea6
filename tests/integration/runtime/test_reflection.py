"""gRPC reflection is off unless configured on: a port reached tells nobody the API (issue 12)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from devtools.localservers import free_port
from orderdesk import tls
from orderdesk.runtime import ServiceRuntime

RETURNS_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "returns" / "migrations"


async def listed_services(address: str) -> list[str]:
    async with tls.aio_channel(address, tls.TlsSettings(), peer="returns") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        calls = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        async for answer in calls:
            return [s.name for s in answer.list_services_response.service]
    return []


@pytest.mark.parametrize("configured", ["", "true"])
async def test_reflection_answers_only_when_configured_on(configured, tmp_path, nats_url, monkeypatch):
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("ORDERDESK_RETURNS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'returns.db'}")
    monkeypatch.setenv("ORDERDESK_NATS_URL", nats_url)
    monkeypatch.setenv("ORDERDESK_RETURNS_METRICS_PORT", "0")
    monkeypatch.setenv("ORDERDESK_RETURNS_ADDR", address)
    monkeypatch.setenv("ORDERDESK_GRPC_REFLECTION", configured)
    runtime = ServiceRuntime("returns", RETURNS_MIGRATIONS)
    await runtime.start()
    serving = asyncio.create_task(runtime.serve())
    try:
        async with tls.aio_channel(address, tls.TlsSettings(), peer="returns") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
        if configured:
            assert "grpc.health.v1.Health" in await listed_services(address)
        else:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await listed_services(address)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        runtime.stop()
        await asyncio.wait_for(serving, 30)
