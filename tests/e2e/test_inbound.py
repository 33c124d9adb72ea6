"""Supply that moves, through every real process: a supplier's inbound receipt announced with its expected
date re-dates the backorder waiting for it, the order's expected dates move and the partner's feed carries
the new date; the receipt of the same reference then fills it."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from tests.e2e.test_exceptions import add_product, new_sku, submit, wait_for
from tests.e2e.test_webhooks import feed_of_order

pytestmark = pytest.mark.e2e


async def test_an_inbound_announcement_re_dates_a_backorder_and_the_partner_hears_it(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, {})  # nothing in stock: backordered, a production run planned
    order_id = await submit(shop, sku, 4)
    order = await wait_for(
        shop, order_id, eventually, lambda o: o["status"] == "scheduled" and o["expected_ship_date"]
    )
    planned = order["expected_ship_date"]
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).isoformat()
    assert tomorrow < planned  # the run takes its lead time; the supplier's goods come sooner

    inbound = {"warehouse": "WH-HAM", "sku": sku, "quantity": 4, "reference": f"ASN-{uuid.uuid4().hex[:8]}"}
    code, problem, _ = await admin.post("/v1/admin/inbound", json=inbound | {"expected_date": "2020-01-01"})
    assert code == 422 and problem["errors"][0]["field"] == "expected_date", problem
    code, problem, _ = await shop.post("/v1/admin/inbound", json=inbound | {"expected_date": tomorrow})
    assert code == 403, problem
    code, announced, _ = await admin.post("/v1/admin/inbound", json=inbound | {"expected_date": tomorrow})
    assert code == 200 and announced["status"] == "open" and announced["expected_date"] == tomorrow, announced
    code, again, _ = await admin.post("/v1/admin/inbound", json=inbound | {"expected_date": tomorrow})
    assert code == 200 and again == announced  # idempotent by reference

    order = await wait_for(shop, order_id, eventually, lambda o: o["expected_ship_date"] == tomorrow)
    assert order["status"] == "scheduled"
    [changed] = [
        e
        for e in await feed_of_order(shop, order_id, "order.changed", eventually, prefix="order.changed")
        if any(c["field"] == "expected_ship_date" for c in e.get("changes", []))
    ]
    moved = {c["field"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert moved["expected_ship_date"] == (planned, tomorrow)
    assert changed["expected_date"] == order["expected_delivery_date"] == moved["expected_delivery_date"][1]

    # the goods arrive under the announced reference: the backorder is filled, the announcement closed
    code, body, _ = await admin.post("/v1/admin/receipts", json=inbound)
    assert code == 200, body
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    code, problem, _ = await admin.post("/v1/admin/inbound", json=inbound | {"expected_date": tomorrow})
    assert code == 409 and problem["rule"] == "inbound_received", problem
