"""Intake reacts to orders' facts: the credit exposure of each customer's open orders."""

from __future__ import annotations

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.intake import domain
from services.intake.service import IntakeService


def subscriptions(service: IntakeService) -> list[Subscription]:
    async def on_order_event(tx: Tx, event) -> None:
        await service.record_order_event(tx, event)

    def changes_exposure(event) -> bool:
        return domain.exposure_changes(
            event.type, event.order.status, event.order.previous_status, service.config.exposure_until_paid
        )

    return [
        Subscription("intake-order-exposure", "orderdesk.order.>", on_order_event, wants=changes_exposure)
    ]
