"""The order's facts besides status changes: order.changed and order.exception events (outbox).

Each carries the order as it now is, what changed (before/after) and the delivery date
the customer should now expect, so a partner's system hears about every material change.
"""

from __future__ import annotations

from orderdesk import events, metrics
from orderdesk.db import Tx
from orderdesk.v1 import events_pb2
from services.orders import exceptions as order_exceptions
from services.orders.changes import describe
from services.orders.proto import exception_to_proto, field_changes_to_proto, order_to_proto


async def publish_notices(tx: Tx, order, snapshot=None) -> None:
    if not order.notices:
        return
    snapshot = snapshot or order_to_proto(order)
    # The date an exception announced, else the backorder's expected delivery date (supply), if any.
    expected = order_exceptions.expected_date(order.exceptions) or getattr(order, "expected_delivery_date", "")
    for notice in order.notices:
        if notice[0] == "changed":
            record = notice[1]
            await tx.emit(events.new_event(
                "order.changed", aggregate_id=order.order_id, version=record.version, order_id=order.order_id,
                actor=record.actor, reason=(record.reason + ": " if record.reason else "") + describe(record.changes),
                at=record.at,
                order=events_pb2.OrderEvent(status=order.status.value, previous_status=order.status.value,
                                            order=snapshot, changes=field_changes_to_proto(record.changes),
                                            expected_date=expected),
            ))
            metrics.ORDER_CHANGES.labels("accepted").inc()
        else:
            _, exception, what, version = notice
            at, actor = ((exception.opened_at, exception.opened_by) if what == "opened"
                         else (exception.resolution.at, exception.resolution.actor))
            reason = (f"{exception.type} opened: {exception.cause}" if what == "opened"
                      else f"{exception.type} resolved: {exception.resolution.action}")
            await tx.emit(events.new_event(
                "order.exception", aggregate_id=order.order_id, version=version, order_id=order.order_id,
                actor=actor, reason=reason, at=at,
                order=events_pb2.OrderEvent(status=order.status.value, previous_status=order.status.value,
                                            order=snapshot, expected_date=expected,
                                            exception=exception_to_proto(exception)),
            ))
            metrics.ORDER_EXCEPTIONS.labels(exception.type.value, what).inc()
    order.notices.clear()
