"""Shipping reacts to orders' facts: allocated orders get shipments, cancelled ones lose them; and to
damaged-in-transit claims (return.claim_opened): a carrier claim on the shipment."""

from __future__ import annotations

import datetime as dt

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.shipping import revisions
from services.shipping.service import ShippingService


def subscriptions(service: ShippingService) -> list[Subscription]:
    async def on_orders_allocated(tx: Tx, events) -> None:
        # The promise counts from the moment of allocation, not from when we heard of it.
        await service.create_for_allocated_orders(
            tx,
            [
                (
                    event.order.order,
                    event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else None,
                )
                for event in events
            ],
        )

    async def on_order_allocated(tx: Tx, event) -> None:
        await on_orders_allocated(tx, [event])  # one event alone: the batch of one

    async def on_order_cancelled(tx: Tx, event) -> None:
        reason = f"order cancelled: {event.reason}" if event.reason else "order cancelled"
        await service.cancel_for_order(
            tx, event.order_id or event.order.order.order_id, event.actor or "system", reason
        )

    async def on_order_changed(tx: Tx, event) -> None:
        await revisions.follow_order_change(service, tx, event)

    async def on_order_exception(tx: Tx, event) -> None:
        await revisions.follow_resolution(service, tx, event)

    async def on_return_claim(tx: Tx, event) -> None:
        await service.open_carrier_claims(tx, getattr(getattr(event, "return"), "return"))

    return [
        # A fetched batch in one transaction: one gate statement, one insert of all its shipments.
        Subscription(
            "shipping-order-allocated",
            "orderdesk.order.*.allocated",
            on_order_allocated,
            group_commit=True,
            batch_handler=on_orders_allocated,
        ),
        Subscription("shipping-order-cancelled", "orderdesk.order.*.cancelled", on_order_cancelled),
        Subscription("shipping-order-changed", "orderdesk.order.*.changed", on_order_changed),
        Subscription("shipping-order-exception", "orderdesk.order.*.exception", on_order_exception),
        # claims (issue 14): goods damaged in transit open a carrier claim on the shipment
        Subscription("shipping-return-claim", "orderdesk.return.*.claim_opened", on_return_claim),
    ]
