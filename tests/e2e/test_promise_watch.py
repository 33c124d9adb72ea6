"""The promise watch through every real process: a backorder whose production run is rescheduled past the
promise raises order.at_risk with the new date, which the partner's webhook and feed receive and the at-risk
queue lists; the run moved back clears it (order.back_on_track, on both too). A parcel in transit past the
deliver-by shipping computed for it is at risk (transit_overdue) until it is delivered."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e import test_lifecycle as lifecycle
from tests.e2e.test_supply import add_product, new_sku, submit, wait_status
from tests.e2e.test_webhooks import Receiver, feed_of_order, register

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


def days(n: int) -> str:
    return (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=n)).isoformat()


async def test_a_production_run_moved_past_the_promise_raises_at_risk_and_moved_back_clears_it(
    shop, admin, receiver, eventually
):
    hook = await register(shop, receiver, "ok", event_types=("order.at_risk", "order.back_on_track"))
    sku = new_sku("WATCH")
    await add_product(admin, sku, lead_time_days=3)  # nothing in stock: a run is planned, due in 3 days
    order_id = await submit(shop, sku, 4, requested_delivery_date=days(25))
    order = await wait_status(shop, order_id, "scheduled", eventually)
    assert order["risks"] == [] and order["expected_delivery_date"] <= days(25), order
    code, runs, _ = await admin.get(f"/v1/admin/production?sku={sku}&status=open")
    assert code == 200 and len(runs["items"]) == 1, runs
    run = runs["items"][0]

    # Refused, changing nothing: a date in the past, not a date, an unknown run.
    path = f"/v1/admin/production/{run['production_id']}/reschedule"
    code, problem, _ = await admin.post(path, json={"expected_date": days(-1)})
    assert code == 422 and problem["errors"][0]["field"] == "expected_date", problem
    code, problem, _ = await admin.post(path, json={"expected_date": "soon"})
    assert code == 422 and "expected_date" in problem["errors"][0]["field"], problem
    code, problem, _ = await admin.post(
        "/v1/admin/production/PRD-NOPE0000/reschedule", json={"expected_date": days(5)}
    )
    assert code == 404, problem

    # The line is down: the run moves to day 40, the order would arrive after its promise.
    code, moved, _ = await admin.post(path, json={"expected_date": days(40)})
    assert code == 200 and moved["expected_date"] == days(40), moved

    async def at_risk():
        code, body, _ = await shop.get(f"/v1/orders/{order_id}")
        return body if code == 200 and body["risks"] else None

    order = await eventually(at_risk, timeout=60)
    [risk] = order["risks"]
    assert risk["code"] == "supply_late" and order["at_risk"] is True
    assert risk["expected_date"] == order["expected_delivery_date"] > days(40), order
    assert (
        risk["slip_days"]
        == (dt.date.fromisoformat(risk["expected_date"]) - dt.date.fromisoformat(days(25))).days
    )

    def received(event_type: str) -> list[dict]:
        return [g for g in receiver.of_order(hook["name"], order_id) if g["body"]["type"] == event_type]

    def arrived(event_type: str):
        async def check():
            return received(event_type) or None

        return check

    [raised] = await eventually(arrived("order.at_risk"), timeout=60)
    body = raised["body"]
    assert body["expected_date"] == risk["expected_date"] and body["risk"]["code"] == "supply_late", body
    assert body["risk"]["evidence"] and body["data"]["risks"][0]["code"] == "supply_late"
    assert hook["name"] not in receiver.bad_signatures  # the receiver verified every signature
    # The partner's feed carries the same event.
    [fed] = await feed_of_order(shop, order_id, "order.at_risk", eventually, prefix="order.at_risk")
    assert fed["expected_date"] == risk["expected_date"] and fed["risk"]["code"] == "supply_late", fed

    # The desk's at-risk queue (and the partner's own view of it).
    code, page, _ = await shop.get("/v1/orders?at_risk=true&risk=supply_late&limit=500")
    assert code == 200 and order_id in [o["order_id"] for o in page["items"]], page
    code, page, _ = await shop.get("/v1/orders?at_risk=true&risk=carrier_silent&limit=500")
    assert code == 200 and order_id not in [o["order_id"] for o in page["items"]]
    code, problem, _ = await shop.get("/v1/orders?risk=supply_late")
    assert code == 422 and problem["errors"][0]["field"] == "risk", problem

    # Production catches up: moved back, the order is back on track, once.
    code, moved, _ = await admin.post(path, json={"expected_date": days(3)})
    assert code == 200, moved

    async def on_track():
        code, body, _ = await shop.get(f"/v1/orders/{order_id}")
        return body if code == 200 and not body["risks"] else None

    order = await eventually(on_track, timeout=60)
    assert order["at_risk"] is False and order["expected_delivery_date"] <= days(25)
    [cleared] = await eventually(arrived("order.back_on_track"), timeout=60)
    assert cleared["body"]["risk"]["code"] == "supply_late"
    assert len(received("order.at_risk")) == 1  # told once
    [fed] = await feed_of_order(
        shop, order_id, "order.back_on_track", eventually, prefix="order.back_on_track"
    )
    assert fed["risk"]["code"] == "supply_late", fed
    code, page, _ = await shop.get("/v1/orders?at_risk=true&limit=500")
    assert order_id not in [o["order_id"] for o in page["items"]]


async def test_a_parcel_in_transit_past_shippings_deliver_by_is_at_risk_until_delivered(
    shop, warehouse_operator, admin, eventually
):
    sku = lifecycle.new_sku()
    await lifecycle.add_product(admin, sku, stock={"WH-HAM": 3})
    code, created, _ = await lifecycle.submit(shop, lifecycle.order_body(sku, 2))
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)

    async def shipment():
        code, body, _ = await warehouse_operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"][0] if code == 200 and body["items"] else None

    sid = (await eventually(shipment))["shipment_id"]
    # The 3PL reports late that it left ten days ago: shipping dates its deliver-by from that day (the lane's
    # transit days), which has passed, so orders' watch sees it overdue in transit.
    left = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).isoformat()
    for step in (
        {"type": "picked"},
        {"type": "shipped", "carrier": "DHL", "tracking_number": f"T{sid[-12:]}", "occurred_at": left},
    ):
        code, body, _ = await warehouse_operator.post(f"/v1/shipments/{sid}/events", json=step)
        assert code == 200, body

    async def overdue():
        code, body, _ = await shop.get(f"/v1/orders/{order_id}")
        found = [r for r in body.get("risks", []) if r["code"] == "transit_overdue"] if code == 200 else []
        return found or None

    [risk] = await eventually(overdue, timeout=60)
    assert risk["shipment_id"] == sid and "day(s) in transit; due " in risk["evidence"], risk
    due = risk["evidence"].rsplit("due ", 1)[1]
    assert due < days(0), risk  # shipping's deliver-by, in the past

    code, body, _ = await warehouse_operator.post(f"/v1/shipments/{sid}/events", json={"type": "delivered"})
    assert code == 200, body
    done = await wait_status(shop, order_id, "completed", eventually)
    assert done["risks"] == [], done
