"""A customer's personal data erased through the gateway: an order placed and completed for the customer,
the erasure refused while another order is open, then erased past the (test's two-second) retention; read
back the orders, the partner's feed entries and the KPI report: names and addresses gone, the books the same.
The CLI asks once more and nothing changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

import pytest

from orderdesk.personal_data import ERASED, token
from tests.e2e.test_lifecycle import add_product, new_sku, order_body, ship_everything, submit, wait_status

pytestmark = pytest.mark.e2e

CUSTOMER = "C0048"  # no other e2e test orders for this customer (its master record is erased here)
SHIP_TO = {
    "name": "Grace Hopper",
    "line1": "1 Navy Yard Street",
    "city": "Hamburg",
    "postal_code": "20095",
    "country": "DE",
    "phone": "+49 40 555 0101",
}
PERSONAL = ("Grace Hopper", "Navy Yard", "Hamburg", "20095", "555 0101", "Customer 0048", "827 Harbour Road")


async def feed_entries(shop, order_ids: set[str]) -> list[dict]:
    entries, after = [], 0
    while True:
        code, page, _ = await shop.get(f"/v1/events?after={after}&limit=500")
        assert code == 200, page
        entries += [e for e in page["events"] if e["order_id"] in order_ids]
        if not page["events"]:
            return entries
        after = page["next_after"]


async def customer_kpis(admin) -> dict:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).date()  # a report covers at most a year
    code, report, _ = await admin.get(f"/v1/reports/kpis?from={since}&group_by=customer")
    assert code == 200, report
    return next(g for g in report["groups"] if g["key"] == CUSTOMER)


async def erase(admin, scope: str):
    code, body, _ = await admin.post(f"/v1/admin/customers/{CUSTOMER}/erasure", json={"scope": scope})
    return code, body


async def test_a_customers_personal_data_is_erased_and_the_books_stay(
    stack, shop, warehouse_operator, admin, eventually
):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-HAM": 10})
    code, done, _ = await submit(
        shop, order_body(sku, 2, customer=CUSTOMER, ship_to=SHIP_TO, payment_terms="NET60")
    )
    assert code == 201 and done["status"] == "confirmed", done
    code, open_order, _ = await submit(
        shop, order_body(sku, 1, customer=CUSTOMER, ship_to=SHIP_TO, payment_terms="NET60")
    )
    assert code == 201, open_order
    await wait_status(shop, done["order_id"], "allocated", eventually)
    await ship_everything(shop, warehouse_operator, done["order_id"], eventually)
    before_done = await wait_status(shop, done["order_id"], "completed", eventually)

    # Refused while an order is open: 409 naming it, nothing erased.
    code, problem = await erase(admin, "all")
    assert code == 409 and problem["rule"] == "personal_data_retained", problem
    named = {e["field"]: e["reason"] for e in problem["errors"]}
    assert named[f"orders[{open_order['order_id']}]"] == "open"  # (the completed one may be within retention)
    code, body, _ = await shop.get(f"/v1/orders/{done['order_id']}")
    assert body["ship_to"]["name"] == "Grace Hopper"

    # Only what has passed the retention: the completed order (once two seconds have passed), the open one stays.
    async def erased_the_completed_one():
        code, body = await erase(admin, "expired")
        assert code == 200, body
        return body if body["erased_orders"] == [done["order_id"]] else None

    report = await eventually(erased_the_completed_one)
    assert [(k["order_id"], k["reason"]) for k in report["kept"]] == [(open_order["order_id"], "open")]
    assert not report["whole_customer"]
    assert report["actor"].startswith("key:") and report["actor"].endswith("@P-ADMIN")  # orderdesk/actors.py
    code, body, _ = await shop.get(f"/v1/orders/{open_order['order_id']}")
    assert body["ship_to"]["name"] == "Grace Hopper"  # the open order keeps its data

    # The open order is cancelled; its events reach the feed; then everything goes, the master record too.
    code, body, _ = await shop.post(
        f"/v1/orders/{open_order['order_id']}/cancel", json={"reason": "customer_request"}
    )
    assert code == 200, body
    ids = {done["order_id"], open_order["order_id"]}

    async def feed_has_everything():
        entries = await feed_entries(shop, ids)
        types = {(e["order_id"], e["type"]) for e in entries}
        closed = {(done["order_id"], "order.completed"), (open_order["order_id"], "order.cancelled")}
        return entries if closed <= types else None

    feed_before = await eventually(feed_has_everything)
    kpis_before = await customer_kpis(admin)

    async def erased_everything():
        code, body = await erase(admin, "all")
        assert code in (200, 409), body
        return body if code == 200 else None

    report = await eventually(erased_everything)
    assert (
        report["whole_customer"] and sorted(report["erased_orders"]) == sorted(ids) and report["kept"] == []
    )
    by_service = {s["service"]: s["erased"] for s in report["services"]}
    assert by_service["orders"]["orders"] == 1 and by_service["intake"]["customers"] == 1
    assert by_service["notifier"]["feed"] >= 1

    # Read back: the orders, the feed, the KPI report.
    for order_id in ids:
        code, order, _ = await shop.get(f"/v1/orders/{order_id}")
        assert code == 200, order
        assert [p for p in PERSONAL if p in json.dumps(order)] == [], order
        assert order["ship_to"]["name"] == token(CUSTOMER) and order["ship_to"]["line1"] == ERASED
        assert order["ship_to"]["country"] == "DE" and order["customer_id"] == CUSTOMER
    code, after_done, _ = await shop.get(f"/v1/orders/{done['order_id']}")
    for field in (
        "status",
        "lines",
        "total_amount",
        "currency",
        "history",
        "shipments",
        "requested_delivery_date",
    ):
        assert after_done[field] == before_done[field], field
    feed_after = await feed_entries(shop, ids)
    # The same entries (a shipment's cancellation may have come since: shipment events carry no address).
    assert [(e["sequence"], e["id"], e["type"]) for e in feed_after][: len(feed_before)] == [
        (e["sequence"], e["id"], e["type"]) for e in feed_before
    ]
    assert [p for p in PERSONAL if p in json.dumps(feed_after)] == []
    assert [p for p in ("Grace Hopper", "Navy Yard") if p in json.dumps(feed_before)] != []
    assert await customer_kpis(admin) == kpis_before

    # The CLI asks again: every service answers, nothing changes.
    env = {**stack.env(), "ORDERDESK_API_KEY": "demo-admin-key"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "customers", "erase", CUSTOMER, "--json",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    again = json.loads(out)
    assert {s["service"] for s in again["services"]} == {"orders", "intake", "notifier"}
    assert all(sum(s["erased"].values()) == 0 for s in again["services"]), again
    assert (await feed_entries(shop, ids))[: len(feed_after)] == feed_after

    # A retry with the same Idempotency-Key answers the same; bad input and unknown customers are clear.
    path = f"/v1/admin/customers/{CUSTOMER}/erasure"
    first = await admin.post(path, json={"scope": "all"}, headers={"Idempotency-Key": "erase-c0048"})
    retry = await admin.post(path, json={"scope": "all"}, headers={"Idempotency-Key": "erase-c0048"})
    assert first[0] == retry[0] == 200 and first[1] == retry[1]
    code, problem, _ = await admin.post(path, json={"scope": "everything"})
    assert code == 422 and problem["errors"][0]["field"].endswith("scope"), problem
    code, problem, _ = await admin.post("/v1/admin/customers/C-NOBODY/erasure", json={})
    assert code == 404, problem
    code, problem, _ = await shop.post(path, json={})
    assert code == 403, problem
