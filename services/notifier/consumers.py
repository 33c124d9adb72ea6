"""The notifier follows every event: one durable consumer on orderdesk.> (the nats-server here takes one
filter subject per consumer), appending what concerns a partner's order to that partner's feed."""

from __future__ import annotations

from orderdesk.consumers import Subscription
from services.notifier.service import NotifierService


def about_an_order(event) -> bool:
    """Stock events and the like concern no partner: acked without a transaction."""
    return bool(event.order_id)


def subscriptions(service: NotifierService) -> list[Subscription]:
    return [
        Subscription(
            "notifier-feed",
            "orderdesk.>",
            service.on_event,
            wants=about_an_order,
            batch=256,
            group_commit=True,
            batch_handler=service.on_events,
        )
    ]
