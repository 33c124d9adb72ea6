"""The allocator: reserves stock for confirmed orders, highest priority first, and retries backorders.

One replica runs it at a time (a lease, see orderdesk.leases); the orders service tells it when
an order is confirmed (`wake`) and when orders arrive (`orders_arrived`, counted by the surge
gate, services/orders/surge.py, which holds allocation off while orders pour in).

Safe to repeat: inventory's Reserve is target-state (reserve up to the line quantity) and
refuses orders it already released, so a crash between the call and the save, or a cancel
racing the call, leaves no stray reservation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from orderdesk import errors, events, metrics, rpc
from orderdesk.aio import wait_event, woken
from orderdesk.db import Database, Tx, utcnow
from orderdesk.usecase import retrying
from orderdesk.v1 import inventory_pb2
from services.orders.domain import AWAITING_STOCK, Allocation, Order, Status
from services.orders.service import count_transitions, publish_many, publish_transitions, quantities
from services.orders.store import OrderRepository
from services.orders.surge import SurgeGate

log = logging.getLogger("orders.allocator")


class Allocator:
    BATCH = 256  # awaiting orders read per pass while orders still pour in (the surge gate's passes)
    CHUNK = 64  # orders per ReserveMany call in those passes
    # Draining a backlog once the surge is over, a pass reads twice as many and reserves them in two calls:
    # each call's round trip waits on both services' event loops (about 50 ms a call beyond inventory's own
    # work, measured), and fewer, larger transactions cost less per order downstream too. While orders
    # still pour in, a pass stays small: its reads and saves hold orders' event loop, and orders waiting
    # for their answer behind a larger pass saw their p99 rise (README "Surges").
    DRAIN_BATCH = 512
    DRAIN_CHUNK = 256
    CONCURRENCY = 16  # Reserve calls in flight when inventory has no ReserveMany
    RETRY_SCHEDULED_SECONDS = 30.0
    # Without a wake-up, a pass at least this often: the bound on a confirmed order whose poke was lost (its
    # replica killed within the poke's milliseconds, NATS away in between) or that no one poked.
    SAFETY_NET_SECONDS = 10.0
    # Woken, a pass waits this long first, so that the orders confirmed meanwhile share its reads, its
    # ReserveMany call and its save (one partner's orders, 15 ms apart, were a pass each), and the order that
    # woke it has been answered before the pass competes for the cores (as the outbox relay: orderdesk/outbox.py).
    LINGER_SECONDS = 0.02

    def __init__(
        self,
        db: Database,
        inventory,
        timeout: float,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        surge: SurgeGate | None = None,
    ):
        """`db`: the orders database (or a fake unit of work); `inventory`: inventory's gRPC stub
        (Reserve, ReserveMany); `surge`: when to hold off (by default never)."""
        self.db = db
        self.inventory = inventory
        self.timeout = timeout
        self.clock = clock
        self.surge = surge or SurgeGate(rate=0, max_defer=0)
        self._wake = asyncio.Event()
        self._scheduled_due = True
        self._tasks: set[asyncio.Task] = set()

    def wake(self, *, scheduled: bool = False) -> None:
        """Run a pass now; `scheduled`: include the backordered orders (stock may have come)."""
        self._scheduled_due = self._scheduled_due or scheduled
        self._wake.set()

    def orders_arrived(self, count: int) -> None:
        """Orders came in (any replica's intake path): the surge gate counts them."""
        self.surge.arrived(count, asyncio.get_running_loop().time())

    def allocate_soon(self, order_ids: list[str]) -> None:
        """Orders whose backorders inventory filled: their Reserve only confirms what they hold now,
        so any replica may record it at once (a long queue of hopeless backorders ahead of them in
        the scheduled pass does not delay them)."""

        async def run() -> None:
            for order_id in order_ids:
                try:
                    await self.allocate(order_id)
                except Exception as exc:  # the scheduled pass retries it
                    log.warning("allocation of filled order %s failed: %s", order_id, exc)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_scheduled = loop.time()
        while True:
            if self.surge.hold(
                loop.time()
            ):  # orders are pouring in: take them first, allocate by priority after
                metrics.ALLOCATION_HELD.set(1)
                await asyncio.sleep(0.25)
                continue
            metrics.ALLOCATION_HELD.set(0)
            include_scheduled = (
                self._scheduled_due or loop.time() - last_scheduled > self.RETRY_SCHEDULED_SECONDS
            )
            self._scheduled_due = False
            self._wake.clear()
            draining = not self.surge.surging(loop.time())
            limit, per_call = (self.DRAIN_BATCH, self.DRAIN_CHUNK) if draining else (self.BATCH, self.CHUNK)
            found, stuck = 0, True
            try:
                backlog = await self.backlog(include_scheduled=include_scheduled, limit=limit)
                found = len(backlog)
                if include_scheduled:
                    last_scheduled = loop.time()
                confirmed = sum(1 for o in backlog if o.status is Status.CONFIRMED)  # before they are applied
                moved = await self.allocate_many(backlog, per_call=per_call)
                progressed = moved > 0
                # A confirmed order that did not move on (inventory down, a failed call) is tried again soon.
                stuck = moved < confirmed
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("allocator pass failed")
                progressed = False
            if progressed and found >= limit:
                continue
            if stuck:  # the pass failed, or inventory is down: again soon
                if not progressed:
                    await asyncio.sleep(0.5)  # nothing reservable: do not spin
                await wait_event(self._wake, 1.0)
                continue
            # Nothing to do until woken (an order confirmed or changed, stock came: in this replica at once,
            # from another over NATS), or until the safety net or the backorders' next retry is due: no pass
            # every second over an idle table.
            await woken(
                self._wake,
                min(self.SAFETY_NET_SECONDS, self.RETRY_SCHEDULED_SECONDS - (loop.time() - last_scheduled)),
                self.LINGER_SECONDS,
            )

    async def backlog(self, *, include_scheduled: bool, limit: int = 0) -> list[Order]:
        """Up to `limit` (BATCH) orders awaiting stock, confirmed before backordered, highest current priority
        first, in one read."""
        async with self.db.reading() as work:
            found = await work.repo(OrderRepository).awaiting_stock_orders(
                limit=limit or self.BATCH, include_scheduled=include_scheduled
            )
        # The stored priority is the one the watch last aged; order by today's (a stable sort keeps first come).
        today = self.clock().date()
        return sorted(found, key=lambda o: (o.status is not Status.CONFIRMED, -o.current_priority(today)))

    async def allocate_many(self, backlog: list[Order], *, per_call: int = 0) -> int:
        """Reserves stock for these orders in the given order (highest priority first): ReserveMany
        in chunks of `per_call` (CHUNK) orders, one after another, so scarce stock goes to the first; each
        chunk's answers are saved in one transaction while the next chunk is reserved. Returns the orders
        that moved on."""
        todo = [o for o in backlog if o.status in AWAITING_STOCK]
        size = per_call or self.CHUNK
        progressed = 0
        saving: asyncio.Task | None = None
        try:
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]
                requests = [self._reserve_request(o) for o in chunk]
                try:
                    answer = await self.inventory.ReserveMany(
                        inventory_pb2.ReserveManyRequest(orders=requests),
                        timeout=self.timeout
                        * max(1.0, len(chunk) / self.CONCURRENCY),  # as much per order as before
                        metadata=rpc.metadata(),
                    )
                except grpc.RpcError as exc:
                    if exc.code() is not grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    # an inventory from before ReserveMany (a rolling upgrade): one call per order
                    return progressed + await self._allocate_each([o.order_id for o in todo[start:]])
                if len(answer.results) != len(chunk):
                    raise RuntimeError(f"ReserveMany answered {len(answer.results)} of {len(chunk)} orders")
                if saving is not None:
                    previous, saving = saving, None
                    progressed += await previous
                saving = asyncio.get_running_loop().create_task(self._record_chunk(chunk, answer.results))
        finally:
            if saving is not None:
                progressed += await saving
        return progressed

    async def _allocate_each(self, order_ids: list[str]) -> int:
        gate = asyncio.Semaphore(self.CONCURRENCY)

        async def one(order_id: str) -> bool:
            async with gate:
                return await self.allocate(order_id)

        # Started in priority order; with scarce stock the first callers win.
        results = await asyncio.gather(*[one(i) for i in order_ids], return_exceptions=True)
        for r in results:
            if isinstance(r, Exception):
                log.warning("allocation failed: %s", r)
        return sum(1 for r in results if r is True)

    def _reserve_request(self, order: Order) -> inventory_pb2.ReserveRequest:
        return inventory_pb2.ReserveRequest(
            order_id=order.order_id,
            lines=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in quantities(order).items()],
            priority=order.current_priority(self.clock().date()),  # aged (services/orders/promise.py)
            ship_to_country=order.ship_to.get("country", ""),
            placed_at=events.timestamp(order.created_at) if order.created_at else None,
        )

    @staticmethod
    def _answer(order: Order, answer: inventory_pb2.ReserveResponse) -> _Reserved | None:
        """Inventory's answer for the order as read before the call; None when there is nothing to record."""
        allocations = [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]
        backordered = {b.sku: b.quantity for b in answer.backordered}
        expected = (answer.expected_date, answer.expected_delivery_date)
        if (
            order.status is Status.SCHEDULED
            and any(backordered.values())
            and allocations == order.allocations
            and expected == (order.expected_ship_date, order.expected_delivery_date)
        ):
            return None  # still short by the same amount, same dates: nothing to record
        return _Reserved(order.order_id, quantities(order), allocations, backordered, expected)

    async def _record_chunk(self, chunk: list[Order], results) -> int:
        """The answers for a chunk in one transaction, each order checked as `_record` does; if another
        writer changed one of them meanwhile, each is recorded on its own (the others are not lost)."""
        pending: list[_Reserved] = []
        for order, result in zip(chunk, results, strict=True):
            if result.order_id != order.order_id:
                raise RuntimeError(f"ReserveMany answered {result.order_id} for {order.order_id}")
            if result.error_code:
                if result.error_code != "FAILED_PRECONDITION":  # that one: released (cancelled) meanwhile
                    log.warning(
                        "allocation of %s failed: %s %s",
                        order.order_id,
                        result.error_code,
                        result.error_message,
                    )
                continue
            reserved = self._answer(order, result.response)
            if reserved is not None:
                pending.append(reserved)
        if not pending:
            return 0
        try:
            changed: list[Order] = []
            # The orders as read for the call, not read again, saved together in a few statements for the
            # chunk (OrderRepository.save_many, with their events: publish_many); each row is still guarded by
            # the version read, so one changed meanwhile (a cancel, a change request) raises Conflict and all
            # are recorded below from a fresh read.
            read = {o.order_id: o for o in chunk}
            async with self.db.transaction() as tx:
                for reserved in pending:
                    order = read[reserved.order_id]
                    if self._applies(order, reserved):
                        self._reserve_on(order, reserved)
                        changed.append(order)
                await tx.repo(OrderRepository).save_many(changed)
                await publish_many(tx, changed)
        except errors.Conflict:
            moved = 0
            for reserved in pending:
                try:
                    moved += await self._record(reserved)
                except Exception as exc:  # the next pass reserves it again (Reserve is target-state)
                    log.warning("recording the allocation of %s failed: %s", reserved.order_id, exc)
            return moved
        for order in changed:
            count_transitions(order)
        return sum(1 for order in changed if order.transitions)

    async def allocate(self, order_id: str) -> bool:
        """Reserves stock for one order; True if its status moved on."""
        async with self.db.reading() as work:
            order = await work.repo(OrderRepository).get(order_id)
        if order is None or order.status not in AWAITING_STOCK:
            return False
        try:
            answer = await self.inventory.Reserve(
                self._reserve_request(order), timeout=self.timeout, metadata=rpc.metadata()
            )
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                return False  # inventory released this order (it was cancelled meanwhile)
            raise
        reserved = self._answer(order, answer)
        return reserved is not None and await self._record(reserved)

    async def _apply(self, tx: Tx, order: Order | None, reserved: _Reserved) -> bool:
        """Records inventory's answer on the order as read in this transaction, with its events; False when
        it no longer applies: gone, no longer awaiting stock, or a change request moved the lines meanwhile
        (the next pass reserves them)."""
        if not self._applies(order, reserved):
            return False
        assert order is not None, "_applies says no to a missing order"
        self._reserve_on(order, reserved)
        await tx.repo(OrderRepository).save(order)
        await publish_transitions(tx, order)
        return True

    @staticmethod
    def _applies(order: Order | None, reserved: _Reserved) -> bool:
        """Whether inventory's answer still applies to the order as read: not gone, still awaiting stock,
        its lines as they were asked for."""
        return order is not None and order.status in AWAITING_STOCK and quantities(order) == reserved.wanted

    def _reserve_on(self, order: Order, reserved: _Reserved) -> None:
        order.apply_reservation(self.clock(), reserved.allocations, reserved.backordered, reserved.expected)

    async def _record(self, reserved: _Reserved) -> bool:
        """One order's answer in a transaction of its own, from a fresh read if another writer got there first."""

        async def work(tx: Tx) -> Order | None:
            order = await tx.repo(OrderRepository).get(reserved.order_id)
            return order if await self._apply(tx, order, reserved) else None

        order = await retrying(self.db, work)
        if order is None:
            return False
        count_transitions(order)
        return bool(order.transitions)


@dataclass(frozen=True)
class _Reserved:
    """What inventory now holds for an order, and the lines it was asked for."""

    order_id: str
    wanted: dict[str, int]
    allocations: list[Allocation]
    backordered: dict[str, int]
    expected: tuple[str, str]
