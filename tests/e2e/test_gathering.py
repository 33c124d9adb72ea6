"""Concurrent single orders (POST /v1/orders) reach intake together, as few SubmitOrders calls
(gateway.gathering), and each request still gets the answer its own SubmitOrder call gave: accepted, held with
its reasons and proposals, a replay, a key reused with another body, a bad field; its problem and its order's
events carry its own correlation id."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.request
import uuid

import pytest

from orderdesk import events
from orderdesk.v1 import events_pb2
from tests.e2e.test_lifecycle import add_product, new_sku, order_body

pytestmark = pytest.mark.e2e
ACCEPTED = 16  # plain orders in the burst, besides one of each other kind


def intake_calls(stack) -> dict[str, float]:
    """intake's gRPC calls handled so far, by method (every status code)."""
    text = urllib.request.urlopen(
        f"http://127.0.0.1:{stack.metrics_ports['intake']}/metrics", timeout=5
    ).read()
    calls: dict[str, float] = {}
    for line in text.decode().splitlines():
        if line.startswith("orderdesk_grpc_server_handled_total{") and 'service="intake"' in line:
            method = line.split('method="', 1)[1].split('"', 1)[0]
            calls[method] = calls.get(method, 0.0) + float(line.rsplit(" ", 1)[1])
    return calls


async def post(partner, body: dict, key: str, cid: str):
    return await partner.post(
        "/v1/orders", json=body, headers={"Idempotency-Key": key, "X-Correlation-Id": cid}
    )


async def received_correlation_ids(nc, order_ids: list[str]) -> dict[str, str]:
    """Each order's order.received event's correlation id (its payload's and its NATS header's, when equal)."""
    js = nc.jetstream()

    async def one(order_id: str) -> str:
        sub = await js.subscribe(f"orderdesk.*.{order_id}.>", ordered_consumer=True, deliver_policy="all")
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while asyncio.get_running_loop().time() < deadline:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except Exception:
                    continue
                event = events_pb2.Event.FromString(msg.data)
                if event.type == "order.received":
                    header = (msg.headers or {}).get(events.CORRELATION_HEADER, "")
                    return event.correlation_id if header == event.correlation_id else "(header differs)"
            return "(no order.received)"
        finally:
            await sub.unsubscribe()

    return dict(zip(order_ids, await asyncio.gather(*map(one, order_ids)), strict=True))


async def test_concurrent_single_orders_go_together_and_each_gets_its_own_answer(stack, shop, admin, nc):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 1000})
    slow = new_sku()  # no stock: made to order in 40 days, so an early date is infeasible
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=header + f"{slow},Slow part,10.00,USD,false,40,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    run = uuid.uuid4().hex[:8]
    seen_key, seen_body = f"seen-{run}", order_body(sku, 1)
    status, first, headers = await post(shop, seen_body, seen_key, f"first-{run}")
    assert status == 201 and "Idempotent-Replayed" not in headers, first

    soon = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    cases: dict[str, tuple[dict, str]] = {
        **{f"accepted-{n}": (order_body(sku, 1), f"k-{run}-{n}") for n in range(ACCEPTED)},
        "held for its price": (order_body(sku, 1, price="9.00"), f"price-{run}"),
        "held for its date": (order_body(slow, 1, requested_delivery_date=soon), f"date-{run}"),
        "replay": (seen_body, seen_key),
        "key reused": (order_body(sku, 2), seen_key),
        "bad field": (order_body(sku, 1, customer="C-NOPE"), f"bad-{run}"),
    }
    cids = {name: f"cid-{run}-{n}" for n, name in enumerate(cases)}
    before = intake_calls(stack)
    answers = dict(
        zip(
            cases,
            await asyncio.gather(*[post(shop, body, key, cids[name]) for name, (body, key) in cases.items()]),
            strict=True,
        )
    )
    after = intake_calls(stack)

    # Fewer calls than requests: the burst's orders travel in SubmitOrders calls, none as a SubmitOrder.
    calls = {m: after.get(m, 0.0) - before.get(m, 0.0) for m in ("SubmitOrder", "SubmitOrders")}
    assert calls["SubmitOrder"] == 0, calls
    assert 1 <= calls["SubmitOrders"] <= len(cases) / 2, calls

    for name, (_, _, headers) in answers.items():
        assert headers["X-Correlation-Id"] == cids[name], name
    accepted = [answers[f"accepted-{n}"] for n in range(ACCEPTED)]
    for status, body, headers in accepted:
        assert status == 201 and "Idempotent-Replayed" not in headers, body
        assert body["status"] == "confirmed" and body["replayed"] is False and body["hold_reasons"] == [], (
            body
        )
    assert len({body["order_id"] for _, body, _ in accepted}) == ACCEPTED

    status, price, _ = answers["held for its price"]
    assert status == 201 and price["status"] == "on_hold", price
    assert [(r["code"], r["field"]) for r in price["hold_reasons"]] == [
        ("price_mismatch", "lines[0].unit_price")
    ]
    status, late, _ = answers["held for its date"]
    assert status == 201 and late["status"] == "on_hold", late
    assert "delivery_date_infeasible" in [r["code"] for r in late["hold_reasons"]], late
    assert {p["kind"] for p in late["proposals"]} == {"earliest_date"}, late

    status, replay, headers = answers["replay"]
    assert status == 201 and headers["Idempotent-Replayed"] == "true", replay
    assert replay["order_id"] == first["order_id"] and replay["replayed"] is True

    status, reused, headers = answers["key reused"]
    assert status == 422 and headers["Content-Type"].startswith("application/problem+json"), reused
    assert reused == {
        "type": "https://orderdesk.io/problems/invalid-request",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "this Idempotency-Key was already used for a different order; use a new key for a new order",
        "errors": [
            {
                "field": "Idempotency-Key",
                "message": "already used with another request body",
                "reason": "idempotency_key_reused",
            }
        ],
        "correlation_id": cids["key reused"],
    }
    status, bad, _ = answers["bad field"]
    assert status == 422 and bad == {
        "type": "https://orderdesk.io/problems/invalid-request",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "the order has 1 problem(s); nothing was stored",
        "errors": [{"field": "customer_id", "message": "unknown customer 'C-NOPE'", "reason": "unknown"}],
        "correlation_id": cids["bad field"],
    }

    # Each order entered in the burst: its events carry its own request's correlation id, not the call's.
    entered = {name: answers[name][1]["order_id"] for name in cases if name.startswith(("accepted", "held"))}
    seen = await received_correlation_ids(nc, list(entered.values()))
    assert {name: seen[order_id] for name, order_id in entered.items()} == {
        name: cids[name] for name in entered
    }
