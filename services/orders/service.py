"""Orders' use cases: load the aggregate, apply a domain rule, save it with its events.

Each use case is one transaction: the order row (guarded by its version) and the
outbox rows for every transition commit together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import grpc
from sqlalchemy.exc import IntegrityError

from orderdesk import errors, events, metrics, rpc
from orderdesk.aio import wait_event
from orderdesk.db import Database, Tx, utcnow
from orderdesk.v1 import events_pb2, inventory_pb2, orders_pb2
from services.orders.domain import AWAITING_STOCK, Allocation, Line, Listing, Order, ShipmentView, Status
from services.orders.kpi import rules as kpis
from services.orders.kpi import store as kpi_store
from services.orders.notices import publish_notices
from services.orders.proto import address_to_dict, order_to_proto, proposal_to_dict
from services.orders.store import OrderRepository
from services.orders.surge import SurgeGate

log = logging.getLogger("orders.service")


async def publish_transitions(tx: Tx, order: Order) -> None:
    """One event per status change, in order; each carries the order as it now is."""
    snapshot = order_to_proto(order) if order.transitions else None
    for t in order.transitions:
        await tx.emit(
            events.new_event(
                f"order.{t.status.value}",
                aggregate_id=order.order_id,
                version=t.version,
                order_id=order.order_id,
                actor=t.entry.actor,
                reason=t.entry.reason,
                at=t.entry.at,
                order=events_pb2.OrderEvent(
                    status=t.status.value, previous_status=t.previous.value if t.previous else "", order=snapshot
                ),
            )
        )
    # The desk's numbers' ledger; kept on the order for count_transitions (notices are gone by then).
    order.kpi_facts = kpis.facts_of(order)
    await kpi_store.record(tx.conn, order.order_id, order.kpi_facts)
    await publish_notices(tx, order, snapshot)  # order.changed / order.exception (issue 4)


def quantities(order: Order) -> dict[str, int]:
    """Units per SKU over the order's lines: what inventory is asked to hold for it."""
    wanted: dict[str, int] = {}
    for line in order.lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
    return wanted


def count_transitions(order: Order) -> None:
    for t in order.transitions:
        metrics.ORDER_TRANSITIONS.labels(t.status.value).inc()
        if t.status is Status.COMPLETED:
            metrics.ORDERS_COMPLETED.labels(str(order.delivered_on_time).lower()).inc()
    kpi_store.count_metrics(order, getattr(order, "kpi_facts", None) or kpis.facts_of(order))


class OrdersService:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.clock = clock
        self.on_confirmed: Callable[[], None] = lambda: None
        self.on_arrived: Callable[[int], None] = lambda count: None  # the allocator's surge gate counts them

    async def create(self, req: orders_pb2.CreateOrderRequest) -> Order:
        """Idempotent by order id: intake may call again after a crash or a timeout.

        The insert itself detects a repeat (the order id is unique): a first call, the
        common case, costs no read."""
        order = self._receive(req)
        self.on_arrived(1)
        try:
            async with self.db.transaction() as tx:
                await OrderRepository(tx.conn).add(order)
                await publish_transitions(tx, order)
        except IntegrityError:  # this order id exists (a repeat, or a concurrent first call): return that one
            async with self.db.read() as conn:
                existing = await OrderRepository(conn).get(req.order_id)
            if existing is None:
                raise
            return existing
        count_transitions(order)
        if order.status is Status.CONFIRMED:
            self.on_confirmed()
        return order

    async def create_many(self, reqs: list[orders_pb2.CreateOrderRequest]) -> list[Order]:
        """Many orders in one transaction (intake's streams and batches), in request order.

        Idempotent per order id like `create`: if any of them exists already (a retry), the
        transaction rolls back and each is created, or found, on its own."""
        if not reqs:
            return []
        new = [self._receive(req) for req in reqs]
        self.on_arrived(len(new))
        if len({o.order_id for o in new}) != len(new):
            raise errors.InvalidArgument("the same order id twice in one call",
                                         [errors.FieldViolation("orders", "order ids must be unique")])
        try:
            async with self.db.transaction() as tx:
                await OrderRepository(tx.conn).add_many(new)
                for order in new:
                    await publish_transitions(tx, order)
        except IntegrityError:
            return [await self.create(req) for req in reqs]
        for order in new:
            count_transitions(order)
        if any(order.status is Status.CONFIRMED for order in new):
            self.on_confirmed()
        return new

    def _receive(self, req: orders_pb2.CreateOrderRequest) -> Order:
        return Order.receive(
            at=self.clock(),
            actor=req.partner_id,
            hold_reasons=[{"code": r.code, "message": r.message, "field": r.field} for r in req.hold_reasons],
            order_id=req.order_id,
            partner_id=req.partner_id,
            channel=req.channel or "api",
            external_ref=req.external_ref,
            customer_id=req.customer_id,
            ship_to=address_to_dict(req.ship_to),
            lines=[Line(sku=line.sku, quantity=line.quantity, unit_price=Decimal(line.unit_price)) for line in req.lines],
            requested_delivery_date=req.requested_delivery_date,
            payment_terms=req.payment_terms,
            currency=req.currency or "USD",
            priority=req.priority,
            proposals=[proposal_to_dict(p) for p in req.proposals],
            urgent=req.urgent,
        )

    async def get(self, order_id: str, partner_id: str) -> Order:
        async with self.db.read() as conn:
            order = await OrderRepository(conn).get(order_id, partner_id)
        if order is None:
            raise errors.NotFound(f"order {order_id} not found")
        return order

    async def list(self, partner_id: str, status: str, limit: int, cursor: str, *, hold_reason: str = "",
                   order_by: str = "") -> tuple[list[Order], str]:
        if status and status not in {s.value for s in Status}:
            raise errors.InvalidArgument(
                f"unknown status {status!r}", [errors.FieldViolation("status", "not an order status")]
            )
        limit = limit or 50
        if not 1 <= limit <= 500:
            raise errors.InvalidArgument("limit must be 1..500", [errors.FieldViolation("limit", "must be 1..500")])
        listing = Listing.parse(order_by, hold_reason, cursor)
        async with self.db.read() as conn:
            return await OrderRepository(conn).list(partner_id=partner_id, status=status, limit=limit, listing=listing)

    async def kpi_report(self, start: str, end: str, group_by: str) -> kpis.KpiReport:
        """The desk's numbers for a period, from the history and the order_facts ledger (read only)."""
        period = kpis.parse_period(start, end, group_by, now=self.clock())
        async with self.db.reading() as work:
            ledger = work.repo(kpi_store.KpiLedger)
            gathered = await ledger.gather(period.start, period.end)
            skus = await ledger.known_skus()
        # A long period is a lot of arithmetic: off the event loop, so gRPC calls keep being served.
        return await asyncio.to_thread(kpis.compute_report, gathered, period, skus)

    async def decide(self, order_id: str, partner_id: str, decision: str, actor: str, reason: str,
                     accept_proposal: str = "") -> Order:
        """approve | reject | cancel, retried once or twice if another writer got there first.

        An approval may accept a proposal; a split's later deliveries are created as orders of
        their own in the same transaction, so the parent and its parts commit together."""
        if accept_proposal and decision != "approve":
            raise errors.InvalidArgument("only an approval can accept a proposal",
                                         [errors.FieldViolation("accept_proposal", "only with approve")])
        split_off: list[Order] = []
        for attempt in range(3):
            try:
                async with self.db.transaction() as tx:
                    repo = OrderRepository(tx.conn)
                    order = await repo.get(order_id, partner_id)
                    if order is None:
                        raise errors.NotFound(f"order {order_id} not found")
                    if decision == "approve":
                        split_off = order.approve(self.clock(), actor, reason, accept_proposal)
                    else:
                        getattr(order, decision)(self.clock(), actor, reason)
                    await repo.save(order)
                    await publish_transitions(tx, order)
                    for part in split_off:
                        await repo.add(part)
                        await publish_transitions(tx, part)
                break
            except errors.Conflict:
                if attempt == 2:
                    raise
        for part in split_off:
            count_transitions(part)
        count_transitions(order)
        if order.status is Status.CONFIRMED:
            self.on_confirmed()
        return order

    async def apply_to_order(self, tx: Tx, order_id: str, change: Callable[[Order], None]) -> Order | None:
        """For consumers: apply a change inside the consumer's transaction."""
        repo = OrderRepository(tx.conn)
        order = await repo.get(order_id)
        if order is None:
            return None
        change(order)
        await repo.save(order)
        await publish_transitions(tx, order)
        count_transitions(order)
        return order

    async def record_shipment(self, tx: Tx, shipment) -> None:
        view = ShipmentView(
            shipment_id=shipment.shipment_id, warehouse=shipment.warehouse, status=shipment.status,
            carrier=shipment.carrier, tracking_number=shipment.tracking_number,
            lines={line.sku: line.quantity for line in shipment.lines},
            on_time=shipment.on_time if shipment.status == "delivered" else None, version=shipment.version,
        )
        await self.apply_to_order(tx, shipment.order_id, lambda o: o.record_shipment(self.clock(), view))

    async def record_return(self, tx: Tx, ret) -> None:
        returned = {}
        for line in ret.lines:
            returned[line.sku] = returned.get(line.sku, 0) + line.restocked_quantity + line.scrapped_quantity
        order = await self.apply_to_order(tx, ret.order_id, lambda o: o.record_return(returned))
        if order is not None and any(left > 0 for left in returned.values()):
            # The refund overtook the delivery (another consumer, no order between them): roll back and let
            # the consumer retry once the delivery is recorded, instead of dropping the returned units.
            raise errors.Conflict(f"order {ret.order_id}: delivery of returned units not recorded yet; retry")
        if order is not None:  # the returned units by reason, for the desk's numbers
            facts = kpis.return_facts(ret.rma_id, ret.lines, self.clock())
            if await tx.repo(kpi_store.KpiLedger).record(ret.order_id, facts, count_new=True):
                kpi_store.count_returns(facts)


class Allocator:
    """Reserves stock for confirmed orders, highest priority first; retries backorders.

    Safe to repeat: inventory's Reserve is target-state (reserve up to the line
    quantity) and refuses orders it already released, so a crash between the
    call and the save, or a cancel racing the call, leaves no stray reservation.
    """

    BATCH = 256
    CHUNK = 64  # orders per ReserveMany call
    CONCURRENCY = 16  # Reserve calls in flight when inventory has no ReserveMany
    RETRY_SCHEDULED_SECONDS = 30.0

    def __init__(self, service: OrdersService, inventory, timeout: float, surge: SurgeGate | None = None):
        self.service = service
        self.inventory = inventory
        self.timeout = timeout
        self._wake = asyncio.Event()
        self._scheduled_due = True
        self._tasks: set[asyncio.Task] = set()
        service.on_confirmed = self.wake
        self.surge = surge or SurgeGate(rate=0, max_defer=0)
        service.on_arrived = lambda count: self.surge.arrived(count, asyncio.get_running_loop().time())

    def wake(self, *, scheduled: bool = False) -> None:
        self._scheduled_due = self._scheduled_due or scheduled
        self._wake.set()

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
            if self.surge.hold(loop.time()):  # orders are pouring in: take them first, allocate by priority after
                metrics.ALLOCATION_HELD.set(1)
                await asyncio.sleep(0.25)
                continue
            metrics.ALLOCATION_HELD.set(0)
            include_scheduled = self._scheduled_due or loop.time() - last_scheduled > self.RETRY_SCHEDULED_SECONDS
            self._scheduled_due = False
            self._wake.clear()
            found = 0
            try:
                async with self.service.db.read() as conn:
                    repo = OrderRepository(conn)
                    ids = await repo.awaiting_stock(limit=self.BATCH, include_scheduled=include_scheduled)
                    backlog = await repo.get_many(ids)
                found = len(ids)
                if include_scheduled:
                    last_scheduled = loop.time()
                progressed = await self.allocate_many(backlog) > 0
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("allocator pass failed")
                progressed = False
            if progressed and found >= self.BATCH:
                continue
            if not progressed and found:
                await asyncio.sleep(0.5)  # inventory down or nothing reservable: do not spin
            await wait_event(self._wake, 1.0)

    async def allocate_many(self, backlog: list[Order]) -> int:
        """Reserves stock for these orders in the given order (highest priority first): ReserveMany
        in chunks, one after another, so scarce stock goes to the first; each chunk's answers are
        saved in one transaction while the next chunk is reserved. Returns the orders that moved on."""
        todo = [o for o in backlog if o.status in AWAITING_STOCK]
        progressed = 0
        saving: asyncio.Task | None = None
        try:
            for start in range(0, len(todo), self.CHUNK):
                chunk = todo[start:start + self.CHUNK]
                requests = [self._reserve_request(o) for o in chunk]
                try:
                    answer = await self.inventory.ReserveMany(
                        inventory_pb2.ReserveManyRequest(orders=requests),
                        timeout=self.timeout * max(1.0, len(chunk) / self.CONCURRENCY),  # as much per order as before
                        metadata=rpc.metadata())
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

    @staticmethod
    def _reserve_request(order: Order) -> inventory_pb2.ReserveRequest:
        return inventory_pb2.ReserveRequest(
            order_id=order.order_id,
            lines=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in quantities(order).items()],
            priority=order.priority,
            ship_to_country=order.ship_to.get("country", ""),
            placed_at=events.timestamp(order.created_at) if order.created_at else None,
        )

    @staticmethod
    def _answer(order: Order, answer: inventory_pb2.ReserveResponse) -> _Reserved | None:
        """Inventory's answer for the order as read before the call; None when there is nothing to record."""
        allocations = [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]
        backordered = {b.sku: b.quantity for b in answer.backordered}
        expected = (answer.expected_date, answer.expected_delivery_date)
        if (order.status is Status.SCHEDULED and any(backordered.values()) and allocations == order.allocations
                and expected == (order.expected_ship_date, order.expected_delivery_date)):
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
                    log.warning("allocation of %s failed: %s %s", order.order_id, result.error_code,
                                result.error_message)
                continue
            reserved = self._answer(order, result.response)
            if reserved is not None:
                pending.append(reserved)
        if not pending:
            return 0
        try:
            changed: list[Order] = []
            async with self.service.db.transaction() as tx:
                repo = OrderRepository(tx.conn)
                current = {o.order_id: o for o in await repo.get_many([r.order_id for r in pending])}
                for reserved in pending:
                    order = current.get(reserved.order_id)
                    if await self._apply(tx, repo, order, reserved):
                        changed.append(order)
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
        async with self.service.db.read() as conn:
            order = await OrderRepository(conn).get(order_id)
        if order is None or order.status not in AWAITING_STOCK:
            return False
        try:
            answer = await self.inventory.Reserve(self._reserve_request(order), timeout=self.timeout,
                                                  metadata=rpc.metadata())
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.FAILED_PRECONDITION:
                return False  # inventory released this order (it was cancelled meanwhile)
            raise
        reserved = self._answer(order, answer)
        return reserved is not None and await self._record(reserved)

    async def _apply(self, tx, repo: OrderRepository, order: Order | None, reserved: _Reserved) -> bool:
        """Records inventory's answer on the order as read in this transaction, with its events; False when
        it no longer applies: gone, no longer awaiting stock, or a change request moved the lines meanwhile
        (the next pass reserves them)."""
        if order is None or order.status not in AWAITING_STOCK or quantities(order) != reserved.wanted:
            return False
        order.apply_reservation(self.service.clock(), reserved.allocations, reserved.backordered, reserved.expected)
        await repo.save(order)
        await publish_transitions(tx, order)
        return True

    async def _record(self, reserved: _Reserved) -> bool:
        for attempt in range(3):
            try:
                async with self.service.db.transaction() as tx:
                    repo = OrderRepository(tx.conn)
                    order = await repo.get(reserved.order_id)
                    if not await self._apply(tx, repo, order, reserved):
                        return False
                count_transitions(order)
                return bool(order.transitions)
            except errors.Conflict:
                if attempt == 2:
                    raise
        return False


@dataclass(frozen=True)
class _Reserved:
    """What inventory now holds for an order, and the lines it was asked for."""

    order_id: str
    wanted: dict[str, int]
    allocations: list[Allocation]
    backordered: dict[str, int]
    expected: tuple[str, str]
