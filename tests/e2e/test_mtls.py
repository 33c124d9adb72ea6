"""mTLS inside the suite (README "mTLS inside"): the stack runs secured, as `make run` does, so a process
without a certificate from its CA cannot even connect, and an identity that may not call a method is refused
by the access table (orderdesk/access.py) and counted.

The gateway's identity calling what it needs, with partner scoping holding through it, is every partner test
of this folder under the secured stack: test_lifecycle.py::test_partner_cannot_see_another_partners_order for
the scoping, the rest of test_lifecycle.py for an order's whole life through the gateway."""

from __future__ import annotations

import re
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools.pki import Authority
from orderdesk import tls
from orderdesk.v1 import apikeys_pb2, apikeys_pb2_grpc, orders_pb2, orders_pb2_grpc

APPROVE = "/orderdesk.v1.OrdersService/ApproveOrder"


async def health(channel) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    return answer.status


async def refused_in_handshake(channel) -> grpc.StatusCode:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health(channel)
    return refused.value.code()


def denied(stack, caller: str, method: str) -> float:
    """orderdesk_rpc_denied_total{caller,method} of the orders service, read from its /metrics."""
    url = f"http://127.0.0.1:{stack.metrics_ports['orders']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(
        rf'^orderdesk_rpc_denied_total\{{caller="{caller}",method="{re.escape(method)}"\}} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


def read_pem(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def test_the_stack_runs_secured_and_its_own_identities_are_served(stack):
    assert stack.tls and stack.client_tls("cli").enabled
    async with tls.aio_channel(stack.addr("orders"), stack.client_tls("shipping"), peer="orders") as channel:
        assert await health(channel) == health_pb2.HealthCheckResponse.SERVING  # any identity: health


async def test_a_plaintext_client_is_refused(stack):
    # Deliberately plaintext: the port speaks TLS only.
    code = await refused_in_handshake(grpc.aio.insecure_channel(stack.addr("orders")))
    assert code is grpc.StatusCode.UNAVAILABLE


async def test_a_client_without_a_certificate_is_refused_in_the_handshake(stack):
    ca = read_pem(stack.client_tls("cli").ca)  # it trusts the server, but shows nothing of its own
    channel = grpc.aio.secure_channel(
        stack.addr("orders"),
        grpc.ssl_channel_credentials(root_certificates=ca),
        options=[("grpc.ssl_target_name_override", "orders")],
    )
    assert await refused_in_handshake(channel) is grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_is_refused_even_with_a_known_name(stack):
    cert, key = Authority("someone else's CA").issue("gateway")
    ca = read_pem(stack.client_tls("cli").ca)
    channel = grpc.aio.secure_channel(
        stack.addr("orders"),
        grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert),
        options=[("grpc.ssl_target_name_override", "orders")],
    )
    assert await refused_in_handshake(channel) is grpc.StatusCode.UNAVAILABLE


async def test_a_client_checks_it_reached_the_service_it_meant(stack):
    # Inventory's port answers with inventory's certificate: a channel meant for orders refuses it.
    channel = tls.aio_channel(stack.addr("inventory"), stack.client_tls("cli"), peer="orders")
    assert await refused_in_handshake(channel) is grpc.StatusCode.UNAVAILABLE


async def test_shipping_may_not_approve_an_order_and_the_refusal_is_counted(stack):
    before = denied(stack, "shipping", APPROVE)
    async with tls.aio_channel(stack.addr("orders"), stack.client_tls("shipping"), peer="orders") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await orders_pb2_grpc.OrdersServiceStub(channel).ApproveOrder(
                orders_pb2.OrderDecisionRequest(order_id="ORD-NOT-EVEN-LOOKED-AT"), timeout=5
            )
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "'shipping'" in refused.value.details() and APPROVE in refused.value.details()
    assert denied(stack, "shipping", APPROVE) == before + 1


async def test_intake_may_approve_an_order_it_is_asked_about(stack):
    """The same call as intake (its approval of a held order): past the table, to the domain (no such order)."""
    async with tls.aio_channel(stack.addr("orders"), stack.client_tls("intake"), peer="orders") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as answered:
            await orders_pb2_grpc.OrdersServiceStub(channel).ApproveOrder(
                orders_pb2.OrderDecisionRequest(order_id="ORD-NO-SUCH"), timeout=5
            )
    assert answered.value.code() is grpc.StatusCode.NOT_FOUND


async def test_only_the_console_reaches_the_gateways_key_admin(stack):
    addr = f"127.0.0.1:{stack.keys_port}"
    for identity, expected in (("console", None), ("cli", grpc.StatusCode.PERMISSION_DENIED)):
        async with tls.aio_channel(addr, stack.client_tls(identity), peer="gateway") as channel:
            stub = apikeys_pb2_grpc.ApiKeysServiceStub(channel)
            if expected is None:
                listed = await stub.ListApiKeys(apikeys_pb2.ListApiKeysRequest(), timeout=5)
                assert listed.partners, identity  # the demo's partners
            else:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.ListApiKeys(apikeys_pb2.ListApiKeysRequest(), timeout=5)
                assert refused.value.code() is expected, identity
