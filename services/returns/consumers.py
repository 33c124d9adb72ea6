"""Returns reacts to its own return.refunded (an inspected exchange's replacement order is entered then)
and return.authorized (an advance exchange's, at once).

Returns otherwise asks orders (gRPC) when a return is made. The replacement is made from the event
(at least once) rather than inside the inspection, so a failure of orders or intake is retried by
redelivery (on SQLite the consumer's transaction holds the write lock across those two calls); intake's idempotency key (derived from the RMA
id) makes every repeat answer with the same order (ReturnsService.make_exchange).
"""

from __future__ import annotations

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from orderdesk.v1 import events_pb2
from services.returns.domain import EXCHANGE, REPLACE
from services.returns.policy import ADVANCE
from services.returns.service import ReturnsService


def _return(event: events_pb2.Event):
    return getattr(getattr(event, "return"), "return")


def exchanges(event: events_pb2.Event) -> bool:
    """A refunded RMA with an exchanged line and no replacement yet; the others are acked at once."""
    if event.WhichOneof("payload") != "return":
        return False
    ret = _return(event)
    return not ret.exchange_order_id and any(line.resolution in (EXCHANGE, REPLACE) for line in ret.lines)


def advance_exchanges(event: events_pb2.Event) -> bool:
    """An authorised advance exchange: its replacement ships at once."""
    return exchanges(event) and _return(event).exchange_mode == ADVANCE


def subscriptions(service: ReturnsService) -> list[Subscription]:
    async def on_due(tx: Tx, event: events_pb2.Event) -> None:
        # The inbox row is claimed in `tx` and the link joins it: should it roll back, the event comes
        # again and intake answers with the same order.
        await service.make_exchange(_return(event).rma_id, tx)

    return [
        Subscription(
            "returns-exchange-due",
            "orderdesk.return.*.refunded",
            on_due,
            wants=exchanges,
            max_deliver=12,
        ),
        Subscription(  # a claim without goods back: its replacement at once
            "returns-claim-resolved",
            "orderdesk.return.*.claim_resolved",
            on_due,
            wants=exchanges,
            max_deliver=12,
        ),
        Subscription(  # advance exchange: as soon as the RMA is authorised
            "returns-exchange-advance",
            "orderdesk.return.*.authorized",
            on_due,
            wants=advance_exchanges,
            max_deliver=12,
        ),
    ]
