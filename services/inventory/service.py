"""Inventory's use cases, one transaction each: reserve, release, consume, restock, import.

Reserve locks the order's state row, plans from the stock levels with the domain's rules
and applies the plan with guarded updates, touching the stock rows last. The guards make
sure that a plan from numbers another writer changed meanwhile never oversells: it is
refused and tried again, the last time with the SKUs' stock rows locked before planning,
so that attempt's plan holds. Repositories come from the unit of work
(`tx.repo(StockRepository)`), so a use case also runs against a fake one in unit tests.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from orderdesk import actors, errors, events, ids, masterdata, metrics
from orderdesk.calendar import CalendarBook, WarehouseCalendar
from orderdesk.calendar_store import BookCache, import_calendar_kind, warehouse_values
from orderdesk.db import Database, Tx, Work, utcnow
from orderdesk.domain import units_per_sku
from orderdesk.usecase import retrying
from orderdesk.v1 import events_pb2
from services.inventory.domain import (
    MAX_LENGTH,
    UNKNOWN_TRANSIT,
    OrderReservations,
    OrderState,
    RecordedReceipt,
    ReservationPlan,
    StockBookError,
    StockLevel,
    check_column_widths,
    plan_order_allocation,
    reference_reused,
    reservation_outcome,
    unknown_warehouse,
    validate_quote_lines,
    validate_reserve_lines,
    validate_restock,
)
from services.inventory.store import StockRepository
from services.inventory.supply import (
    AtpPoint,
    Backorder,
    Inbound,
    Promise,
    Run,
    available_to_promise,
    check_inbound,
    covering_run,
    fill_order,
    quote,
    run_date,
    run_to_grow,
    validate_production_id,
)

# A guard that refuses a locked plan means a writer bypassed the lock; start over a few times.
RESERVE_ATTEMPTS = 3
# A batch that lost a race (an order or a SKU counter created meanwhile) tries once more before going one by one.
BATCH_ATTEMPTS = 2
# A fill locks the orders that began waiting after it locked the others, at most this many times over.
LATE_WAITING_ROUNDS = 5
INVENTORY_KINDS = ("stock", "warehouses", "products", "calendars", "lanes")
IMPORT_WIDTHS = {
    "stock": {"sku": MAX_LENGTH["sku"], "warehouse": MAX_LENGTH["warehouse"]},
    "products": {"sku": MAX_LENGTH["sku"]},
    "warehouses": {"warehouse": MAX_LENGTH["warehouse"], "name": 200, "country": 2},
    "calendars": {"code": 64},
    "lanes": {"carrier": 64},
}


@dataclass(frozen=True)
class ReserveResult:
    reservations: list[tuple[str, str, int]]  # (sku, warehouse, quantity) the order holds now
    backordered: dict[str, int]  # sku -> units still missing
    expected_date: str = ""  # ISO date the missing units are due ("" unknown / none)
    expected_delivery_date: str = ""  # expected_date + transit to the ship-to country


@dataclass(frozen=True)
class SupplyQuote:
    """QuoteSupply's answer for one SKU: no dates when inventory cannot plan the units."""

    sku: str
    quantity: int
    ready_date: dt.date | None = None
    warehouse: str = ""
    delivery_date: dt.date | None = None


@dataclass(frozen=True)
class ReserveCall:
    """One order's Reserve request, as ReserveMany receives it."""

    order_id: str
    lines: list[tuple[str, int]]
    priority: int = 0
    country: str = ""
    placed_at: dt.datetime | None = None


MAX_RESERVE_MANY = 500
RECENT_RECEIPTS = 10  # shown with a SKU's stock (GetStock): who received what, lately


@dataclass(frozen=True)
class Atp:
    sku: str
    available_now: int
    backordered: int
    in_production: int
    points: list[AtpPoint]


@dataclass(frozen=True)
class Receipt:
    sku: str
    warehouse: str
    quantity: int
    reference: str
    actor: str = (
        actors.SYSTEM
    )  # who recorded it: a desk person or a named key; production and returns: system


class _Millis:
    """The wall clock in milliseconds, never the same value twice in a process: a batch plans several
    runs within one millisecond, and runs of one date are used in id order (their creation order)."""

    last = 0

    @classmethod
    def next(cls) -> int:
        cls.last = max(int(time.time() * 1000), cls.last + 1)
        return cls.last


def new_production_id() -> str:
    """PRD-<milliseconds><random>: ids sort in creation order (runs of one date are used in that order);
    the random part keeps replicas' ids apart."""
    return "PRD-" + ids.time_ordered_hex(8, _Millis.next()).lower()


class InventoryService:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.clock = clock
        # Warehouses, holidays and lanes change only by import: read at most every few seconds.
        self.calendars = BookCache(lambda work: work.repo(StockRepository).warehouses())
        self._transit_book: CalendarBook | None = None
        self._transit_to: dict[str, dict[str, int]] = {}

    async def book(self, work: Work) -> CalendarBook:
        """What transit and dates are computed with (orderdesk.calendar)."""
        return await self.calendars.get(work)

    async def _transit(self, work: Work, country: str) -> dict[str, int]:
        """Transit working days from each known warehouse to the ship-to country (its lane): worked out once
        per country and book (each Reserve asks; callers only read it)."""
        book = await self.book(work)
        if book is not self._transit_book:
            self._transit_book, self._transit_to = book, {}
        transit = self._transit_to.get(country)
        if transit is None:
            transit = {code: book.transit_days(code, country) for code in sorted(book.warehouses)}
            self._transit_to[country] = transit
        return transit

    # --- reservations ---------------------------------------------------------------------------
    async def reserve(
        self,
        order_id: str,
        lines: list[tuple[str, int]],
        priority: int = 0,
        *,
        country: str = "",
        placed_at: dt.datetime | None = None,
    ) -> ReserveResult:
        """Makes the order hold min(requested, reservable) of each SKU (target state); what is missing
        is backordered, covered by production runs where the product has a lead time, and dated."""
        wanted = validate_reserve_lines(order_id, lines)
        attempts = 0

        async def attempt(tx: Tx) -> tuple[OrderReservations, ReservationPlan, tuple[str, str]]:
            nonlocal attempts
            attempts += 1
            # Optimistic first (plan from unlocked levels; the guarded updates refuse a plan that
            # no longer holds), locked on the last attempt, which therefore always goes through.
            locked = attempts == RESERVE_ATTEMPTS
            try:
                order, plan = await self._reserve_in(
                    tx, order_id, lines, wanted, priority, country, placed_at, locked=locked
                )
                dates = (
                    await self._promise(tx, order_id, plan.backordered, country)
                    if plan.backordered
                    else ("", "")
                )
            except errors.Conflict:
                metrics.RESERVE_RETRIES.inc()
                raise
            return order, plan, dates

        return self._reserved(*await retrying(self.db, attempt, attempts=RESERVE_ATTEMPTS))

    @staticmethod
    def _reserved(order: OrderReservations, plan: ReservationPlan, dates: tuple[str, str]) -> ReserveResult:
        """A committed Reserve: counted, and its answer."""
        metrics.RESERVATIONS.labels(reservation_outcome(plan, order)).inc()
        if plan.units_reserved:
            metrics.UNITS_RESERVED.inc(plan.units_reserved)
        released = sum(q for _, _, q in plan.release)
        if released:
            metrics.STOCK_UNITS_MOVED.labels("released").inc(released)
        return ReserveResult(order.reservations(), plan.backordered, *dates)

    async def reserve_many(self, calls: list[ReserveCall]) -> list[ReserveResult | errors.DomainError]:
        """Each order's Reserve, in the given order (the caller's priority order), each on its own:
        one result per call, either its ReserveResult or the domain error Reserve would have raised.

        The valid calls run in one transaction, which saves a commit and most statements per order; if
        any of them is refused there (released meanwhile) or the batch loses a race twice, it all rolls
        back and each runs in its own transaction, as Reserve does."""
        if len(calls) > MAX_RESERVE_MANY:
            raise errors.InvalidArgument(
                f"at most {MAX_RESERVE_MANY} orders per call",
                [errors.FieldViolation("orders", f"at most {MAX_RESERVE_MANY}", "too_many")],
            )
        seen: set[str] = set()
        for n, call in enumerate(calls):
            if call.order_id in seen:
                raise errors.InvalidArgument(
                    "the same order twice in one call",
                    [errors.FieldViolation(f"orders[{n}].order_id", "each order once per call", "duplicate")],
                )
            seen.add(call.order_id)
        results: list[ReserveResult | errors.DomainError | None] = [None] * len(calls)
        valid: list[tuple[int, ReserveCall, dict[str, int]]] = []
        for n, call in enumerate(calls):
            try:
                valid.append((n, call, validate_reserve_lines(call.order_id, call.lines)))
            except errors.InvalidArgument as exc:
                results[n] = exc
        if len(valid) > 1:
            try:
                together = await retrying(
                    self.db, lambda tx: self._reserve_together(tx, valid), attempts=BATCH_ATTEMPTS
                )
            except errors.DomainError:
                pass  # one of them was refused: all rolled back, each on its own below
            else:
                for (n, _, _), done in zip(valid, together, strict=True):
                    results[n] = self._reserved(*done)
                return results  # type: ignore[return-value]
        for n, call, _ in valid:
            try:
                results[n] = await self.reserve(
                    call.order_id, call.lines, call.priority, country=call.country, placed_at=call.placed_at
                )
            except errors.DomainError as exc:
                results[n] = exc
        return results  # type: ignore[return-value]

    async def _reserve_together(
        self, tx: Tx, valid: list[tuple[int, ReserveCall, dict[str, int]]]
    ) -> list[tuple[OrderReservations, ReservationPlan, tuple[str, str]]]:
        """The valid calls in one transaction, each as Reserve would make it, in order; their writes
        batched: the new orders' rows in one statement, the levels of their SKUs read once (and kept
        current in memory as each order takes or gives back), the reservation rows in one statement and
        each stock row's summed change in one guarded statement for all, at the end (StockLevels.deferring).

        On PostgreSQL other transactions run alongside (another replica's batch, a receipt's fill, a
        cancel), so the batch takes its locks up front in the store's lock order: the orders' rows by id,
        then every stock row of their SKUs by (sku, warehouse), then (at the first backorder) those
        SKUs' counters; what it read then stays true until it writes, as on SQLite."""
        done = []
        repo = tx.repo(StockRepository)
        repo.deferring(locked=self.db.dialect != "sqlite")
        existing = await repo.create_orders(
            [(c.order_id, c.priority, c.country, c.placed_at) for _, c, _ in valid]
        )
        skus = {sku for _, _, wanted in valid for sku in wanted} | await repo.order_skus(existing)
        await repo.read_batch(sorted(skus))
        for _, call, wanted in valid:
            order, plan = await self._reserve_in(
                tx,
                call.order_id,
                call.lines,
                wanted,
                call.priority,
                call.country,
                call.placed_at,
                locked=False,
            )
            dates = (
                await self._promise(tx, call.order_id, plan.backordered, call.country)
                if plan.backordered
                else ("", "")
            )
            done.append((order, plan, dates))
        await repo.flush_deferred()
        return done

    async def _reserve_in(
        self,
        tx: Tx,
        order_id: str,
        lines: list[tuple[str, int]],
        wanted: dict[str, int],
        priority: int,
        country: str = "",
        placed_at: dt.datetime | None = None,
        *,
        locked: bool = True,
    ) -> tuple[OrderReservations, ReservationPlan]:
        """The order's row is locked first. Stock rows are touched last, in (sku, warehouse) order,
        so under contention a hot stock row is locked only from its guarded update to the commit."""
        repo = tx.repo(StockRepository)
        order = await repo.lock_order(order_id, priority, country=country, placed_at=placed_at)
        order.require_reservable()
        # A SKU with no stock record anywhere is simply not in stock yet: backordered, not an
        # error (intake has checked it against the catalogue; a receipt creates its first record).
        available = await repo.available(sorted(set(wanted) | order.skus()), lock=locked)
        plan = order.plan(wanted, available, await self._transit(tx, country))
        state_before = order.state
        for sku, warehouse, qty in plan.release:
            await repo.unhold(order_id, sku, warehouse, qty)
        for sku, warehouse, qty in plan.reserve:
            await repo.hold(order_id, sku, warehouse, qty)
        order.apply(plan)
        if order.state is not state_before or order.priority != priority:
            order.priority = priority
            await repo.save_order_state(order)
        if plan.release:
            await repo.drop_empty_reservations(order_id)
        before = {} if repo.created_order else await repo.order_backorders(order_id)
        moves = sorted([(sku, wh, -qty) for sku, wh, qty in plan.release] + list(plan.reserve))
        for sku, warehouse, delta in moves:  # the stock rows, last and in lock order
            if delta > 0:
                await repo.take_stock(sku, warehouse, delta)
            else:
                await repo.return_stock(sku, warehouse, -delta)
        if before != plan.backordered:  # after the stock rows: the SKUs' totals come later in the lock order
            changed = sorted(set(before) | set(plan.backordered))
            for sku in changed:
                await repo.set_backorder(order_id, sku, plan.backordered.get(sku, 0))
            await repo.add_backordered(
                {sku: plan.backordered.get(sku, 0) - before.get(sku, 0) for sku in changed}
            )
        return order, plan

    # --- backorders and production ------------------------------------------------------------------
    async def _promise(
        self, tx: Tx, order_id: str, backordered: dict[str, int], country: str
    ) -> tuple[str, str]:
        """Plans production for what open runs do not cover, then dates the order's backorders:
        (expected date in a warehouse, expected delivery date), "" when some SKU has no run."""
        repo = tx.repo(StockRepository)
        transit = await self._transit(tx, country)
        book = await self.book(tx)
        now = self.clock()
        ready: list[dt.date] = []
        delivered: list[dt.date] = []
        for sku in sorted(backordered):
            await repo.lock_sku(sku)  # one planner per SKU at a time, also across replicas
            runs = await repo.open_runs(sku)
            inbound = await repo.open_inbound(sku)  # suppliers' announced receipts: supply like a run
            total = await repo.backordered_total(sku)
            # what neither an open run nor an announced receipt covers yet (`uncovered`)
            short = max(total - sum(r.quantity for r in runs + inbound), 0)
            product = await repo.product(sku) if short else None
            if product is not None and transit:
                nearest = min(transit, key=lambda wh: (transit[wh], wh))
                calendar = book.warehouse(nearest) or WarehouseCalendar()
                due = run_date(calendar.today(now), product[1], runs, calendar)
                grows = run_to_grow(runs, due, nearest)
                if grows is not None:
                    queued = runs[grows]
                    await repo.grow_run(queued.production_id, short)
                    runs[grows] = Run(queued.production_id, sku, nearest, queued.quantity + short, due)
                else:
                    run = Run(new_production_id(), sku, nearest, short, due)
                    await repo.add_run(run)
                    runs.append(run)
                    metrics.PRODUCTION_RUNS.labels("planned").inc()
            promise = await self._covering(
                repo, sku, order_id, backordered[sku], total, runs + inbound, transit
            )
            if promise is None:
                return "", ""
            ready.append(promise.date)
            delivered.append(book.arrival_from(promise.date, promise.warehouse, country))
        return max(ready).isoformat(), max(delivered).isoformat()

    @staticmethod
    async def _covering(
        repo: StockRepository,
        sku: str,
        order_id: str,
        own: int,
        total: int,
        runs: list[Run],
        transit: dict[str, int],
    ) -> Promise | None:
        """The run that covers the order's place in the fill order. Its place is summed in SQL only
        when it matters: when the run covering its own units and the run covering every backorder
        fall on different dates (otherwise every backorder gets that date, from the run nearest it)."""
        if not runs:
            return None
        best, worst = covering_run(own, runs), covering_run(total, runs)
        if best is not None and worst is not None and best.date == worst.date:
            same_day = [r for r in runs if r.expected_date == best.date]
            nearest = min(
                same_day, key=lambda r: (transit.get(r.warehouse, UNKNOWN_TRANSIT), r.production_id)
            )
            return Promise(best.date, nearest.warehouse)
        through, _ = await repo.backorder_demand(sku, order_id)
        return covering_run(through, runs)

    async def _lock_waiting(
        self, repo: StockRepository, skus: list[str], also: tuple[str, ...] = ()
    ) -> set[str]:
        """The store's lock order for a fill: orders waiting for these SKUs (and `also`), then
        every stock row of the SKUs, before any row is changed. Orders that began waiting while it waited
        for the others' locks are locked with them, all over again in order-id order. Returns the orders
        it locked: a fill changes only those (`_fill`)."""
        waiting = set(also)

        async def more_wait() -> bool:  # orders began waiting while the others were being locked
            return not {b.order_id for b in await repo.backorders_for(skus)} <= waiting

        for last in [False] * (LATE_WAITING_ROUNDS - 1) + [True]:
            waiting |= {b.order_id for b in await repo.backorders_for(skus)}
            if last:  # the fill locks any later ones itself (`_waiting_locked`)
                await repo.lock_orders(sorted(waiting))
            elif await repo.lock_orders_unless(sorted(waiting), more_wait):
                break
        for sku in sorted(set(skus)):
            await repo.lock_levels(sku)
        return waiting

    @staticmethod
    async def _waiting_locked(repo: StockRepository, skus: list[str], locked: set[str]) -> list[Backorder]:
        """The SKUs' backorders read again under the locks, each of an order this transaction holds.
        A backorder placed after `_lock_waiting` read them is of an order not locked, which another
        transaction may be changing: neither skipped (the fill order would break) nor changed unlocked
        (its books would be off, or the two deadlock). It is locked if no one holds it (never waiting:
        the stock rows are held already) and all read again; if someone does, the fill starts over."""
        held = set(locked)
        for _ in range(LATE_WAITING_ROUNDS):
            waiting = await repo.backorders_for(skus)
            late = sorted({b.order_id for b in waiting} - held)
            if not late:
                return waiting
            got = await repo.lock_free_orders(late)
            if got != set(late):
                raise errors.Conflict(f"order {min(set(late) - got)} is changing while a fill locks; retry")
            held |= got
        raise errors.Conflict(f"orders of {', '.join(skus)} kept starting to wait while a fill locked; retry")

    async def _fill(self, tx: Tx, skus: list[str], locked: set[str]) -> dict[str, list[str]]:
        """Backorders of these SKUs take what is available now, highest priority first, first come
        within a priority; each from the warehouses the strategy picks for its ship-to country.
        The caller has taken the locks (`_lock_waiting`: the `locked` orders, then the stock rows).
        Returns the filled order ids per SKU."""
        repo = tx.repo(StockRepository)
        filled = 0
        filled_orders: dict[str, list[str]] = {}
        deltas: dict[str, int] = {}
        for b in fill_order(await self._waiting_locked(repo, skus, locked)):
            available = {lv.warehouse: lv.available for lv in await repo.levels(b.sku)}
            if not any(q > 0 for q in available.values()):
                continue
            already = await repo.held_warehouses(b.order_id)
            plan = plan_order_allocation(
                {b.sku: b.quantity}, {b.sku: available}, await self._transit(tx, b.country), already
            )
            taken = 0
            for sku, warehouse, qty in plan:
                await repo.reserve(b.order_id, sku, warehouse, qty)
                taken += qty
            if taken:
                await repo.set_backorder(b.order_id, b.sku, b.quantity - taken)
                await repo.reactivate(b.order_id)
                filled += taken
                filled_orders.setdefault(b.sku, []).append(b.order_id)
                deltas[b.sku] = deltas.get(b.sku, 0) - taken
        await repo.add_backordered(deltas)
        if filled:
            metrics.UNITS_RESERVED.inc(filled)
            metrics.BACKORDER_UNITS_FILLED.inc(filled)
        return filled_orders

    async def complete_production(
        self, production_id: str, quantity: int = 0, reference: str = ""
    ) -> tuple[Run, str]:
        """A run is finished: its units are received once into its warehouse (reference
        production:<id>) and fill backorders in priority order; a repeat changes nothing. A run
        that a planner grew between our read and our update is tried again with its new size.
        With `quantity` fewer than the run's: a partial completion, those units received once per
        `reference` (production:<id>:<reference>), the rest still open on the run's date."""
        validate_production_id(production_id)
        if quantity < 0 or (quantity and not reference.strip()):
            raise errors.InvalidArgument(
                "a partial completion needs a positive quantity and its reference",
                [
                    errors.FieldViolation(name, why)
                    for name, why, bad in (
                        ("quantity", "a positive number of units", quantity < 0),
                        (
                            "reference",
                            "required with quantity: a repeat of it receives nothing",
                            not reference.strip(),
                        ),
                    )
                    if bad
                ],
            )

        async def complete(tx: Tx) -> tuple[Run, str]:
            repo = tx.repo(StockRepository)
            run, status = await _production_run(repo, production_id)
            part = f"production:{production_id}:{reference.strip()}"
            if quantity and await repo.receipt(part) is not None:
                return run, status  # this partial completion was received before: a retry
            if status == "completed":
                return run, status
            if 0 < quantity < run.quantity:
                await self.receive(tx, [Receipt(run.sku, run.warehouse, quantity, part)])
                if not await repo.shrink_run(production_id, run.quantity, quantity):  # the run's row last
                    raise errors.Conflict(f"production run {production_id} changed while completing; retry")
                tx.after_commit.append(lambda: metrics.PRODUCTION_RUNS.labels("partially_completed").inc())
                return Run(
                    run.production_id, run.sku, run.warehouse, run.quantity - quantity, run.expected_date
                ), status
            await self.receive(
                tx, [Receipt(run.sku, run.warehouse, run.quantity, f"production:{production_id}")]
            )
            if await repo.complete_run(production_id, run.quantity):  # the run's row last
                metrics.PRODUCTION_RUNS.labels("completed").inc()
                return run, "completed"
            now = await repo.run(production_id)
            if now is not None and now[1] == "completed":  # completed by a concurrent call: ours was a repeat
                return now
            # it grew meanwhile: roll everything back and receive its new size
            raise errors.Conflict(f"production run {production_id} changed while completing; retry")

        return await retrying(self.db, complete, attempts=RESERVE_ATTEMPTS)

    async def announce_inbound(
        self, reference: str, sku: str, warehouse: str, quantity: int, expected_date: str
    ) -> Inbound:
        """A supplier's receipt announced with its expected date (idempotent by reference; the same
        reference with a new date moves it). It is supply the SKU's backorders are promised from, like an
        open run, until the receipt of that reference arrives (POST /v1/admin/receipts). The backorders
        waiting for the SKU are named in `stock.<sku>.rescheduled`, so orders asks for their dates at
        once; the same announcement again changes nothing and publishes nothing."""
        validate_restock(sku, warehouse, quantity, reference)
        try:
            date = dt.date.fromisoformat(expected_date)
        except ValueError:
            raise errors.InvalidArgument(
                "expected_date is not a date", [errors.FieldViolation("expected_date", "a date YYYY-MM-DD")]
            ) from None
        announced = Inbound(reference, sku, warehouse, quantity, date)

        async def announce(tx: Tx) -> Inbound:
            repo = tx.repo(StockRepository)
            if warehouse not in await repo.warehouse_codes():
                raise unknown_warehouse(warehouse)
            await repo.lock_sku(sku)  # one planner per SKU at a time (Reserve's order: the SKU, then supply)
            before = await repo.inbound(reference)
            if not check_inbound(announced, self.clock().date(), before):
                return before or announced
            waiting = [b.order_id for b in fill_order(await repo.backorders_for([sku]))]
            await repo.announce_inbound(announced)
            level = next((lv for lv in await repo.levels(sku) if lv.warehouse == warehouse), None)
            moved = f"moved from {before.expected_date} " if before else ""
            await tx.emit(
                events.new_event(
                    "stock.rescheduled",
                    aggregate_id=sku,
                    version=await repo.next_event_version(sku),
                    reason=f"inbound {reference} of {quantity} into {warehouse} {moved}expected {date}",
                    stock=events_pb2.StockEvent(
                        sku=sku,
                        warehouse=warehouse,
                        on_hand=level.on_hand if level else 0,
                        reserved=level.reserved if level else 0,
                        affected_order_ids=list(dict.fromkeys(waiting)),
                        expected_date=date.isoformat(),
                        inbound_reference=reference,
                    ),
                )
            )
            tx.after_commit.append(
                lambda: metrics.INBOUND_ANNOUNCED.labels("moved" if before else "new").inc()
            )
            return announced

        return await retrying(self.db, announce, attempts=RESERVE_ATTEMPTS)

    async def reschedule_production(self, production_id: str, expected_date: str) -> tuple[Run, str]:
        """An open run moves to another date (today or later). The backorders of its SKU are re-dated by
        their next Reserve; `stock.<sku>.rescheduled` names them so orders asks at once. The same date
        again changes nothing and publishes nothing."""
        validate_production_id(production_id)
        try:
            date = dt.date.fromisoformat(expected_date)
        except ValueError:
            raise errors.InvalidArgument(
                "expected_date is not a date",
                [errors.FieldViolation("expected_date", "a date YYYY-MM-DD")],
            ) from None
        if date < self.clock().date():
            raise errors.InvalidArgument(
                "a production run cannot be moved into the past",
                [errors.FieldViolation("expected_date", "today or later")],
            )

        async def move(tx: Tx) -> tuple[Run, str]:
            repo = tx.repo(StockRepository)
            run, status = await _production_run(repo, production_id)
            if status == "completed":
                raise errors.FailedPrecondition(
                    f"production run {production_id} is completed; it can no longer move",
                    rule="production_completed",
                    subject=production_id,
                )
            if run.expected_date == date:
                return run, status
            waiting = [b.order_id for b in fill_order(await repo.backorders_for([run.sku]))]
            level = next((lv for lv in await repo.levels(run.sku) if lv.warehouse == run.warehouse), None)
            version = await repo.next_event_version(
                run.sku
            )  # the SKU's counter, then the run: the lock order
            if not await repo.move_run(production_id, date):
                raise errors.Conflict(f"production run {production_id} completed meanwhile; retry")
            await tx.emit(
                events.new_event(
                    "stock.rescheduled",
                    aggregate_id=run.sku,
                    version=version,
                    reason=f"production {production_id} moved from {run.expected_date} to {date}",
                    stock=events_pb2.StockEvent(
                        sku=run.sku,
                        warehouse=run.warehouse,
                        on_hand=level.on_hand if level else 0,
                        reserved=level.reserved if level else 0,
                        affected_order_ids=list(dict.fromkeys(waiting)),
                        production_id=production_id,
                        expected_date=date.isoformat(),
                    ),
                )
            )
            tx.after_commit.append(lambda: metrics.PRODUCTION_RUNS.labels("rescheduled").inc())
            return Run(run.production_id, run.sku, run.warehouse, run.quantity, date), status

        return await retrying(self.db, move, attempts=RESERVE_ATTEMPTS)

    async def production(self, sku: str = "", status: str = "") -> list[tuple[Run, str]]:
        if status not in ("", "open", "completed"):
            raise errors.InvalidArgument(
                "unknown status", [errors.FieldViolation("status", "open or completed")]
            )
        async with self.db.reading() as work:
            return await work.repo(StockRepository).runs(sku, status, limit=500)

    async def available_to_promise(self, sku: str) -> Atp:
        if not sku:
            raise errors.InvalidArgument("sku is required", [errors.FieldViolation("sku", "required")])
        if len(sku) > MAX_LENGTH["sku"]:
            raise errors.InvalidArgument(
                "sku too long", [errors.FieldViolation("sku", "at most 64 characters", "too_long")]
            )
        async with self.db.reading() as work:
            repo = work.repo(StockRepository)
            levels = await repo.levels(sku)
            runs = await repo.open_runs(sku) + await repo.open_inbound(sku)
            owed = await repo.backordered_units(sku)
            product = await repo.product(sku)
        if not levels and not runs and product is None and not owed:
            raise errors.NotFound(f"SKU {sku!r} has no stock, production or product record in inventory")
        available = {lv.warehouse: max(lv.available, 0) for lv in levels}
        points = available_to_promise(self.clock().date(), available, runs, owed)
        return Atp(sku, sum(available.values()), owed, sum(r.quantity for r in runs), points)

    async def quote_supply(self, country: str, lines: list[tuple[str, int]]) -> list[SupplyQuote]:
        """When each SKU's units, backordered now behind every open backorder, would be ready and
        delivered to `country`: Reserve's rule (open runs, else the run it would plan), read only."""
        wanted = validate_quote_lines(lines)
        quotes: list[SupplyQuote] = []
        now = self.clock()
        async with self.db.reading() as work:
            repo = work.repo(StockRepository)
            book = await self.book(work)
            transit = await self._transit(work, country)
            for sku, quantity in wanted.items():
                runs = await repo.open_runs(sku)
                owed = await repo.backordered_total(sku)
                product = await repo.product(sku)
                new_run = None
                if product is not None and transit:
                    nearest = min(transit, key=lambda wh: (transit[wh], wh))
                    calendar = book.warehouse(nearest) or WarehouseCalendar()
                    new_run = Promise(run_date(calendar.today(now), product[1], runs, calendar), nearest)
                promise = quote(owed, quantity, runs + await repo.open_inbound(sku), new_run, transit)
                if promise is None:
                    quotes.append(SupplyQuote(sku, quantity))
                    continue
                delivered = book.arrival_from(promise.date, promise.warehouse, country)
                quotes.append(SupplyQuote(sku, quantity, promise.date, promise.warehouse, delivered))
        return quotes

    async def release(self, tx: Tx, order_id: str) -> int:
        """The order is cancelled: give everything back and refuse any later Reserve for it.
        Runs in the consumer's transaction; returns the units released."""
        repo = tx.repo(StockRepository)
        # What it holds, read before locking, so the orders waiting for those SKUs are locked
        # with it in the store's lock order; the units it gives back fill their backorders.
        skus = await repo.held_skus(order_id)
        locked = await self._lock_waiting(repo, skus, also=(order_id,))
        order = await repo.lock_order(order_id)
        cleared = await repo.clear_backorders(order_id)
        if order.state is OrderState.RELEASED and not order.held:
            await repo.add_backordered({sku: -q for sku, q in cleared.items()})
            return 0
        given_back = order.release_all()
        for sku, warehouse, qty in given_back:
            await repo.unreserve(order_id, sku, warehouse, qty)
        await repo.save_order_state(order)
        await repo.drop_empty_reservations(order_id)
        units = sum(q for _, _, q in given_back)
        if units:
            metrics.STOCK_UNITS_MOVED.labels("released").inc(units)
            await self._fill(tx, sorted({sku for sku, _, _ in given_back}), locked)
        await repo.add_backordered({sku: -q for sku, q in cleared.items()})
        return units

    async def consume_shipment(self, tx: Tx, shipment) -> None:
        """A shipment left its warehouse: its lines' reserved units leave the books.
        A line the order does not hold raises StockBookError (retried, then dead-lettered)."""
        quantities = units_per_sku(shipment.lines)
        repo = tx.repo(StockRepository)
        order = await repo.lock_order(shipment.order_id)
        state_before = order.state
        for sku, qty in sorted(quantities.items()):
            order.ship(sku, shipment.warehouse, qty)
            await repo.consume(shipment.order_id, sku, shipment.warehouse, qty)
        if order.state is not state_before:
            await repo.save_order_state(order)
        metrics.STOCK_UNITS_MOVED.labels("shipped").inc(sum(quantities.values()))

    # --- stock in -----------------------------------------------------------------------------------
    async def restock(
        self, sku: str, warehouse: str, quantity: int, reference: str, actor: str = actors.SYSTEM
    ) -> list[StockLevel]:
        """A receipt of goods: on hand grows once per reference; returns the SKU's levels."""
        validate_restock(sku, warehouse, quantity, reference)

        async def restock(tx: Tx) -> list[StockLevel]:
            await self.receive(tx, [Receipt(sku, warehouse, quantity, reference, actor or actors.SYSTEM)])
            return await tx.repo(StockRepository).levels(sku)

        return await retrying(self.db, restock, attempts=RESERVE_ATTEMPTS)  # a fill may lose a race

    async def restock_return(self, tx: Tx, ret) -> None:
        """A refunded return: each line's restocked units go back to the line's warehouse. A wrong-item
        claim's goods sent back are the SKU that was sent (`sent_sku`), not the one ordered."""
        receipts = [
            Receipt(
                line.sent_sku or line.sku, line.warehouse, line.restocked_quantity, f"return:{ret.rma_id}:{n}"
            )
            for n, line in enumerate(ret.lines)
            if line.restocked_quantity > 0
        ]
        for n, receipt in enumerate(receipts):
            if not receipt.sku or not receipt.warehouse:
                raise StockBookError(f"return {ret.rma_id} line {n} names no SKU or warehouse to restock")
        await self.receive(tx, receipts)

    async def correct_for_claim(self, tx: Tx, ret) -> None:
        """A wrong-item claim (issue 14, return.claim_opened) says our books were wrong at the line's
        warehouse: the SKU ordered never left (on hand +quantity, a receipt `claim:<RMA>:<n>:kept`) and the
        SKU sent did (on hand -quantity, written off down to what is reserved, `claim:<RMA>:<n>:sent`).
        Recorded once per reference, in the receipts book GetStock shows; a redelivery changes nothing."""
        if ret.kind != "claim" or ret.claim_reason != "wrong_item":
            return
        actor = ret.decided_by or actors.SYSTEM
        kept: list[Receipt] = []
        repo = tx.repo(StockRepository)
        for n, line in enumerate(ret.lines):
            if not line.sent_sku or line.quantity <= 0:
                continue
            if not line.warehouse:
                raise StockBookError(f"claim {ret.rma_id} line {n} names no warehouse to correct")
            kept.append(
                Receipt(line.sku, line.warehouse, line.quantity, f"claim:{ret.rma_id}:{n}:kept", actor)
            )
            sent = f"claim:{ret.rma_id}:{n}:sent"
            await self._lock_waiting(repo, [line.sent_sku])
            if not await repo.record_receipt(sent, line.sent_sku, line.warehouse, -line.quantity, actor):
                continue  # corrected before: a redelivery
            levels = {lv.warehouse: lv for lv in await repo.lock_levels(line.sent_sku)}
            before = levels.get(line.warehouse, StockLevel(line.warehouse, 0, 0))
            target = max(before.on_hand - line.quantity, before.reserved, 0)
            _, counted = await repo.count(line.sent_sku, line.warehouse, target)
            if counted is None:
                raise errors.Conflict(f"{line.sent_sku} at {line.warehouse} changed meanwhile; retry")
            metrics.STOCK_UNITS_MOVED.labels("written_off").inc(before.on_hand - target)
        await self.receive(tx, kept)

    async def receive(self, tx: Tx, receipts: list[Receipt]) -> None:
        """Applies receipts not applied before, then publishes one stock.restocked per receipt.
        Stock rows first, then the SKUs' event counters, both sorted: the store's lock order."""
        repo = tx.repo(StockRepository)
        known = await repo.warehouse_codes()
        # A first receipt at a warehouse makes the SKU's row there before the locks. A row made after them
        # (here, or by another receipt meanwhile) is not held by them: this receipt would change it while a
        # transaction holding it waits for a row held here, a deadlock (two replicas receiving one SKU at
        # two warehouses, one where it had no row yet).
        await repo.ensure_rows([(r.sku, r.warehouse) for r in receipts if r.warehouse in known])
        locked = await self._lock_waiting(repo, sorted({r.sku for r in receipts}))
        applied: list[tuple[Receipt, StockLevel]] = []
        for receipt in sorted(receipts, key=lambda r: (r.sku, r.warehouse, r.reference)):
            if receipt.warehouse not in known:
                raise unknown_warehouse(receipt.warehouse)
            if not await repo.record_receipt(
                receipt.reference, receipt.sku, receipt.warehouse, receipt.quantity, receipt.actor
            ):
                if await repo.receipt(receipt.reference) != (
                    receipt.sku,
                    receipt.warehouse,
                    receipt.quantity,
                ):
                    raise reference_reused(receipt.reference)
                continue  # applied before: a retry
            applied.append((receipt, await repo.receive(receipt.sku, receipt.warehouse, receipt.quantity)))
            await repo.receive_inbound(receipt.reference, receipt.sku)  # an announced receipt has arrived
        filled: dict[str, list[str]] = {}
        if applied:  # backorders first, so no new order can take what they wait for
            filled = await self._fill(tx, sorted({r.sku for r, _ in applied}), locked)
        for receipt, _ in sorted(applied, key=lambda a: a[0].sku):
            level = await repo.level(receipt.sku, receipt.warehouse)
            await self._emit_restocked(
                tx, receipt.sku, level, receipt.quantity, filled.get(receipt.sku, []), receipt.actor
            )
        if applied:
            metrics.STOCK_UNITS_MOVED.labels("restocked").inc(sum(r.quantity for r, _ in applied))

    async def _emit_restocked(
        self,
        tx: Tx,
        sku: str,
        level: StockLevel,
        delta: int,
        filled_order_ids: list[str] = (),
        actor: str = actors.SYSTEM,
    ) -> None:
        await tx.emit(
            events.new_event(
                "stock.restocked",
                aggregate_id=sku,
                actor=actor,
                version=await tx.repo(StockRepository).next_event_version(sku),
                reason=f"+{delta} at {level.warehouse}",
                stock=events_pb2.StockEvent(
                    sku=sku,
                    warehouse=level.warehouse,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    delta=delta,
                    filled_order_ids=list(filled_order_ids),
                ),
            )
        )

    # --- reads and master data ---------------------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        if not sku:
            raise errors.InvalidArgument("sku is required", [errors.FieldViolation("sku", "required")])
        async with self.db.reading() as work:
            levels = await work.repo(StockRepository).levels(sku)
        if not levels:
            raise errors.NotFound(f"no stock records for SKU {sku!r}")
        return levels

    async def recent_receipts(self, sku: str, limit: int = RECENT_RECEIPTS) -> list[RecordedReceipt]:
        async with self.db.reading() as work:
            return await work.repo(StockRepository).recent_receipts(sku, limit)

    async def import_csv(self, kind: str, text: str) -> int:
        """Master data inventory owns. All or nothing: any bad row refuses the whole file."""
        if kind not in INVENTORY_KINDS:
            raise errors.InvalidArgument(
                f"inventory imports {', '.join(INVENTORY_KINDS)}, not {kind!r}",
                [errors.FieldViolation("kind", "one of " + ", ".join(INVENTORY_KINDS))],
            )
        records = masterdata.parse(kind, text)
        check_column_widths(records, IMPORT_WIDTHS[kind])

        async def write(tx: Tx) -> None:
            repo = tx.repo(StockRepository)
            if kind == "warehouses":
                for w in records:
                    await repo.upsert_warehouse(warehouse_values(w))
            elif kind in ("calendars", "lanes"):
                await import_calendar_kind(tx, kind, records)
            elif kind == "products":  # the supply attributes only; intake keeps the catalogue
                for p in records:
                    await repo.upsert_product(p.sku, p.make_to_order, p.production_lead_time_days)
            else:
                await self._count_stock(tx, records)

        # A stock count fills backorders, and a fill loses a race to an order changing meanwhile (Conflict):
        # the whole file again from a fresh read, as a receipt does, rather than ABORTED to the desk.
        await retrying(self.db, write, attempts=RESERVE_ATTEMPTS)
        if kind in masterdata.CALENDAR_KINDS:
            self.calendars.clear()
        return len(records)

    async def _count_stock(self, tx: Tx, rows: list[masterdata.StockRow]) -> None:
        """Sets on hand per SKU and warehouse; a rise publishes stock.restocked (backorders may fill)."""
        repo = tx.repo(StockRepository)
        known = await repo.warehouse_codes()
        # New SKU/warehouse pairs' rows before the locks, as a receipt makes them (`receive`).
        await repo.ensure_rows([(row.sku, row.warehouse) for row in rows if row.warehouse in known])
        locked = await self._lock_waiting(repo, sorted({row.sku for row in rows}))
        violations: list[errors.FieldViolation] = []
        risen: list[tuple[str, StockLevel, int]] = []
        numbered = sorted(
            enumerate(rows, start=2), key=lambda nr: (nr[1].sku, nr[1].warehouse)
        )  # row 1: header
        for number, row in numbered:
            if row.warehouse not in known:
                violations.append(
                    errors.FieldViolation(
                        f"row {number}.warehouse",
                        f"unknown warehouse {row.warehouse!r}; import warehouses first",
                    )
                )
                continue
            before, after = await repo.count(row.sku, row.warehouse, row.on_hand)
            if after is None:
                violations.append(
                    errors.FieldViolation(
                        f"row {number}.on_hand",
                        f"{row.on_hand} is less than the {before.reserved} units reserved for orders at {row.warehouse}",
                    )
                )
            elif after.on_hand > before.on_hand:
                risen.append((row.sku, after, after.on_hand - before.on_hand))
        if violations:  # raising rolls the whole import back
            violations.sort(key=lambda v: int(v.field.split(" ")[1].split(".")[0]))
            raise errors.InvalidArgument("stock import refused; nothing was imported", violations)
        filled = await self._fill(tx, sorted({sku for sku, _, _ in risen}), locked) if risen else {}
        for sku, level, delta in sorted(risen, key=lambda r: r[0]):
            await self._emit_restocked(
                tx, sku, await repo.level(sku, level.warehouse), delta, filled.get(sku, [])
            )


async def _production_run(repo: StockRepository, production_id: str) -> tuple[Run, str]:
    """The production run and its status, or NOT_FOUND: what completing and moving a run start from."""
    found = await repo.run(production_id)
    if found is None:
        raise errors.NotFound(f"production run {production_id} not found")
    return found
