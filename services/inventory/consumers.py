"""Inventory reacts to cancellations (release), shipments (consume) and refunds (restock)."""

from __future__ import annotations

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.inventory.service import InventoryService


def subscriptions(service: InventoryService) -> list[Subscription]:
    async def on_order_cancelled(tx: Tx, event) -> None:
        await service.release(tx, event.order_id)

    async def on_shipment_shipped(tx: Tx, event) -> None:
        await service.consume_shipment(tx, event.shipment.shipment)

    async def on_return_refunded(tx: Tx, event) -> None:
        await service.restock_return(tx, getattr(getattr(event, "return"), "return"))

    return [
        Subscription("inventory-order-cancelled", "orderdesk.order.*.cancelled", on_order_cancelled),
        Subscription("inventory-shipment-shipped", "orderdesk.shipment.*.shipped", on_shipment_shipped),
        Subscription("inventory-return-refunded", "orderdesk.return.*.refunded", on_return_refunded),
    ]
