"""Orders reacts to shipping's and returns' facts, and to restocks (backorders)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from orderdesk.usecase import Step
from services.orders.domain import Order
from services.orders.exceptions import ExceptionType, OrderException
from services.orders.promise import AT_ONCE
from services.orders.service import OrdersService

# A carrier's trouble, as shipping publishes it (the 3PL's route and the carriers' tracking route).
TRACKING_TYPES = {
    "shipment.delayed": ExceptionType.CARRIER_DELAY,
    "shipment.lost": ExceptionType.LOST_PARCEL,
    "shipment.delivery_attempted": ExceptionType.DELIVERY_FAILED,
    "shipment.exception": ExceptionType.CARRIER_EXCEPTION,
    "shipment.returning_to_sender": ExceptionType.RETURNING_TO_SENDER,
}


def exception_of(event, now: dt.datetime) -> OrderException | None:
    """shipment.delayed / lost / delivery_attempted / exception / returning_to_sender -> the exception to record (its id follows the event, so a
    redelivered event records nothing new)."""
    kind = TRACKING_TYPES.get(event.type)
    if kind is None:
        return None
    shipment = event.shipment.shipment
    at = event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else now
    return OrderException(
        exception_id=f"EX-{shipment.shipment_id}-{event.aggregate_version}",
        type=kind,
        cause=event.reason or kind.value,
        opened_at=at,
        opened_by=event.actor or "carrier",
        source="shipping",
        expected_date=shipment.expected_delivery_date if kind is ExceptionType.CARRIER_DELAY else "",
        shipment_id=shipment.shipment_id,
    )


def _nobody() -> None:
    pass


def subscriptions(
    service: OrdersService,
    *,
    wake_allocator: Callable[..., None],
    allocate_soon: Callable[[list[str]], None],
    wake_watch: Callable[[], None] = _nobody,
) -> list[Subscription]:
    """`wake_allocator(scheduled=True)` starts a pass over the backorders too; `allocate_soon(ids)`
    records at once the reservations inventory made for these backorders (and the dates it now gives
    them); `wake_watch()` tells the promise watch that orders changed (it polls anyway)."""

    def shipment_steps(event) -> list[Step[Order]]:
        """A shipment event's changes to its order: the shipment recorded (a stale version changes
        nothing), then a carrier's delay or lost parcel as an exception."""
        shipment = event.shipment.shipment
        at = event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else None
        change = service.shipment_change(shipment, event.type.rpartition(".")[2], at)
        steps = [Step(shipment.order_id, change, event.correlation_id)]
        exception = exception_of(event, service.clock())
        if exception is not None:
            steps.append(
                Step(
                    shipment.order_id,
                    lambda order, exception=exception: order.record_exception(exception),
                    event.correlation_id,
                )
            )
        return steps

    async def on_shipments(tx: Tx, batch: list) -> None:
        """Shipment events, one or a consumer's batch: each order read once and saved once, its events
        applied in stream order (services.orders.service.OrdersService.apply_in_turn)."""
        found = await service.apply_in_turn(tx, [step for event in batch for step in shipment_steps(event)])
        # Only when the watch has something to tell now: otherwise the save stored its moment.
        if any(order.watch_at == AT_ONCE for order in found.values()):
            tx.after_commit.append(wake_watch)

    async def on_shipment(tx: Tx, event) -> None:
        await on_shipments(tx, [event])

    async def on_return_refunded(tx: Tx, event) -> None:
        await service.record_return(tx, getattr(getattr(event, "return"), "return"))

    async def on_claim_resolved(tx: Tx, event) -> None:
        await service.record_claim(tx, getattr(getattr(event, "return"), "return"))

    async def on_exchange_created(tx: Tx, event) -> None:
        # issue 14: a replacement order entered for a return (exchange) or a claim: the original shows it
        await service.record_replacement(tx, event)

    async def on_stock_added(tx: Tx, event) -> None:
        wake_allocator(scheduled=True)  # a backordered order may now be reservable
        filled = list(event.stock.filled_order_ids)
        if filled:  # inventory reserved for these backorders already: record it for them at once
            tx.after_commit.append(lambda: allocate_soon(filled))

    async def on_rescheduled(tx: Tx, event) -> None:
        # A production run moved: its SKU's backorders are dated again by their next Reserve (target state:
        # it only re-reads what inventory holds and when the rest comes), recorded at once.
        waiting = list(event.stock.affected_order_ids)
        if waiting:
            tx.after_commit.append(lambda: allocate_soon(waiting))

    return [
        # Group commits: a fetched batch in one transaction with one inbox claim (orderdesk.consumers), its
        # orders read once and saved once; should one event fail, the batch is handled one by one.
        Subscription(
            "orders-shipment-events",
            "orderdesk.shipment.>",
            on_shipment,
            group_commit=True,
            batch_handler=on_shipments,
        ),
        Subscription(
            "orders-stock-rescheduled", "orderdesk.stock.*.rescheduled", on_rescheduled, group_commit=True
        ),
        Subscription("orders-return-refunded", "orderdesk.return.*.refunded", on_return_refunded),
        # issue 14: a claim without goods back counts for the desk's numbers when it is resolved
        Subscription("orders-return-claim", "orderdesk.return.*.claim_resolved", on_claim_resolved),
        Subscription(
            "orders-stock-restocked", "orderdesk.stock.*.restocked", on_stock_added, group_commit=True
        ),
        # issue 14: the original order names the replacement entered for its return or claim
        Subscription("orders-return-exchange", "orderdesk.return.*.exchange_created", on_exchange_created),
    ]
