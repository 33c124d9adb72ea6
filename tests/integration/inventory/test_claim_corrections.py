"""A wrong-item claim's stock correction on a real database (SQLite and PostgreSQL): the SKU ordered counted
back, the SKU sent written off (never below what is reserved), each once however often the event comes; a
wrong item sent back restocks the SKU sent."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk import events
from orderdesk.v1 import events_pb2, returns_pb2
from services.inventory import consumers
from tests.integration.inventory.test_stock import by_wh, inventory, put_stock  # noqa: F401 (the fixture)

pytestmark = pytest.mark.usefixtures("inventory")


def claim_event(event_type: str, reason="wrong_item", restocked=0, status="refunded") -> events_pb2.Event:
    ret = returns_pb2.Return(
        rma_id="RMA-W1",
        order_id="ORD-W1",
        status=status,
        kind="claim",
        claim_reason=reason,
        decided_by="key:shop",
        lines=[
            returns_pb2.ReturnLine(
                sku="MUG", quantity=1, warehouse="WH-HAM", sent_sku="PLATE", restocked_quantity=restocked
            )
        ],
    )
    return events.new_event(
        event_type,
        aggregate_id="RMA-W1",
        version=1,
        order_id="ORD-W1",
        return_=events_pb2.ReturnEvent(**{"return": ret}),
    )


async def handle(service, subject: str, event) -> None:
    handler = {s.filter_subject: s.handler for s in consumers.subscriptions(service)}[subject]
    async with service.db.transaction() as tx:
        await handler(tx, event)


async def test_both_counts_are_corrected_once(inventory):  # noqa: F811
    await put_stock(inventory, "MUG", WH_HAM=4)
    await put_stock(inventory, "PLATE", WH_HAM=5)
    event = claim_event("return.claim_opened")
    await asyncio.gather(*(handle(inventory, "orderdesk.return.*.claim_opened", event) for _ in range(3)))
    await handle(inventory, "orderdesk.return.*.claim_opened", event)
    assert (await by_wh(inventory, "MUG"))["WH-HAM"] == (5, 0)
    assert (await by_wh(inventory, "PLATE"))["WH-HAM"] == (4, 0)
    receipts = {
        r.reference: (r.warehouse, r.quantity, r.received_by)
        for sku in ("MUG", "PLATE")
        for r in await inventory.recent_receipts(sku)
    }
    assert receipts["claim:RMA-W1:0:kept"] == ("WH-HAM", 1, "key:shop")
    assert receipts["claim:RMA-W1:0:sent"] == ("WH-HAM", -1, "key:shop")


async def test_other_claims_correct_nothing_and_goods_sent_back_restock_the_sku_sent(inventory):  # noqa: F811
    await put_stock(inventory, "MUG", WH_HAM=4)
    await put_stock(inventory, "PLATE", WH_HAM=5)
    await handle(
        inventory, "orderdesk.return.*.claim_opened", claim_event("return.claim_opened", "missing_items")
    )
    assert (await by_wh(inventory, "MUG"))["WH-HAM"] == (4, 0)
    await handle(inventory, "orderdesk.return.*.refunded", claim_event("return.refunded", restocked=1))
    assert (await by_wh(inventory, "PLATE"))["WH-HAM"] == (6, 0)
    assert (await by_wh(inventory, "MUG"))["WH-HAM"] == (4, 0)
