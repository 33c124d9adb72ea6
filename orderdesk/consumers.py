"""Idempotent durable JetStream consumers.

Each subscription is a durable pull consumer with one filter subject, made at
start-up. A message is handled in one transaction together with an inbox row
(consumer, event id): a repeat finds the row, is acked and skipped. The ack comes
only after the commit; a passing failure is nak'ed with a growing delay, and after
the last delivery the message is parked on the dead-letter stream and counted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import String, bindparam, select, true
from sqlalchemy.dialects import postgresql, sqlite

from orderdesk import events, logs, metrics
from orderdesk.db import Database, Tx, UtcDateTime, insert_ignoring_conflicts, listed, utcnow
from orderdesk.outbox import inbox_table
from orderdesk.parsing import whole_number
from orderdesk.v1 import events_pb2

if TYPE_CHECKING:
    from nats.js import JetStreamContext

log = logging.getLogger("orderdesk.consumers")

# TEST ONLY (the fault suite): "<durable>:<n>" makes that consumer fail the first n deliveries of every
# message, as a flaky dependency would; the retries then succeed. Never set in production.
FAULT_ENV = "ORDERDESK_FAULT_FAIL_FIRST_DELIVERIES"


class InjectedFault(RuntimeError):
    """A failure the fault suite asked for (see FAULT_ENV)."""


def injected_failures(durable: str) -> int:
    import os

    spec = os.environ.get(FAULT_ENV, "")
    name, _, count = spec.rpartition(":")
    return (whole_number(count) or 0) if spec and name == durable else 0


def _correlation_id(msg, event: events_pb2.Event) -> str:
    """The request's correlation id (NATS header, else the event's own field): it goes into the
    consumer's logs and into the events its handler emits."""
    return (msg.headers or {}).get(events.CORRELATION_HEADER) or event.correlation_id


def _take_queued(sub):
    """A message the subscription already holds, taken as its `next_msg` would take it (the same pending
    accounting) but without the Task, uuid and timer that call makes for each message: a fetched batch
    arrives at once, so all but the first are usually waiting."""
    msg = sub._pending_queue.get_nowait()
    sub._pending_size -= len(msg.data)
    sub._pending_queue.task_done()
    return msg


@functools.cache
def _claims_of_many(dialect_name: str):
    """INSERT INTO inbox SELECT :consumer, <each of :ids>, :processed_at ON CONFLICT DO NOTHING RETURNING
    event_id, and how the ids are given: one array (PostgreSQL: unnest) or one JSON text (SQLite:
    json_each). The rows a multi-row VALUES inserts, with the same conflicts (on PostgreSQL a claim racing
    another replica's waits for it, then skips or inserts), but three parameters in all: SQLAlchemy's
    insertmanyvalues rewrote the statement and processed the parameters of every row."""
    ids, encode = listed(dialect_name, "ids")
    # The WHERE keeps SQLite from reading ON CONFLICT as the FROM's join constraint.
    rows = select(_consumer_param(), ids, _processed_at_param()).where(true())
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return _claimed(dialect.insert(inbox_table), rows), encode


def _consumer_param():
    return bindparam("consumer", type_=String)


def _processed_at_param():
    return bindparam("processed_at", type_=UtcDateTime)


def _claimed(insert, rows):
    return (
        insert.from_select(["consumer", "event_id", "processed_at"], rows)
        .on_conflict_do_nothing()
        .returning(inbox_table.c.event_id)
    )


Handler = Callable[[Tx, events_pb2.Event], Awaitable[None]]
BatchHandler = Callable[[Tx, list[events_pb2.Event]], Awaitable[None]]


@dataclass
class Subscription:
    durable: str  # consumer name, unique across the suite, e.g. "shipping-order-allocated"
    filter_subject: str  # e.g. "orderdesk.order.*.allocated"
    handler: Handler
    # Optional: events the handler would ignore anyway are acked without a transaction.
    wants: Callable[[events_pb2.Event], bool] | None = None
    max_deliver: int = 8
    ack_wait: float = 30.0
    batch: int = 64
    # A fetched batch handled in one transaction (one commit instead of one per event), for consumers
    # that see many small events. Should any of them fail, the batch is rolled back and handled one by
    # one, so retries and dead-lettering work per message as usual.
    group_commit: bool = False
    # With group_commit: applies a batch's new events at once (same effect as `handler` on each in turn).
    batch_handler: BatchHandler | None = None


class EventConsumer:
    # A long poll: each pull request waits up to this long on the server and is answered the moment events
    # come (no added latency), so an idle consumer costs one small request per period instead of one a
    # second. It also bounds how long a pull request lost with a NATS node goes unnoticed (a reconnect
    # re-issues it at once: `refetch`).
    FETCH_WAIT_SECONDS = 10.0
    FETCH_GRACE_SECONDS = 1.0  # the server ends a request with a status; waited for this much longer
    QUICK_EMPTY_SECONDS = 0.1

    def __init__(self, db: Database, js, subscription: Subscription):
        self.db = db
        self.js = js
        self.sub = subscription
        self._stopping = False
        self._psub: JetStreamContext.PullSubscription | None = None
        self._fetching: asyncio.Task | None = None
        # INSERT ... ON CONFLICT DO NOTHING into the inbox, built once (parameters per message).
        self._claim = insert_ignoring_conflicts(db.dialect, inbox_table)
        # A batch's claims: the same, in one statement that returns the rows it inserted.
        self._claim_many, self._ids_param = _claims_of_many(db.dialect)
        self._fail_first = injected_failures(subscription.durable)
        # Failed attempts per stream sequence, counted here too: the delivery count a message carries has
        # been seen to start again at 1 on a redelivery (a JetStream quirk seen with NAK delays), and a
        # poison event would then never reach max_deliver here while the server stops delivering it.
        self._failures: dict[int, int] = {}
        if self._fail_first:
            log.warning(
                "%s: TEST fault injection, failing the first %d deliveries of every message",
                subscription.durable,
                self._fail_first,
            )

    async def start(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(
            durable_name=self.sub.durable,
            filter_subject=self.sub.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.sub.ack_wait,
            max_deliver=self.sub.max_deliver,
            max_ack_pending=10_000,
        )
        self._psub = await events.while_jetstream_settles(
            f"consumer {self.sub.durable}",
            lambda: self.js.pull_subscribe(
                self.sub.filter_subject, durable=self.sub.durable, stream=events.STREAM, config=config
            ),
        )

    def stop(self) -> None:
        self._stopping = True

    def refetch(self) -> None:
        """The pull request in flight may be lost (NATS reconnected, perhaps to another node): a new one now,
        rather than at the end of the long poll."""
        if self._fetching is not None and not self._fetching.done():
            self._fetching.cancel()

    async def _fetch(self, psub) -> list:
        """The next messages, waiting up to FETCH_WAIT_SECONDS for the first; [] when `refetch` cut it short."""
        self._fetching = asyncio.ensure_future(self._pull(psub))
        try:
            return await self._fetching
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._fetching.cancelled() and task is not None and not task.cancelling():
                return []  # refetch(), not our own cancellation
            raise
        finally:
            self._fetching = None

    async def _pull(self, psub) -> list:
        """One pull request: `no_wait` with `expires`, which the server holds until events come, sends what
        there is (up to the batch) and ends with a status (404: no more now; 408: expired). Read until that
        status, or the batch, and nothing is left behind on the server.

        Not the client's `fetch`: when its own timer beats the server's 408 (its expiry is 0.1 ms short of
        the timer, less than a round trip under load), its next fetch reads that stale status, sends a second
        request without `no_wait`, and that one outlives it holding a batch: it takes the next event and keeps
        it from the fetch waiting for it until another event or its expiry (seconds, at idle). A stale status
        here only ends a pull early, and a `no_wait` request ends as soon as it has delivered."""
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.client import JetStreamContext

        request = {"batch": self.sub.batch, "expires": int(self.FETCH_WAIT_SECONDS * 1e9), "no_wait": True}
        await psub._nc.publish(psub._nms, json.dumps(request).encode(), psub._deliver)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.FETCH_WAIT_SECONDS + self.FETCH_GRACE_SECONDS
        messages: list = []
        sub = psub._sub
        while len(messages) < self.sub.batch:
            if not sub._pending_queue.empty():
                msg = _take_queued(sub)
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except NatsTimeout:
                    break
            status = JetStreamContext.is_status_msg(msg)
            if status is None:
                messages.append(msg)
            elif status != "100":  # not an idle heartbeat: the end of a request (ours, or an earlier one's)
                break
        return messages

    async def run(self) -> None:
        if self._psub is None:
            await self.start()
        psub = self._psub
        assert psub is not None, "start() subscribes"
        loop = asyncio.get_running_loop()
        while not self._stopping:
            asked = loop.time()
            try:
                messages = await self._fetch(psub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: the client reconnects; try again shortly
                log.warning("fetch failed for %s: %s", self.sub.durable, exc)
                await asyncio.sleep(1.0)
                continue
            if not messages:
                metrics.CONSUMER_PENDING.labels(self.sub.durable).set(0)  # caught up
                if loop.time() - asked < self.QUICK_EMPTY_SECONDS:
                    # Ended at once with nothing: an earlier request's status (ours still waits on the server),
                    # or a server that answers so (consumer gone, another version): ask again, but never in a spin.
                    await asyncio.sleep(self.QUICK_EMPTY_SECONDS)
                continue
            metrics.child(metrics.CONSUMER_PULLS, self.sub.durable).inc()
            metrics.child(metrics.CONSUMER_PULLED, self.sub.durable).inc(len(messages))
            # In order: events of one order arrive in publish order and are applied so.
            if not (self.sub.group_commit and len(messages) > 1 and await self.handle_together(messages)):
                for msg in messages:
                    await self.handle(msg)
            if messages and messages[-1].metadata:  # what the stream still holds for us: the lag
                metrics.CONSUMER_PENDING.labels(self.sub.durable).set(messages[-1].metadata.num_pending)

    async def handle(self, msg) -> None:
        try:
            event = events_pb2.Event.FromString(msg.data)
        except Exception:
            log.error("undecodable message on %s, dead-lettering", msg.subject)
            await self._dead_letter(msg, "undecodable")
            return
        if events.misplaced(event, msg.subject):
            log.error(
                "%s refused %s on %s: not its subject, dead-lettering",
                self.sub.durable,
                event.type,
                msg.subject,
            )
            metrics.EVENTS_MISPLACED.labels(self.sub.durable).inc()
            await self._dead_letter(msg, f"misplaced: a {event.type} event on {msg.subject}")
            return
        if self.sub.wants is not None and not self.sub.wants(event):
            await msg.ack()
            self._consumed("ignored").inc()
            return
        token = logs.correlation_id.set(_correlation_id(msg, event))
        try:
            if self._fail_first and msg.metadata and msg.metadata.num_delivered <= self._fail_first:
                raise InjectedFault(f"injected failure of delivery {msg.metadata.num_delivered}")
            async with self.db.transaction() as tx:
                inserted = await tx.conn.execute(
                    self._claim,
                    {"consumer": self.sub.durable, "event_id": event.event_id, "processed_at": utcnow()},
                )
                if inserted.rowcount == 0:
                    outcome = "duplicate"
                else:
                    await self.sub.handler(tx, event)
                    outcome = "handled"
            await msg.ack()
            self._consumed(outcome).inc()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delivered = self._failed_attempts(msg)
            if delivered >= self.sub.max_deliver:
                log.error(
                    "%s gave up on %s after %d deliveries: %s", self.sub.durable, event.type, delivered, exc
                )
                await self._dead_letter(msg, repr(exc))
            else:
                delay = min(0.5 * 2 ** (delivered - 1), 30.0)
                log.warning(
                    "%s failed on %s (delivery %d), retry in %.1fs: %s",
                    self.sub.durable,
                    event.type,
                    delivered,
                    delay,
                    exc,
                )
                self._consumed("retried").inc()
                await msg.nak(delay=delay)
        finally:
            logs.correlation_id.reset(token)

    def _consumed(self, outcome: str):
        """This consumer's EVENTS_CONSUMED counter of one outcome (metrics.child: no labels() per event)."""
        return metrics.child(metrics.EVENTS_CONSUMED, self.sub.durable, outcome)

    def _failed_attempts(self, msg) -> int:
        """How many times this message has been delivered, as far as this consumer knows: the count it
        carries, or the failures seen here if more."""
        carried = msg.metadata.num_delivered if msg.metadata else 1
        sequence = getattr(getattr(msg.metadata, "sequence", None), "stream", None)
        if sequence is None:
            return carried
        if len(self._failures) > 10_000:  # bounded: only failing messages are ever kept
            self._failures.clear()
        seen = self._failures[sequence] = self._failures.get(sequence, 0) + 1
        return max(carried, seen)

    async def handle_together(self, messages) -> bool:
        """The whole batch in one transaction; False (nothing applied) when one message fails."""
        if self._fail_first:
            return False
        try:
            decoded = [(msg, events_pb2.Event.FromString(msg.data)) for msg in messages]
        except Exception:
            return False  # one by one: the undecodable one is dead-lettered there
        if any(events.misplaced(event, msg.subject) for msg, event in decoded):
            return False  # one by one: the misplaced one is dead-lettered there
        outcomes: list[str] = []
        try:
            async with self.db.transaction() as tx:
                fresh = await self._claim_all(tx, decoded, outcomes)
                if self.sub.batch_handler is not None:
                    if fresh:
                        await self.sub.batch_handler(tx, [event for _msg, event in fresh])
                else:
                    for msg, event in fresh:
                        token = logs.correlation_id.set(_correlation_id(msg, event))
                        try:
                            await self.sub.handler(tx, event)
                        finally:
                            logs.correlation_id.reset(token)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info(
                "%s: a batch of %d failed together (%s); handling them one by one",
                self.sub.durable,
                len(messages),
                exc,
            )
            return False
        for msg in messages:
            await msg.ack()
        for outcome, count in Counter(outcomes).items():  # one increment per outcome, not per event
            self._consumed(outcome).inc(count)
        return True

    async def _claim_all(self, tx: Tx, decoded, outcomes: list[str]) -> list:
        """Inbox rows for a batch in one statement (INSERT ... ON CONFLICT DO NOTHING RETURNING: the ids it
        inserted are the events not handled before); the wanted ones not handled before, in order. A claim
        racing another replica's waits for it on PostgreSQL, then finds its row (a duplicate) or makes one."""
        wanted = [self.sub.wants is None or self.sub.wants(event) for _msg, event in decoded]
        ids = list(
            dict.fromkeys(event.event_id for (_msg, event), want in zip(decoded, wanted, strict=True) if want)
        )
        claimed: set[str] = set()
        if ids:
            now = utcnow()
            claimed = set(
                (
                    await tx.conn.execute(
                        self._claim_many,
                        {"consumer": self.sub.durable, "ids": self._ids_param(ids), "processed_at": now},
                    )
                ).scalars()
            )
        fresh = []
        for (msg, event), want in zip(decoded, wanted, strict=True):
            if not want:
                outcomes.append("ignored")
            elif event.event_id not in claimed:
                outcomes.append("duplicate")
            else:
                claimed.discard(event.event_id)  # a second copy in the same batch is a duplicate
                fresh.append((msg, event))
                outcomes.append("handled")
        return fresh

    async def _dead_letter(self, msg, error: str) -> None:
        headers = dict(msg.headers or {})
        headers.update({"Orderdesk-Original-Subject": msg.subject, "Orderdesk-Error": error[:500]})
        await self.js.publish(f"{events.DLQ_ROOT}.{self.sub.durable}", msg.data, headers=headers)
        await msg.term() if hasattr(msg, "term") else await msg.ack()
        metrics.DEAD_LETTERS.labels(self.sub.durable).inc()
        self._consumed("dead_lettered").inc()
