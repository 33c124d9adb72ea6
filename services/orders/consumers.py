"""Orders reacts to shipping's and returns' facts, and to restocks (backorders)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from orderdesk.consumers import Subscription
from orderdesk.db import Tx
from services.orders.exceptions import ExceptionType, OrderException
from services.orders.service import OrdersService

TRACKING_TYPES = {"shipment.delayed": ExceptionType.CARRIER_DELAY, "shipment.lost": ExceptionType.LOST_PARCEL}


def exception_of(event, now: dt.datetime) -> OrderException | None:
    """shipment.delayed / shipment.lost -> the exception to record (its id follows the event, so a
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


def subscriptions(
    service: OrdersService, *, wake_allocator: Callable[..., None], allocate_soon: Callable[[list[str]], None]
) -> list[Subscription]:
    """`wake_allocator(scheduled=True)` starts a pass over the backorders too; `allocate_soon(ids)`
    records at once the reservations inventory made for these backorders."""

    async def on_shipment(tx: Tx, event) -> None:
        await service.record_shipment(tx, event.shipment.shipment)
        exception = exception_of(event, service.clock())  # a carrier's delay or lost parcel
        if exception is not None:
            await service.apply_to_order(
                tx, event.shipment.shipment.order_id, lambda order: order.record_exception(exception)
            )

    async def on_return_refunded(tx: Tx, event) -> None:
        await service.record_return(tx, getattr(getattr(event, "return"), "return"))

    async def on_stock_added(tx: Tx, event) -> None:
        wake_allocator(scheduled=True)  # a backordered order may now be reservable
        filled = list(event.stock.filled_order_ids)
        if filled:  # inventory reserved for these backorders already: record it for them at once
            tx.after_commit.append(lambda: allocate_soon(filled))

    return [
        Subscription("orders-shipment-events", "orderdesk.shipment.>", on_shipment),
        Subscription("orders-return-refunded", "orderdesk.return.*.refunded", on_return_refunded),
        Subscription("orders-stock-restocked", "orderdesk.stock.*.restocked", on_stock_added),
    ]
