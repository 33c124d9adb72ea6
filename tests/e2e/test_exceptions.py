"""Exceptions through every real process: recorded by the desk, by a warehouse operator (picking shortage) and
from carriers' tracking events; the order at risk with its open exceptions and the new expected date; the desk's
resolutions acting for real (re-allocation from another warehouse, carrier change, reship) or recorded."""

from __future__ import annotations

import uuid

import pytest

from orderdesk.v1 import events_pb2

pytestmark = pytest.mark.e2e

CUSTOMER = "C0001"  # standard, active, NET30, ships to FR
HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"


def new_sku() -> str:
    return f"EXC-{uuid.uuid4().hex[:8].upper()}"


async def add_product(admin, sku: str, stock: dict[str, int]) -> None:
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=HEADER + f"{sku},Exception part {sku},10.00,USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    if stock:
        rows = "".join(f"{sku},{wh},{qty}\n" for wh, qty in stock.items())
        status, body, _ = await admin.post(
            "/v1/admin/import/stock",
            data="sku,warehouse,on_hand\n" + rows,
            headers={"Content-Type": "text/csv"},
        )
        assert status == 200, body


async def submit(shop, sku: str, quantity: int) -> str:
    body = {
        "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
        "customer_id": CUSTOMER,
        "payment_terms": "NET30",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
    }
    status, answer, _ = await shop.post(
        "/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert status == 201, answer
    return answer["order_id"]


async def wait_for(partner, order_id: str, eventually, check) -> dict:
    async def poll():
        code, body, _ = await partner.get(f"/v1/orders/{order_id}")
        return body if code == 200 and check(body) else None

    return await eventually(poll)


async def shipments_of(operator, order_id: str, eventually, check=lambda items: bool(items)) -> list[dict]:
    async def poll():
        code, body, _ = await operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"] if code == 200 and check(body["items"]) else None

    return await eventually(poll)


async def step(operator, shipment_id: str, kind: str, **extra) -> dict:
    body = {"type": kind, **extra}
    if kind == "shipped":
        body |= {"carrier": "DHL", "tracking_number": f"TRK{uuid.uuid4().hex[:8]}"}
    code, answer, _ = await operator.post(f"/v1/shipments/{shipment_id}/events", json=body)
    assert code == 200, answer
    return answer


async def levels(admin, sku: str) -> dict[str, dict]:
    code, body, _ = await admin.get(f"/v1/inventory/{sku}")
    assert code == 200, body
    return {w["warehouse"]: w for w in body["warehouses"]}


async def collect(nc, subject: str) -> tuple[list[events_pb2.Event], object]:
    seen: list[events_pb2.Event] = []

    async def cb(msg):
        seen.append(events_pb2.Event.FromString(msg.data))

    return seen, await nc.subscribe(subject, cb=cb)


async def test_production_delay_moves_the_expected_date_and_flags_the_order(shop, admin, nc, eventually):
    sku = new_sku()
    await add_product(admin, sku, {})  # nothing in stock: backordered, waiting for production
    order_id = await submit(shop, sku, 4)
    seen, sub = await collect(nc, f"orderdesk.order.{order_id}.exception")
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/exceptions", json={"type": "production_delay", "cause": "x"}
    )
    assert code == 403, problem  # sales channels read exceptions; the desk and warehouses record them
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={"type": "production_delay", "cause": " ", "expected_date": "soon"},
    )
    assert code == 422 and {e["field"] for e in problem["errors"]} == {"cause", "expected_date"}, problem
    delay = {
        "type": "production_delay",
        "cause": "moulding press down for two weeks",
        "expected_date": "2027-01-15",
        "sku": sku,
    }
    key = {"Idempotency-Key": f"delay-{order_id}"}
    code, order, _ = await admin.post(f"/v1/orders/{order_id}/exceptions", json=delay, headers=key)
    assert code == 201, order
    assert order["at_risk"] is True and order["exception_expected_date"] == "2027-01-15"
    code, again, _ = await admin.post(f"/v1/orders/{order_id}/exceptions", json=delay, headers=key)  # a retry
    assert code == 201 and again["exceptions"] == order["exceptions"] and len(again["exceptions"]) == 1

    code, seen_by_shop, _ = await shop.get(f"/v1/orders/{order_id}")
    assert code == 200 and seen_by_shop["at_risk"] is True
    [exception] = [e for e in seen_by_shop["exceptions"] if e["status"] == "open"]
    assert exception["type"] == "production_delay" and exception["cause"].startswith("moulding")
    assert (
        exception["expected_date"] == "2027-01-15"
        and exception["source"] == "desk"
        and exception["opened_at"]
    )

    event = await eventually(lambda: _first(seen))
    assert event.type == "order.exception" and event.order.expected_date == "2027-01-15"
    assert event.order.exception.type == "production_delay" and event.order.order.at_risk

    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "accept_delay", "note": "customer agreed by phone"},
    )
    assert code == 200 and resolved["at_risk"] is False, resolved
    assert resolved["exception_expected_date"] == "2027-01-15"  # the delay was accepted: the date stands
    assert resolved["requested_delivery_date"] == "2027-01-15"  # and is the promise now
    assert resolved["changes"][-1]["kinds"] == ["accept_delay"]
    done = resolved["exceptions"][0]
    assert done["status"] == "resolved" and done["resolution"]["action"] == "accept_delay"
    assert done["resolution"]["note"] == "customer agreed by phone" and done["resolution"]["actor"]
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "accept_delay"},
    )
    assert code == 409 and problem["rule"] == "exception_already_resolved"
    await eventually(lambda: _nth(seen, 1))
    assert seen[1].order.exception.status == "resolved"
    await sub.unsubscribe()


async def _first(items):
    return items[0] if items else None


async def _nth(items, n):
    return items[n] if len(items) > n else None


async def test_picking_shortage_is_reallocated_from_another_warehouse(
    shop, warehouse_operator, admin, eventually
):
    sku = new_sku()
    await add_product(admin, sku, {"WH-HAM": 3, "WH-CHI": 5})
    order_id = await submit(shop, sku, 3)
    order = await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    [allocation] = order["allocations"]
    short, other = allocation["warehouse"], ({"WH-HAM", "WH-CHI"} - {allocation["warehouse"]}).pop()
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert shipment["warehouse"] == short
    before = await levels(admin, sku)

    # the warehouse finds the bin empty while picking
    code, reported, _ = await warehouse_operator.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "stock_shortage_at_pick",
            "cause": "bin empty at pick",
            "sku": sku,
            "warehouse": short,
            "quantity": 3,
        },
    )
    assert code == 201 and reported["at_risk"] is True, reported
    [exception] = reported["exceptions"]
    assert exception["source"] == "warehouse" and exception["warehouse"] == short
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "change_carrier"},
    )
    assert code == 409 and problem["rule"] == "resolution_not_for_stock_shortage_at_pick", problem

    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "reallocate", "note": "take it from the other DC"},
    )
    assert code == 200, resolved
    assert resolved["at_risk"] is False and resolved["status"] == "allocated"
    assert [(a["sku"], a["warehouse"], a["quantity"]) for a in resolved["allocations"]] == [(sku, other, 3)]
    move = resolved["changes"][-1]
    assert move["kinds"] == ["allocation"] and move["changes"] == [
        {"field": f"allocations[{sku}]", "before": f"{short} x3", "after": f"{other} x3"}
    ]

    after = await levels(admin, sku)
    assert after[short]["reserved"] == before[short]["reserved"] - 3
    assert after[short]["on_hand"] == before[short]["on_hand"] - 3  # the missing units are written off
    assert after[other]["reserved"] == before[other]["reserved"] + 3

    # shipping follows: the short warehouse's shipment is cancelled, the other warehouse ships
    shipments = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: (
            len(items) == 2
            and any(s["warehouse"] == other for s in items)
            and any(s["status"] == "cancelled" for s in items)
        ),
    )
    new = next(s for s in shipments if s["warehouse"] == other)
    assert new["status"] == "pending" and new["lines"] == [{"sku": sku, "quantity": 3}]
    for kind in ("picked", "packed", "shipped", "delivered"):
        await step(warehouse_operator, new["shipment_id"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "completed")


async def test_carrier_delay_from_tracking_then_carrier_changed(shop, warehouse_operator, admin, eventually):
    order_id, sid, _sku = await allocated_order(shop, warehouse_operator, admin, eventually)
    await step(warehouse_operator, sid, "picked")
    code, problem, _ = await warehouse_operator.post(
        f"/v1/shipments/{sid}/events",
        json={"type": "delayed", "cause": "storm", "expected_delivery_date": "2027-01-20"},
    )
    assert code == 409 and problem["rule"] == "tracking_needs_shipped"
    await step(warehouse_operator, sid, "shipped")
    delayed = await step(
        warehouse_operator, sid, "delayed", cause="storm closes the hub", expected_delivery_date="2027-01-20"
    )
    assert delayed["status"] == "shipped" and delayed["expected_delivery_date"] == "2027-01-20"

    order = await wait_for(shop, order_id, eventually, lambda o: o["at_risk"])
    [exception] = order["exceptions"]
    assert exception["type"] == "carrier_delay" and exception["source"] == "shipping"
    assert exception["shipment_id"] == sid and exception["cause"] == "storm closes the hub"
    assert order["exception_expected_date"] == "2027-01-20"

    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "change_carrier", "details": {"carrier": "UPS"}},
    )
    assert code == 422 and problem["errors"][0]["field"] == "tracking_number", problem
    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "change_carrier", "details": {"carrier": "UPS", "tracking_number": "1Z999"}},
    )
    assert code == 200 and resolved["at_risk"] is False, resolved
    await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items[0]["carrier"] == "UPS" and items[0]["tracking_number"] == "1Z999",
    )
    await wait_for(shop, order_id, eventually, lambda o: o["shipments"][0]["carrier"] == "UPS")


async def allocated_order(
    shop, warehouse_operator, admin, eventually, quantity: int = 2
) -> tuple[str, str, str]:
    """An order for `quantity` of a new SKU (5 at WH-HAM), allocated, with its one shipment:
    (order id, shipment id, SKU)."""
    sku = new_sku()
    await add_product(admin, sku, {"WH-HAM": 5})
    order_id = await submit(shop, sku, quantity)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    return order_id, shipment["shipment_id"], sku


async def shipped_order(shop, warehouse_operator, admin, eventually) -> tuple[str, str, str]:
    """allocated_order, then picked, packed and shipped: (order id, shipment id, SKU)."""
    order_id, sid, sku = await allocated_order(shop, warehouse_operator, admin, eventually)
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, sid, kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "shipped")
    return order_id, sid, sku


async def test_lost_parcel_is_reshipped_and_the_order_completes(shop, warehouse_operator, admin, eventually):
    order_id, sid, sku = await shipped_order(shop, warehouse_operator, admin, eventually)
    await step(warehouse_operator, sid, "lost", cause="parcel not scanned since the hub")
    order = await wait_for(shop, order_id, eventually, lambda o: o["at_risk"])
    [exception] = order["exceptions"]
    assert exception["type"] == "lost_parcel" and exception["shipment_id"] == sid

    async def shipped_units_consumed():
        level = (await levels(admin, sku))["WH-HAM"]
        return level if level["on_hand"] == 3 and level["reserved"] == 0 else None

    await eventually(shipped_units_consumed)
    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{exception['exception_id']}/resolve",
        json={"action": "reship", "note": "send again"},
    )
    assert code == 200 and resolved["at_risk"] is False, resolved
    assert resolved["exceptions"][0]["resolution"]["details"]["reship_lines"] == f"{sku}@WH-HAM=2"
    assert (await levels(admin, sku))["WH-HAM"]["reserved"] == 2  # the units to send again are held

    shipments = await shipments_of(warehouse_operator, order_id, eventually, lambda items: len(items) == 2)
    again = next(s for s in shipments if s["shipment_id"] != sid)
    assert again["shipment_id"] == f"{sid}-R1" and again["lines"] == [{"sku": sku, "quantity": 2}]
    for kind in ("picked", "packed", "shipped", "delivered"):
        await step(warehouse_operator, again["shipment_id"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "completed")
    await eventually(lambda: _level_is(admin, sku, on_hand=1, reserved=0))  # the reship left the books too


async def _level_is(admin, sku, **expected):
    level = (await levels(admin, sku))["WH-HAM"]
    return all(level[k] == v for k, v in expected.items())


async def test_substitute_needs_the_customers_consent_and_replaces_the_line(
    shop, warehouse_operator, admin, eventually
):
    sku, equivalent = new_sku(), new_sku()
    await add_product(admin, sku, {"WH-HAM": 5})
    await add_product(admin, equivalent, {"WH-HAM": 5})
    order_id = await submit(shop, sku, 2)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated" and o["shipments"])
    code, order, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "quality_rework",
            "cause": "finish out of tolerance",
            "expected_date": "2027-02-01",
            "sku": sku,
        },
    )
    assert code == 201, order
    eid = order["exceptions"][0]["exception_id"]
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve",
        json={"action": "substitute", "details": {"substitute_sku": equivalent}},
    )
    assert code == 422 and problem["errors"][0]["field"] == "customer_consent", problem
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "reship"}
    )
    assert code == 403
    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve",
        json={
            "action": "substitute",
            "details": {
                "substitute_sku": equivalent,
                "customer_consent": "email from buyer 2026-11-26 10:02",
            },
        },
    )
    assert code == 200 and resolved["at_risk"] is False, resolved
    details = resolved["exceptions"][0]["resolution"]["details"]
    assert details["customer_consent"].startswith("email") and details["substitute_sku"] == equivalent
    assert [
        (x["sku"], x["quantity"], x["unit_price"], x["allocated_quantity"]) for x in resolved["lines"]
    ] == [(equivalent, 2, "10.00", 2)]
    entry = resolved["changes"][-1]
    assert "consent: email" in entry["reason"] and {c["field"] for c in entry["changes"]} >= {
        f"lines[{sku}]",
        f"lines[{equivalent}]",
    }
    assert (await levels(admin, sku))["WH-HAM"]["reserved"] == 0
    assert (await levels(admin, equivalent))["WH-HAM"]["reserved"] == 2
    await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items[0]["lines"] == [{"sku": equivalent, "quantity": 2}],
    )


async def atp(shop, sku: str) -> dict:
    code, body, _ = await shop.get(f"/v1/inventory/{sku}/atp")
    assert code == 200, body
    return body


async def test_split_delivery_ships_what_is_there_and_the_rest_as_a_linked_order(
    shop, warehouse_operator, admin, nc, eventually
):
    sku = new_sku()
    await add_product(admin, sku, {"WH-HAM": 3})
    order_id = await submit(shop, sku, 5)  # 3 in stock, 2 backordered
    child_id = f"{order_id}-2"
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "scheduled")
    assert (await atp(shop, sku))["backordered"] == 2
    changed, sub = await collect(nc, f"orderdesk.order.{order_id}.changed")
    child_events, child_sub = await collect(nc, f"orderdesk.order.{child_id}.*")
    code, order, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "production_delay",
            "cause": "moulding press down",
            "expected_date": "2027-01-15",
            "sku": sku,
        },
    )
    assert code == 201, order
    eid = order["exceptions"][0]["exception_id"]

    code, parent, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve",
        json={"action": "split_delivery", "note": "customer takes 3 now"},
    )
    assert code == 200, parent
    assert (
        parent["status"] == "allocated" and parent["at_risk"] is False and parent["split_into"] == [child_id]
    )
    assert [(x["sku"], x["quantity"], x["allocated_quantity"]) for x in parent["lines"]] == [(sku, 3, 3)]
    assert parent["exception_expected_date"] == ""  # the late units are the linked order's now
    entry = parent["changes"][-1]
    assert entry["kinds"] == ["split_delivery"] and "customer takes 3 now" in entry["reason"]
    assert {c["field"]: (c["before"], c["after"]) for c in entry["changes"]}[f"lines[{sku}].quantity"] == (
        "5",
        "3",
    )
    assert {"field": "split_into", "before": "", "after": child_id} in entry["changes"]
    resolution = parent["exceptions"][0]["resolution"]
    assert resolution["action"] == "split_delivery" and resolution["details"]["split_into"] == child_id
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "split_delivery"}
    )
    assert code == 409 and problem["rule"] == "exception_already_resolved", problem

    _, child, _ = await shop.get(f"/v1/orders/{child_id}")  # the partner sees its later delivery too
    assert child["split_from"] == order_id and child["requested_delivery_date"] == "2027-01-15"
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in child["lines"]] == [(sku, 2, "10.00")]
    assert (child["customer_id"], child["payment_terms"]) == (CUSTOMER, parent["payment_terms"])
    # the parent's priority, then aged by the promise watch for its own date (services/orders/promise.py)
    assert child["priority"] // 100 == parent["priority"] // 100 and child["priority"] >= parent["priority"]
    await wait_for(shop, child_id, eventually, lambda o: o["status"] == "scheduled")
    # inventory: the parent holds its 3, the 2 owed are the linked order's (nothing doubled, nothing lost)
    assert (await levels(admin, sku))["WH-HAM"]["reserved"] == 3
    assert (await atp(shop, sku))["backordered"] == 2

    event = await eventually(lambda: _first(changed))
    assert {(c.field, c.after) for c in event.order.changes} >= {
        ("split_into", child_id),
        (f"lines[{sku}].quantity", "3"),
    }
    await eventually(lambda: _nth(child_events, 2))
    assert [e.type for e in child_events[:3]] == ["order.received", "order.confirmed", "order.scheduled"]
    await sub.unsubscribe()
    await child_sub.unsubscribe()

    # the parent ships what it has
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert shipment["lines"] == [{"sku": sku, "quantity": 3}]
    for kind in ("picked", "packed", "shipped", "delivered"):
        await step(warehouse_operator, shipment["shipment_id"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "completed")

    # the rest arrives: the receipt fills the linked order's backorder, which then ships
    code, body, _ = await admin.post(
        "/v1/admin/receipts",
        json={"warehouse": "WH-HAM", "sku": sku, "quantity": 2, "reference": f"GRN-{uuid.uuid4().hex[:8]}"},
    )
    assert code == 200, body
    await wait_for(shop, child_id, eventually, lambda o: o["status"] == "allocated")
    assert (await atp(shop, sku))["backordered"] == 0
    [later] = await shipments_of(warehouse_operator, child_id, eventually)
    assert later["lines"] == [{"sku": sku, "quantity": 2}] and later["promised_delivery_date"] == "2027-01-15"
    for kind in ("picked", "packed", "shipped", "delivered"):
        await step(warehouse_operator, later["shipment_id"], kind)
    await wait_for(shop, child_id, eventually, lambda o: o["status"] == "completed")
    await eventually(lambda: _level_is(admin, sku, on_hand=0, reserved=0))


async def test_split_delivery_is_refused_when_there_is_nothing_to_split(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, {})  # nothing in stock: nothing to deliver now
    order_id = await submit(shop, sku, 2)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "scheduled")
    code, order, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={"type": "production_delay", "cause": "press down", "expected_date": "2027-01-15", "sku": sku},
    )
    assert code == 201, order
    eid = order["exceptions"][0]["exception_id"]
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "split_delivery"}
    )
    assert code == 409 and problem["rule"] == "split_nothing_allocated", problem
    _, after, _ = await admin.get(f"/v1/orders/{order_id}")
    assert after["status"] == "scheduled" and after["at_risk"] and after["split_into"] == []
    assert [(x["sku"], x["quantity"]) for x in after["lines"]] == [(sku, 2)]
    assert (await atp(shop, sku))["backordered"] == 2  # the backorder stays the order's

    full = new_sku()
    await add_product(admin, full, {"WH-HAM": 5})  # everything reserved: nothing missing
    order_id = await submit(shop, full, 2)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    code, order, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "quality_rework",
            "cause": "finish out of tolerance",
            "expected_date": "2027-02-01",
            "sku": full,
        },
    )
    eid = order["exceptions"][0]["exception_id"]
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "split_delivery"}
    )
    assert code == 409 and problem["rule"] == "split_nothing_missing", problem
    assert (await levels(admin, full))["WH-HAM"]["reserved"] == 2


async def test_accepting_a_carrier_delay_moves_the_promise(shop, warehouse_operator, admin, nc, eventually):
    order_id, sid, sku = await shipped_order(shop, warehouse_operator, admin, eventually)
    await step(
        warehouse_operator, sid, "delayed", cause="storm closes the hub", expected_delivery_date="2027-01-20"
    )
    order = await wait_for(shop, order_id, eventually, lambda o: o["at_risk"])
    changed, sub = await collect(nc, f"orderdesk.order.{order_id}.changed")
    code, resolved, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{order['exceptions'][0]['exception_id']}/resolve",
        json={"action": "accept_delay", "note": "customer agreed"},
    )
    assert code == 200 and resolved["at_risk"] is False, resolved
    assert resolved["requested_delivery_date"] == "2027-01-20"
    _, again, _ = await admin.get(f"/v1/orders/{order_id}")  # read back: the accepted date was saved
    assert again["requested_delivery_date"] == "2027-01-20" and again["at_risk"] is False, again
    entry = resolved["changes"][-1]
    assert entry["kinds"] == ["accept_delay"] and entry["changes"] == [
        {
            "field": "requested_delivery_date",
            "before": order["requested_delivery_date"],
            "after": "2027-01-20",
        }
    ]
    event = await eventually(lambda: _first(changed))
    assert (
        event.order.order.requested_delivery_date == "2027-01-20"
        and event.order.expected_date == "2027-01-20"
    )
    await sub.unsubscribe()
    # on time is measured against the accepted date: the shipment's promise follows
    await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items[0]["promised_delivery_date"] == "2027-01-20",
    )


async def test_units_missing_at_picking_are_split_off_and_come_later(
    shop, warehouse_operator, admin, eventually
):
    order_id, sid, sku = await allocated_order(shop, warehouse_operator, admin, eventually, quantity=5)
    await step(warehouse_operator, sid, "picked")
    code, reported, _ = await warehouse_operator.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "stock_shortage_at_pick",
            "cause": "2 missing in the bin",
            "sku": sku,
            "warehouse": "WH-HAM",
            "quantity": 2,
        },
    )
    assert code == 201, reported
    eid = reported["exceptions"][0]["exception_id"]
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "reallocate"}
    )
    assert code == 409 and problem["rule"] == "no_stock_elsewhere", problem  # nowhere else: split instead

    code, parent, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "split_delivery"}
    )
    assert code == 200, parent
    assert (
        parent["status"] == "allocated"
        and not parent["at_risk"]
        and parent["split_into"] == [f"{order_id}-2"]
    )
    assert [(x["sku"], x["quantity"]) for x in parent["lines"]] == [(sku, 3)]
    assert {wh: (lv["on_hand"], lv["reserved"]) for wh, lv in (await levels(admin, sku)).items()} == {
        "WH-HAM": (3, 3)
    }  # the missing units are written off, the parent holds the 3 on the shelf
    # the picked shipment now carries the 3 and ships them
    [shipment] = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items[0]["lines"] == [{"sku": sku, "quantity": 3}],
    )
    for kind in ("packed", "shipped", "delivered"):
        await step(warehouse_operator, shipment["shipment_id"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "completed")

    child = await wait_for(shop, f"{order_id}-2", eventually, lambda o: o["status"] == "scheduled")
    assert [(x["sku"], x["quantity"]) for x in child["lines"]] == [(sku, 2)]
    code, body, _ = await admin.post(
        "/v1/admin/receipts",
        json={"warehouse": "WH-HAM", "sku": sku, "quantity": 2, "reference": f"GRN-{uuid.uuid4().hex[:8]}"},
    )
    assert code == 200, body
    await wait_for(shop, f"{order_id}-2", eventually, lambda o: o["status"] == "allocated")
    [later] = await shipments_of(warehouse_operator, f"{order_id}-2", eventually)
    assert later["lines"] == [{"sku": sku, "quantity": 2}]
