"""The notifier follows every event: one durable consumer on orderdesk.> (the nats-server here takes one
filter subject per consumer), appending what concerns a partner's order to that partner's feed."""

from __future__ import annotations

from orderdesk.consumers import Subscription
from services.notifier.service import NotifierService


def subscriptions(service: NotifierService) -> list[Subscription]:
    return [Subscription("notifier-feed", "orderdesk.>", service.on_event, batch=256)]
