"""Every process exports its Prometheus metrics, and they move with the business."""

from __future__ import annotations

import re
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def scrape(url: str) -> str:
    return urllib.request.urlopen(url, timeout=5).read().decode()


def value(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_each_process_serves_its_metrics(stack, shop, warehouse_operator, admin, eventually):
    # Drive one order to delivery so every counter has moved.
    import uuid

    sku = f"E2E-{uuid.uuid4().hex[:8].upper()}"
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    await admin.post(
        "/v1/admin/import/products",
        data=header + f"{sku},M,5.00,USD,false,1,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    await admin.post(
        "/v1/admin/import/stock",
        data=f"sku,warehouse,on_hand\n{sku},WH-CHI,5\n",
        headers={"Content-Type": "text/csv"},
    )
    code, created, _ = await shop.post(
        "/v1/orders",
        json={
            "external_ref": "M-1",
            "customer_id": "C0001",
            "payment_terms": "NET30",
            "lines": [{"sku": sku, "quantity": 1, "unit_price": "5.00"}],
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert code == 201, created
    order_id = created["order_id"]

    async def shipment():
        _, body, _ = await warehouse_operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"][0]["shipment_id"] if body["items"] else None

    sid = await eventually(shipment)
    for step in (
        {"type": "picked"},
        {"type": "packed"},
        {"type": "shipped", "carrier": "UPS", "tracking_number": "1Z"},
        {"type": "delivered"},
    ):
        assert (await warehouse_operator.post(f"/v1/shipments/{sid}/events", json=step))[0] == 200

    async def completed():
        _, body, _ = await shop.get(f"/v1/orders/{order_id}")
        return body["status"] == "completed"

    await eventually(completed)

    port = stack.metrics_ports
    intake = scrape(f"http://127.0.0.1:{port['intake']}/metrics")
    assert value(intake, "orderdesk_orders_received_total", channel="api", outcome="approved") >= 1
    orders = scrape(f"http://127.0.0.1:{port['orders']}/metrics")
    assert value(orders, "orderdesk_order_status_transitions_total", status="completed") >= 1
    assert value(orders, "orderdesk_orders_completed_total") >= 1
    shipping = scrape(f"http://127.0.0.1:{port['shipping']}/metrics")
    assert value(shipping, "orderdesk_shipments_delivered_total", on_time="true") >= 1
    for name in ("intake", "orders", "inventory", "shipping", "returns"):
        text = scrape(f"http://127.0.0.1:{port[name]}/metrics")
        assert re.search(r"^orderdesk_outbox_backlog_events\{", text, re.M), name
        assert "orderdesk_grpc_server_handling_seconds_bucket" in text or name == "returns", name
    gateway = scrape(f"http://127.0.0.1:{port['gateway']}/metrics")  # its own port, not the partners'
    assert value(gateway, "orderdesk_http_requests_total", route="/v1/orders", status="201") >= 1
    assert "orderdesk_http_request_duration_seconds_bucket" in gateway


async def test_gateway_metrics_are_not_on_the_partner_port(stack, shop):
    status, body, headers = await shop.get("/metrics")
    assert status == 404 and headers["content-type"].startswith("application/problem+json")
    status, body, _ = await shop.get("/livez")
    assert (status, body) == (200, {"status": "ok"})
