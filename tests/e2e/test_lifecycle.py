"""A partner's order through every real process: gateway, intake, orders, inventory, shipping, returns."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from orderdesk.v1 import events_pb2

pytestmark = pytest.mark.e2e

CUSTOMER = "C0001"  # standard, active, NET30
BLOCKED_CUSTOMER = "C0029"  # blocked: held for review


def new_sku() -> str:
    return f"E2E-{uuid.uuid4().hex[:8].upper()}"


async def add_product(admin, sku: str, price: str = "10.00", stock: dict[str, int] | None = None) -> None:
    """Each test brings its own SKU, so tests never compete for the demo stock."""
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=header + f"{sku},Test part {sku},{price},USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    rows = "".join(f"{sku},{wh},{qty}\n" for wh, qty in (stock or {}).items())
    if rows:
        status, body, _ = await admin.post(
            "/v1/admin/import/stock",
            data="sku,warehouse,on_hand\n" + rows,
            headers={"Content-Type": "text/csv"},
        )
        assert status == 200, body


def order_body(sku: str, quantity: int, price: str = "10.00", customer: str = CUSTOMER, **extra) -> dict:
    return {
        "external_ref": f"PO-{uuid.uuid4().hex[:6]}",
        "customer_id": customer,
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": price}],
        "payment_terms": "NET30",
        **extra,
    }


async def submit(partner, body: dict, key: str | None = None):
    return await partner.post("/v1/orders", json=body, headers={"Idempotency-Key": key or uuid.uuid4().hex})


async def status_of(partner, order_id: str) -> str:
    code, body, _ = await partner.get(f"/v1/orders/{order_id}")
    assert code == 200, body
    return body["status"]


async def wait_status(partner, order_id: str, wanted: str, eventually) -> dict:
    async def check():
        code, body, _ = await partner.get(f"/v1/orders/{order_id}")
        return body if code == 200 and body["status"] == wanted else None

    return await eventually(check)


async def stock(admin, sku: str) -> dict[str, dict]:
    code, body, _ = await admin.get(f"/v1/inventory/{sku}")
    assert code == 200, body
    return {w["warehouse"]: w for w in body["warehouses"]}


async def ship_everything(shop, operator, order_id: str, eventually) -> list[dict]:
    async def shipments_ready():
        code, body, _ = await operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"] if code == 200 and body["items"] else None

    shipments = await eventually(shipments_ready)
    for n, s in enumerate(shipments):
        sid = s["shipment_id"]
        for step in (
            {"type": "picked"},
            {"type": "packed"},
            {"type": "shipped", "carrier": "DHL", "tracking_number": f"TRK{n}{uuid.uuid4().hex[:6]}"},
            {"type": "delivered"},
        ):
            code, body, _ = await operator.post(f"/v1/shipments/{sid}/events", json=step)
            assert code == 200, body
    return shipments


async def test_order_goes_from_submission_to_completed(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 5, "WH-HAM": 5})
    code, created, _ = await submit(shop, order_body(sku, 8))  # needs two warehouses
    assert code == 201, created
    assert created["status"] == "confirmed" and created["hold_reasons"] == []
    order_id = created["order_id"]

    allocated = await wait_status(shop, order_id, "allocated", eventually)
    assert allocated["lines"][0]["allocated_quantity"] == 8
    levels = await stock(admin, sku)
    assert sum(w["reserved"] for w in levels.values()) == 8

    shipments = await ship_everything(shop, warehouse_operator, order_id, eventually)
    assert {s["warehouse"] for s in shipments} == {"WH-CHI", "WH-HAM"}

    done = await wait_status(shop, order_id, "completed", eventually)
    assert [h["status"] for h in done["history"]] == [
        "received",
        "confirmed",
        "allocated",
        "partially_shipped",
        "shipped",
        "completed",
    ]
    assert all(h["at"] and h["actor"] for h in done["history"])
    assert done["lines"][0]["shipped_quantity"] == 8
    assert {s["status"] for s in done["shipments"]} == {"delivered"}
    assert all(s["carrier"] == "DHL" and s["tracking_number"] for s in done["shipments"])

    async def shipped_units_left_the_books():  # inventory hears of shipments through its consumer
        levels = await stock(admin, sku)
        return (
            sum(w["on_hand"] for w in levels.values()) == 2
            and sum(w["reserved"] for w in levels.values()) == 0
        )

    await eventually(shipped_units_left_the_books)


async def test_return_is_refunded_and_restocked(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, price="12.50", stock={"WH-HAM": 10})
    code, created, _ = await submit(shop, order_body(sku, 4, price="12.50"))
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)

    code, body, _ = await shop.post(
        f"/v1/orders/{order_id}/returns",
        json={"lines": [{"sku": sku, "quantity": 5, "reason": "damaged"}], "resolution": "refund"},
    )
    assert code == 422, body  # more than was delivered
    code, rma, _ = await shop.post(
        f"/v1/orders/{order_id}/returns",
        json={"lines": [{"sku": sku, "quantity": 3, "reason": "damaged"}], "resolution": "refund"},
    )
    assert code == 201, rma
    assert rma["status"] == "authorized"
    rma_id = rma["rma_id"]
    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/receive")
    assert code == 200 and body["status"] == "received", body
    code, body, _ = await warehouse_operator.post(
        f"/v1/returns/{rma_id}/inspect",
        json={
            "lines": [
                {"sku": sku, "quantity": 2, "outcome": "restock"},
                {"sku": sku, "quantity": 1, "outcome": "scrap"},
            ]
        },
    )
    assert code == 200, body
    code, body, _ = await shop.get(f"/v1/returns/{rma_id}")
    assert body["status"] == "refunded" and body["refund_amount"] == "37.50", body

    async def restocked():
        levels = await stock(admin, sku)
        return levels["WH-HAM"]["on_hand"] == 8 and levels  # 10 - 4 shipped + 2 restocked

    await eventually(restocked)

    async def returned_on_order():
        code, order, _ = await shop.get(f"/v1/orders/{order_id}")
        return order["lines"][0]["returned_quantity"] == 3

    await eventually(returned_on_order)


async def test_cancellation_releases_stock(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-SHA": 6})
    code, created, _ = await submit(shop, order_body(sku, 6))
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    assert (await stock(admin, sku))["WH-SHA"]["available"] == 0

    code, body, _ = await shop.post(f"/v1/orders/{order_id}/cancel", json={"reason": "customer changed mind"})
    assert code == 200 and body["status"] == "cancelled", body
    assert body["history"][-1]["reason"] == "customer changed mind"

    async def released():
        return (await stock(admin, sku))["WH-SHA"]["available"] == 6

    await eventually(released)

    async def shipments_cancelled():
        _, body, _ = await warehouse_operator.get(f"/v1/shipments?order_id={order_id}")
        return all(s["status"] == "cancelled" for s in body["items"])

    await eventually(shipments_cancelled)


async def test_cancel_refused_once_shipped(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 3})
    _, created, _ = await submit(shop, order_body(sku, 2))
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)
    code, body, headers = await shop.post(f"/v1/orders/{order_id}/cancel", json={"reason": "too late"})
    assert code == 409, body
    assert headers["Content-Type"].startswith("application/problem+json")


async def test_idempotency_key_replay_creates_nothing(shop, admin):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 10})
    key = uuid.uuid4().hex
    body = order_body(sku, 1)
    first = await submit(shop, body, key)
    second = await submit(shop, body, key)
    assert first[0] == 201 and second[0] in (200, 201)
    assert first[1]["order_id"] == second[1]["order_id"]
    code, listing, _ = await shop.get("/v1/orders?limit=500")
    mine = [o for o in listing["items"] if o["external_ref"] == body["external_ref"]]
    assert len(mine) == 1

    changed = dict(body, lines=[{"sku": sku, "quantity": 2, "unit_price": "10.00"}])
    code, problem, headers = await submit(shop, changed, key)
    assert code == 422, problem
    assert headers["Content-Type"].startswith("application/problem+json")


async def test_concurrent_replays_of_one_key_create_one_order(shop, admin):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 10})
    key = uuid.uuid4().hex
    body = order_body(sku, 1)
    answers = await asyncio.gather(*[submit(shop, body, key) for _ in range(10)])
    ids = {a[1]["order_id"] for a in answers if a[0] in (200, 201)}
    assert len(ids) == 1, answers


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda b: b["lines"][0].update(quantity=0), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(unit_price="ten"), "lines[0].unit_price"),
        (lambda b: b["lines"][0].update(sku="NO-SUCH-SKU"), "lines[0].sku"),
        (lambda b: b.update(customer_id="C9999"), "customer_id"),
        (lambda b: b.update(lines=[]), "lines"),
    ],
)
async def test_invalid_input_is_422_and_stores_nothing(shop, admin, mutate, field):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 10})
    body = order_body(sku, 1)
    mutate(body)
    code, problem, headers = await submit(shop, body)
    assert code == 422, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert any(e["field"].endswith(field) for e in problem["errors"]), problem
    _, listing, _ = await shop.get("/v1/orders?limit=500")
    assert not [o for o in listing["items"] if o["external_ref"] == body["external_ref"]]
    assert (await stock(admin, sku))["WH-CHI"]["reserved"] == 0


async def test_missing_idempotency_key_is_422(shop, admin):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 1})
    code, problem, _ = await shop.post("/v1/orders", json=order_body(sku, 1))
    assert code == 422
    assert any(e["field"] == "Idempotency-Key" for e in problem["errors"]), problem


async def test_held_orders_are_approved_or_rejected_by_the_desk(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 10})
    code, held, _ = await submit(shop, order_body(sku, 1, customer=BLOCKED_CUSTOMER))
    assert code == 201 and held["status"] == "on_hold", held
    assert [r["code"] for r in held["hold_reasons"]] == ["customer_blocked"]
    code, mispriced, _ = await submit(shop, order_body(sku, 1, price="9.00"))
    assert mispriced["status"] == "on_hold"
    assert mispriced["hold_reasons"][0]["code"] == "price_mismatch"
    assert mispriced["hold_reasons"][0]["field"] == "lines[0].unit_price"

    code, body, _ = await shop.post(f"/v1/orders/{held['order_id']}/approve", json={"note": "ok"})
    assert code == 403, body  # only the desk decides
    code, body, _ = await admin.post(
        f"/v1/orders/{held['order_id']}/approve", json={"note": "credit checked by phone"}
    )
    assert code == 200 and body["status"] == "confirmed", body
    await wait_status(shop, held["order_id"], "allocated", eventually)

    code, body, _ = await admin.post(
        f"/v1/orders/{mispriced['order_id']}/reject", json={"reason": "wrong price"}
    )
    assert code == 200 and body["status"] == "rejected", body
    assert body["history"][-1]["actor"] and body["history"][-1]["reason"] == "wrong price"
    code, body, _ = await admin.post(f"/v1/orders/{mispriced['order_id']}/approve", json={"note": "late"})
    assert code == 409, body
    assert (await stock(admin, sku))["WH-CHI"]["reserved"] == 1  # only the approved order


async def test_partner_cannot_see_another_partners_order(shop, edi, admin):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 2})
    _, created, _ = await submit(shop, order_body(sku, 1))
    order_id = created["order_id"]
    assert (await edi.get(f"/v1/orders/{order_id}"))[0] == 404
    assert (await edi.post(f"/v1/orders/{order_id}/cancel", json={"reason": "x"}))[0] == 404
    _, listing, _ = await edi.get("/v1/orders?limit=500")
    assert order_id not in {o["order_id"] for o in listing["items"]}
    assert (await edi.get(f"/v1/shipments?order_id={order_id}"))[1]["items"] == []
    assert (await shop.get(f"/v1/orders/{order_id}"))[0] == 200
    assert (await admin.get(f"/v1/orders/{order_id}"))[0] == 200


async def test_fifty_concurrent_orders_reserve_exactly_what_is_on_hand(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 7, "WH-HAM": 5, "WH-SHA": 3})  # 15 units
    answers = await asyncio.gather(*[submit(shop, order_body(sku, 1)) for _ in range(50)])
    assert all(a[0] == 201 for a in answers), [a for a in answers if a[0] != 201][:3]
    ids = [a[1]["order_id"] for a in answers]

    async def settled():
        statuses = [await status_of(shop, i) for i in ids]
        return statuses if all(s in ("allocated", "scheduled") for s in statuses) else None

    statuses = await eventually(settled, timeout=60)
    assert statuses.count("allocated") == 15
    assert statuses.count("scheduled") == 35
    levels = await stock(admin, sku)
    assert {w: lv["reserved"] for w, lv in levels.items()} == {"WH-CHI": 7, "WH-HAM": 5, "WH-SHA": 3}
    assert all(lv["available"] == 0 for lv in levels.values())


async def test_one_orders_events_arrive_on_jetstream_in_order(
    shop, warehouse_operator, admin, nc, eventually
):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-HAM": 2})
    before_ms = time.time_ns() // 1_000_000
    _, created, _ = await submit(shop, order_body(sku, 2))
    order_id = created["order_id"]
    # The id begins with the millisecond intake made it in (orderdesk.ids), so ids sort by creation.
    assert re.fullmatch(r"ORD-[0-9A-F]{24}", order_id)
    assert before_ms <= int(order_id[4:15], 16) <= time.time_ns() // 1_000_000
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)

    js = nc.jetstream()
    sub = await js.subscribe(f"orderdesk.*.{order_id}.>", ordered_consumer=True, deliver_policy="all")
    seen: list[events_pb2.Event] = []

    async def all_seen():
        try:
            while True:
                msg = await sub.next_msg(timeout=0.5)
                seen.append(events_pb2.Event.FromString(msg.data))
        except Exception:
            pass
        return any(e.type == "order.completed" for e in seen)

    await eventually(all_seen)
    order_events = [e for e in seen if e.aggregate_type == "order"]
    assert [e.type for e in order_events] == [
        "order.received",
        "order.confirmed",
        "order.allocated",
        "order.shipped",
        "order.completed",
    ]
    versions = [e.aggregate_version for e in order_events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    shipment_types = [e.type for e in seen if e.aggregate_type == "shipment"]
    assert shipment_types == [
        "shipment.created",
        "shipment.picked",
        "shipment.packed",
        "shipment.shipped",
        "shipment.delivered",
    ]
    assert all(e.order_id == order_id and e.event_id for e in seen)
    # Every event id is a UUIDv7 of the millisecond its event was made: an order's in the order they happened.
    made_ms = [uuid.UUID(e.event_id).int >> 80 for e in order_events]
    assert {uuid.UUID(e.event_id).version for e in seen} == {7}
    assert made_ms == sorted(made_ms) and made_ms[0] >= int(order_id[4:15], 16)


async def test_the_desk_lists_held_orders_by_priority_and_reason(shop, admin):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-CHI": 5})
    _, blocked, _ = await submit(shop, order_body(sku, 1, customer=BLOCKED_CUSTOMER))
    _, mispriced, _ = await submit(shop, order_body(sku, 1, price="9.99"))
    code, page, _ = await admin.get(
        "/v1/orders?status=on_hold&order_by=priority&hold_reason=price_mismatch&limit=500"
    )
    assert code == 200, page
    ids = [o["order_id"] for o in page["items"]]
    assert mispriced["order_id"] in ids and blocked["order_id"] not in ids
    assert all(any(r["code"] == "price_mismatch" for r in o["hold_reasons"]) for o in page["items"])
    code, queue, _ = await admin.get("/v1/orders?status=on_hold&order_by=priority&limit=500")
    priorities = [o["priority"] for o in queue["items"]]
    assert priorities == sorted(priorities, reverse=True)
    code, problem, _ = await admin.get("/v1/orders?order_by=cheapest")
    assert code == 422 and problem["errors"][0]["field"].endswith("order_by")
