"""Returns reacts to no other service's events yet: it asks orders (gRPC) when a return is made.

Kept so every service has the same shape; a subscription (say, to order.completed for
return windows) goes here.
"""

from __future__ import annotations

from orderdesk.consumers import Subscription
from services.returns.service import ReturnsService


def subscriptions(service: ReturnsService) -> list[Subscription]:
    return []
