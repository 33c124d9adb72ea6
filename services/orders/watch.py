"""The promise watch job: re-assesses open orders against their promise (rules: services/orders/promise.py).

One replica runs it at a time (the lease `orders-watch`, orderdesk.leases, like the allocator). Which
orders to look at is kept in the orders table itself, so nothing is lost across restarts or replicas:
every save of an order (whatever changed it: a shipment event, a restock's allocation, a re-promised
backorder, a hold, a change request) sets `watch_at` by the watch's own rule (`Order.next_look`, wired
into every replica's repository: `Watch.repository`): "due now" when a look now would change something
(a risk to raise or clear, a priority to age), else the moment the passage of time alone could change
the outcome (`promise.next_check`: a cut-off, a carrier's silence running out, midnight, at the latest
`Policy.recheck`); NULL for a settled order. Each assessment sets it the same way.
Each pass takes at most `batch` due orders, oldest due first, reads them in one go, assesses them and
writes the outcome in one transaction: risks that changed are saved with the order (version-guarded)
and published through the outbox (`order.at_risk`, `order.back_on_track`); the others only get their
next `watch_at` and current (aged) priority, guarded by the version read, so an order changed meanwhile
stays due and is looked at again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from sqlalchemy import bindparam, select, update

from orderdesk import errors, metrics
from orderdesk.aio import wait_event
from orderdesk.calendar import Calendar, parse_working_days
from orderdesk.config import WatchSettings
from orderdesk.db import Database, Tx, utcnow
from services.orders.domain import TERMINAL, Order
from services.orders.promise import RISK_CODES, Policy, assess, next_check
from services.orders.service import count_transitions, publish_many
from services.orders.store import OrderRepository, orders

log = logging.getLogger("orders.watch")

_DUE = (
    select(orders.c.order_id)
    .where(orders.c.watch_at <= bindparam("now"))
    .order_by(orders.c.watch_at)
    .limit(bindparam("n"))
)
_LOOKED_AT = (
    update(orders)
    .where(orders.c.order_id == bindparam("oid"), orders.c.version == bindparam("v"))
    .values(watch_at=bindparam("next_at"), priority=bindparam("prio"))
)


class Watch:
    BATCH = 500  # orders per pass (one read, one transaction)
    INTERVAL_SECONDS = 5.0  # between polls when nothing wakes it
    GAUGE_SECONDS = 15.0  # between recounts of orderdesk_orders_at_risk

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        policy: Policy | None = None,
        batch: int = BATCH,
        interval: float = INTERVAL_SECONDS,
    ):
        self.db = db
        self.clock = clock
        self.policy = policy or Policy()
        self.batch = batch
        self.interval = interval
        self._wake = asyncio.Event()

    @classmethod
    def from_settings(cls, db: Database, settings: WatchSettings, **options) -> Watch:
        policy = Policy(
            lead_days=settings.lead_days,
            carrier_silence=dt.timedelta(hours=settings.carrier_silence_hours),
            max_hold=dt.timedelta(hours=settings.max_hold_hours),
            recheck=dt.timedelta(minutes=settings.recheck_minutes),
            # Orders has no warehouse's holidays: working days by weekday (orderdesk.calendar).
            calendar=Calendar(working_days=parse_working_days(settings.working_days)),
        )
        return cls(db, policy=policy, batch=settings.batch, interval=settings.interval_seconds, **options)

    def next_look(self, order: Order) -> dt.datetime | None:
        """When this watch next has something to do for the order as it is now (Order.next_look)."""
        return order.next_look(self.clock(), self.policy)

    def repository(self, conn) -> OrderRepository:
        """The order repository whose saves set watch_at by this watch's rule, policy and clock: the
        service's database makes its OrderRepository so (Database.repositories)."""
        return OrderRepository(conn, self.next_look)

    def wake(self) -> None:
        """Something happened to orders: look at the due ones now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        counted = 0.0
        try:
            while True:
                self._wake.clear()
                try:
                    done = await self.pass_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("watch pass failed")
                    done = 0
                if time.monotonic() - counted >= self.GAUGE_SECONDS and done < self.batch:
                    try:
                        await self.count()
                        counted = time.monotonic()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("counting orders at risk failed")
                if done >= self.batch:
                    await asyncio.sleep(0)  # more are due: go on, letting the service's own work in between
                    continue
                await wait_event(self._wake, self.interval)
        finally:
            metrics.ORDERS_AT_RISK.clear()  # the replica that takes the lease over counts from now on

    async def pass_once(self) -> int:
        """Assesses up to `batch` due orders; returns how many were looked at."""
        started = time.perf_counter()
        now = self.clock()
        batch = await self.due(now)
        if not batch:
            return 0
        changed: list[tuple[Order, dict]] = []
        quiet: list[dict] = []
        for order in batch:
            looked = self._assess(order, now)
            if order.version != order.loaded_version:
                changed.append((order, looked))
            else:
                quiet.append(looked)
        try:
            async with self.db.transaction() as tx:
                await self._write(tx, quiet, changed)
        except errors.Conflict:  # another writer saved one of them meanwhile: each on its own
            async with self.db.transaction() as tx:
                await self._write(tx, quiet, [])
            for order, looked in changed:
                try:
                    async with self.db.transaction() as tx:
                        await self._write(tx, [], [(order, looked)])
                except errors.Conflict:
                    pass  # it stays due (the other writer's save made it so): assessed again next pass
        for order, _ in changed:
            count_transitions(order)
        metrics.WATCH_ASSESSED.inc(len(batch))
        metrics.WATCH_PASS.observe(time.perf_counter() - started)
        return len(batch)

    async def due(self, now: dt.datetime) -> list[Order]:
        """Up to `batch` orders due at `now`, the longest due first, in one read."""
        async with self.db.reading() as work:
            ids = [r.order_id for r in await work.execute(_DUE, {"now": now, "n": self.batch})]
            return await work.repo(OrderRepository).get_many(ids)

    def _assess(self, order: Order, now: dt.datetime) -> dict:
        """Assesses one order (recording its risk events on it); returns its row's next watch_at and priority."""
        facts = order.promise_facts()
        if order.status in TERMINAL:
            order.settle_risks()
            next_at = None
        else:
            order.watch(assess(facts, now, self.policy), now)
            next_at = next_check(facts, now, self.policy)
            order.priority = order.current_priority(now.date())
        return {"oid": order.order_id, "v": order.version, "next_at": next_at, "prio": order.priority}

    async def _write(self, tx: Tx, quiet: list[dict], changed: list[tuple[Order, dict]]) -> None:
        """The orders whose risks changed saved together with their events (OrderRepository.save_many, as
        the allocator's chunk; Conflict when one was changed meanwhile), each with the next look its
        assessment gave (what the order's own next_look would give again, at the cost of assessing it
        again); the others only get their next look and aged priority."""
        if changed:
            next_at = {order.order_id: looked["next_at"] for order, looked in changed}
            saved = [order for order, _ in changed]
            await OrderRepository(tx.conn, lambda order: next_at[order.order_id]).save_many(saved)
            await publish_many(tx, saved)
        if quiet:
            await tx.execute(_LOOKED_AT, quiet)

    async def count(self) -> dict[str, int]:
        """Sets orderdesk_orders_at_risk{reason} from the orders' current risks; returns the counts."""
        async with self.db.reading() as work:
            _, found = await work.repo(OrderRepository).risk_counts()
        counts = {code: found.get(code, 0) for code in RISK_CODES}
        for code, n in counts.items():
            metrics.ORDERS_AT_RISK.labels(code).set(n)
        return counts
