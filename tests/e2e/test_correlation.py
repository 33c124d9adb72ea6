"""A partner's correlation id travels with everything its request causes: the gateway's answer, the gRPC
metadata to intake and orders, the events (payload and NATS header) and the consumers that react to them
(their logs and the events they emit: shipping's consumer of order.cancelled emits shipment.cancelled under
the same id). Allocation runs in the background, so order.allocated starts a trace of its own."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from orderdesk import events
from orderdesk.v1 import events_pb2

pytestmark = pytest.mark.e2e


async def test_correlation_id_flows_from_the_gateway_through_events_and_consumers(shop, admin, nc):
    sku = f"CID-{uuid.uuid4().hex[:8].upper()}"
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=header + f"{sku},Part,10.00,USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    status, body, _ = await admin.post(
        "/v1/admin/import/stock",
        data=f"sku,warehouse,on_hand\n{sku},WH-CHI,5\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body

    cid = f"partner-trace-{uuid.uuid4().hex[:12]}"
    status, created, headers = await shop.post(
        "/v1/orders",
        json={
            "external_ref": f"PO-{uuid.uuid4().hex[:6]}",
            "customer_id": "C0001",
            "lines": [{"sku": sku, "quantity": 2, "unit_price": "10.00"}],
            "payment_terms": "NET30",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex, "X-Correlation-Id": cid},
    )
    assert status == 201, created
    assert headers["X-Correlation-Id"] == cid
    order_id = created["order_id"]

    js = nc.jetstream()
    sub = await js.subscribe(f"orderdesk.*.{order_id}.>", ordered_consumer=True, deliver_policy="all")
    seen: dict[str, tuple[str, str]] = {}

    async def read_until(event_type: str) -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while event_type not in seen:
            assert asyncio.get_running_loop().time() < deadline, f"no {event_type}; saw {sorted(seen)}"
            try:
                msg = await sub.next_msg(timeout=1.0)
            except Exception:
                continue
            event = events_pb2.Event.FromString(msg.data)
            seen[event.type] = (event.correlation_id, (msg.headers or {}).get(events.CORRELATION_HEADER, ""))

    try:
        # Caused by the request: gateway -> (gRPC metadata) intake -> orders -> outbox -> NATS.
        await read_until("shipment.created")  # shipping made the shipment once the order was allocated
        for event_type in ("order.received", "order.confirmed"):
            assert seen[event_type] == (cid, cid), event_type
        # A second request on the same order: the cancel reaches orders with its id, and shipping's consumer
        # of order.cancelled works under the id it read from the message, so its own event carries it on.
        cancel_cid = f"partner-cancel-{uuid.uuid4().hex[:12]}"
        status, body, headers = await shop.post(
            f"/v1/orders/{order_id}/cancel", json={"reason": "test"}, headers={"X-Correlation-Id": cancel_cid}
        )
        assert status == 200, body
        await read_until("shipment.cancelled")
    finally:
        await sub.unsubscribe()
    assert seen["order.cancelled"] == (cancel_cid, cancel_cid)
    assert seen["shipment.cancelled"] == (cancel_cid, cancel_cid)
