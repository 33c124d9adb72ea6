"""The two shapes every service's use cases share, written once.

1. Load an aggregate, change it, save it with its version, publish its changes — and
   when another writer saved first (the version guard raised Conflict), do it all again
   on a fresh read:

       async def work(tx: Tx) -> Shipment:
           shipment = await tx.repo(ShipmentRepository).get(shipment_id)
           ...
           return shipment

       shipment = await retrying(self.db, work)

   or, when the work is just that (get by key, change, save and publish if it changed):

       shipment = await changing(self.db, ShipmentRepository, (shipment_id,), change, publish_changes,
                                 missing=f"shipment {shipment_id} not found")

   (`load(db, ShipmentRepository, key, missing=...)` reads one the same way, for an answer.)

2. Publish what an aggregate recorded: one event per change, each carrying the aggregate
   as it now is (built once), counted in the service's metrics once the transaction has
   committed (a rolled-back attempt counts nothing):

       await publish(tx, shipment.changes, aggregate_id=..., order_id=...,
                     payload=lambda: {"shipment": events_pb2.ShipmentEvent(shipment=to_proto(shipment))},
                     count=count_change)

   A service whose aggregate keeps its changes in `.changes` names those parts once, as a
   `Publisher`, and calls it with the aggregate: `await publish_changes(tx, shipment)`.

3. A consumer's batch of events in one transaction (`Subscription(group_commit=True, batch_handler=...)`):
   the aggregates read once (`get_many`), each event's change applied in stream order and published at
   once, the aggregates saved at the end, each once (`apply_in_turn`), the same effect as one
   transaction per event with a read and a save each.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from orderdesk import errors, events, logs

T = TypeVar("T")
C = TypeVar("C", bound="Recorded")
A = TypeVar("A", bound="Recording")

ATTEMPTS = 3


class UnitsOfWork(Protocol):
    """What a use case needs of a database: `orderdesk.db.Database`, or a fake in unit tests."""

    def transaction(self) -> Any: ...

    def reading(self) -> Any: ...


async def retrying(db: UnitsOfWork, work: Callable[[Any], Awaitable[T]], *, attempts: int = ATTEMPTS) -> T:
    """Runs `work(tx)` in a transaction; a lost race (Conflict) runs it again from a fresh read,
    at most `attempts` times in all, then lets the Conflict (gRPC ABORTED) reach the caller."""
    for attempt in range(attempts):
        try:
            async with db.transaction() as tx:
                return await work(tx)
        except errors.Conflict:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


async def load(db: UnitsOfWork, repository: type[Any], key: Sequence[str], *, missing: str) -> Any:
    """The aggregate as saved (`repository.get(*key)`, read only), or NotFound(`missing`)."""
    async with db.reading() as work:
        aggregate = await work.repo(repository).get(*key)
    return _found(aggregate, missing)


def _found(aggregate: T | None, missing: str) -> T:
    if aggregate is None:
        raise errors.NotFound(missing)
    return aggregate


async def changing(
    db: UnitsOfWork,
    repository: type[Any],
    key: Sequence[str],
    change: Callable[[A], bool],
    publish_changes: Callable[[Any, A], Awaitable[None]],
    *,
    missing: str,
) -> A:
    """Shape 1 whole, for an aggregate whose repository has `get(*key)` and `save(aggregate)`: load
    it (NotFound(`missing`) when there is none), change it and, when `change` says something changed,
    save it with its version and publish its changes (`publish_changes(tx, aggregate)`, such as a
    `Publisher`); retried on a lost race. Returns the aggregate as it now is."""

    async def work(tx: Any) -> A:
        repo = tx.repo(repository)
        aggregate = _found(await repo.get(*key), missing)
        if change(aggregate):
            await repo.save(aggregate)
            await publish_changes(tx, aggregate)
        return aggregate

    return await retrying(db, work)


class Recorded(Protocol):
    """A change an aggregate recorded about itself, to publish as one event."""

    @property
    def event_type(self) -> str: ...  # "shipment.shipped", "order.changed"

    @property
    def version(self) -> int: ...

    @property
    def actor(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def at(self) -> dt.datetime: ...


async def publish(
    tx: Any,
    changes: Sequence[C],
    *,
    aggregate_id: str,
    order_id: str,
    payload: Callable[[C, Any], dict[str, Any]],
    snapshot: Callable[[], Any],
    count: Callable[[C], None] | None = None,
) -> None:
    """One outbox event per change, in order. `snapshot()` (the aggregate as it now is) is built
    once and only when there is something to publish; `payload(change, snapshot)` gives the event's
    body keywords (order=, shipment=, return_=, stock=). `count(change)` runs after the commit."""
    if not changes:
        return
    state = snapshot()
    for change in changes:
        await tx.emit(
            events.new_event(
                change.event_type,
                aggregate_id=aggregate_id,
                version=change.version,
                order_id=order_id,
                actor=change.actor,
                reason=change.reason,
                at=change.at,
                **payload(change, state),
            )
        )
    if count is not None:
        published = list(changes)
        tx.after_commit.append(lambda: [count(change) for change in published])


class Recording(Protocol):
    """An aggregate that keeps what it recorded, not yet published, in `changes`."""

    @property
    def order_id(self) -> str: ...

    @property
    def changes(self) -> Sequence[Recorded]: ...


@dataclass(frozen=True)
class Publisher(Generic[A]):
    """`publish` for one kind of aggregate, its parts named once: the aggregate's id, its snapshot
    (the aggregate as it now is), each event's body from the change and the snapshot, and the
    metrics of one change (`count(aggregate, change)`, after the commit)."""

    aggregate_id: Callable[[A], str]
    snapshot: Callable[[A], Any]
    payload: Callable[[Any, Any], dict[str, Any]]
    count: Callable[[A, Any], None] | None = None

    async def __call__(self, tx: Any, aggregate: A) -> None:
        await publish(
            tx,
            aggregate.changes,
            aggregate_id=self.aggregate_id(aggregate),
            order_id=aggregate.order_id,
            snapshot=lambda: self.snapshot(aggregate),
            payload=self.payload,
            count=None if self.count is None else functools.partial(self.count, aggregate),
        )


@dataclass(frozen=True)
class Step(Generic[T]):
    """One event's change to one aggregate (`apply_in_turn`): `change(aggregate)` records what it did on
    the aggregate, as a use case's change does; `correlation_id` is the event's, for what it publishes."""

    key: str
    change: Callable[[T], Any]
    correlation_id: str = ""


async def apply_in_turn(
    tx: Any,
    aggregates: Mapping[str, T],
    steps: Iterable[Step[T]],
    publish_step: Callable[[Any, T], Awaitable[None]],
    save_all: Callable[[list[T]], Awaitable[None]],
) -> None:
    """Shape 3: a batch's steps, in order, on the aggregates read once (`aggregates` by key; a step whose
    aggregate is not there is skipped, as a consumer ignores an event about one it does not have).

    After each step `publish_step(tx, aggregate)` publishes what that step recorded, under the step's
    correlation id, and forgets it (so each event carries the aggregate as it was right after its own
    step, as with one transaction per event); then every aggregate is saved once, all of them together
    with `save_all(aggregates)`, which writes everything the steps recorded, each guarded by the version
    read (a Conflict rolls the whole batch back: the consumer then handles its events one by one)."""
    for step in steps:
        aggregate = aggregates.get(step.key)
        if aggregate is None:
            continue
        step.change(aggregate)
        with logs.correlated(step.correlation_id):
            await publish_step(tx, aggregate)
    if aggregates:
        await save_all(list(aggregates.values()))
