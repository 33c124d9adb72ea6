"""Issue 14's claims through every real process: goods delivered wrong or damaged, nothing sent back.

A wrong item: the shop's customer ordered a mug and got a plate. The claim (decided by the shop's API key
as it is made) replaces the mug without a return: ONE replacement order through intake (real gRPC, real
NATS: returns consumes its own return.claim_resolved), confirmed and allocated like any order; inventory
consumes return.claim_opened and corrects both counts (the mug never left: +1; the plate did: -1), with the
claim id in each correction's reference, read back from the SKUs' stock.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.test_exchanges import fields_of, original_shows
from tests.e2e.test_lifecycle import (
    add_product,
    new_sku,
    order_body,
    ship_everything,
    stock,
    submit,
    wait_status,
)
from tests.e2e.test_webhooks import feed_of_order

pytestmark = pytest.mark.e2e


async def delivered_order(shop, warehouse_operator, admin, eventually, sku: str, quantity: int, price: str):
    code, created, _ = await submit(shop, order_body(sku, quantity, price=price))
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    return await wait_status(shop, order_id, "completed", eventually)


async def test_a_wrong_item_claim_replaced_without_a_return(shop, warehouse_operator, admin, eventually):
    mug, plate = new_sku(), new_sku()
    await add_product(admin, mug, price="12.00", stock={"WH-HAM": 5})
    await add_product(admin, plate, price="9.00", stock={"WH-HAM": 5})

    # not delivered yet: refused, naming the field
    code, created, _ = await submit(shop, order_body(mug, 1, price="12.00"))
    assert code == 201, created
    code, problem, _ = await shop.post(
        f"/v1/orders/{created['order_id']}/claims",
        json={
            "reason": "wrong_item",
            "lines": [{"sku": mug, "quantity": 1, "resolution": "replace", "sent_sku": plate}],
        },
    )
    assert code == 422 and fields_of(problem) == {"order_id"}, problem
    await wait_status(shop, created["order_id"], "allocated", eventually)
    await ship_everything(shop, warehouse_operator, created["order_id"], eventually)
    original = await wait_status(shop, created["order_id"], "completed", eventually)
    order_id = original["order_id"]

    async def shipped_from_stock():  # orders says completed before inventory has consumed the shipment
        return (await stock(admin, mug))["WH-HAM"]["on_hand"] == 4 or None

    await eventually(shipped_from_stock)
    before = {sku: (await stock(admin, sku))["WH-HAM"]["on_hand"] for sku in (mug, plate)}

    line = {"sku": mug, "quantity": 1, "resolution": "replace", "sent_sku": plate}
    for bad, field in (
        ({"quantity": 2}, "lines[0].quantity"),  # more than was delivered
        ({"sent_sku": ""}, "lines[0].sent_sku"),  # a wrong item names what was sent
    ):
        code, problem, _ = await shop.post(
            f"/v1/orders/{order_id}/claims", json={"reason": "wrong_item", "lines": [{**line, **bad}]}
        )
        assert code == 422 and field in fields_of(problem), problem
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/claims", json={"reason": "lost_in_space", "lines": [line]}
    )
    assert code == 422 and "reason" in fields_of(problem), problem

    body = {"reason": "wrong_item", "evidence": "photo IMG-1 shows a plate", "lines": [line]}
    code, claim, _ = await shop.post(
        f"/v1/orders/{order_id}/claims", json=body, headers={"Idempotency-Key": f"claim-{order_id}"}
    )
    assert code == 201, claim
    claim_id = claim["rma_id"]
    assert (claim["kind"], claim["claim_reason"], claim["goods_back"]) == ("claim", "wrong_item", False)
    assert claim["evidence"] == "photo IMG-1 shows a plate" and claim["decided_by"]
    assert (claim["status"], claim["refund_amount"]) == ("refunded", "0.00")
    (cline,) = claim["lines"]
    assert (cline["resolution"], cline["exchange_sku"], cline["sent_sku"]) == ("replace", mug, plate)
    code, again, _ = await shop.post(  # a retry makes nothing new
        f"/v1/orders/{order_id}/claims", json=body, headers={"Idempotency-Key": f"claim-{order_id}"}
    )
    assert code == 201 and again["rma_id"] == claim_id, again

    async def linked():
        code, ret, _ = await shop.get(f"/v1/returns/{claim_id}")
        assert code == 200, ret
        return ret if ret["exchange_order_id"] else None

    ret = await eventually(linked)
    replacement_id = ret["exchange_order_id"]
    assert ret["exchange_status"] == "created" and (ret["to_charge"], ret["to_credit"]) == ("0.00", "0.00")
    replacement = await wait_status(shop, replacement_id, "allocated", eventually)
    assert (replacement["channel"], replacement["external_ref"]) == ("exchange", claim_id)
    assert replacement["customer_id"] == original["customer_id"]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in replacement["lines"]] == [(mug, 1, "12.00")]
    code, page, _ = await shop.get(f"/v1/orders?external_ref={claim_id}")
    assert code == 200 and [o["order_id"] for o in page["items"]] == [replacement_id], page
    code, listed, _ = await shop.get(f"/v1/orders/{order_id}/claims")
    assert code == 200 and [c["rma_id"] for c in listed["items"]] == [claim_id], listed

    # the stock correction: the mug never left, the plate did; the claim id on both
    async def corrected():
        code, body, _ = await admin.get(f"/v1/inventory/{plate}")
        assert code == 200, body
        refs = [r["reference"] for r in body["recent_receipts"]]
        return body if f"claim:{claim_id}:0:sent" in refs else None

    plate_stock = await eventually(corrected)
    (sent,) = [r for r in plate_stock["recent_receipts"] if claim_id in r["reference"]]
    assert (sent["warehouse"], sent["quantity"]) == ("WH-HAM", -1)
    assert {w["warehouse"]: w for w in plate_stock["warehouses"]}["WH-HAM"]["on_hand"] == before[plate] - 1
    code, mug_stock, _ = await admin.get(f"/v1/inventory/{mug}")
    (kept,) = [r for r in mug_stock["recent_receipts"] if claim_id in r["reference"]]
    assert (kept["reference"], kept["warehouse"], kept["quantity"]) == (
        f"claim:{claim_id}:0:kept",
        "WH-HAM",
        1,
    )
    # +1 found, then 1 reserved by the replacement (on hand counts it until it ships)
    assert (await stock(admin, mug))["WH-HAM"]["on_hand"] == before[mug] + 1

    # the shop's feed: the claim opened and resolved on the original order
    events = await feed_of_order(shop, order_id, "return.exchange_created", eventually, prefix="return.")
    types = [e["type"] for e in events]
    assert types.count("return.claim_opened") == 1 and types.count("return.claim_resolved") == 1, types

    # the desk's numbers: the claimed mug by SKU and by the claim's reason (orders consumes claim_resolved)
    today = dt.datetime.now(dt.UTC).date()
    period = f"from={today - dt.timedelta(days=1)}&to={today + dt.timedelta(days=1)}"

    async def counted():
        code, report, _ = await admin.get(f"/v1/reports/kpis?{period}")
        assert code == 200, report
        mine = [r for r in report["claims_by_sku"] if r["sku"] == mug]
        return (report, mine) if mine else None

    report, (mine,) = await eventually(counted)
    assert mine["units"] == 1 and mine["base_units"] >= 1, mine
    assert any(r["reason"] == "wrong_item" and r["units"] >= 1 for r in report["claims_by_reason"]), report


async def test_a_damaged_in_transit_claim_opens_a_carrier_claim(shop, warehouse_operator, admin, eventually):
    vase = new_sku()
    await add_product(admin, vase, price="30.00", stock={"WH-HAM": 5})
    original = await delivered_order(shop, warehouse_operator, admin, eventually, vase, 3, "30.00")
    order_id = original["order_id"]

    body = {
        "reason": "damaged_in_transit",
        "evidence": "box crushed, two vases broken (photos 4-5)",
        "lines": [{"sku": vase, "quantity": 2, "resolution": "refund"}],
    }
    code, claim, _ = await admin.post(f"/v1/orders/{order_id}/claims", json=body)  # the desk decides
    assert code == 201, claim
    claim_id = claim["rma_id"]
    assert (claim["status"], claim["refund_amount"], claim["exchange_status"]) == ("refunded", "60.00", None)
    assert claim["decided_by"] and claim["lines"][0]["refund_amount"] == "60.00"
    code, problem, _ = await shop.post(  # only the one vase left undamaged can still be claimed
        f"/v1/orders/{order_id}/claims",
        json={**body, "lines": [{"sku": vase, "quantity": 2, "resolution": "refund"}]},
    )
    assert code == 422 and fields_of(problem) == {"lines[0].quantity"}, problem

    async def carrier_claimed():
        code, page, _ = await warehouse_operator.get(f"/v1/shipments?order_id={order_id}")
        assert code == 200, page
        claims = [c for s in page["items"] for c in s["carrier_claims"]]
        return (page["items"], claims) if claims else None

    shipments, (carrier_claim,) = await eventually(carrier_claimed)
    (shipment,) = shipments
    assert (carrier_claim["rma_id"], carrier_claim["status"]) == (claim_id, "open")
    assert (carrier_claim["carrier"], carrier_claim["tracking_number"]) == (
        shipment["carrier"],
        shipment["tracking_number"],
    )
    assert [(x["sku"], x["quantity"]) for x in carrier_claim["lines"]] == [(vase, 2)]
    assert carrier_claim["reason"] == body["evidence"]

    # the refund stands on the claim; no replacement order was made
    code, ret, _ = await shop.get(f"/v1/returns/{claim_id}")
    assert code == 200 and (ret["refund_amount"], ret["exchange_order_id"]) == ("60.00", None), ret
    events = await feed_of_order(shop, order_id, "return.claim_resolved", eventually, prefix="return.")
    assert [e["type"] for e in events][-2:] == ["return.claim_opened", "return.claim_resolved"]
    assert events[-1]["amount"] == "60.00"


async def test_a_claim_with_the_goods_back_is_refunded_in_full_once_inspected(
    stack, shop, warehouse_operator, admin, eventually
):
    """goods_back: the claim waits for the goods like a return; once received and inspected it is refunded
    in full whatever the inspection says (a customer's fault outcome keeps nothing back), and its replaced
    line is entered then as ONE replacement order, which the original order names."""
    vase, bowl = new_sku(), new_sku()
    await add_product(admin, vase, price="30.00", stock={"WH-HAM": 5})
    await add_product(admin, bowl, price="15.00", stock={"WH-HAM": 5})
    code, created, _ = await submit(
        shop,
        {
            **order_body(vase, 2, price="30.00"),
            "lines": [
                {"sku": vase, "quantity": 2, "unit_price": "30.00"},
                {"sku": bowl, "quantity": 1, "unit_price": "15.00"},
            ],
        },
    )
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)

    body = {
        "reason": "damaged_in_transit",
        "evidence": "both vases and the bowl cracked (photos 7-9); sent back",
        "goods_back": True,
        "lines": [
            {"sku": vase, "quantity": 2, "resolution": "refund"},
            {"sku": bowl, "quantity": 1, "resolution": "replace"},
        ],
    }
    code, claim, _ = await shop.post(f"/v1/orders/{order_id}/claims", json=body)
    assert code == 201, claim
    claim_id = claim["rma_id"]
    assert (claim["kind"], claim["goods_back"], claim["status"]) == ("claim", True, "authorized"), claim
    assert (claim["refund_amount"], claim["exchange_order_id"]) == ("0.00", None), claim

    # nothing is resolved nor replaced before the goods are in
    code, again, _ = await shop.get(f"/v1/returns/{claim_id}")
    assert code == 200 and (again["status"], again["exchange_order_id"]) == ("authorized", None), again

    code, received, _ = await warehouse_operator.post(f"/v1/returns/{claim_id}/receive")
    assert code == 200 and received["status"] == "received", received
    inspection = {
        "lines": [
            {"sku": vase, "quantity": 2, "outcome": "scrap_customer_fault"},  # still in full: it is a claim
            {"sku": bowl, "quantity": 1, "outcome": "scrap_our_fault"},
        ]
    }
    code, inspected, _ = await warehouse_operator.post(f"/v1/returns/{claim_id}/inspect", json=inspection)
    assert code == 200, inspected
    assert (inspected["status"], inspected["refund_amount"]) == ("refunded", "60.00"), inspected
    by_sku = {x["sku"]: x for x in inspected["lines"]}
    assert (by_sku[vase]["refund_amount"], by_sku[vase]["restocking_fee"]) == ("60.00", "0.00")
    assert by_sku[bowl]["refund_amount"] == "0.00"  # replaced, not refunded

    async def linked():
        code, ret, _ = await shop.get(f"/v1/returns/{claim_id}")
        assert code == 200, ret
        return ret if ret["exchange_order_id"] else None

    ret = await eventually(linked)
    replacement_id = ret["exchange_order_id"]
    assert (ret["refund_amount"], ret["to_charge"], ret["to_credit"]) == ("60.00", "0.00", "0.00")
    replacement = await wait_status(shop, replacement_id, "allocated", eventually)
    assert (replacement["channel"], replacement["external_ref"]) == ("exchange", claim_id)
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in replacement["lines"]] == [(bowl, 1, "15.00")]

    # the feed: opened, received, refunded and the replacement, each once; never resolved without the goods
    events = await feed_of_order(shop, order_id, "return.exchange_created", eventually, prefix="return.")
    types = [e["type"] for e in events if e["rma_id"] == claim_id]
    assert types == ["return.claim_opened", "return.received", "return.refunded", "return.exchange_created"]

    # the original order names the claim's replacement (orders consumes return.exchange_created)
    original, entries = await original_shows(stack, shop, order_id, claim_id, eventually)
    assert [(r["rma_id"], r["order_id"], r["kind"]) for r in original["replacements"]] == [
        (claim_id, replacement_id, "claim")
    ]
    assert [e.summary for e in entries] == [f"replacement order {replacement_id} for claim {claim_id}"]
