"""Intake reacts to orders' facts (the credit exposure of each customer's open orders) and to the returns
service's decided refunds (a credit note per RMA in the finance ledger, finance.record_decided_credit)."""

from __future__ import annotations

import datetime as dt

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from orderdesk.errors import InvalidArgument
from orderdesk.v1 import events_pb2
from services.intake import domain, finance
from services.intake.domain import money
from services.intake.service import IntakeService


def decided_credit(event: events_pb2.Event) -> money.DecidedCredit | None:
    """The credit an RMA's event decides (a return's or a claim's refund, an exchange's credit), or None.

    Any return.* event whose RMA is refunded qualifies, whatever its type (return.refunded after an
    inspection, a claim resolved without goods back): the amounts come from the RMA in the payload, and
    the credit note's number from its id, so the first such event records it and the later ones of the
    RMA (return.exchange_created) find it there."""
    if event.WhichOneof("payload") != "return":
        return None
    ret = getattr(getattr(event, "return"), "return")
    return money.decided_credit(
        rma_id=ret.rma_id,
        order_id=ret.order_id or event.order_id,
        partner_id=ret.partner_id,
        status=ret.status,
        refund_amount=ret.refund_amount,
        to_credit=ret.to_credit,
        currency=ret.currency,
        decided_at=event.occurred_at.ToDatetime(tzinfo=dt.UTC),
    )


def decides_credit(event: events_pb2.Event) -> bool:
    """Whether the consumer opens a transaction for the event: an RMA refunded with something to give back;
    an unreadable amount too (the handler then refuses it, retried and dead-lettered, never dropped)."""
    try:
        return decided_credit(event) is not None
    except InvalidArgument:
        return True


def subscriptions(service: IntakeService) -> list[Subscription]:
    async def on_order_event(tx: Tx, event) -> None:
        await service.record_order_event(tx, event)

    def changes_exposure(event) -> bool:
        return domain.exposure_changes(
            event.type, event.order.status, event.order.previous_status, service.config.exposure_until_paid
        )

    async def on_refund_decided(tx: Tx, event: events_pb2.Event) -> None:
        credit = decided_credit(event)
        if credit is not None:
            await finance.record_decided_credit(service, tx, credit)

    return [
        # A fetched batch in one transaction, its rows read at once and written with multi-row statements.
        Subscription(
            "intake-order-exposure",
            "orderdesk.order.>",
            on_order_event,
            wants=changes_exposure,
            group_commit=True,
            batch_handler=service.record_order_events,
        ),
        Subscription(  # every return.* event: a claim's refund may come under another type than refunded
            "intake-return-credit",
            "orderdesk.return.>",
            on_refund_decided,
            wants=decides_credit,
            max_deliver=12,
        ),
    ]
