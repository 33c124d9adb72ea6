"""What each of the order's recorded events carries on the wire, and what it counts once committed.

Every event carries the order as it now is. A status change (order.<status>) names the status
before; order.changed and order.exception carry what changed (before/after) or the exception,
and the delivery date the customer should now expect, so a partner's system hears about every
material change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderdesk import metrics
from orderdesk.v1 import events_pb2, orders_pb2
from services.orders import exceptions as order_exceptions
from services.orders.domain import (
    ExceptionOpened,
    ExceptionResolved,
    MessageSent,
    Order,
    OrderChanged,
    RecordedEvent,
    RiskCleared,
    RiskRaised,
    Status,
    Transition,
)
from services.orders.proto import (
    exception_to_proto,
    field_changes_to_proto,
    note_to_proto,
    order_to_proto,
    risk_to_proto,
)


@dataclass(frozen=True)
class Snapshot:
    """The order as it now is, built once per publish."""

    order: orders_pb2.Order
    status: str
    expected_date: str  # the date an exception announced, else the backorder's expected delivery date, if any


def snapshot(order: Order) -> Snapshot:
    # _value_ is what .value returns, without the enum property's two calls (once per event or save)
    expected = order_exceptions.expected_date(order.exceptions) or order.expected_delivery_date
    return Snapshot(order_to_proto(order), order.status._value_, expected)


def payload(event: Transition | RecordedEvent, state: Snapshot) -> dict[str, Any]:
    """The event's body (orderdesk.usecase.publish's `payload`)."""
    if isinstance(event, Transition):
        return {
            "order": events_pb2.OrderEvent(
                status=event.status._value_,
                previous_status=event.previous._value_ if event.previous else "",
                order=state.order,
            )
        }
    body = events_pb2.OrderEvent(
        status=state.status,
        previous_status=state.status,
        order=state.order,
        expected_date=state.expected_date,
    )
    if isinstance(event, OrderChanged):
        body.changes.extend(field_changes_to_proto(event.record.changes))
    elif isinstance(event, MessageSent):
        body.message.CopyFrom(note_to_proto(event.note))
    elif isinstance(event, RiskRaised):
        body.risk.CopyFrom(risk_to_proto(event.risk))
        body.expected_date = event.risk.expected_date
    elif isinstance(event, RiskCleared):
        body.risk.CopyFrom(risk_to_proto(event.risk))
        body.expected_date = state.expected_date or state.order.requested_delivery_date
    else:
        body.exception.CopyFrom(exception_to_proto(event.exception))
    return {"order": body}


def count(order: Order) -> Callable[[Transition | RecordedEvent], None]:
    """The metrics of one published event, counted once its transaction committed (`publish`'s `count`)."""

    def counted(event: Transition | RecordedEvent) -> None:
        if isinstance(event, Transition):
            metrics.child(metrics.ORDER_TRANSITIONS, event.status._value_).inc()
            if event.status is Status.COMPLETED:
                on_time = "true" if order.delivered_on_time else "false"
                metrics.child(metrics.ORDERS_COMPLETED, on_time).inc()
        elif isinstance(event, OrderChanged):
            metrics.child(metrics.ORDER_CHANGES, "accepted").inc()
        elif isinstance(event, ExceptionOpened):
            metrics.child(metrics.ORDER_EXCEPTIONS, event.exception.type.value, "opened").inc()
        elif isinstance(event, ExceptionResolved):
            metrics.child(metrics.ORDER_EXCEPTIONS, event.exception.type.value, "resolved").inc()
        elif isinstance(event, RiskRaised | RiskCleared):
            step = "raised" if isinstance(event, RiskRaised) else "cleared"
            metrics.child(metrics.ORDER_RISKS, event.risk.code.value, step).inc()

    return counted
