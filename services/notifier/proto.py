"""Notifier rows <-> protobuf messages. The secret is never part of an Endpoint message."""

from __future__ import annotations

from orderdesk.events import timestamp
from orderdesk.v1 import notifier_pb2
from services.notifier.store import EndpointRow


def endpoint_to_proto(endpoint: EndpointRow, parked: int = 0) -> notifier_pb2.Endpoint:
    return notifier_pb2.Endpoint(
        endpoint_id=endpoint.endpoint_id,
        partner_id=endpoint.partner_id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        cursor_sequence=endpoint.cursor,
        created_at=timestamp(endpoint.created_at),
        updated_at=timestamp(endpoint.updated_at),
        parked_deliveries=parked,
    )


def attempt_to_proto(row) -> notifier_pb2.DeliveryAttempt:
    return notifier_pb2.DeliveryAttempt(
        attempt=row["attempt"],
        at=timestamp(row["at"]),
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        response_excerpt=row["response_excerpt"],
    )


def delivery_to_proto(row, attempts) -> notifier_pb2.Delivery:
    message = notifier_pb2.Delivery(
        delivery_id=row["delivery_id"],
        endpoint_id=row["endpoint_id"],
        sequence=row["sequence"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        order_id=row["order_id"],
        status=row["status"],
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        attempt_log=[attempt_to_proto(a) for a in attempts],
        created_at=timestamp(row["created_at"]),
    )
    if row["next_attempt_at"] is not None and row["status"] == "pending":
        message.next_attempt_at.CopyFrom(timestamp(row["next_attempt_at"]))
    if row["delivered_at"] is not None:
        message.delivered_at.CopyFrom(timestamp(row["delivered_at"]))
    return message


def feed_entry_to_proto(row) -> notifier_pb2.FeedEntry:
    return notifier_pb2.FeedEntry(
        sequence=row["sequence"],
        event_id=row["event_id"],
        type=row["type"],
        order_id=row["order_id"],
        order_sequence=row["order_sequence"],
        occurred_at=timestamp(row["occurred_at"]),
        body=row["body"],
    )
