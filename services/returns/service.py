"""Returns' use cases: load the RMA, apply a domain rule, save it with its events.

Each use case is one transaction: the return row (guarded by its version) and the
outbox rows for its changes commit together. Authorising asks orders (gRPC, with
the caller's partner scope) what was delivered before the transaction begins, so
no lock is held across a remote call.

Exchanges (issue 14, "on receipt"): an exchanged line's replacement is priced with intake's quote
(QuoteLines) when the RMA is made. Once the goods are inspected, the RMA's own return.refunded event
reaches `make_exchange` (consumers.py), which enters the replacement order through intake's SubmitOrder
like any order (its checks, holds and priority), under an idempotency key derived from the RMA id, and
links it to the RMA (return.exchange_created). A redelivered event, a retry or a second replica gets the
same order back from intake and links nothing new.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from decimal import Decimal

import grpc
from sqlalchemy.exc import IntegrityError

from orderdesk import actors, errors, idempotency, masterdata, metrics, rpc, usecase
from orderdesk.calendar_store import CalendarRepository, import_calendar_kind
from orderdesk.db import Database, Tx, utcnow
from orderdesk.v1 import common_pb2, events_pb2, intake_pb2, orders_pb2, returns_pb2
from services.returns.domain import (
    EXCHANGE,
    REPLACE,
    Change,
    Inspection,
    PolicyContext,
    Replacement,
    RequestedLine,
    Return,
    Status,
    claim_hash,
    exchange_key,
    new_rma_id,
    request_hash,
    summarise_order,
)
from services.returns.policy import EXCHANGE_CHANNEL, PolicySettings, country_calendar
from services.returns.proto import return_to_proto
from services.returns.store import IdempotencyClaim, PolicyRepository, ReturnRepository

log = logging.getLogger("orderdesk.returns")

# The master data returns keeps for its policy (README "Return policy").
RETURNS_KINDS = ("products", "customers", "calendars")
DEFAULT_LISTED, MAX_LISTED = 100, 500  # returns listed by status


def count_change(ret: Return, change: Change) -> None:
    if change.event:  # return.exchange_created: a step of its own, no new status
        metrics.RETURN_STEPS.labels(change.event.removeprefix("return.")).inc()
        return
    metrics.RETURN_STEPS.labels(change.status.value).inc()
    if change.status is Status.REFUNDED:
        metrics.REFUNDED_AMOUNT.inc(float(ret.refund_amount))


# One event per recorded change, in order, each carrying the return as it now is; counted in the
# metrics once the transaction has committed.
publish_changes = usecase.Publisher[Return](
    aggregate_id=lambda ret: ret.rma_id,
    snapshot=return_to_proto,
    payload=lambda change, snapshot: {"return_": events_pb2.ReturnEvent(**{"return": snapshot})},
    count=count_change,
)


class ReturnsService:
    def __init__(
        self,
        db: Database,
        orders,
        timeout: float,
        clock: Callable[[], dt.datetime] = utcnow,
        policy: PolicySettings | None = None,
        intake=None,
    ):
        """`orders` is an OrdersService stub (or anything with the same async GetOrder); `intake` an
        IntakeService stub (QuoteLines, SubmitOrder) for exchanges (None: exchanges are refused)."""
        self.db = db
        self.orders = orders
        self.intake = intake
        self.timeout = timeout
        self.clock = clock
        self.policy = policy or PolicySettings()

    async def create(self, req: returns_pb2.CreateReturnRequest) -> Return:
        """Authorises a return of delivered goods; the same idempotency key returns the first RMA."""
        requested = [
            RequestedLine(
                line.sku,
                line.quantity,
                line.reason,
                line.reason_code,
                line.resolution,
                line.exchange_sku,
                int(line.exchange_quantity),
            )
            for line in req.lines
        ]
        claim = IdempotencyClaim(
            req.partner_id,
            req.idempotency_key,
            request_hash(req.order_id, requested, req.resolution, req.exchange_mode),
        )
        if claim.key:
            idempotency.check_key(claim.key)
            async with self.db.reading() as work:
                first = await _first_with_key(work.repo(ReturnRepository), claim)
            if first is not None:
                return first  # a replay: orders need not be asked again
        order = await self._get_order(req.order_id, req.partner_id)
        replacements = await self._quote_replacements(order, requested, req.resolution)
        ordered = summarise_order(
            [(line.sku, line.delivered_quantity, Decimal(line.unit_price or "0")) for line in order.lines],
            [(a.sku, a.warehouse) for a in order.allocations],
        )
        try:
            async with self.db.transaction() as tx:
                repo = tx.repo(ReturnRepository)
                await repo.lock_order(order.order_id)
                # Under the lock: the same request sent twice at once finds the first one here.
                first = await _first_with_key(repo, claim) if claim.key else None
                if first is not None:
                    return first
                policies = tx.repo(PolicyRepository)
                context = PolicyContext(
                    settings=self.policy,
                    products=await policies.products({line.sku for line in requested}),
                    tier=await policies.tier(order.customer_id),
                    currency=order.currency,
                    delivered_on=delivered_on(order),
                    calendar=country_calendar(
                        await tx.repo(CalendarRepository).holidays(), order.ship_to.country
                    ),
                )
                ret = Return.authorize(
                    rma_id=new_rma_id(),
                    order_id=order.order_id,
                    partner_id=order.partner_id,
                    ordered=ordered,
                    authorised=await repo.authorised_quantities(order.order_id),
                    requested=requested,
                    resolution=req.resolution,
                    at=self.clock(),
                    actor=req.actor or req.partner_id or "unknown",
                    context=context,
                    replacements=replacements,
                    exchange_mode=req.exchange_mode,
                )
                await repo.add(ret, claim)
                await publish_changes(tx, ret)
        except IntegrityError:  # the same key used at once for another order: the one that committed stands
            if not claim.key:
                raise
            async with self.db.reading() as work:
                first = await _first_with_key(work.repo(ReturnRepository), claim)
            if first is None:
                raise
            return first
        return ret

    async def create_claim(self, req: returns_pb2.CreateClaimRequest) -> Return:
        """A claim on delivered goods (an RMA of kind claim), decided by the caller as it is made; the same
        idempotency key returns the first claim. Its replacement order, if any, is entered from its event
        (return.claim_resolved) by `make_exchange`, like an exchange's."""
        requested = [
            RequestedLine(
                line.sku,
                line.quantity,
                line.reason,
                resolution=line.resolution,
                exchange_sku=line.exchange_sku,
                exchange_quantity=int(line.exchange_quantity),
                sent_sku=line.sent_sku,
            )
            for line in req.lines
        ]
        claim = IdempotencyClaim(
            req.partner_id,
            req.idempotency_key,
            claim_hash(req.order_id, requested, req.reason, req.evidence, req.goods_back),
        )
        if claim.key:
            idempotency.check_key(claim.key)
            async with self.db.reading() as work:
                first = await _first_with_key(work.repo(ReturnRepository), claim)
            if first is not None:
                return first
        order = await self._get_order(req.order_id, req.partner_id)
        ordered = summarise_order(
            [(line.sku, line.delivered_quantity, Decimal(line.unit_price or "0")) for line in order.lines],
            [(a.sku, a.warehouse) for a in order.allocations],
        )
        if any(line.resolution == REPLACE for line in requested) and self.intake is None:
            raise errors.FailedPrecondition(
                "replacements are not enabled here", rule="exchange_unavailable", subject=order.order_id
            )
        try:
            async with self.db.transaction() as tx:
                repo = tx.repo(ReturnRepository)
                await repo.lock_order(order.order_id)
                first = await _first_with_key(repo, claim) if claim.key else None
                if first is not None:
                    return first
                ret = Return.open_claim(
                    rma_id=new_rma_id(),
                    order_id=order.order_id,
                    partner_id=order.partner_id,
                    ordered=ordered,
                    authorised=await repo.authorised_quantities(order.order_id),
                    requested=requested,
                    reason=req.reason,
                    evidence=req.evidence,
                    goods_back=req.goods_back,
                    at=self.clock(),
                    actor=req.actor or req.partner_id or "unknown",
                    currency=order.currency,
                )
                await repo.add(ret, claim)
                await publish_changes(tx, ret)
        except IntegrityError:
            if not claim.key:
                raise
            async with self.db.reading() as work:
                first = await _first_with_key(work.repo(ReturnRepository), claim)
            if first is None:
                raise
            return first
        return ret

    async def _get_order(self, order_id: str, partner_id: str) -> orders_pb2.Order:
        if not order_id:
            raise errors.InvalidArgument(
                "order_id is required", [errors.FieldViolation("order_id", "required")]
            )
        try:
            return await self.orders.GetOrder(
                orders_pb2.GetOrderRequest(order_id=order_id, partner_id=partner_id),
                timeout=self.timeout,
                metadata=rpc.metadata(),
            )
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:  # absent, or another partner's: the same answer
                raise errors.NotFound(f"order {order_id} not found") from None
            raise errors.Unavailable(
                f"orders could not be asked about order {order_id} ({exc.code().name}); try again"
            ) from exc

    async def _quote_replacements(
        self, order: orders_pb2.Order, requested: list[RequestedLine], resolution: str
    ) -> dict[str, Replacement]:
        """What intake says of the exchanged lines' replacement SKUs for this customer (before the
        transaction, like the order): a SKU intake does not know is left out."""
        skus = sorted(
            {
                line.replacement_sku()
                for line in requested
                if line.resolved(resolution) == EXCHANGE and line.replacement_sku()
            }
        )
        if not skus:
            return {}
        if self.intake is None:
            raise errors.FailedPrecondition(
                "exchanges are not enabled here", rule="exchange_unavailable", subject=order.order_id
            )
        try:
            quotes = await self.intake.QuoteLines(
                intake_pb2.QuoteLinesRequest(
                    customer_id=order.customer_id,
                    ship_to_country=order.ship_to.country,
                    lines=[intake_pb2.QuoteLineQuery(product=sku, quantity=1) for sku in skus],
                ),
                timeout=self.timeout,
                metadata=rpc.metadata(),
            )
        except grpc.RpcError as exc:
            raise errors.Unavailable(
                f"intake could not price the replacement ({exc.code().name}); try again"
            ) from exc
        found: dict[str, Replacement] = {}
        for sku, quote in zip(skus, quotes.lines, strict=False):
            if quote.sku == sku:  # a name's match or several matches are not this SKU
                found[sku] = Replacement(
                    sku, Decimal(quote.unit_price or "0"), quote.currency, quote.status != "discontinued"
                )
        return found

    async def make_exchange(self, rma_id: str, tx: Tx | None = None) -> Return | None:
        """Enters the replacement order of an inspected exchange through intake and links it to the RMA;
        nothing when it is not due (not inspected yet, no exchange, linked already). Safe to repeat: intake
        answers the same idempotency key with the same order.

        `tx`: the event consumer's transaction (its inbox row), which the link joins; on SQLite that
        transaction already holds the write lock, so the link cannot wait for a transaction of its own."""
        if tx is None:  # a lost race with another link reads again (and finds it linked)
            return await usecase.retrying(self.db, lambda own: self.make_exchange(rma_id, own))
        repo = tx.repo(ReturnRepository)
        ret = await repo.get(rma_id)
        if ret is None or not ret.exchange_due:
            return ret
        order = await self._get_order(ret.order_id, ret.partner_id)
        submitted = await self._submit_replacement(ret, order)
        if ret.record_exchange(submitted.order_id, self.clock(), actors.SYSTEM, self.policy):
            await repo.save(ret)  # guarded by the version read: a concurrent link rolls this one back
            await publish_changes(tx, ret)
        return ret

    async def _submit_replacement(
        self, ret: Return, order: orders_pb2.Order
    ) -> intake_pb2.SubmitOrderResponse:
        """The replacement order for the original's customer, ship-to, terms and urgency, at the
        replacement prices the RMA recorded (intake checks them like any order's)."""
        if self.intake is None:
            raise errors.Unavailable("intake is not reachable from here; the exchange waits")
        ship_to = common_pb2.Address()
        ship_to.CopyFrom(order.ship_to)
        try:
            return await self.intake.SubmitOrder(
                intake_pb2.SubmitOrderRequest(
                    partner_id=ret.partner_id,
                    idempotency_key=exchange_key(ret.rma_id),
                    channel=EXCHANGE_CHANNEL,
                    external_ref=ret.rma_id,
                    customer_id=order.customer_id,
                    ship_to=ship_to,
                    payment_terms=order.payment_terms,
                    urgent=order.urgent,
                    actor=actors.SYSTEM,
                    lines=[
                        intake_pb2.SubmitLine(
                            sku=line.exchange_sku,
                            quantity=line.exchange_quantity,
                            unit_price=str(line.exchange_unit_price),
                        )
                        for line in ret.exchanged_lines
                    ],
                ),
                timeout=self.timeout,
                metadata=rpc.metadata(),
            )
        except grpc.RpcError as exc:
            raise errors.Unavailable(
                f"intake could not enter the replacement of {ret.rma_id} ({exc.code().name}): {exc.details()}"
            ) from exc

    async def charge_overdue(self, limit: int = 100) -> int:
        """Advance exchanges whose goods did not arrive in time: each charged once
        (return.unreturned_charged); returns how many were charged."""
        now = self.clock()
        async with self.db.reading() as work:
            due = await work.repo(ReturnRepository).overdue_advance(now, limit)
        charged = 0
        for rma_id in due:
            ret = await self._change(rma_id, "", lambda r: r.charge_unreturned(now, actors.SYSTEM))
            charged += ret.unreturned_charge > 0
        return charged

    async def run_deadlines(self, interval: float) -> None:
        """The advance exchanges' deadline job (one replica at a time): a pass every `interval` seconds."""
        while True:
            try:
                await self.charge_overdue()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the advance exchanges' deadline pass failed")
            await asyncio.sleep(interval)

    async def receive(self, rma_id: str, partner_id: str, actor: str) -> Return:
        return await self._change(rma_id, partner_id, lambda ret: ret.receive(self.clock(), actor))

    async def inspect(
        self, rma_id: str, partner_id: str, inspections: list[Inspection], actor: str
    ) -> Return:
        return await self._change(
            rma_id, partner_id, lambda ret: ret.inspect(inspections, self.clock(), actor)
        )

    async def authorise(self, rma_id: str, actor: str, note: str) -> Return:
        """The desk's approver lets a held return through (the desk reaches every partner's RMA)."""
        return await self._change(rma_id, "", lambda ret: ret.authorise(self.clock(), actor, note))

    async def refuse(self, rma_id: str, actor: str, reason: str) -> Return:
        return await self._change(rma_id, "", lambda ret: ret.refuse(self.clock(), actor, reason))

    async def cancel(self, rma_id: str, partner_id: str, actor: str, reason: str) -> Return:
        return await self._change(rma_id, partner_id, lambda ret: ret.cancel(self.clock(), actor, reason))

    async def import_csv(self, kind: str, text: str) -> int:
        """The policy's master data: products' returnable flag and window, customers' tiers, the
        countries' holidays (windows in working days)."""
        if kind not in RETURNS_KINDS:
            raise errors.InvalidArgument(
                f"returns imports {', '.join(RETURNS_KINDS)}, not {kind!r}",
                [errors.FieldViolation("kind", "one of " + ", ".join(RETURNS_KINDS))],
            )
        records = masterdata.parse(kind, text)
        async with self.db.transaction() as tx:
            repo = tx.repo(PolicyRepository)
            if kind == "products":
                await repo.upsert_products(records)
            elif kind == "customers":
                await repo.upsert_customers(records)
            else:
                await import_calendar_kind(tx, kind, records)
        return len(records)

    async def _change(self, rma_id: str, partner_id: str, change: Callable[[Return], bool]) -> Return:
        """Load, change, save with its events (`change` says whether anything changed); retried
        once or twice if another writer got there first."""
        return await usecase.changing(
            self.db,
            ReturnRepository,
            (rma_id, partner_id),
            change,
            publish_changes,
            missing=f"return {rma_id} not found",
        )

    async def list_for_order(self, order_id: str, partner_id: str) -> list[Return]:
        """The order's returns, oldest first (none for another partner's order)."""
        async with self.db.reading() as work:
            return await work.repo(ReturnRepository).for_order(order_id, partner_id)

    async def list_in_status(self, status: str, partner_id: str, limit: int = 0) -> list[Return]:
        """The returns in one status, oldest first (the desk's held returns; a partner's own only)."""
        if status not in {s.value for s in Status}:
            raise errors.InvalidArgument(
                f"unknown return status {status!r}",
                [errors.FieldViolation("status", "one of " + ", ".join(s.value for s in Status))],
            )
        if limit < 0 or limit > MAX_LISTED:
            raise errors.InvalidArgument(
                f"limit must be between 1 and {MAX_LISTED}", [errors.FieldViolation("limit", "out of range")]
            )
        async with self.db.reading() as work:
            return await work.repo(ReturnRepository).in_status(status, partner_id, limit or DEFAULT_LISTED)

    async def get(self, rma_id: str, partner_id: str) -> Return:
        return await usecase.load(
            self.db, ReturnRepository, (rma_id, partner_id), missing=f"return {rma_id} not found"
        )


def delivered_on(order: orders_pb2.Order) -> dt.date | None:
    """When the order was completely delivered: the day it last became completed (None: not yet)."""
    completed = [c for c in order.history if c.status == "completed" and c.HasField("at")]
    return completed[-1].at.ToDatetime(dt.UTC).date() if completed else None


async def _first_with_key(repo: ReturnRepository, claim: IdempotencyClaim) -> Return | None:
    """The RMA this caller first made with this key; the key with another body is refused."""
    found = await repo.by_idempotency_key(claim.scope, claim.key)
    if found is None:
        return None
    first, first_hash = found
    if first_hash != claim.request_hash:
        raise idempotency.key_reused("return")
    return first
