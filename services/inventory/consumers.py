"""Inventory reacts to cancellations (release), shipments (consume), refunds (restock) and wrong-item
claims (a stock correction).

Each handler runs in the consumer's transaction with its inbox row, so a redelivered
event changes nothing. A movement the books cannot make (a shipment of units the order
does not hold) raises StockBookError: the message is retried and then dead-lettered,
never applied by letting stock go negative.
"""

from __future__ import annotations

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.inventory.service import InventoryService


def subscriptions(service: InventoryService) -> list[Subscription]:
    async def on_order_cancelled(tx: Tx, event) -> None:
        # Also when the order holds nothing yet: it is remembered as released, so a Reserve
        # still in flight from orders' allocator is refused instead of reserving for a dead order.
        await service.release(tx, event.order_id or event.aggregate_id)

    async def on_shipment_shipped(tx: Tx, event) -> None:
        await service.consume_shipment(tx, event.shipment.shipment)

    async def on_return_refunded(tx: Tx, event) -> None:
        await service.restock_return(tx, getattr(getattr(event, "return"), "return"))

    async def on_return_claim(tx: Tx, event) -> None:
        await service.correct_for_claim(tx, getattr(getattr(event, "return"), "return"))

    return [
        Subscription("inventory-order-cancelled", "orderdesk.order.*.cancelled", on_order_cancelled),
        Subscription("inventory-shipment-shipped", "orderdesk.shipment.*.shipped", on_shipment_shipped),
        Subscription("inventory-return-refunded", "orderdesk.return.*.refunded", on_return_refunded),
        # claims (issue 14): a wrong item sent corrects both SKUs' counts
        Subscription("inventory-return-claim", "orderdesk.return.*.claim_opened", on_return_claim),
    ]
