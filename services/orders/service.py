"""Orders' use cases: load the aggregate, apply a domain rule, save it with its events.

Each use case is one transaction: the order row (guarded by its version) and the
outbox rows for every transition commit together. Reserving stock for confirmed orders
is the allocator's (services/orders/allocator.py); the service tells it through the
callables it is built with (`on_confirmed`, `on_arrived`).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from orderdesk import actors, errors, logs, metrics, usecase
from orderdesk.db import Database, Tx, utcnow
from orderdesk.domain import units_per_sku
from orderdesk.v1 import orders_pb2
from services.orders import event_payloads
from services.orders.archive.store import EXPORT_BY, Exported, OrderArchive
from services.orders.domain import Line, Listing, Order, ShipmentView, Status
from services.orders.kpi import rules as kpis
from services.orders.kpi import store as kpi_store
from services.orders.proto import address_to_dict, proposal_to_dict
from services.orders.replacements import Replacement
from services.orders.store import OrderRepository, QueueCounts

EXPORT_PAGE = 200  # archived orders per page (and per streamed chunk) of an export


def stale(order: Order, expected: int) -> errors.FailedPrecondition:
    metrics.ORDER_CHANGES.labels("stale").inc()
    return errors.FailedPrecondition(
        f"order {order.order_id} is at version {order.version}, not {expected}; read it again and retry",
        rule="stale_version",
        subject=order.order_id,
    )


async def publish_transitions(tx: Tx, order: Order) -> None:
    """Publishes what the order recorded since it was loaded: one event per status change, then one per
    other event (order.changed, order.exception), each carrying the order as it now is; each event's
    metric is counted once the transaction has committed. Writes the desk's numbers' ledger rows too."""
    # Kept on the order for count_transitions, after the commit.
    order.kpi_facts = kpis.facts_of(order)
    if order.kpi_facts:
        await tx.repo(kpi_store.KpiLedger).record(order.order_id, order.kpi_facts)
    await _publish_events(tx, order)


async def publish_many(tx: Tx, changed: list[Order]) -> None:
    """`publish_transitions` for orders saved together (OrderRepository.save_many): the ledger rows of all
    of them in one statement, then each order's events."""
    for order in changed:
        order.kpi_facts = kpis.facts_of(order)
    facts = [(order.order_id, order.kpi_facts) for order in changed if order.kpi_facts]
    if facts:
        await tx.repo(kpi_store.KpiLedger).record_many(facts)
    for order in changed:
        await _publish_events(tx, order)


async def _publish_events(tx: Tx, order: Order) -> None:
    await usecase.publish(
        tx,
        [*order.transitions, *order.events],
        aggregate_id=order.order_id,
        order_id=order.order_id,
        snapshot=lambda: _published(order),
        payload=event_payloads.payload,
        count=event_payloads.count(order),
    )


def _published(order: Order) -> event_payloads.Snapshot:
    """The order's snapshot for its events, kept on it with its version (proto.as_published): the API's
    answer for a created order is the order its events carried, built once."""
    state = event_payloads.snapshot(order)
    order.published_proto = (order.version, state.order)
    return state


def quantities(order: Order) -> dict[str, int]:
    """Units per SKU over the order's lines: what inventory is asked to hold for it."""
    return units_per_sku(order.lines)


def count_transitions(order: Order) -> None:
    """The desk's numbers' metrics of a saved change, once committed (each event's own metric is
    counted by publish_transitions)."""
    facts = getattr(order, "kpi_facts", None)  # the ledger rows publish_transitions wrote ([] for none)
    kpi_store.count_metrics(order, kpis.facts_of(order) if facts is None else facts)


def _no_one_to_tell(*_args) -> None:
    pass


class OrdersService:
    def __init__(
        self,
        db: Database,
        clock: Callable[[], dt.datetime] = utcnow,
        *,
        on_confirmed: Callable[[], None] = _no_one_to_tell,
        on_arrived: Callable[[int], None] = _no_one_to_tell,
    ):
        """`on_confirmed()` runs after a commit that confirmed an order (it wakes the allocator);
        `on_arrived(count)` as orders come in (the allocator's surge gate counts them)."""
        self.db = db
        self.clock = clock
        self.on_confirmed = on_confirmed
        self.on_arrived = on_arrived

    async def create(self, req: orders_pb2.CreateOrderRequest) -> Order:
        """Idempotent by order id: intake may call again after a crash or a timeout.

        The insert itself detects a repeat (the order id is unique): a first call, the
        common case, costs no read."""
        order = self._receive(req)
        self.on_arrived(1)
        try:
            async with self.db.transaction() as tx:
                await tx.repo(OrderRepository).add(order)
                with logs.correlated(req.correlation_id):
                    await publish_transitions(tx, order)
        except IntegrityError:  # this order id exists (a repeat, or a concurrent first call): return that one
            async with self.db.reading() as work:
                existing = await work.repo(OrderRepository).get(req.order_id)
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
            raise errors.InvalidArgument(
                "the same order id twice in one call",
                [errors.FieldViolation("orders", "order ids must be unique")],
            )
        try:
            async with self.db.transaction() as tx:
                await tx.repo(OrderRepository).add_many(new)
                for order, req in zip(new, reqs, strict=True):
                    with logs.correlated(req.correlation_id):  # each partner's request its own
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
            actor=req.actor.id or req.partner_id,
            hold_reasons=[{"code": r.code, "message": r.message, "field": r.field} for r in req.hold_reasons],
            order_id=req.order_id,
            partner_id=req.partner_id,
            channel=req.channel or "api",
            external_ref=req.external_ref,
            customer_id=req.customer_id,
            ship_to=address_to_dict(req.ship_to),
            lines=[
                Line(sku=line.sku, quantity=line.quantity, unit_price=Decimal(line.unit_price))
                for line in req.lines
            ],
            requested_delivery_date=req.requested_delivery_date,
            payment_terms=req.payment_terms,
            currency=req.currency or "USD",
            priority=req.priority,
            proposals=[proposal_to_dict(p) for p in req.proposals],
            urgent=req.urgent,
        )

    async def get(self, order_id: str, partner_id: str) -> Order:
        return await usecase.load(
            self.db, OrderRepository, (order_id, partner_id), missing=f"order {order_id} not found"
        )

    async def list(
        self,
        partner_id: str,
        status: str,
        limit: int,
        cursor: str,
        *,
        hold_reason: str = "",
        order_by: str = "",
        at_risk: bool = False,
        risk: str = "",
        open_exception: bool = False,
        exception_type: str = "",
        warehouse: str = "",
        **search: str,
    ) -> tuple[list[Order], str]:
        """One page of orders (newest first, by priority, or the at-risk queue by urgency), narrowed by
        status, hold reason and the search (`external_ref`, `customer_id`, `sku`, `channel`,
        `created_from`, `created_to`)."""
        if status and status not in {s.value for s in Status}:
            raise errors.InvalidArgument(
                f"unknown status {status!r}", [errors.FieldViolation("status", "not an order status")]
            )
        limit = limit or 50
        if not 1 <= limit <= 500:
            raise errors.InvalidArgument(
                "limit must be 1..500", [errors.FieldViolation("limit", "must be 1..500")]
            )
        listing = Listing.parse(
            order_by,
            hold_reason,
            cursor,
            at_risk=at_risk,
            risk=risk,
            open_exception=open_exception,
            exception_type=exception_type,
            warehouse=warehouse,
            **search,
        )
        async with self.db.reading() as work:
            return await work.repo(OrderRepository).list(
                partner_id=partner_id, status=status, limit=limit, listing=listing
            )

    async def queue_counts(self) -> QueueCounts:
        """The desk's work queues' sizes (OrderRepository.queue_counts), read only."""
        async with self.db.reading() as work:
            return await work.repo(OrderRepository).queue_counts()

    async def kpi_report(self, start: str, end: str, group_by: str) -> kpis.KpiReport:
        """The desk's numbers for a period, from the history and the order_facts ledger (read only), hot
        and archived. On PostgreSQL in one REPEATABLE READ snapshot, so an order the archive moves while the
        report reads is counted once, where it was (SQLite's one connection lets no batch in between)."""
        now = self.clock()
        period = kpis.parse_period(start, end, group_by, now=now)
        async with self.db.reading() as work:
            if self.db.dialect == "postgresql":
                await work.conn.execution_options(isolation_level="REPEATABLE READ")
            ledger = work.repo(kpi_store.KpiLedger)
            gathered = await ledger.gather(period.start, period.end)
            skus = await ledger.known_skus()
            at_risk, per_code = await work.repo(OrderRepository).risk_counts()
        # A long period is a lot of arithmetic: off the event loop, so gRPC calls keep being served.
        report = await asyncio.to_thread(kpis.compute_report, gathered, period, skus, now)
        report.orders_at_risk_now = at_risk
        report.at_risk_now = sorted(
            (kpis.ReasonCount(code, n, 0) for code, n in per_code.items()),
            key=lambda r: (-r.orders, r.reason),
        )
        return report

    async def export_archive(
        self, start: str, end: str, by: str, page: int = EXPORT_PAGE
    ) -> AsyncIterator[list[Exported]]:
        """The archived orders whose `by` time (archived | created) falls in the period, a page at a time,
        each page its own short read (a long export never holds a connection the service needs)."""
        by = by or "archived"
        if by not in EXPORT_BY:
            raise errors.InvalidArgument(
                f"unknown export time {by!r}", [errors.FieldViolation("by", "archived or created")]
            )
        period = kpis.parse_period(start, end, "", now=self.clock(), max_days=kpis.MAX_EXPORT_DAYS)
        after = None
        while True:
            async with self.db.reading() as work:
                found = await work.repo(OrderArchive).export_page(by, period.start, period.end, after, page)
            if found:
                yield found
            if len(found) < page:
                return
            last = found[-1]
            after = (last.archived_at if by == "archived" else last.created_at, last.order.order_id)

    async def decide(
        self,
        order_id: str,
        partner_id: str,
        decision: str,
        actor: str,
        reason: str,
        accept_proposal: str = "",
        expected_version: int = 0,
    ) -> Order:
        """approve | reject | cancel, retried once or twice if another writer got there first.

        With `expected_version` the decision is refused (stale_version) when the order has moved on
        since the caller read it, as a change request with If-Match is.

        An approval may accept a proposal; a split's later deliveries are created as orders of
        their own in the same transaction, so the parent and its parts commit together."""
        if accept_proposal and decision != "approve":
            raise errors.InvalidArgument(
                "only an approval can accept a proposal",
                [errors.FieldViolation("accept_proposal", "only with approve")],
            )
        split_off: list[Order] = []

        async def work(tx: Tx) -> Order:
            nonlocal split_off
            repo = tx.repo(OrderRepository)
            order = await repo.get(order_id, partner_id)
            if order is None:
                raise errors.NotFound(f"order {order_id} not found")
            if expected_version and order.version != expected_version:
                raise stale(order, expected_version)
            if decision == "approve":
                split_off = order.approve(self.clock(), actor, reason, accept_proposal)
            else:
                getattr(order, decision)(self.clock(), actor, reason)
            await repo.save(order)
            await publish_transitions(tx, order)
            for part in split_off:
                await repo.add(part)
                await publish_transitions(tx, part)
            return order

        order = await usecase.retrying(self.db, work)
        for part in split_off:
            count_transitions(part)
        count_transitions(order)
        if order.status is Status.CONFIRMED:
            self.on_confirmed()
        return order

    async def add_note(
        self,
        order_id: str,
        partner_id: str,
        actor: str,
        text: str,
        visibility: str = "",
        expected_version: int = 0,
    ) -> Order:
        """A desk note on the order (services/orders/notes.py), with who and when; a customer-visible one
        is published as order.message in the same transaction. Guarded by `expected_version` when given."""

        def note(order: Order) -> bool:
            if expected_version and order.version != expected_version:
                raise stale(order, expected_version)
            order.add_note(self.clock(), actor, text, visibility)
            return True

        order = await usecase.changing(
            self.db,
            OrderRepository,
            (order_id, partner_id),
            note,
            publish_transitions,
            missing=f"order {order_id} not found",
        )
        count_transitions(order)
        metrics.ORDER_NOTES.labels(order.notes[-1].visibility.value).inc()
        return order

    async def apply_to_order(self, tx: Tx, order_id: str, change: Callable[[Order], None]) -> Order | None:
        """For consumers: apply a change inside the consumer's transaction."""
        repo = tx.repo(OrderRepository)
        order = await repo.get(order_id)
        if order is None:
            return None
        change(order)
        await repo.save(order)
        await publish_transitions(tx, order)
        count_transitions(order)
        return order

    async def apply_in_turn(self, tx: Tx, steps: list[usecase.Step[Order]]) -> dict[str, Order]:
        """For batched consumers: each step in turn, as `apply_to_order` one after another in this
        transaction would do, but each order read once (with the others: one query, archived ones too)
        and saved once (with the others: OrderRepository.save_many). Each step's transitions are published
        right after it, carrying the order as it then was; a missing order's steps are skipped. Returns the
        orders found, as saved."""
        repo = tx.repo(OrderRepository)
        found = {o.order_id: o for o in await repo.get_wherever(list(dict.fromkeys(s.key for s in steps)))}
        recorded: dict[str, list] = {order_id: [] for order_id in found}

        async def publish_step(tx: Tx, order: Order) -> None:
            await publish_transitions(tx, order)
            if order.transitions or order.kpi_facts:  # counted once committed (a failed batch is retried)
                step = copy.copy(order)
                step.transitions = list(order.transitions)
                tx.after_commit.append(lambda: count_transitions(step))
            recorded[order.order_id] += order.transitions  # the save's history rows
            order.transitions, order.events = [], []  # published: the next step's are its own

        async def save_all(changed: list[Order]) -> None:
            for order in changed:
                order.transitions = recorded[order.order_id]
            await repo.save_many(changed)  # a few statements for all, each row guarded by its version

        await usecase.apply_in_turn(tx, found, steps, publish_step, save_all)
        return found

    def shipment_change(
        self, shipment, event: str = "", event_at: dt.datetime | None = None
    ) -> Callable[[Order], None]:
        """The change a shipment event makes to its order (`record_shipment`'s)."""
        view = ShipmentView(
            shipment_id=shipment.shipment_id,
            warehouse=shipment.warehouse,
            status=shipment.status,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            lines={line.sku: line.quantity for line in shipment.lines},
            on_time=shipment.on_time if shipment.status == "delivered" else None,
            version=shipment.version,
            promised_delivery_date=shipment.promised_delivery_date,
            expected_delivery_date=shipment.expected_delivery_date,
            pick_by=shipment.pick_by.ToDatetime(tzinfo=dt.UTC).isoformat()
            if shipment.HasField("pick_by")
            else "",
            deliver_by=shipment.deliver_by,
        )
        return lambda o: o.record_shipment(self.clock(), view, event, event_at)

    async def record_shipment(
        self, tx: Tx, shipment, event: str = "", event_at: dt.datetime | None = None
    ) -> Order | None:
        """`event`: the shipment event's name (shipped, delayed …) and `event_at` its time, for the watch.
        Returns the order as saved (None: no such order)."""
        return await self.apply_to_order(
            tx, shipment.order_id, self.shipment_change(shipment, event, event_at)
        )

    async def record_return(self, tx: Tx, ret) -> None:
        returned: dict[str, int] = {}
        for line in ret.lines:
            taken_back = line.restocked_quantity + line.refurbished_quantity + line.scrapped_quantity
            returned[line.sku] = returned.get(line.sku, 0) + taken_back
        order = await self.apply_to_order(tx, ret.order_id, lambda o: o.record_return(returned))
        if order is not None and any(left > 0 for left in returned.values()):
            # The refund overtook the delivery (another consumer, no order between them): roll back and let
            # the consumer retry once the delivery is recorded, instead of dropping the returned units.
            raise errors.Conflict(f"order {ret.order_id}: delivery of returned units not recorded yet; retry")
        if order is not None:  # the returned units by reason, for the desk's numbers
            facts = kpis.return_facts(ret.rma_id, ret.lines, self.clock())
            if await tx.repo(kpi_store.KpiLedger).record(ret.order_id, facts, count_new=True):
                kpi_store.count_returns(facts)
            # issue 14: exchanged lines, and a claim whose goods came back
            await self.record_claim(tx, ret, kpis.exchange_facts(ret.rma_id, ret.lines, self.clock()))

    async def record_replacement(self, tx: Tx, event) -> None:
        """return.exchange_created: the replacement order entered for one of the order's returns or claims,
        recorded on the original order once (a redelivery, or the same RMA's again, changes nothing)."""
        ret = getattr(getattr(event, "return"), "return")
        if not ret.exchange_order_id:
            return
        at = event.occurred_at.ToDatetime(tzinfo=dt.UTC) if event.HasField("occurred_at") else self.clock()
        replacement = Replacement(
            rma_id=ret.rma_id,
            order_id=ret.exchange_order_id,
            kind=ret.kind or "return",
            at=at,
            actor=event.actor or actors.SYSTEM,
        )
        await self.apply_to_order(tx, ret.order_id, lambda order: order.record_replacement(replacement))

    async def record_claim(self, tx: Tx, ret, also: list | None = None) -> None:
        """A claim's units by its reason (return.claim_resolved, or return.refunded when the goods came
        back), for the desk's numbers; once per claim and line (the ledger ignores a repeated row)."""
        facts = [*(also or []), *kpis.claim_facts(ret, self.clock())]
        if facts:
            await tx.repo(kpi_store.KpiLedger).record(ret.order_id, facts)
