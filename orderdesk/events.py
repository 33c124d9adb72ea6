"""The event stream: one JetStream stream for every fact orderdesk publishes.

Subjects: orderdesk.<aggregate>.<key>.<event>, where <key> is the order id for
order, shipment and return events (so `orderdesk.*.<order_id>.>` follows one
order) and the SKU for stock events. Examples:
    orderdesk.order.ORD-1a2b.confirmed
    orderdesk.shipment.ORD-1a2b.shipped
    orderdesk.return.ORD-1a2b.refunded
    orderdesk.stock.BRK-001.restocked
Dead letters go to the stream ORDERDESK_DLQ under dlq.orderdesk.<consumer>.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp

from orderdesk import clock, ids, logs
from orderdesk.config import env
from orderdesk.v1 import events_pb2

STREAM = "ORDERDESK"
SUBJECT_ROOT = "orderdesk"
DLQ_STREAM = "ORDERDESK_DLQ"
DLQ_ROOT = "dlq.orderdesk"
# Longer than the relay's longest retry gap (30 s) many times over; consumers
# de-duplicate by event id as well, so a later re-publish still has no effect.
DUPLICATE_WINDOW_SECONDS = float(env("ORDERDESK_DUPLICATE_WINDOW_SECONDS", "900"))
MAX_AGE_SECONDS = float(env("ORDERDESK_STREAM_MAX_AGE_SECONDS", str(7 * 24 * 3600)))
# 3 on a three-server JetStream cluster (production), 1 on a single server (default).
STREAM_REPLICAS = int(env("ORDERDESK_STREAM_REPLICAS", "1"))


# The correlation id rides in the event and, for tools that read headers only, in this NATS header.
CORRELATION_HEADER = "Orderdesk-Correlation-Id"


def correlation_id_of(payload: bytes) -> str:
    return events_pb2.Event.FromString(payload).correlation_id


def subject(event: events_pb2.Event) -> str:
    key = event.order_id or event.aggregate_id
    name = event.type.split(".", 1)[1] if "." in event.type else event.type
    return f"{SUBJECT_ROOT}.{event.aggregate_type}.{_token(key)}.{name}"


def misplaced(event: events_pb2.Event, on_subject: str) -> bool:
    """An event not on its own subject, or typed for another aggregate than it names: each subject tree
    (`orderdesk.shipment.>`) is its one publisher's (NATS permissions), so a consumer trusts an event only
    where that publisher alone could have put it."""
    return event.type.split(".", 1)[0] != event.aggregate_type or subject(event) != on_subject


_NOT_IN_TOKENS = str.maketrans(dict.fromkeys(".*> \t", "_"))


def _token(value: str) -> str:
    # Subject tokens cannot hold '.', '*', '>' or white space; ids never should, but be safe. (One call: every
    # event consumed is checked against its subject, events.misplaced.)
    return value.translate(_NOT_IN_TOKENS) or "_"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(at: dt.datetime | None = None) -> Timestamp:
    """`at` (default now) as a Timestamp, as Timestamp.FromDatetime gives it (whole seconds since the epoch,
    rounded down, and the microseconds) from arithmetic on the instant rather than its calendar fields:
    every event and every order's history entry has one."""
    since = (at or clock.now()).astimezone(dt.UTC) - _EPOCH
    return Timestamp(seconds=since.days * 86400 + since.seconds, nanos=since.microseconds * 1000)


def new_event(
    type: str,
    *,
    aggregate_id: str,
    version: int,
    order_id: str = "",
    actor: str = "",
    reason: str = "",
    at: dt.datetime | None = None,
    **payload,
) -> events_pb2.Event:
    """Builds an Event; `payload` is one of order=, shipment=, return_=, stock=."""
    aggregate_type = type.split(".", 1)[0]
    if "return_" in payload:
        payload["return"] = payload.pop("return_")
    return events_pb2.Event(
        event_id=str(ids.uuid7()),
        type=type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        order_id=order_id,
        occurred_at=timestamp(at),
        correlation_id=logs.correlation_id.get(),
        actor=actor,
        reason=reason,
        **payload,
    )


async def while_jetstream_settles(what: str, call, *, within: float = 60.0, pause: float = 1.0):
    """`call()`, a JetStream API request made at start-up, again while the API does not answer yet: on a
    cluster it can be without a leader for a few seconds (a node just died or joined) or slow on a busy
    host. Gives up with the last error after `within` seconds; any other error is raised at once."""
    import asyncio
    import logging
    import time

    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except (NatsTimeout, NoRespondersError, NoStreamResponseError, ServiceUnavailableError) as exc:
            if time.monotonic() > deadline:
                raise
            logging.getLogger("orderdesk.events").warning(
                "%s: JetStream not answering yet (%s), retrying", what, type(exc).__name__
            )
            await asyncio.sleep(pause)


async def ensure_streams(js) -> None:
    """Creates or updates the streams; every process calls this at start-up."""
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig

    configs = [
        StreamConfig(
            name=STREAM,
            subjects=[f"{SUBJECT_ROOT}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=MAX_AGE_SECONDS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            num_replicas=STREAM_REPLICAS,
        ),
        StreamConfig(
            name=DLQ_STREAM,
            subjects=[f"{DLQ_ROOT}.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=30 * 24 * 3600,
            num_replicas=STREAM_REPLICAS,
        ),
    ]
    for config in configs:
        await while_jetstream_settles(
            f"stream {config.name}", lambda config=config: _add_or_update(js, config)
        )


async def _add_or_update(js, config) -> None:
    try:
        await js.add_stream(config)
    except Exception as exc:  # already there with other settings: update in place
        if "already in use" not in str(exc) and "exists" not in str(exc):
            raise
        await js.update_stream(config)
