"""Intake reacts to orders' facts: the credit exposure of each customer's open orders."""

from __future__ import annotations

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.intake.service import IntakeService


def subscriptions(service: IntakeService) -> list[Subscription]:
    async def on_order_event(tx: Tx, event) -> None:
        await service.record_order_event(tx, event)

    return [Subscription("intake-order-exposure", "orderdesk.order.>", on_order_event)]
