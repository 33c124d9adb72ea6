"""HTTP <-> gRPC at the gateway: auth, scoping, problem+json mapping, limits, metrics (fake services)."""

from __future__ import annotations

import json
import uuid

import pytest
from grpc_health.v1 import health_pb2

SHOP, EDI, TPL, ADMIN = "shop-key", "edi-key", "3pl-key", "admin-key"
ORDER = {
    "external_ref": "PO-1",
    "customer_id": "C1",
    "payment_terms": "NET30",
    "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
}


def is_problem(headers) -> bool:
    return headers["Content-Type"].startswith("application/problem+json")


def fields(problem: dict) -> list[str]:
    return [e["field"] for e in problem.get("errors", [])]


async def submit(gateway, body=ORDER, key=SHOP, idempotency_key: str | None = "k1"):
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    return await gateway.call("POST", "/v1/orders", key, json=body, headers=headers)


# --- authentication and scopes ---------------------------------------------------------------
async def test_missing_and_unknown_keys_are_401_problems(gateway):
    for key in (None, "no-such-key"):
        code, problem, headers = await gateway.call("GET", "/v1/orders/ORD-SHOP", key)
        assert code == 401 and is_problem(headers), problem
        assert headers["WWW-Authenticate"] == "Bearer"
        assert problem["status"] == 401 and problem["type"].endswith("/unauthenticated")
    code, _, _ = await gateway.call("GET", "/v1/orders/ORD-SHOP", headers={"Authorization": "Basic c2hvcDp4"})
    assert code == 401


async def test_a_key_without_the_scope_is_403(gateway):
    code, problem, headers = await gateway.call(
        "POST", "/v1/orders/ORD-EDI/approve", SHOP, json={"note": "x"}
    )
    assert code == 403 and is_problem(headers), problem
    assert (await gateway.call("GET", "/v1/inventory/SKU-1", TPL))[0] == 403
    assert (await gateway.call("POST", "/v1/shipments/SHP-1/events", SHOP, json={"type": "picked"}))[0] == 403
    assert (await submit(gateway, key=TPL))[0] == 403


async def test_open_endpoints_need_no_key(gateway):
    code, body, _ = await gateway.call("GET", "/healthz")
    assert code == 200 and body["status"] == "ok", body
    assert set(body["services"]) == {
        "intake",
        "orders",
        "inventory",
        "shipping",
        "returns",
        "notifier",
        "store",
    }
    assert (await gateway.call("GET", "/openapi.json"))[0] == 200
    # /metrics is served on the gateway's own metrics port (gateway/__main__.py), never on the partners'
    assert (await gateway.call("GET", "/metrics"))[0] == 404


async def test_healthz_is_503_when_a_backend_is_not_serving(gateway, fakes):
    await fakes.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    code, body, _ = await gateway.call("GET", "/healthz")
    assert code == 503 and body["status"] == "degraded"
    assert body["services"]["orders"] == "NOT_SERVING" and body["services"]["store"] == "SERVING"


# --- scoping -----------------------------------------------------------------------------
async def test_a_sales_partner_reaches_only_its_own_orders(gateway, fakes):
    assert (await gateway.call("GET", "/v1/orders/ORD-SHOP", SHOP))[0] == 200
    code, problem, headers = await gateway.call("GET", "/v1/orders/ORD-SHOP", EDI)
    assert code == 404 and is_problem(headers), problem
    assert (await gateway.call("POST", "/v1/orders/ORD-SHOP/cancel", EDI, json={"reason": "x"}))[0] == 404
    _, page, _ = await gateway.call("GET", "/v1/orders", EDI)
    assert [o["order_id"] for o in page["items"]] == ["ORD-EDI"] and page["next_cursor"] is None
    assert fakes.orders.list_requests[-1].partner_id == "P-EDI"


async def test_admin_reaches_every_order_and_fulfillment_every_shipment(gateway, fakes):
    assert (await gateway.call("GET", "/v1/orders/ORD-SHOP", ADMIN))[0] == 200
    _, page, _ = await gateway.call("GET", "/v1/orders?limit=10", ADMIN)
    assert len(page["items"]) == 3 and fakes.orders.list_requests[-1].partner_id == ""
    _, shipments, _ = await gateway.call("GET", "/v1/shipments?order_id=ORD-SHOP", TPL)
    assert [s["shipment_id"] for s in shipments["items"]] == ["SHP-1"]
    assert fakes.shipping.list_requests[-1].partner_id == ""
    _, shipments, _ = await gateway.call("GET", "/v1/shipments?order_id=ORD-SHOP", EDI)
    assert shipments["items"] == [] and fakes.shipping.list_requests[-1].partner_id == "P-EDI"
    assert (await gateway.call("GET", "/v1/returns/RMA-1", EDI))[0] == 404
    assert (await gateway.call("GET", "/v1/returns/RMA-1", TPL))[0] == 200


async def test_the_order_document_has_the_documented_shape(gateway):
    code, order, _ = await gateway.call("GET", "/v1/orders/ORD-SHOP", SHOP)
    assert code == 200
    assert order["status"] == "confirmed" and order["version"] == 2
    assert order["lines"][0] == {
        "sku": "SKU-1",
        "quantity": 2,
        "unit_price": "10.00",
        "allocated_quantity": 0,
        "shipped_quantity": 0,
        "delivered_quantity": 0,
        "returned_quantity": 0,
    }
    assert order["history"] == [
        {"status": "received", "at": "2023-11-14T22:13:20Z", "actor": "P-SHOP", "reason": "submitted"}
    ]
    for key in (
        "shipments",
        "hold_reasons",
        "customer_id",
        "external_ref",
        "total_amount",
        "currency",
        "priority",
    ):
        assert key in order


# --- submitting orders -----------------------------------------------------------------------
async def test_submit_needs_an_idempotency_key(gateway, fakes):
    code, problem, headers = await submit(gateway, idempotency_key=None)
    assert code == 422 and is_problem(headers)
    assert fields(problem) == ["Idempotency-Key"]
    code, problem, _ = await submit(gateway, idempotency_key="")
    assert code == 422 and fields(problem) == ["Idempotency-Key"]
    assert fakes.intake.requests == []  # refused at the edge


async def test_submit_then_replay_then_reuse_with_another_body(gateway, fakes):
    key = uuid.uuid4().hex
    code, first, headers = await submit(gateway, idempotency_key=key)
    assert code == 201 and first["replayed"] is False and "Idempotent-Replayed" not in headers
    code, again, headers = await submit(gateway, idempotency_key=key)
    assert code == 201 and again["order_id"] == first["order_id"] and again["replayed"] is True
    assert headers["Idempotent-Replayed"] == "true"
    code, problem, headers = await submit(gateway, dict(ORDER, external_ref="PO-2"), idempotency_key=key)
    assert code == 422 and is_problem(headers) and fields(problem) == ["Idempotency-Key"]
    request = fakes.intake.requests[0]
    assert (request.partner_id, request.channel, request.idempotency_key) == ("P-SHOP", "api", key)
    assert request.actor == "key:csv-import@P-SHOP"  # who submitted: the named key, not the bare partner id


async def test_service_field_violations_become_body_paths(gateway):
    body = dict(
        ORDER,
        lines=[
            {"sku": "SKU-1", "quantity": 1, "unit_price": "1"},
            {"sku": "SKU-2", "quantity": 0, "unit_price": "1"},
        ],
    )
    code, problem, headers = await submit(gateway, body)
    assert code == 422 and is_problem(headers)
    assert fields(problem) == ["lines[1].quantity"]
    assert problem["errors"][0]["message"] == "must be a positive whole number"
    assert problem["detail"] == "the order has problems"


@pytest.mark.parametrize(
    "mutate, path",
    [
        (lambda b: b["lines"][0].update(quantity="two"), "lines[0].quantity"),
        (
            lambda b: b["lines"][0].update(unit_price=10.5),
            "lines[0].unit_price",
        ),  # money is a string, never a float
        (lambda b: b.pop("customer_id"), "customer_id"),
        (lambda b: b.update(colour="red"), "colour"),
        (lambda b: b.update(ship_to={"name": 7}), "ship_to.name"),
    ],
)
async def test_request_validation_errors_are_problems_with_field_paths(gateway, fakes, mutate, path):
    body = json.loads(json.dumps(ORDER))
    mutate(body)
    code, problem, headers = await submit(gateway, body)
    assert code == 422 and is_problem(headers), problem
    assert path in fields(problem), problem
    assert fakes.intake.requests == []


async def test_malformed_json_is_a_422_problem(gateway):
    code, problem, headers = await gateway.call(
        "POST",
        "/v1/orders",
        SHOP,
        data=b"{not json",
        headers={"Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert code == 422 and is_problem(headers), problem


# --- gRPC status -> HTTP status --------------------------------------------------------------
async def test_failed_precondition_is_409_with_the_rule(gateway):
    code, problem, headers = await gateway.call(
        "POST", "/v1/orders/ORD-SHIPPED/cancel", SHOP, json={"reason": "x"}
    )
    assert code == 409 and is_problem(headers)
    assert problem["rule"] == "cancel_before_shipment"
    assert problem["detail"] == "the order has shipped goods"


async def test_aborted_is_409_and_decisions_carry_the_actor(gateway, fakes):
    code, problem, _ = await gateway.call(
        "POST", "/v1/orders/ORD-EDI/approve", ADMIN, json={"note": "checked"}
    )
    assert code == 409 and problem["type"].endswith("/concurrent-change") and "rule" not in problem
    request = fakes.intake.approvals[-1]  # approval goes through intake, which re-checks stock and credit
    assert (
        request.order_id == "ORD-EDI"
        and request.actor.id == "key:csv-import@P-ADMIN"
        and request.actor.reason == "checked"
    )
    assert request.accept_proposal == "" and list(request.acknowledge) == []
    code, order, _ = await gateway.call("POST", "/v1/orders/ORD-EDI/reject", ADMIN)  # no body at all
    assert code == 200 and order["order_id"] == "ORD-EDI"


async def test_deadline_and_unavailable_are_503_and_internal_errors_leak_nothing(gateway):
    code, problem, headers = await gateway.call("GET", "/v1/inventory/SLOW", ADMIN)
    assert code == 503 and is_problem(headers) and headers["Retry-After"] == "1"
    code, problem, _ = await gateway.call("GET", "/v1/inventory/DOWN", ADMIN)
    assert code == 503 and problem["detail"] == "inventory is restarting"
    code, problem, headers = await gateway.call("GET", "/v1/inventory/BOOM", ADMIN)
    assert code == 500 and is_problem(headers)
    assert "10.0.0.7" not in json.dumps(problem) and "exploded" not in json.dumps(problem)


async def test_a_backend_that_is_down_is_503_without_its_address(gateway, fakes):
    await fakes.server.stop(0)
    code, problem, headers = await gateway.call("GET", "/v1/orders/ORD-SHOP", SHOP)
    assert code == 503 and is_problem(headers), problem
    assert fakes.address not in json.dumps(problem) and "127.0.0.1" not in json.dumps(problem)
    code, health, _ = await gateway.call("GET", "/healthz")
    assert code == 503 and health["services"]["orders"] == "UNREACHABLE"


async def test_an_unknown_path_is_a_404_problem(gateway):
    code, problem, headers = await gateway.call("GET", "/v2/nothing", SHOP)
    assert code == 404 and is_problem(headers), problem


# --- shipments, returns, inventory, imports ----------------------------------------------------
async def test_shipment_events_pass_type_carrier_and_actor(gateway, fakes):
    code, shipment, _ = await gateway.call(
        "POST",
        "/v1/shipments/SHP-1/events",
        TPL,
        json={
            "type": "shipped",
            "carrier": "DHL",
            "tracking_number": "T1",
            "occurred_at": "2026-01-02T03:04:05+01:00",
        },
    )
    assert code == 200 and shipment["status"] == "shipped" and shipment["on_time"] is None
    sent = fakes.shipping.events[-1]
    assert (sent.type, sent.carrier, sent.actor) == ("shipped", "DHL", "key:csv-import@P-3PL")
    assert sent.occurred_at.ToSeconds() == 1767319445
    code, problem, _ = await gateway.call("POST", "/v1/shipments/SHP-1/events", TPL, json={"type": "shipped"})
    assert code == 422 and fields(problem) == ["carrier"]
    code, problem, _ = await gateway.call(
        "POST", "/v1/shipments/SHP-1/events", TPL, json={"type": "teleported"}
    )
    assert code == 422 and fields(problem) == ["type"]


async def test_returns_map_quantities_and_scope(gateway, fakes):
    body = {"lines": [{"sku": "SKU-1", "quantity": 5, "reason": "damaged"}], "resolution": "refund"}
    code, problem, _ = await gateway.call("POST", "/v1/orders/ORD-SHOP/returns", SHOP, json=body)
    assert code == 422 and fields(problem) == ["lines[0].quantity"]
    body["lines"][0]["quantity"] = 1
    code, rma, _ = await gateway.call(
        "POST", "/v1/orders/ORD-SHOP/returns", SHOP, json=body, headers={"Idempotency-Key": "r-1"}
    )
    assert code == 201 and rma["status"] == "authorized"
    sent = fakes.returns.requests[-1]
    assert (sent.partner_id, sent.idempotency_key, sent.resolution) == ("P-SHOP", "r-1", "refund")
    assert sent.actor == "key:csv-import@P-SHOP"  # the named key, not the bare partner id
    code, received, _ = await gateway.call("POST", "/v1/returns/RMA-1/receive", TPL)
    assert code == 200 and received["status"] == "received"
    code, inspected, _ = await gateway.call(
        "POST",
        "/v1/returns/RMA-1/inspect",
        TPL,
        json={"lines": [{"sku": "SKU-1", "quantity": 1, "outcome": "restock"}]},
    )
    assert code == 200 and inspected["refund_amount"] == "37.50"
    assert (await gateway.call("POST", "/v1/returns/RMA-1/receive", SHOP))[0] == 403


async def test_inventory_document(gateway):
    code, level, _ = await gateway.call("GET", "/v1/inventory/SKU-1", ADMIN)
    assert code == 200
    assert level == {
        "sku": "SKU-1",
        "warehouses": [{"warehouse": "WH-1", "on_hand": 5, "reserved": 2, "available": 3}],
        "recent_receipts": [],  # the fake records none (a claim's stock corrections show here)
    }


async def test_imports_go_to_the_owning_services(gateway, fakes):
    csv = {"Content-Type": "text/csv"}
    code, answer, _ = await gateway.call(
        "POST", "/v1/admin/import/warehouses", ADMIN, data="h\nrow\n", headers=csv
    )
    assert code == 200 and answer == {"kind": "warehouses", "rows": 1}
    assert fakes.inventory.imports == ["warehouses"] and fakes.shipping.imports == ["warehouses"]
    await gateway.call("POST", "/v1/admin/import/products", ADMIN, data="h\na\nb\n", headers=csv)
    await gateway.call("POST", "/v1/admin/import/prices", ADMIN, data="h\na\n", headers=csv)
    assert [r.kind for r in fakes.intake.imports] == ["warehouses", "products", "prices"]
    code, problem, _ = await gateway.call("POST", "/v1/admin/import/planets", ADMIN, data="h\n", headers=csv)
    assert code == 422 and fields(problem) == ["kind"]
    code, problem, headers = await gateway.call(
        "POST",
        "/v1/admin/import/stock",
        ADMIN,
        data="h\n",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert code == 415 and is_problem(headers)


async def test_partners_import_replaces_the_key_at_once(gateway):
    new = "partner_id,name,api_key,scopes\nP-EDI,EDI hub,edi-key-2,orders returns\n"
    assert (await gateway.call("GET", "/v1/orders/ORD-EDI", EDI))[0] == 200  # cached now
    code, answer, _ = await gateway.call(
        "POST", "/v1/admin/import/partners", ADMIN, data=new, headers={"Content-Type": "text/csv"}
    )
    assert code == 200 and answer == {"kind": "partners", "rows": 1}
    assert (await gateway.call("GET", "/v1/orders/ORD-EDI", EDI))[0] == 401
    assert (await gateway.call("GET", "/v1/orders/ORD-EDI", "edi-key-2"))[0] == 200
    bad = "partner_id,name,api_key,scopes\nP-X,X,k,orders wizardry\n"
    code, problem, _ = await gateway.call(
        "POST", "/v1/admin/import/partners", ADMIN, data=bad, headers={"Content-Type": "text/csv"}
    )
    assert code == 422 and fields(problem) == ["row 2.scopes"]


# --- limits, correlation ids, metrics -----------------------------------------------------------
async def test_bodies_over_the_limit_are_413(gateway, fakes):
    big = dict(ORDER, external_ref="x" * (1024 * 1024 + 10))
    code, problem, headers = await submit(gateway, big)
    assert code == 413 and is_problem(headers), problem

    async def chunks():  # no Content-Length: the limit counts what arrives
        for _ in range(20):
            yield b"x" * 100_000

    code, problem, headers = await gateway.call(
        "POST",
        "/v1/orders",
        SHOP,
        data=chunks(),
        headers={"Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert code == 413 and is_problem(headers), problem
    assert fakes.intake.requests == []


async def test_correlation_id_is_echoed_and_sent_to_the_services(gateway):
    _, _, headers = await gateway.call(
        "GET", "/v1/orders/ORD-SHOP", SHOP, headers={"X-Correlation-Id": "abc-123"}
    )
    assert headers["X-Correlation-Id"] == "abc-123"
    _, problem, headers = await gateway.call("GET", "/v1/orders/NOPE", SHOP)
    assert len(headers["X-Correlation-Id"]) == 32 and problem["correlation_id"] == headers["X-Correlation-Id"]


async def test_metrics_are_labelled_by_route_template(gateway):
    await gateway.call("GET", "/v1/orders/ORD-SHOP", SHOP)
    await gateway.call("GET", "/v1/orders/ORD-SHOP", EDI)
    await gateway.call("GET", "/no/such/path", SHOP)
    from prometheus_client import REGISTRY, generate_latest

    text = generate_latest(REGISTRY).decode()  # what the metrics port serves, from this process
    assert 'orderdesk_http_requests_total{method="GET",route="/v1/orders/{order_id}",status="200"}' in text
    assert 'orderdesk_http_requests_total{method="GET",route="/v1/orders/{order_id}",status="404"}' in text
    assert 'route="unmatched"' in text
    assert "ORD-SHOP" not in text and "/no/such/path" not in text
    assert (
        'orderdesk_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/orders/{order_id}"}'
        in text
    )


async def test_a_status_link_needs_the_configured_secret(start_gateway, monkeypatch):
    monkeypatch.delenv("ORDERDESK_STATUS_LINK_SECRET", raising=False)
    unconfigured = await start_gateway()
    code, problem, headers = await unconfigured.call("POST", "/v1/orders/ORD-SHOP/status-link", SHOP)
    assert code == 503 and is_problem(headers) and "ORDERDESK_STATUS_LINK_SECRET" in problem["detail"]
    monkeypatch.setenv("ORDERDESK_STATUS_LINK_SECRET", "short")  # refused: fewer than 32 bytes
    code, _, _ = await (await start_gateway()).call("POST", "/v1/orders/ORD-SHOP/status-link", SHOP)
    assert code == 503
    monkeypatch.setenv("ORDERDESK_STATUS_LINK_SECRET", "k" * 40)
    monkeypatch.setenv("ORDERDESK_CONSOLE_URL", "https://desk.example.com/")
    configured = await start_gateway()
    code, link, _ = await configured.call("POST", "/v1/orders/ORD-SHOP/status-link", SHOP, json={})
    assert code == 200 and link["url"].startswith("https://desk.example.com/status/")
    code, _, _ = await configured.call("POST", "/v1/orders/ORD-SHOP/status-link", EDI)
    assert code == 404  # another partner's order
