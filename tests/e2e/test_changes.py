"""Change requests through every real process: PATCH /v1/orders/{id} and cancel of lines, each change type
accepted and refused by the policy table, If-Match (412 stale, 428 missing), intake's review, inventory's
reservation and shipping's shipments following the change, order.changed on NATS."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from orderdesk.v1 import events_pb2

pytestmark = pytest.mark.e2e

CUSTOMER = "C0001"  # standard, active, NET30, ships to FR
HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
NEW_ADDRESS = {
    "name": "Buyer GmbH",
    "line1": "1 Neue Strasse",
    "city": "Hamburg",
    "postal_code": "20095",
    "country": "DE",
    "phone": "+49-40-123456",
}


def new_sku() -> str:
    return f"CHG-{uuid.uuid4().hex[:8].upper()}"


async def add_product(admin, sku: str, stock: dict[str, int]) -> None:
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=HEADER + f"{sku},Change part {sku},10.00,USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    rows = "".join(f"{sku},{wh},{qty}\n" for wh, qty in stock.items())
    status, body, _ = await admin.post(
        "/v1/admin/import/stock", data="sku,warehouse,on_hand\n" + rows, headers={"Content-Type": "text/csv"}
    )
    assert status == 200, body


async def submit(shop, lines: dict[str, int]) -> str:
    body = {
        "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
        "customer_id": CUSTOMER,
        "payment_terms": "NET30",
        "lines": [{"sku": s, "quantity": q, "unit_price": "10.00"} for s, q in lines.items()],
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


async def allocated_order(shop, admin, eventually, lines: dict[str, int], stock: int = 10) -> dict:
    for sku in lines:
        await add_product(admin, sku, {"WH-HAM": stock})
    order_id = await submit(shop, lines)
    return await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")


async def patch(partner, order_id: str, body: dict, version: int | None):
    headers = {} if version is None else {"If-Match": f'"{version}"'}
    return await partner.request("PATCH", f"/v1/orders/{order_id}", json=body, headers=headers)


async def patch_fresh(partner, order_id: str, body: dict, path: str = ""):
    """As a partner does it: read the order's ETag, send the change with it; on 412 (the order moved on
    meanwhile, e.g. a shipment step) read again and retry."""
    for _ in range(5):
        _, _, headers = await partner.get(f"/v1/orders/{order_id}")
        if path:
            answer = await partner.post(path, json=body, headers={"If-Match": headers["ETag"]})
        else:
            answer = await partner.request(
                "PATCH", f"/v1/orders/{order_id}", json=body, headers={"If-Match": headers["ETag"]}
            )
        if answer[0] != 412:
            return answer
    return answer


async def shipments_of(operator, order_id: str, eventually, check=lambda items: bool(items)) -> list[dict]:
    async def poll():
        code, body, _ = await operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"] if code == 200 and check(body["items"]) else None

    return await eventually(poll)


async def step(operator, shipment_id: str, kind: str) -> None:
    body = {"type": kind}
    if kind == "shipped":
        body |= {"carrier": "DHL", "tracking_number": f"TRK{uuid.uuid4().hex[:8]}"}
    code, answer, _ = await operator.post(f"/v1/shipments/{shipment_id}/events", json=body)
    assert code == 200, answer


async def reserved(admin, sku: str) -> int:
    code, body, _ = await admin.get(f"/v1/inventory/{sku}")
    assert code == 200, body
    return sum(w["reserved"] for w in body["warehouses"])


async def test_etag_and_if_match_rules(shop, admin, eventually):
    sku = new_sku()
    order = await allocated_order(shop, admin, eventually, {sku: 2})
    await wait_for(
        shop, order["order_id"], eventually, lambda o: bool(o["shipments"])
    )  # then nothing moves it
    code, body, headers = await shop.get(f"/v1/orders/{order['order_id']}")
    assert code == 200 and headers["ETag"] == f'"{body["version"]}"'
    code, problem, _ = await patch(shop, order["order_id"], {"ship_to": NEW_ADDRESS}, None)
    assert code == 428 and problem["status"] == 428
    code, problem, _ = await patch(shop, order["order_id"], {"ship_to": NEW_ADDRESS}, body["version"] - 1)
    assert code == 412 and problem["rule"] == "stale_version"
    code, problem, _ = await shop.request(
        "PATCH",
        f"/v1/orders/{order['order_id']}",
        json={"ship_to": NEW_ADDRESS},
        headers={"If-Match": "yesterday"},
    )
    assert code == 422 and problem["errors"][0]["field"] == "If-Match"
    code, problem, _ = await patch(shop, order["order_id"], {}, body["version"])
    assert code == 422 and problem["errors"][0]["field"] == "body"
    code, problem, _ = await patch(
        shop, order["order_id"], {"lines": [{"sku": "NOPE", "quantity": 1}]}, body["version"]
    )
    assert code == 422 and problem["errors"][0]["field"] == "lines[0].sku"
    _, after, _ = await shop.get(f"/v1/orders/{order['order_id']}")
    assert after["version"] == body["version"] and after["changes"] == []  # nothing changed


async def test_concurrent_edits_with_one_version_one_wins(shop, edi, admin, eventually):
    sku = new_sku()
    order = await allocated_order(shop, admin, eventually, {sku: 4})
    # once the order has heard of its shipment, nothing else moves its version
    order = await wait_for(shop, order["order_id"], eventually, lambda o: bool(o["shipments"]))
    version = order["version"]
    results = await asyncio.gather(
        patch(shop, order["order_id"], {"lines": [{"sku": sku, "quantity": 3}]}, version),
        patch(shop, order["order_id"], {"lines": [{"sku": sku, "quantity": 5}]}, version),
    )
    codes = sorted(code for code, _, _ in results)
    assert codes == [200, 412], [body for _, body, _ in results]
    winner = next(body for code, body, _ in results if code == 200)
    _, now, _ = await shop.get(f"/v1/orders/{order['order_id']}")
    assert (
        now["lines"][0]["quantity"] == winner["lines"][0]["quantity"]
    )  # (shipment updates bump the version)
    assert await reserved(admin, sku) == winner["lines"][0]["quantity"]
    # another partner's order is not found, whatever the version
    code, _, _ = await patch(edi, order["order_id"], {"lines": [{"sku": sku, "quantity": 1}]}, now["version"])
    assert code == 404


async def test_address_change_until_a_shipment_is_packed(shop, warehouse_operator, admin, nc, eventually):
    sku = new_sku()
    order = await allocated_order(shop, admin, eventually, {sku: 2})
    order_id = order["order_id"]
    seen: list[events_pb2.Event] = []

    async def collect(msg):
        seen.append(events_pb2.Event.FromString(msg.data))

    sub = await nc.subscribe(f"orderdesk.order.{order_id}.changed", cb=collect)
    code, changed, headers = await patch_fresh(
        shop, order_id, {"ship_to": NEW_ADDRESS, "reason": "moved office"}
    )
    assert code == 200, changed
    assert (
        headers["ETag"] == f'"{changed["version"]}"'
        and changed["changes"][-1]["version"] == changed["version"]
    )
    assert changed["ship_to"]["city"] == "Hamburg" and changed["status"] == "allocated"
    entry = changed["changes"][-1]
    assert (
        entry["actor"] and entry["at"] and entry["kinds"] == ["ship_to"] and entry["reason"] == "moved office"
    )
    assert {"field": "ship_to.city", "before": order["ship_to"]["city"], "after": "Hamburg"} in entry[
        "changes"
    ]
    event = await eventually(lambda: _first(seen))
    assert event.type == "order.changed" and event.aggregate_version == changed["version"]
    assert any(c.field == "ship_to.city" and c.after == "Hamburg" for c in event.order.changes)
    assert event.order.order.ship_to.city == "Hamburg"
    await sub.unsubscribe()

    shipment = (await shipments_of(warehouse_operator, order_id, eventually))[0]
    await step(warehouse_operator, shipment["shipment_id"], "picked")
    await step(warehouse_operator, shipment["shipment_id"], "packed")
    await wait_for(shop, order_id, eventually, lambda o: o["shipments"][0]["status"] == "packed")
    code, problem, _ = await patch_fresh(shop, order_id, {"ship_to": NEW_ADDRESS | {"city": "Bremen"}})
    assert code == 409 and problem["rule"] == "address_until_packed", problem
    # cancellation of some units is still possible before the parcel leaves
    code, cancelled, _ = await shop.post(
        f"/v1/orders/{order_id}/cancel",
        json={"lines": [{"sku": sku, "quantity": 1}], "reason": "one is enough"},
    )
    assert code == 200 and cancelled["lines"][0]["quantity"] == 1, cancelled
    assert await eventually(lambda: _reserved_is(admin, sku, 1))
    lines = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items[0]["lines"] == [{"sku": sku, "quantity": 1}],
    )
    assert lines[0]["status"] == "packed"


async def _first(items):
    return items[0] if items else None


async def _reserved_is(admin, sku: str, units: int):
    return await reserved(admin, sku) == units


async def test_quantity_up_and_down_until_picked(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    order = await allocated_order(shop, admin, eventually, {sku: 3}, stock=6)
    order_id = order["order_id"]
    code, up, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": sku, "quantity": 5}]})
    assert code == 200, up
    assert (
        up["lines"][0]["quantity"] == 5
        and up["lines"][0]["allocated_quantity"] == 5
        and up["status"] == "allocated"
    )
    assert {"field": f"lines[{sku}].quantity", "before": "3", "after": "5"} in up["changes"][-1]["changes"]
    assert up["total_amount"] == "50.00"
    assert await reserved(admin, sku) == 5
    await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items and items[0]["lines"] == [{"sku": sku, "quantity": 5}],
    )

    code, problem, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": sku, "quantity": 9}]})
    assert code == 409 and problem["rule"] == "change_needs_stock", problem  # 6 in stock
    assert await reserved(admin, sku) == 5  # the reservation is as it was

    code, down, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": sku, "quantity": 2}]})
    assert code == 200 and down["lines"][0]["quantity"] == 2, down
    assert await reserved(admin, sku) == 2
    shipments = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: items and items[0]["lines"] == [{"sku": sku, "quantity": 2}],
    )

    await step(warehouse_operator, shipments[0]["shipment_id"], "picked")
    await wait_for(shop, order_id, eventually, lambda o: o["shipments"][0]["status"] == "picked")
    code, problem, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": sku, "quantity": 1}]})
    assert code == 409 and problem["rule"] == "quantity_until_picked", problem


async def test_add_and_remove_lines_until_picking(shop, warehouse_operator, admin, eventually):
    a, b, c = new_sku(), new_sku(), new_sku()
    order = await allocated_order(shop, admin, eventually, {a: 1, b: 2})
    await add_product(admin, c, {"WH-HAM": 5})
    order_id = order["order_id"]
    code, changed, _ = await patch_fresh(
        shop, order_id, {"add_lines": [{"sku": c, "quantity": 2, "unit_price": "10.00"}], "remove_lines": [b]}
    )
    assert code == 200, changed
    assert [(x["sku"], x["quantity"], x["allocated_quantity"]) for x in changed["lines"]] == [
        (a, 1, 1),
        (c, 2, 2),
    ]
    fields = {(x["field"], x["before"], x["after"]) for x in changed["changes"][-1]["changes"]}
    assert (f"lines[{b}]", "2 x 10.00", "") in fields and (f"lines[{c}]", "", "2 x 10.00") in fields
    assert await reserved(admin, b) == 0 and await reserved(admin, c) == 2
    shipments = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: (
            items and sorted((x["sku"], x["quantity"]) for x in items[0]["lines"]) == sorted([(a, 1), (c, 2)])
        ),
    )

    # A new line at a price the customer does not have: intake's price check refuses the change.
    d = new_sku()
    await add_product(admin, d, {"WH-HAM": 5})
    code, problem, _ = await patch_fresh(
        shop, order_id, {"add_lines": [{"sku": d, "quantity": 1, "unit_price": "1.00"}]}
    )
    assert code == 409 and problem["rule"] == "change_fails_check" and "price" in problem["detail"], problem

    await step(warehouse_operator, shipments[0]["shipment_id"], "picked")
    await wait_for(shop, order_id, eventually, lambda o: o["shipments"][0]["status"] == "picked")
    code, problem, _ = await patch_fresh(shop, order_id, {"remove_lines": [a]})
    assert code == 409 and problem["rule"] == "lines_until_picking", problem
    code, problem, _ = await patch_fresh(
        shop, order_id, {"add_lines": [{"sku": d, "quantity": 1, "unit_price": "10.00"}]}
    )
    assert code == 409 and problem["rule"] == "lines_until_picking", problem


async def test_early_order_changes_freely_and_cancel_of_every_line_cancels_it(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, {"WH-HAM": 5})
    order_id = await submit(shop, {sku: 2})
    code, changed, _ = await patch_fresh(
        shop, order_id, {"ship_to": NEW_ADDRESS, "lines": [{"sku": sku, "quantity": 3}]}
    )
    assert code == 200 and set(changed["changes"][-1]["kinds"]) == {"ship_to", "quantity"}, changed
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/cancel", json={"lines": [{"sku": sku, "quantity": 4}]}
    )
    assert code == 422 and problem["errors"][0]["field"] == "lines[0].quantity"
    code, cancelled, _ = await patch_fresh(
        shop, order_id, {"lines": [{"sku": sku, "quantity": 3}]}, path=f"/v1/orders/{order_id}/cancel"
    )
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    assert await eventually(lambda: _reserved_is(admin, sku, 0))
    code, problem, _ = await patch_fresh(shop, order_id, {"ship_to": NEW_ADDRESS | {"city": "Kiel"}})
    assert code == 409 and problem["rule"] == "order_closed"


async def test_nothing_changes_after_shipment_except_returns(shop, warehouse_operator, admin, eventually):
    sku = new_sku()
    order = await allocated_order(shop, admin, eventually, {sku: 1})
    shipment = (await shipments_of(warehouse_operator, order["order_id"], eventually))[0]
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, shipment["shipment_id"], kind)
    await wait_for(shop, order["order_id"], eventually, lambda o: o["status"] == "shipped")
    for body in ({"ship_to": NEW_ADDRESS}, {"lines": [{"sku": sku, "quantity": 2}]}):
        code, problem, _ = await patch_fresh(shop, order["order_id"], body)
        assert code == 409 and problem["rule"] == "returns_only_after_shipment", problem
    code, problem, _ = await shop.post(
        f"/v1/orders/{order['order_id']}/cancel", json={"lines": [{"sku": sku, "quantity": 1}]}
    )
    assert code == 409 and problem["rule"] == "returns_only_after_shipment", problem


async def test_the_remainder_of_a_partially_shipped_order_cancelled(
    shop, warehouse_operator, admin, nc, eventually
):
    """Two lines from two warehouses; one ships. The rest changes as an allocated order's would, never below
    what shipped; the partner's cancel then cancels the rest: its stock is released once, its shipment (not
    yet picked) is cancelled, the order ends shipped with the cancelled units in its changes."""
    a, b = new_sku(), new_sku()
    await add_product(admin, a, {"WH-HAM": 5})
    await add_product(admin, b, {"WH-CHI": 5})
    order_id = await submit(shop, {a: 2, b: 3})
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    shipments = await shipments_of(warehouse_operator, order_id, eventually, lambda items: len(items) == 2)
    by_warehouse = {s["warehouse"]: s["shipment_id"] for s in shipments}
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, by_warehouse["WH-HAM"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "partially_shipped")
    assert await eventually(lambda: _reserved_is(admin, a, 0))  # inventory booked the parcel

    # The units that shipped cannot be taken back by a change; the remainder changes until it is picked.
    code, problem, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": a, "quantity": 1}]})
    assert code == 422 and problem["errors"] == [
        {"field": "lines[0].quantity", "message": "2 already shipped", "reason": "below_shipped"}
    ], problem
    code, fewer, _ = await patch_fresh(shop, order_id, {"lines": [{"sku": b, "quantity": 2}]})
    assert code == 200 and fewer["status"] == "partially_shipped", fewer
    assert await reserved(admin, b) == 2
    await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: any(
            x["lines"] == [{"sku": b, "quantity": 2}] for x in items if x["warehouse"] == "WH-CHI"
        ),
    )

    seen: list[events_pb2.Event] = []

    async def collect(msg):
        seen.append(events_pb2.Event.FromString(msg.data))

    sub = await nc.subscribe(f"orderdesk.order.{order_id}.>", cb=collect)
    # The order may still move on (orders hearing of the changed shipment): read again on 412, as a partner does.
    code, done, _ = await patch_fresh(
        shop,
        order_id,
        {"reason": "customer_request: the rest is no longer needed"},
        path=f"/v1/orders/{order_id}/cancel",
    )
    assert code == 200, done
    assert done["status"] == "shipped"
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in done["lines"]] == [(a, 2, 2)]
    last = done["changes"][-1]
    assert (
        last["kinds"] == ["cancel_lines"]
        and {"field": f"lines[{b}]", "before": "2 x 10.00", "after": ""} in (last["changes"])
    )
    assert [h["status"] for h in done["history"]][-2:] == ["partially_shipped", "shipped"]
    assert await reserved(admin, b) == 0 and await reserved(admin, a) == 0  # released at once, nothing else

    # Shipping cancels the shipment of the rest (not picked); the parcel that left is as it was.
    after = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: (
            {x["warehouse"]: x["status"] for x in items} == {"WH-HAM": "shipped", "WH-CHI": "cancelled"}
        ),
    )
    assert [x["lines"] for x in after if x["warehouse"] == "WH-HAM"] == [[{"sku": a, "quantity": 2}]]
    # Partners hear it: order.shipped, then order.changed with the cancelled units.
    await eventually(lambda: _first([e for e in seen if e.type == "order.changed"]))
    types = [e.type for e in seen]
    assert types.index("order.shipped") < types.index("order.changed"), types
    changed = next(e for e in seen if e.type == "order.changed")
    assert any(c.field == f"lines[{b}]" and c.before == "2 x 10.00" for c in changed.order.changes)
    await sub.unsubscribe()

    # Again: nothing is left to cancel, said clearly; nothing moves.
    settled = await wait_for(
        shop,
        order_id,
        eventually,
        lambda o: sorted(x["status"] for x in o["shipments"]) == ["cancelled", "shipped"],
    )
    code, problem, _ = await shop.post(f"/v1/orders/{order_id}/cancel", json={"reason": "again"})
    assert code == 409 and problem["rule"] == "cancel_before_shipment", problem
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/cancel", json={"lines": [{"sku": a, "quantity": 1}]}
    )
    assert code == 409 and problem["rule"] == "returns_only_after_shipment", problem
    code, again, _ = await shop.get(f"/v1/orders/{order_id}")
    # Nothing moved: what the refused cancels would have changed is as it was (the version may still move
    # with the promise watch's own look at the order, which is not the partner's doing).
    assert code == 200 and again["status"] == "shipped", again
    assert (again["lines"], again["shipments"], again["changes"]) == (
        settled["lines"],
        settled["shipments"],
        settled["changes"],
    )
    assert await reserved(admin, b) == 0


async def test_the_remainder_of_a_partially_shipped_order_split(
    shop, warehouse_operator, admin, nc, eventually
):
    """Two lines from two warehouses; one ships. A split delivery then takes only units not yet shipped: more
    than that is 422 naming details.split_lines and moves nothing; 2 of the 3 units still in the warehouse go
    to a linked order. The shipped units stay on the order, its shipment still in the warehouse is revised,
    the linked order is reserved and shipped on its own, and inventory holds each unit once."""
    a, b = new_sku(), new_sku()
    await add_product(admin, a, {"WH-HAM": 5})
    await add_product(admin, b, {"WH-CHI": 5})
    order_id = await submit(shop, {a: 2, b: 3})
    child_id = f"{order_id}-2"
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    shipments = await shipments_of(warehouse_operator, order_id, eventually, lambda items: len(items) == 2)
    by_warehouse = {s["warehouse"]: s["shipment_id"] for s in shipments}
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, by_warehouse["WH-HAM"], kind)
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "partially_shipped")
    code, order, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions",
        json={
            "type": "quality_rework",
            "cause": "finish out of tolerance",
            "expected_date": "2027-02-01",
            "sku": b,
        },
    )
    assert code == 201, order
    eid = order["exceptions"][0]["exception_id"]
    resolve = f"/v1/orders/{order_id}/exceptions/{eid}/resolve"

    # More than the unshipped remainder: refused naming the field; nothing moves.
    for asked, message in (
        (f"{a}=1", f"1 of {a} asked; 0 not yet shipped (2 shipped)"),
        (f"{b}=4", f"4 of {b} asked; 3 not yet shipped"),
    ):
        code, problem, _ = await admin.post(
            resolve, json={"action": "split_delivery", "details": {"split_lines": asked}}
        )
        assert code == 422 and problem["errors"] == [
            {"field": "details.split_lines", "message": message, "reason": "beyond_remainder"}
        ], problem
    _, same, _ = await admin.get(f"/v1/orders/{order_id}")
    assert same["version"] == order["version"] and same["split_into"] == [] and same["at_risk"], same
    assert await reserved(admin, b) == 3 and await reserved(admin, a) == 0

    changed: list[events_pb2.Event] = []
    born: list[events_pb2.Event] = []

    async def on_changed(msg):
        changed.append(events_pb2.Event.FromString(msg.data))

    async def on_child(msg):
        born.append(events_pb2.Event.FromString(msg.data))

    sub = await nc.subscribe(f"orderdesk.order.{order_id}.changed", cb=on_changed)
    child_sub = await nc.subscribe(f"orderdesk.order.{child_id}.*", cb=on_child)
    code, parent, _ = await admin.post(
        resolve,
        json={
            "action": "split_delivery",
            "note": "2 reworked units later",
            "details": {"split_lines": f"{b}=2"},
        },
    )
    assert code == 200, parent
    assert (
        parent["status"] == "partially_shipped"
        and parent["split_into"] == [child_id]
        and not any(e["status"] == "open" for e in parent["exceptions"])
    ), parent
    # The remainder's shipment waits to be picked: past the warehouse's cut-off (the hour the test runs) the
    # watch rightly sees that, and nothing else.
    assert {r["code"] for r in parent["risks"]} <= {"not_picked_by_cutoff"}, parent["risks"]
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in parent["lines"]] == [
        (a, 2, 2),
        (b, 1, 0),
    ]
    entry = parent["changes"][-1]
    assert entry["kinds"] == ["split_delivery"] and "2 reworked units later" in entry["reason"]
    fields = {c["field"]: (c["before"], c["after"]) for c in entry["changes"]}
    assert fields[f"lines[{b}].quantity"] == ("3", "1") and fields["split_into"] == ("", child_id)
    assert f"lines[{a}].quantity" not in fields
    assert parent["exceptions"][0]["resolution"]["details"] == {
        "split_lines": f"{b}=2",
        "split_into": child_id,
    }

    _, child, _ = await shop.get(f"/v1/orders/{child_id}")  # the partner sees the later delivery
    assert child["split_from"] == order_id and child["requested_delivery_date"] == "2027-02-01"
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in child["lines"]] == [(b, 2, 0)]
    child = await wait_for(shop, child_id, eventually, lambda o: o["status"] == "allocated")

    # Inventory: the parent holds its 1, the linked order its 2; the shipped units are gone from the shelf.
    assert await reserved(admin, b) == 3 and await reserved(admin, a) == 0
    code, stock_b, _ = await admin.get(f"/v1/inventory/{b}")
    assert [(w["warehouse"], w["on_hand"], w["reserved"]) for w in stock_b["warehouses"]] == [
        ("WH-CHI", 5, 3)
    ]
    code, stock_a, _ = await admin.get(f"/v1/inventory/{a}")
    assert [(w["warehouse"], w["on_hand"], w["reserved"]) for w in stock_a["warehouses"]] == [
        ("WH-HAM", 3, 0)
    ]

    # Shipping: the parcel that left is as it was, the parent's shipment still in the warehouse carries the 1,
    # the linked order has a shipment of its own for the 2.
    mine = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: any(
            x["lines"] == [{"sku": b, "quantity": 1}] for x in items if x["warehouse"] == "WH-CHI"
        ),
    )
    assert sorted((x["warehouse"], x["status"], x["lines"][0]["quantity"]) for x in mine) == [
        ("WH-CHI", "pending", 1),
        ("WH-HAM", "shipped", 2),
    ]
    [theirs] = await shipments_of(warehouse_operator, child_id, eventually)
    assert theirs["warehouse"] == "WH-CHI" and theirs["lines"] == [{"sku": b, "quantity": 2}]

    # Events: the parent's order.changed says what moved where; the linked order is received, confirmed, allocated.
    event = await eventually(lambda: _first(changed))
    assert {(c.field, c.after) for c in event.order.changes} >= {
        ("split_into", child_id),
        (f"lines[{b}].quantity", "1"),
    }
    await eventually(lambda: _first([e for e in born if e.type == "order.allocated"]))
    assert [e.type for e in born][:3] == ["order.received", "order.confirmed", "order.allocated"]
    await sub.unsubscribe()
    await child_sub.unsubscribe()

    # Each ships what it has: the parent is then shipped in full, the linked order too; nothing stays held.
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, by_warehouse["WH-CHI"], kind)
        await step(warehouse_operator, theirs["shipment_id"], kind)
    done = await wait_for(shop, order_id, eventually, lambda o: o["status"] == "shipped")
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in done["lines"]] == [(a, 2, 2), (b, 1, 1)]
    await wait_for(shop, child_id, eventually, lambda o: o["status"] == "shipped")
    assert await eventually(lambda: _reserved_is(admin, b, 0))
    code, stock_b, _ = await admin.get(f"/v1/inventory/{b}")
    assert [(w["warehouse"], w["on_hand"], w["reserved"]) for w in stock_b["warehouses"]] == [
        ("WH-CHI", 2, 0)
    ]


async def test_units_of_the_remainder_missing_at_picking_split_off_and_the_order_ends_shipped(
    shop, warehouse_operator, admin, eventually
):
    """The rest of a partially shipped order is short at picking: a shortage beyond what is still to ship from
    that warehouse is refused naming quantity; the whole rest missing is written off and split off, the order
    keeps what shipped and ends shipped, its picked shipment is cancelled, the linked order waits for stock."""
    a, b = new_sku(), new_sku()
    await add_product(admin, a, {"WH-HAM": 2})
    await add_product(admin, b, {"WH-CHI": 3})
    order_id = await submit(shop, {a: 2, b: 3})
    child_id = f"{order_id}-2"
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "allocated")
    shipments = await shipments_of(warehouse_operator, order_id, eventually, lambda items: len(items) == 2)
    by_warehouse = {s["warehouse"]: s["shipment_id"] for s in shipments}
    for kind in ("picked", "packed", "shipped"):
        await step(warehouse_operator, by_warehouse["WH-HAM"], kind)
    await step(warehouse_operator, by_warehouse["WH-CHI"], "picked")
    await wait_for(shop, order_id, eventually, lambda o: o["status"] == "partially_shipped")

    async def shortage(quantity: int) -> str:
        code, order, _ = await warehouse_operator.post(
            f"/v1/orders/{order_id}/exceptions",
            json={
                "type": "stock_shortage_at_pick",
                "cause": f"{quantity} missing in the bin",
                "sku": b,
                "warehouse": "WH-CHI",
                "quantity": quantity,
            },
        )
        assert code == 201, order
        return order["exceptions"][-1]["exception_id"]

    too_many = await shortage(4)
    _, before, _ = await admin.get(f"/v1/orders/{order_id}")
    code, problem, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{too_many}/resolve", json={"action": "split_delivery"}
    )
    assert code == 422 and problem["errors"] == [
        {
            "field": "quantity",
            "message": f"4 of {b} missing at WH-CHI; 3 still to ship from there",
            "reason": "beyond_remainder",
        }
    ], problem
    _, same, _ = await admin.get(f"/v1/orders/{order_id}")
    assert same["version"] == before["version"] and same["split_into"] == []
    code, stock_b, _ = await admin.get(f"/v1/inventory/{b}")
    assert [(w["on_hand"], w["reserved"]) for w in stock_b["warehouses"]] == [(3, 3)]  # nothing written off

    eid = await shortage(3)
    code, parent, _ = await admin.post(
        f"/v1/orders/{order_id}/exceptions/{eid}/resolve", json={"action": "split_delivery"}
    )
    assert code == 200, parent
    assert parent["status"] == "shipped" and parent["split_into"] == [child_id]
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in parent["lines"]] == [(a, 2, 2)]
    assert [h["status"] for h in parent["history"]][-2:] == ["partially_shipped", "shipped"]
    assert parent["changes"][-1]["kinds"] == ["split_delivery"]
    code, stock_b, _ = await admin.get(f"/v1/inventory/{b}")
    assert [(w["on_hand"], w["reserved"]) for w in stock_b["warehouses"]] == [(0, 0)]  # the 3 written off
    code, stock_a, _ = await admin.get(f"/v1/inventory/{a}")
    assert [(w["on_hand"], w["reserved"]) for w in stock_a["warehouses"]] == [
        (0, 0)
    ]  # the parcel's 2 stay gone

    child = await wait_for(shop, child_id, eventually, lambda o: o["status"] == "scheduled")
    assert [(x["sku"], x["quantity"]) for x in child["lines"]] == [(b, 3)]
    after = await shipments_of(
        warehouse_operator,
        order_id,
        eventually,
        lambda items: (
            {x["warehouse"]: x["status"] for x in items} == {"WH-HAM": "shipped", "WH-CHI": "cancelled"}
        ),
    )
    assert [x["lines"] for x in after if x["warehouse"] == "WH-HAM"] == [[{"sku": a, "quantity": 2}]]
