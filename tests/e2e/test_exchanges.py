"""Issue 14's exchange "on receipt" through every real process: a shirt returned for another size.

The shop's customer got two shirts in M and wants L. The return asks for an exchange; once the warehouse
has received and inspected the shirts, the returns service enters ONE replacement order through intake
(real gRPC, real NATS: returns consumes its own return.refunded), which is confirmed and allocated like any
order. The RMA and the replacement point at each other in the API; the shop's feed carries
return.exchange_created and then the replacement's own events.
"""

from __future__ import annotations

import pytest

from orderdesk import tls
from orderdesk.v1 import orders_pb2, orders_pb2_grpc
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


def fields_of(problem: dict) -> set[str]:
    return {e["field"] for e in problem.get("errors", [])}


async def original_shows(stack, shop, order_id: str, rma_id: str, eventually) -> tuple[dict, list]:
    """The original order once it names its replacement (orders consumed return.exchange_created): the
    partner's view of it, and the desk's timeline entries of kind replacement (gRPC, as the console)."""

    async def named():
        code, order, _ = await shop.get(f"/v1/orders/{order_id}")
        assert code == 200, order
        return order if any(r["rma_id"] == rma_id for r in order["replacements"]) else None

    order = await eventually(named)
    async with tls.aio_channel(stack.addr("orders"), stack.client_tls("console"), peer="orders") as channel:
        steps = await orders_pb2_grpc.OrdersServiceStub(channel).GetOrderTimeline(
            orders_pb2.GetOrderRequest(order_id=order_id)
        )
    return order, [e for e in steps.entries if e.kind == "replacement"]


async def test_an_exchange_for_another_size_after_receipt(stack, shop, warehouse_operator, admin, eventually):
    medium, large = new_sku(), new_sku()
    await add_product(admin, medium, price="40.00", stock={"WH-HAM": 5})
    await add_product(admin, large, price="45.00", stock={"WH-HAM": 5})
    code, created, _ = await submit(shop, order_body(medium, 2, price="40.00"))
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    original = await wait_status(shop, order_id, "completed", eventually)

    # bad exchanges are refused, the problem naming the field
    line = {"sku": medium, "quantity": 2, "reason": "too small"}
    for bad, field, status in (
        ({"exchange_sku": "NO-SUCH-SKU"}, "lines[0].exchange_sku", 422),
        ({"exchange_sku": large, "exchange_quantity": 3}, "lines[0].exchange_quantity", 422),
    ):
        code, problem, _ = await shop.post(
            f"/v1/orders/{order_id}/returns", json={"lines": [{**line, **bad}], "resolution": "exchange"}
        )
        assert code == status and field in fields_of(problem), problem
    code, problem, _ = await shop.post(
        f"/v1/orders/{order_id}/returns",
        json={"lines": [{**line, "exchange_sku": large, "exchange_quantity": 0}], "resolution": "exchange"},
    )
    assert code == 422 and any(f.endswith("exchange_quantity") for f in fields_of(problem)), problem
    code, problem, _ = await shop.post(  # the customer's tier has no advance exchange
        f"/v1/orders/{order_id}/returns",
        json={
            "lines": [{**line, "exchange_sku": large}],
            "resolution": "exchange",
            "exchange_mode": "advance",
        },
    )
    assert code == 422 and fields_of(problem) == {"exchange_mode"}, problem

    code, rma, _ = await shop.post(
        f"/v1/orders/{order_id}/returns",
        json={"lines": [{**line, "exchange_sku": large}], "resolution": "exchange"},
    )
    assert code == 201, rma
    rma_id = rma["rma_id"]
    (rline,) = rma["lines"]
    assert (rline["resolution"], rline["exchange_sku"], rline["exchange_quantity"]) == ("exchange", large, 2)
    assert rline["exchange_unit_price"] == "45.00"
    assert (rma["to_charge"], rma["to_credit"], rma["expected_refund"]) == ("10.00", "0.00", "0.00")
    assert rma["exchange_status"] == "awaiting_receipt" and rma["exchange_order_id"] is None

    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/receive")
    assert code == 200 and body["status"] == "received", body
    inspection = {"lines": [{"sku": medium, "quantity": 2, "outcome": "restock"}]}
    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/inspect", json=inspection)
    assert code == 200 and body["refund_amount"] == "0.00", body
    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/inspect", json=inspection)  # a retry
    assert code == 200, body

    async def linked():
        code, ret, _ = await shop.get(f"/v1/returns/{rma_id}")
        assert code == 200, ret
        return ret if ret["exchange_order_id"] else None

    ret = await eventually(linked)
    replacement_id = ret["exchange_order_id"]
    assert ret["exchange_status"] == "created" and ret["to_charge"] == "10.00"
    assert replacement_id != order_id

    # the replacement: confirmed and allocated like any order, linked back to the RMA
    replacement = await wait_status(shop, replacement_id, "allocated", eventually)
    assert (replacement["channel"], replacement["external_ref"]) == ("exchange", rma_id)
    assert replacement["customer_id"] == original["customer_id"]
    assert replacement["ship_to"] == original["ship_to"]
    assert replacement["priority"] == original["priority"]
    assert [(x["sku"], x["quantity"], x["unit_price"]) for x in replacement["lines"]] == [(large, 2, "45.00")]
    assert [h["status"] for h in replacement["history"]][:3] == ["received", "confirmed", "allocated"]
    assert (await stock(admin, large))["WH-HAM"]["reserved"] == 2

    # exactly one replacement order, however often it was asked
    code, page, _ = await shop.get(f"/v1/orders?sku={large}")
    assert code == 200 and [o["order_id"] for o in page["items"]] == [replacement_id], page
    code, page, _ = await shop.get(f"/v1/orders?external_ref={rma_id}")
    assert code == 200 and [o["order_id"] for o in page["items"]] == [replacement_id], page

    # the shop's feed: return.exchange_created on the original order, then the replacement's own events
    events = await feed_of_order(shop, order_id, "return.exchange_created", eventually, prefix="return.")
    created_events = [e for e in events if e["type"] == "return.exchange_created"]
    assert len(created_events) == 1, [e["type"] for e in events]
    (created_event,) = created_events
    assert (created_event["rma_id"], created_event["exchange_order_id"], created_event["to_charge"]) == (
        rma_id,
        replacement_id,
        "10.00",
    )
    assert created_event["data"]["order_id"] == order_id
    # the customer owes the difference (to_charge): nothing is credited, and no invoice is made for it
    code, account, _ = await shop.get(f"/v1/orders/{order_id}/account")
    assert code == 200 and (account["refunded"], account["documents"]) == ("0.00", []), account
    own = await feed_of_order(shop, replacement_id, "order.allocated", eventually, prefix="order.")
    assert "order.confirmed" in [e["type"] for e in own]

    # the original order names its replacement, in the API and in the desk's timeline, once
    original, entries = await original_shows(stack, shop, order_id, rma_id, eventually)
    assert [(r["rma_id"], r["order_id"], r["kind"]) for r in original["replacements"]] == [
        (rma_id, replacement_id, "return")
    ]
    assert [(e.details["rma_id"], e.details["order_id"], e.details["rma_kind"]) for e in entries] == [
        (rma_id, replacement_id, "return")
    ]
    assert entries[0].summary == f"replacement order {replacement_id} for return {rma_id}"


KEY_CUSTOMER = "C0004"  # tier key: advance exchanges (conftest EXCHANGE_ENV), NET45


async def test_an_advance_exchange_ships_before_the_goods_come_back(
    shop, warehouse_operator, admin, eventually
):
    medium, large = new_sku(), new_sku()
    await add_product(admin, medium, price="40.00", stock={"WH-HAM": 5})
    await add_product(admin, large, price="35.00", stock={"WH-HAM": 5})
    code, created, _ = await submit(
        shop, order_body(medium, 1, price="40.00", customer=KEY_CUSTOMER, payment_terms="NET45")
    )
    assert code == 201 and created["status"] == "confirmed", created
    order_id = created["order_id"]
    await wait_status(shop, order_id, "allocated", eventually)
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)

    line = {"sku": medium, "quantity": 1, "reason": "too big", "exchange_sku": large}
    code, rma, _ = await shop.post(
        f"/v1/orders/{order_id}/returns", json={"lines": [line], "resolution": "exchange"}
    )
    assert code == 201, rma
    assert (rma["status"], rma["exchange_mode"], rma["to_credit"]) == ("authorized", "advance", "5.00")
    rma_id = rma["rma_id"]

    async def linked():
        code, ret, _ = await shop.get(f"/v1/returns/{rma_id}")
        return ret if code == 200 and ret["exchange_order_id"] else None

    ret = await eventually(linked)  # nothing was received: the replacement went at once
    assert ret["status"] == "authorized" and ret["return_due_on"] and ret["unreturned_charge"] is None
    replacement = await wait_status(shop, ret["exchange_order_id"], "allocated", eventually)
    assert (replacement["external_ref"], replacement["customer_id"]) == (rma_id, KEY_CUSTOMER)

    code, problem, _ = await shop.post(f"/v1/returns/{rma_id}/cancel")
    assert code == 409 and problem.get("rule") == "cancel_after_replacement", problem

    # the goods come back in time: inspected, nothing more is entered
    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/receive")
    assert code == 200, body
    code, body, _ = await warehouse_operator.post(
        f"/v1/returns/{rma_id}/inspect",
        json={"lines": [{"sku": medium, "quantity": 1, "outcome": "restock"}]},
    )
    assert code == 200 and body["exchange_order_id"] == ret["exchange_order_id"], body
    await feed_of_order(shop, order_id, "return.refunded", eventually, prefix="return.")
    code, page, _ = await shop.get(f"/v1/orders?external_ref={rma_id}")
    assert code == 200 and [o["order_id"] for o in page["items"]] == [ret["exchange_order_id"]], page

    # the cheaper replacement's difference is credited once decided: credit note CN-<RMA id> in the ledger
    async def credited():
        code, account, _ = await shop.get(f"/v1/orders/{order_id}/account")
        assert code == 200, account
        return account if account["documents"] else None

    account = await eventually(credited)
    assert account["refunded"] == "5.00", account
    assert [(d["kind"], d["number"], d["amount"], d["note"]) for d in account["documents"]] == [
        ("credit_note", f"CN-{rma_id}", "5.00", f"exchange credit 5.00 of return {rma_id}")
    ]
