"""The gateway in-process (uvicorn on a free port) against fake gRPC services in the same loop.

The fakes answer just enough for transport checks (status mapping, field paths,
scoping, metrics); the real chain is covered by the end-to-end suite. They run
behind the real runtime interceptor, so their domain errors reach the gateway as
the same rich gRPC status the real services send.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json as jsonlib
from pathlib import Path

import aiohttp
import grpc
import pytest
import uvicorn
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devtools import localservers
from devtools.http import client_session
from gateway.app import create_app
from gateway.auth import KeyCache
from gateway.store import PartnerStore
from orderdesk import errors, tls
from orderdesk.config import SERVICES, GatewayEdgeSettings, Settings
from orderdesk.masterdata import parse
from orderdesk.runtime import ErrorsAndMetrics
from orderdesk.v1 import (
    common_pb2,
    intake_pb2,
    intake_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
    returns_pb2,
    returns_pb2_grpc,
    shipping_pb2,
    shipping_pb2_grpc,
)

PARTNERS_CSV = """partner_id,name,api_key,scopes
P-SHOP,Webshop,shop-key,orders returns
P-EDI,EDI hub,edi-key,orders returns
P-3PL,Warehouse operator,3pl-key,fulfillment
P-ADMIN,Order desk,admin-key,admin
"""


@pytest.fixture(autouse=True)
def key_settings(monkeypatch):
    """The pepper every store and gateway here hashes keys with, and the demo switch (the CSVs name keys)."""
    monkeypatch.setenv("ORDERDESK_KEY_PEPPER", "a-test-pepper-of-at-least-32-characters")
    monkeypatch.setenv("ORDERDESK_DEMO_KEYS", "true")


class FakeIntake(intake_pb2_grpc.IntakeServiceServicer):
    def __init__(self):
        self.keys: dict[tuple[str, str], tuple[bytes, intake_pb2.SubmitOrderResponse]] = {}
        self.requests: list[intake_pb2.SubmitOrderRequest] = []
        self.imports: list[common_pb2.ImportCsvRequest] = []
        self.streams = 0
        self.calls = 0  # SubmitOrders calls
        self.down: Exception | None = None
        self.approvals: list[intake_pb2.ApproveHeldOrderRequest] = []

    async def ApproveHeldOrder(self, request, context):
        self.approvals.append(request)
        raise errors.Conflict("order was changed concurrently; retry")

    async def SubmitOrder(self, request, context):
        self.requests.append(request)
        if request.customer_id.startswith("SLOW-"):  # "SLOW-300": intake takes 300 ms over this order
            await asyncio.sleep(int(request.customer_id.removeprefix("SLOW-")) / 1000)
        if not request.idempotency_key:
            raise errors.InvalidArgument("key", [errors.FieldViolation("idempotency_key", "required")])
        bad = [
            errors.FieldViolation(f"lines[{i}].quantity", "must be a positive whole number")
            for i, line in enumerate(request.lines)
            if line.quantity <= 0
        ]
        if bad:
            raise errors.InvalidArgument("the order has problems", bad)
        # The order as submitted (the key is part of it, fine for a fake); whose request it came from is no
        # part of the order, as in intake.
        order = intake_pb2.SubmitOrderRequest()
        order.CopyFrom(request)
        order.ClearField("correlation_id")
        body = order.SerializeToString()
        seen = self.keys.get((request.partner_id, request.idempotency_key))
        if seen:
            if seen[0] != body:
                raise errors.InvalidArgument(
                    "reused",
                    [
                        errors.FieldViolation(
                            "Idempotency-Key",
                            "already used with another request body",
                            "idempotency_key_reused",
                        )
                    ],
                )
            return intake_pb2.SubmitOrderResponse(
                order_id=seen[1].order_id, status=seen[1].status, replayed=True
            )
        answer = intake_pb2.SubmitOrderResponse(order_id=f"ORD-{len(self.keys) + 1}", status="confirmed")
        self.keys[(request.partner_id, request.idempotency_key)] = (body, answer)
        return answer

    async def SubmitOrderStream(self, request_iterator, context):
        """Each order as SubmitOrder answers it; a refusal is that order's result (like the real intake)."""
        self.streams += 1
        index = 0
        async for request in request_iterator:
            try:
                accepted = await self.SubmitOrder(request, context)
                yield intake_pb2.SubmitOrderResult(index=index, accepted=accepted)
            except errors.InvalidArgument as exc:
                yield intake_pb2.SubmitOrderResult(
                    index=index,
                    error_code=exc.code,
                    error_message=exc.message,
                    error_reason=exc.reason,
                    errors=[
                        common_pb2.Reason(code=v.reason, message=v.description, field=v.field)
                        for v in exc.violations
                    ],
                )
            index += 1

    async def SubmitOrders(self, request, context):
        """A batch as the stream answers it (like the real intake); `down`: the call fails as a whole."""
        self.calls += 1
        if self.down is not None:
            raise self.down

        async def each():
            for order in request.orders:
                yield order

        return intake_pb2.SubmitOrdersResponse(
            results=[r async for r in self.SubmitOrderStream(each(), context)]
        )

    async def ImportMasterData(self, request, context):
        self.imports.append(request)
        return common_pb2.ImportCsvResponse(rows=request.csv.count("\n") - 1)


def make_order(order_id: str, partner_id: str, status: str = "confirmed") -> orders_pb2.Order:
    order = orders_pb2.Order(
        order_id=order_id,
        partner_id=partner_id,
        status=status,
        version=2,
        customer_id="C1",
        currency="USD",
        total_amount="20.00",
        channel="api",
        lines=[orders_pb2.OrderLine(sku="SKU-1", quantity=2, unit_price="10.00")],
    )
    change = order.history.add(status="received", actor=partner_id, reason="submitted")
    change.at.FromSeconds(1_700_000_000)
    return order


class FakeOrders(orders_pb2_grpc.OrdersServiceServicer):
    def __init__(self):
        self.orders = {
            "ORD-SHOP": make_order("ORD-SHOP", "P-SHOP"),
            "ORD-EDI": make_order("ORD-EDI", "P-EDI", "on_hold"),
            "ORD-SHIPPED": make_order("ORD-SHIPPED", "P-SHOP", "shipped"),
        }
        self.decisions: list[tuple[str, orders_pb2.OrderDecisionRequest]] = []
        self.list_requests: list[orders_pb2.ListOrdersRequest] = []

    def _find(self, order_id: str, partner_id: str) -> orders_pb2.Order:
        order = self.orders.get(order_id)
        if order is None or (partner_id and order.partner_id != partner_id):
            raise errors.NotFound(f"order {order_id} not found")
        return order

    async def GetOrder(self, request, context):
        return self._find(request.order_id, request.partner_id)

    async def ListOrders(self, request, context):
        self.list_requests.append(request)
        if request.status and request.status not in ("confirmed", "on_hold", "shipped"):
            raise errors.InvalidArgument(
                "bad status", [errors.FieldViolation("status", "not an order status")]
            )
        items = [
            o for o in self.orders.values() if not request.partner_id or o.partner_id == request.partner_id
        ]
        return orders_pb2.ListOrdersResponse(items=items, next_cursor="")

    async def CancelOrder(self, request, context):
        order = self._find(request.order_id, request.partner_id)
        self.decisions.append(("cancel", request))
        if order.status == "shipped":
            raise errors.FailedPrecondition("the order has shipped goods", rule="cancel_before_shipment")
        return order

    async def ApproveOrder(self, request, context):
        self._find(request.order_id, request.partner_id)
        self.decisions.append(("approve", request))
        raise errors.Conflict("order was changed concurrently; retry")

    async def RejectOrder(self, request, context):
        order = self._find(request.order_id, request.partner_id)
        self.decisions.append(("reject", request))
        return order


class FakeInventory(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self):
        self.imports: list[str] = []

    async def GetStock(self, request, context):
        if request.sku == "SLOW":
            await asyncio.sleep(5)  # beyond the gateway's deadline
        if request.sku == "BOOM":
            raise RuntimeError("database exploded at 10.0.0.7:5432")
        if request.sku == "DOWN":
            raise errors.Unavailable("inventory is restarting")
        return inventory_pb2.StockLevel(
            sku=request.sku,
            warehouses=[inventory_pb2.WarehouseStock(warehouse="WH-1", on_hand=5, reserved=2, available=3)],
        )

    async def ImportMasterData(self, request, context):
        self.imports.append(request.kind)
        return common_pb2.ImportCsvResponse(rows=request.csv.count("\n") - 1)


class FakeShipping(shipping_pb2_grpc.ShippingServiceServicer):
    def __init__(self):
        self.list_requests: list[shipping_pb2.ListShipmentsRequest] = []
        self.events: list[shipping_pb2.ShipmentEventRequest] = []
        self.imports: list[str] = []

    async def ListShipments(self, request, context):
        self.list_requests.append(request)
        mine = not request.partner_id or request.partner_id == "P-SHOP"
        items = (
            [
                shipping_pb2.Shipment(
                    shipment_id="SHP-1",
                    order_id=request.order_id,
                    warehouse="WH-1",
                    status="pending",
                    partner_id="P-SHOP",
                )
            ]
            if mine
            else []
        )
        return shipping_pb2.ListShipmentsResponse(items=items)

    async def RecordShipmentEvent(self, request, context):
        self.events.append(request)
        if request.type == "shipped" and not request.carrier:
            raise errors.InvalidArgument(
                "a shipped event needs the carrier",
                [errors.FieldViolation("carrier", "required when the shipment is shipped", "required")],
            )
        return shipping_pb2.Shipment(
            shipment_id=request.shipment_id,
            order_id="ORD-SHOP",
            warehouse="WH-1",
            status=request.type,
            carrier=request.carrier,
            tracking_number=request.tracking_number,
        )

    async def ImportMasterData(self, request, context):
        self.imports.append(request.kind)
        return common_pb2.ImportCsvResponse(rows=request.csv.count("\n") - 1)


class FakeReturns(returns_pb2_grpc.ReturnsServiceServicer):
    def __init__(self):
        self.requests: list = []
        self.imports: list[str] = []

    async def ImportMasterData(self, request, context):  # products and customers, for the return policy
        self.imports.append(request.kind)
        return common_pb2.ImportCsvResponse(rows=request.csv.count("\n") - 1)

    async def CreateReturn(self, request, context):
        self.requests.append(request)
        if any(line.quantity > 2 for line in request.lines):
            raise errors.InvalidArgument(
                "more is to be returned than was delivered",
                [
                    errors.FieldViolation(f"lines[{i}].quantity", "more than delivered", "exceeds_delivered")
                    for i, line in enumerate(request.lines)
                    if line.quantity > 2
                ],
            )
        return returns_pb2.Return(
            rma_id="RMA-1",
            order_id=request.order_id,
            status="authorized",
            resolution=request.resolution,
            refund_amount="0",
        )

    async def GetReturn(self, request, context):
        self.requests.append(request)
        if request.partner_id not in ("", "P-SHOP"):
            raise errors.NotFound(f"return {request.rma_id} not found")
        return returns_pb2.Return(
            rma_id=request.rma_id, order_id="ORD-SHOP", status="refunded", refund_amount="37.50"
        )

    async def ReceiveReturn(self, request, context):
        self.requests.append(request)
        return returns_pb2.Return(rma_id=request.rma_id, order_id="ORD-SHOP", status="received")

    async def InspectReturn(self, request, context):
        self.requests.append(request)
        return returns_pb2.Return(
            rma_id=request.rma_id, order_id="ORD-SHOP", status="refunded", refund_amount="37.50"
        )


@dataclasses.dataclass
class Fakes:
    intake: FakeIntake
    orders: FakeOrders
    inventory: FakeInventory
    shipping: FakeShipping
    returns: FakeReturns
    health: health_async.HealthServicer
    server: grpc.aio.Server
    address: str


@pytest.fixture
async def fakes():
    server = grpc.aio.server(interceptors=[ErrorsAndMetrics("fake")])
    found = Fakes(
        FakeIntake(),
        FakeOrders(),
        FakeInventory(),
        FakeShipping(),
        FakeReturns(),
        health_async.HealthServicer(),
        server,
        "",
    )
    intake_pb2_grpc.add_IntakeServiceServicer_to_server(found.intake, server)
    orders_pb2_grpc.add_OrdersServiceServicer_to_server(found.orders, server)
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(found.inventory, server)
    shipping_pb2_grpc.add_ShippingServiceServicer_to_server(found.shipping, server)
    returns_pb2_grpc.add_ReturnsServiceServicer_to_server(found.returns, server)
    health_pb2_grpc.add_HealthServicer_to_server(found.health, server)
    await found.health.set("", health_pb2.HealthCheckResponse.SERVING)
    port = tls.add_port(server, "127.0.0.1:0", tls.TlsSettings())
    await server.start()
    found.address = f"127.0.0.1:{port}"
    yield found
    await server.stop(0)


@dataclasses.dataclass
class RunningGateway:
    url: str
    settings: Settings
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, key: str | None = None, *, json=None, data=None, headers=None
    ):
        h = dict(headers or {})
        if key:
            h["Authorization"] = f"Bearer {key}"
        async with self.session.request(method, self.url + path, json=json, data=data, headers=h) as resp:
            text = await resp.text()
            body = jsonlib.loads(text) if text and resp.content_type.endswith("json") else text
            return resp.status, body, resp.headers


@pytest.fixture
async def start_gateway(fakes, tmp_path: Path):
    """Starts gateways on the fakes (one database, the partners CSV imported): `await start_gateway(edge=...)`
    with the edge's limits; stopped at the end of the test."""
    settings = Settings(
        component="gateway",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        nats_url="",
        grpc_addr="",
        metrics_port=0,
        rpc_timeout=1.0,
        peers={name: fakes.address for name in SERVICES},
    )
    store = await PartnerStore.open(settings.database_url)
    await store.import_partners(parse("partners", PARTNERS_CSV))
    await store.close()
    running: list[tuple[uvicorn.Server, asyncio.Task]] = []
    session = client_session(total=20)

    async def start(
        edge: GatewayEdgeSettings | None = None, key_cache: KeyCache | None = None
    ) -> RunningGateway:
        port = localservers.free_port()
        config = uvicorn.Config(
            create_app(settings, key_cache=key_cache or KeyCache(ttl=60), edge=edge or GatewayEdgeSettings()),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            http="httptools",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        running.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        return RunningGateway(f"http://127.0.0.1:{port}", settings, session)

    yield start
    await session.close()
    for server, _ in running:
        server.should_exit = True
    for _, task in running:
        await task


@pytest.fixture
async def gateway(start_gateway):
    return await start_gateway()
