"""A service's runtime under mTLS (orderdesk/tls.py, runtime.Authorize), in this process with real gRPC: the
service port wants a certificate from the CA and checks the access table; the probes' health port
(ORDERDESK_HEALTH_PORT) answers health alone, plaintext, for the kubelet."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.localservers import free_port
from devtools.pki import Authority
from orderdesk import tls
from orderdesk.runtime import ServiceRuntime
from orderdesk.v1 import returns_pb2, returns_pb2_grpc

RETURNS_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "returns" / "migrations"


async def check(channel) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return answer.status


async def test_the_service_port_wants_mtls_and_the_health_port_serves_health_alone(
    tmp_path, nats_url, monkeypatch
):
    made = Authority().write(tmp_path / "tls", ["returns", "shipping", "gateway"])
    address, health_port = f"127.0.0.1:{free_port()}", free_port()
    monkeypatch.setenv("ORDERDESK_RETURNS_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'returns.db'}")
    monkeypatch.setenv("ORDERDESK_NATS_URL", nats_url)
    monkeypatch.setenv("ORDERDESK_RETURNS_METRICS_PORT", "0")
    monkeypatch.setenv("ORDERDESK_RETURNS_ADDR", address)
    monkeypatch.setenv("ORDERDESK_HEALTH_PORT", str(health_port))
    for name, value in made["returns"].as_env().items():
        monkeypatch.setenv(name, value)
    runtime = ServiceRuntime("returns", RETURNS_MIGRATIONS)
    await runtime.start()
    # The generated base servicer: every method answers UNIMPLEMENTED once the table lets the call through.
    runtime.add_servicer(
        returns_pb2_grpc.add_ReturnsServiceServicer_to_server,
        returns_pb2_grpc.ReturnsServiceServicer(),
        "ReturnsService",
    )
    serving = asyncio.create_task(runtime.serve())
    try:
        probe = f"127.0.0.1:{health_port}"
        async with grpc.aio.insecure_channel(probe) as channel:  # deliberately plaintext: the kubelet's probe
            await asyncio.wait_for(channel.channel_ready(), 30)
            assert await check(channel) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
                await returns_pb2_grpc.ReturnsServiceStub(channel).GetReturn(
                    returns_pb2.GetReturnRequest(rma_id="RMA-1"), timeout=5
                )
            assert elsewhere.value.details() == "Method not found!"  # nothing but health there
        async with grpc.aio.insecure_channel(address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await check(channel)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        async with tls.aio_channel(address, made["shipping"], peer="returns") as channel:
            assert await check(channel) == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await returns_pb2_grpc.ReturnsServiceStub(channel).GetReturn(
                    returns_pb2.GetReturnRequest(rma_id="RMA-1"), timeout=5
                )
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "'shipping' may not call /orderdesk.v1.ReturnsService/GetReturn" in denied.value.details()
        async with tls.aio_channel(address, made["gateway"], peer="returns") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as answered:
                await returns_pb2_grpc.ReturnsServiceStub(channel).GetReturn(
                    returns_pb2.GetReturnRequest(rma_id="RMA-1"), timeout=5
                )
            assert "Method not implemented!" in answered.value.details()  # past the table, to the servicer
    finally:
        runtime.stop()
        await asyncio.wait_for(serving, 30)
