"""The fast path of POST /v1/orders and GET /v1/orders/{order_id} (gateway.fastpath) answers every request
exactly as the routes' FastAPI handlers do: the same app built without it is the reference, request by
request, good and bad (status, headers, body byte for byte)."""

from __future__ import annotations

import json

import pytest
from fastapi.routing import APIRoute

from gateway import fastpath
from gateway.app import create_app
from gateway.auth import Authenticator, KeyCache, Principal, hash_key
from orderdesk import errors
from orderdesk.config import GatewayEdgeSettings, Settings
from orderdesk.v1 import intake_pb2, orders_pb2

PEPPER = b"p" * 32
KEYS = {
    "shop": Principal("P-SHOP", "shop", frozenset({"orders", "returns"})),
    "ret": Principal("P-R", "ret", frozenset({"returns"})),
    "ful": Principal("P-F", "ful", frozenset({"fulfillment"})),
    "adm": Principal("P-A", "adm", frozenset({"admin"})),
}


async def lookup(key_hash: str, _legacy: str) -> Principal | None:
    return next((p for k, p in KEYS.items() if hash_key(k, PEPPER) == key_hash), None)


class Services:
    """Just enough of gateway.backends.Backends: the calls as the services answer them."""

    def __init__(self):
        self.intake, self.orders = self, self
        self.submitted: list[intake_pb2.SubmitOrderRequest] = []

    async def call(self, method, request, *, field_aliases=None, timeout=None):
        from gateway import problems

        try:
            return await method(request)
        except errors.DomainError as exc:
            raise problems.from_domain_error(exc) from None

    async def submit_order(self, request, *, field_aliases=None):
        return await self.call(self.SubmitOrder, request, field_aliases=field_aliases)

    async def SubmitOrder(self, request):
        self.submitted.append(request)
        if request.customer_id == "BAD":
            raise errors.InvalidArgument(
                "reused", [errors.FieldViolation("idempotency_key", "reused", "idempotency_key_reused")]
            )
        if request.customer_id == "HOLD":
            answer = intake_pb2.SubmitOrderResponse(order_id="ORD-2", status="on_hold", replayed=True)
            answer.hold_reasons.add(code="credit_limit", message="over the limit")
            answer.proposals.add(kind="earliest_date", delivery_date="2026-12-24")
            return answer
        return intake_pb2.SubmitOrderResponse(
            order_id="ORD-1", status="confirmed", priority=5, replayed=request.idempotency_key == "again"
        )

    async def GetOrder(self, request):
        if request.order_id == "NOPE" or request.partner_id not in ("", "P-SHOP"):
            raise errors.NotFound(f"order {request.order_id} not found")
        order = orders_pb2.Order(
            order_id=request.order_id,
            partner_id="P-SHOP",
            status="confirmed",
            version=3,
            customer_id="C1",
            currency="EUR",
            total_amount="20.00",
            channel="api",
            lines=[orders_pb2.OrderLine(sku="SKU-1", quantity=2, unit_price="10.00")],
        )
        order.history.add(status="received", actor="x", reason="submitted").at.FromSeconds(1_700_000_000)
        return order


def build():
    app = create_app(
        Settings.from_env("gateway"), edge=GatewayEdgeSettings(rate_limits="submit=0/1,read=0/1")
    )
    app.state.authenticator = Authenticator(lookup, PEPPER, KeyCache(ttl=3600))
    app.state.services = Services()
    return app


async def answer_without_fast_path(monkeypatch, **case):
    """The answer of the same app without the fast path: FastAPI builds a route's handler at the app's first
    request, so the reference answers while FastPathRoute is plain APIRoute."""
    with monkeypatch.context() as patched:
        patched.setattr(fastpath.FastPathRoute, "get_route_handler", APIRoute.get_route_handler)
        reference = build()
        return reference, await answer(reference, **case)


def order(**fields) -> bytes:
    return json.dumps(
        {"customer_id": "C1", "lines": [{"sku": "A", "quantity": 2, "unit_price": "1"}], **fields}
    ).encode()


CASES = {
    "plain": {},
    "every field": dict(
        body=order(
            external_ref="PO-7",
            ship_to={"name": "Ann", "country": "DE"},
            urgent=True,
            requested_delivery_date="2026-12-24",
            payment_terms="net30",
        )
    ),
    "replayed": dict(key="again"),
    "held, with a proposal": dict(body=order(customer_id="HOLD")),
    "refused by intake": dict(body=order(customer_id="BAD")),
    "no key": dict(key=None),
    "empty key": dict(key=""),
    "control character": dict(body=order(customer_id="x\x01y")),
    "lone surrogate": dict(body=order(customer_id="\ud800")),
    "unicode": dict(body=order(customer_id="a\u00e9\U0001d538")),
    "quantity as text": dict(body=order(lines=[{"sku": "A", "quantity": "2", "unit_price": "1"}])),
    "quantity beyond int64": dict(body=order(lines=[{"sku": "A", "quantity": 2**70, "unit_price": "1"}])),
    "unknown field": dict(body=order(extra=1)),
    "unknown nested field": dict(body=order(ship_to={"name": "A", "bogus": 1})),
    "too long": dict(body=order(customer_id="C" * 201)),
    "not strict bool": dict(body=order(urgent="yes")),
    "no lines": dict(body=order(lines=[])),
    "not JSON": dict(body=b"{not json"),
    "empty body": dict(body=b""),
    "an array": dict(body=b"[]"),
    "null": dict(body=b"null"),
    "no media type": dict(media_type=None),
    "text/plain": dict(media_type="text/plain"),
    "charset": dict(media_type="application/json; charset=utf-8"),
    "upper case media type": dict(media_type="Application/JSON"),
    "+json": dict(media_type="application/merge+json"),
    "returns key": dict(auth="ret"),
    "fulfillment key": dict(auth="ful"),
    "admin key": dict(auth="adm"),
    "unknown key": dict(auth="nobody"),
    "no Authorization": dict(auth=None),
    "get": dict(method="GET", path="/v1/orders/ORD-1"),
    "get, not found": dict(method="GET", path="/v1/orders/NOPE"),
    "get, longest id": dict(method="GET", path="/v1/orders/" + "X" * 64),
    "get, id too long": dict(method="GET", path="/v1/orders/" + "X" * 65),
    "get, returns key": dict(method="GET", path="/v1/orders/ORD-1", auth="ret"),
    "get, fulfillment key": dict(method="GET", path="/v1/orders/ORD-1", auth="ful"),
    "get, admin key": dict(method="GET", path="/v1/orders/ORD-1", auth="adm"),
    "get, no Authorization": dict(method="GET", path="/v1/orders/ORD-1", auth=None),
    "head": dict(method="HEAD", path="/v1/orders/ORD-1"),
}


async def answer(
    app, method="POST", path="/v1/orders", body=None, key="k-1", media_type="application/json", auth="shop"
):
    body = order() if body is None and method == "POST" else body or b""
    headers = [
        (b"host", b"test"),
        (b"content-length", str(len(body)).encode()),
        (b"x-correlation-id", b"c-1"),
    ]
    if auth:
        headers.append((b"authorization", b"Bearer " + auth.encode()))
    if media_type:
        headers.append((b"content-type", media_type.encode()))
    if key is not None:
        headers.append((b"idempotency-key", key.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "server": ("test", 80),
        "client": ("client", 1),
        "root_path": "",
        "app": app,
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[0]["headers"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_the_fast_path_answers_as_fastapi_does(monkeypatch, case):
    fast = build()
    got = await answer(fast, **case)
    reference, expected = await answer_without_fast_path(monkeypatch, **case)
    assert got == expected
    assert fast.state.services.submitted == reference.state.services.submitted


async def refuse_slow_path(**kwargs):
    raise AssertionError("FastAPI's handler solved the route's dependencies")  # the middleware's 500


@pytest.mark.parametrize("case", ["plain", "every field", "held, with a proposal", "charset", "get"])
async def test_a_well_formed_request_takes_the_fast_path(monkeypatch, case):
    app = build()
    monkeypatch.setattr("fastapi.routing.solve_dependencies", refuse_slow_path)
    status, _headers, _body = await answer(app, **CASES[case])
    assert status in (200, 201)


@pytest.mark.parametrize("case", ["plain", "get"])
async def test_the_reference_is_fastapis_handler(monkeypatch, case):
    monkeypatch.setattr("fastapi.routing.solve_dependencies", refuse_slow_path)
    _reference, (status, _headers, _body) = await answer_without_fast_path(monkeypatch, **CASES[case])
    assert status == 500


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_after_the_first_order_the_middleware_answers_as_fastapi_does(monkeypatch, case):
    """Once the router has sent one POST /v1/orders to its route, the middleware sends the next straight to
    the fast path (gateway.fastpath.DirectRoutes): every answer, good or bad, is still FastAPI's."""
    fast = build()
    await answer(fast)  # the router's first: the middleware learns the route
    got = await answer(fast, **case)
    reference, expected = await answer_without_fast_path(monkeypatch, **case)
    assert got == expected
    assert fast.state.services.submitted[1:] == reference.state.services.submitted


async def test_the_next_orders_skip_the_router(monkeypatch):
    app = build()
    await answer(app)

    async def no_router(*args):
        raise AssertionError("routed")  # the middleware's 500

    with monkeypatch.context() as patched:
        patched.setattr("fastapi.routing.solve_dependencies", refuse_slow_path)
        patched.setattr(app.router, "app", no_router)
        status, _headers, _body = await answer(app)
        assert status == 201
    status, _headers, _body = await answer(app, **CASES["no key"])  # the route's handler: 422 as ever
    assert status == 422
