"""Intake's use cases: import master data; check an order, de-duplicate it, hand it to orders.

SubmitOrder in four steps:
1. a key seen before is answered from what it stored: the same body replays the
   first order (no checks run again), another body is refused;
2. read the customer, products, customer prices, open credit exposure and, when a
   delivery date is requested, the warehouses' calendar book, each stocked SKU's stock
   (inventory.GetStock, with a deadline) and, for the units stock does not cover,
   inventory's supply quote (inventory.QuoteSupply: its production queue and available
   to promise, with a deadline); decide (refuse, approve or hold) and
   build the CreateOrderRequest with a fresh order id;
3. one transaction claims the partner's external reference (a second key for it
   adds the hold reason duplicate_external_ref), books an approved order's amount as
   open exposure under a lock on the customer, holding it for credit instead when it
   would pass the limit (so a burst cannot overshoot it), and claims the (partner,
   idempotency key) row with the request hash and the CreateOrderRequest bytes; a
   group of orders makes these claims together, a few multi-row statements for all
   (`_claim`). If the key was claimed meanwhile, the stored request wins: same hash ->
   a replay, another hash -> refused, and the transaction leaves nothing behind;
4. call orders.CreateOrder with the request that holds the key. CreateOrder is
   idempotent by order id, so a replay, or a retry after a crash between 3 and 4,
   re-sends the same bytes and gets the same order back, never a second one.

Open exposure is then kept current by the consumer of orders' events
(record_order_event; see consumers.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import grpc

from orderdesk import errors, logs, masterdata, metrics, rpc
from orderdesk.calendar import CalendarBook
from orderdesk.calendar_store import import_calendar_kind
from orderdesk.db import Database, Tx, utcnow
from orderdesk.idempotency import key_reused
from orderdesk.masterdata import Customer, CustomerPrice, Product
from orderdesk.v1 import events_pb2, inventory_pb2, orders_pb2
from services.intake import domain
from services.intake.cache import MasterDataCache
from services.intake.domain import Decision, IntakeConfig, Submission
from services.intake.proto import create_order_request
from services.intake.store import (
    MICROS,
    ExposureChange,
    ExposureRepository,
    ExternalRefClaim,
    ExternalRefRepository,
    FinanceRepository,
    IdempotencyRecord,
    IdempotencyRepository,
    MasterDataRepository,
    to_micros,
)

log = logging.getLogger("intake.service")

# Failures after which the same request may simply be sent again.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


class _ClaimedMeanwhile(Exception):
    def __init__(self, holder: IdempotencyRecord):
        self.holder = holder


@dataclass(frozen=True)
class _Planned:
    """An order decided and about to be claimed, under the order id it will have."""

    submission: Submission
    order_id: str
    decision: Decision
    correlation_id: str = ""


@dataclass(frozen=True)
class Submitted:
    order: orders_pb2.Order  # as the orders service answered: status, hold reasons, proposals are its own
    replayed: bool


class IntakeService:
    def __init__(
        self,
        db: Database,
        orders,  # orders_pb2_grpc.OrdersServiceStub, or anything with an async CreateOrder
        rpc_timeout: float,
        clock: Callable[[], dt.datetime] = utcnow,
        new_order_id: Callable[[], str] = domain.new_order_id,
        *,
        inventory=None,  # inventory_pb2_grpc.InventoryServiceStub (GetStock); None: dates are not verified
        config: IntakeConfig | None = None,
    ):
        self.db = db
        self.orders = orders
        self.inventory = inventory
        self.rpc_timeout = rpc_timeout
        self.clock = clock
        self.new_order_id = new_order_id
        self.config = config or IntakeConfig()
        self.masterdata = MasterDataCache(self.config.masterdata_ttl_seconds)

    # --- master data ---------------------------------------------------------------
    async def import_master_data(self, kind: str, text: str) -> int:
        """Upserts customers, products, customer prices or warehouses by key, all rows or none."""
        domain.check_master_kind(kind)
        records = masterdata.parse(kind, text)
        domain.check_master_records(kind, records)
        async with self.db.transaction() as tx:
            repo = tx.repo(MasterDataRepository)
            if kind in ("calendars", "lanes"):
                await import_calendar_kind(tx, kind, records)
            else:
                upsert = {
                    "customers": repo.upsert_customers,
                    "products": repo.upsert_products,
                    "prices": repo.upsert_prices,
                    "warehouses": repo.upsert_warehouses,
                }[kind]
                await upsert(records)
        self.masterdata.clear()
        log.info("imported %d %s", len(records), kind)
        return len(records)

    # --- orders --------------------------------------------------------------------
    async def submit(self, s: Submission) -> Submitted:
        channel = domain.metric_channel(s.channel)
        async with self.db.reading() as work:
            seen = (
                await work.repo(IdempotencyRepository).get(s.partner_id, s.idempotency_key)
                if s.idempotency_key
                else None
            )
        if seen is not None:
            return await self._replay(seen, s, channel)
        try:
            decision = await self._decide(s)
        except (errors.InvalidArgument, errors.FailedPrecondition):
            metrics.ORDERS_RECEIVED.labels(channel, "invalid").inc()
            raise

        try:
            async with self.db.transaction() as tx:
                ((decision, request),) = await self._claim(tx, [_Planned(s, self.new_order_id(), decision)])
        except _ClaimedMeanwhile as meanwhile:
            # Claimed meanwhile, by this request or another: this attempt's claims and credit booking are
            # undone; answered as the holder's replay (or a changed body refused).
            return await self._replay(meanwhile.holder, s, channel)
        except errors.InvalidArgument:
            metrics.ORDERS_RECEIVED.labels(channel, "invalid").inc()
            raise

        order = await self._create_order(request)
        metrics.ORDERS_RECEIVED.labels(channel, "approved" if decision.approved else "held").inc()
        return Submitted(order=order, replayed=False)

    async def submit_many(
        self, subs: list[Submission], correlation_ids: list[str] | None = None
    ) -> list[Submitted | Exception]:
        """A stream's or batch's orders in one go, answered in order (an order's refusal is its
        answer, an Exception). Each is decided on its own; the claims of all of them commit in one
        transaction and orders enters them in one CreateOrders call. Anything out of the common
        case (a key seen before, a key or reference claimed meanwhile) goes through `submit`, one
        order at a time, so replays and races keep exactly the single order's rules.

        `correlation_ids`, one per order, when they came from different requests (a group commit of
        single submissions): each order's events and calls carry its own."""
        cids = correlation_ids or [""] * len(subs)
        answers: list[Submitted | Exception | None] = [None] * len(subs)
        async with self.db.reading() as work:
            seen = await work.repo(IdempotencyRepository).seen(
                (s.partner_id, s.idempotency_key) for s in subs if s.idempotency_key
            )
            # orders that go through `submit`, one by one
            single = {i for i, s in enumerate(subs) if (s.partner_id, s.idempotency_key) in seen}
            exposures = await work.repo(ExposureRepository).open_exposures(
                {s.customer_id for i, s in enumerate(subs) if i not in single and s.customer_id}
            )
        planned: list[tuple[int, Decision]] = []
        for i, s in enumerate(subs):
            if i in single:
                continue
            try:
                planned.append((i, await self._decide(s, exposures)))
            except (errors.InvalidArgument, errors.FailedPrecondition) as exc:
                metrics.ORDERS_RECEIVED.labels(domain.metric_channel(s.channel), "invalid").inc()
                answers[i] = exc
        claimed: list[tuple[Decision, orders_pb2.CreateOrderRequest]] = []
        try:
            if planned:
                async with self.db.transaction() as tx:
                    claimed = await self._claim(
                        tx, [_Planned(subs[i], self.new_order_id(), d, cids[i]) for i, d in planned]
                    )
        except (_ClaimedMeanwhile, errors.InvalidArgument):
            single.update(i for i, _ in planned)
            planned, claimed = [], []
        # As the claims left them (held for credit or a duplicate reference), with the requests holding the keys.
        decisions = [decision for decision, _ in claimed]
        requests = [request for _, request in claimed]
        if requests:
            try:
                created = list(
                    (
                        await self.orders.CreateOrders(
                            orders_pb2.CreateOrdersRequest(orders=requests),
                            timeout=self.rpc_timeout * 4,
                            metadata=rpc.metadata(),
                        )
                    ).orders
                )
            except grpc.RpcError as exc:
                failure = rpc.describe(exc)
                log.warning(
                    "orders.CreateOrders of %d failed: %s %s", len(requests), failure.code, failure.message
                )
                created = []
                for (
                    request
                ) in requests:  # each is claimed with its request: one by one completes or explains it
                    try:
                        created.append(await self._create_order(request))
                    except Exception as one:  # noqa: BLE001 - the order's own answer
                        created.append(one)
            for (i, _), decision, order in zip(planned, decisions, created, strict=True):
                if isinstance(order, Exception):
                    answers[i] = order
                    continue
                channel = domain.metric_channel(subs[i].channel)
                metrics.ORDERS_RECEIVED.labels(channel, "approved" if decision.approved else "held").inc()
                answers[i] = Submitted(order=order, replayed=False)
        for i in sorted(single):
            try:
                with logs.correlated(cids[i]):
                    answers[i] = await self.submit(subs[i])
            except (errors.DomainError, grpc.RpcError) as exc:
                answers[i] = exc
        return answers  # type: ignore[return-value]

    async def _replay(self, seen: IdempotencyRecord, s: Submission, channel: str) -> Submitted:
        if seen.request_hash != domain.request_hash(s):
            metrics.ORDERS_RECEIVED.labels(channel, "invalid").inc()
            raise key_reused("order")
        order = await self._create_order(orders_pb2.CreateOrderRequest.FromString(seen.create_request))
        metrics.ORDERS_RECEIVED.labels(channel, "replayed").inc()
        return Submitted(order=order, replayed=True)

    async def _decide(self, s: Submission, open_exposures: Mapping[str, Decimal] | None = None) -> Decision:
        """The order checked on its own. `open_exposures`: its group's customers' open totals, read once for the
        group (the claims book credit on the totals as they are then, `_book_credit`)."""
        now = self.clock()
        known = await self._known_facts(s, open_exposures, now)
        if known is not None:
            customer, products, facts = known
            return domain.decide(s, customer, products, facts, self.config)
        async with self.db.reading() as work:
            repo = work.repo(MasterDataRepository)
            customer = await self.masterdata.customer(repo, s.customer_id) if s.customer_id else None
            products = await self.masterdata.products(repo, {line.sku for line in s.lines if line.sku})
            # Refuse a malformed request before any further look-up or call.
            domain.check_structure(s, customer, products, now.astimezone(dt.UTC).date())
            assert customer is not None
            skus = {line.sku for line in s.lines}
            prices = await self.masterdata.customer_prices(repo, customer.customer_id, skus)
            exposure = (
                open_exposures[customer.customer_id]
                if open_exposures is not None and customer.customer_id in open_exposures
                else await work.repo(ExposureRepository).open_exposure(customer.customer_id)
            )
            overdue = (
                await work.repo(FinanceRepository).overdue(
                    customer.customer_id, now.astimezone(dt.UTC).date()
                )
                if self.config.hold_overdue_invoices
                else Decimal(0)
            )
            book = await self.masterdata.book(work) if s.requested_delivery_date else None
        facts = await self._facts(s, customer, products, prices, book, exposure, overdue, now)
        return domain.decide(s, customer, products, facts, self.config)

    async def _facts(
        self,
        s: Submission,
        customer: Customer,
        products: dict[str, Product],
        prices: Mapping[str, CustomerPrice],
        book: CalendarBook | None,
        exposure: Decimal,
        overdue: Decimal,
        now: dt.datetime,
    ) -> domain.Facts:
        """The facts `domain.decide` weighs: what was read (or known), and inventory's answers on stock and
        supply when the order asks for a delivery date and warehouses are known."""
        stock = supply = None
        if book is not None and book.warehouses:
            country = domain.ship_to(s.ship_to, customer).get("country", "")
            stock, supply = await self.delivery_facts(domain.order_lines(s), products, book, country, now)
        return domain.Facts(
            now=now,
            prices=prices,
            book=book,
            stock=stock,
            supply=supply,
            open_exposure=exposure,
            overdue=overdue,
        )

    async def _known_facts(
        self, s: Submission, open_exposures: Mapping[str, Decimal] | None, now: dt.datetime
    ) -> tuple[Customer, dict[str, Product], domain.Facts] | None:
        """What `_decide` reads, when all of it is in memory already (the master data cache, the group's open
        totals): a group's orders then need no unit of work each. None: something must be read (`_decide`
        reads it all, as ever). The same checks in the same order, the same questions to inventory."""
        if open_exposures is None or self.config.hold_overdue_invoices:
            return None
        cache = self.masterdata
        customer = cache.known_customer(s.customer_id) if s.customer_id else (None,)
        products = cache.known_products({line.sku for line in s.lines if line.sku})
        if customer is None or products is None:
            return None
        # Refuse a malformed request before any further look-up, as `_decide` does.
        domain.check_structure(s, customer[0], products, now.astimezone(dt.UTC).date())
        found = customer[0]
        assert found is not None
        prices = cache.known_prices(found.customer_id, {line.sku for line in s.lines})
        if prices is None or found.customer_id not in open_exposures:
            return None
        book = None
        if s.requested_delivery_date and (book := cache.known_book()) is None:
            return None
        facts = await self._facts(
            s, found, products, prices, book, open_exposures[found.customer_id], Decimal(0), now
        )
        return found, products, facts

    async def _claim(
        self, tx: Tx, planned: Sequence[_Planned]
    ) -> list[tuple[Decision, orders_pb2.CreateOrderRequest]]:
        """The checks that must hold under concurrency, for a group of orders in one transaction (a single
        order is a group of one), each with the outcome it would have had alone, the group's orders one
        after another: the partner's reference (`_claim_references`), credit (`_book_credit`), then the
        idempotency key with the request that will create the order. A few multi-row statements for the
        whole group, each table's rows in key order, so two groups at once never wait in a circle.

        A key claimed meanwhile (by this request or another, or twice in the group) raises
        _ClaimedMeanwhile with its holder: the caller's transaction is undone. Else each order's decision
        as the claims left it, and its CreateOrderRequest."""
        decisions = await self._book_credit(tx, planned, await self._claim_references(tx, planned))
        requests = []
        for p, decision in zip(planned, decisions, strict=True):
            request = create_order_request(p.order_id, p.submission, decision)
            request.correlation_id = p.correlation_id
            requests.append(request)
        holders = await tx.repo(IdempotencyRepository).claim_many(
            [
                IdempotencyRecord(
                    partner_id=p.submission.partner_id,
                    idempotency_key=p.submission.idempotency_key,
                    request_hash=domain.request_hash(p.submission),
                    order_id=p.order_id,
                    create_request=request.SerializeToString(),
                )
                for p, request in zip(planned, requests, strict=True)
            ]
        )
        for p, holder in zip(planned, holders, strict=True):
            if holder.order_id != p.order_id:
                raise _ClaimedMeanwhile(holder)
        return list(zip(decisions, requests, strict=True))

    async def _claim_references(self, tx: Tx, planned: Sequence[_Planned]) -> list[Decision]:
        """Claims the partners' references: one sent before (under another key, or under this one after its
        retention), or earlier in the group, holds the order as a duplicate. (A race on the same key is
        answered by the key's claim, as its replay, and this attempt is undone.)"""
        decisions = [p.decision for p in planned]
        with_refs = [i for i, p in enumerate(planned) if p.submission.external_ref]
        holders = await tx.repo(ExternalRefRepository).claim_many(
            [
                ExternalRefClaim(
                    planned[i].submission.partner_id,
                    planned[i].submission.external_ref,
                    planned[i].submission.idempotency_key,
                    planned[i].order_id,
                )
                for i in with_refs
            ]
        )
        for i, first in zip(with_refs, holders, strict=True):
            s = planned[i].submission
            if first.order_id != planned[i].order_id:
                decisions[i] = decisions[i].held_also_for(
                    domain.duplicate_external_ref(
                        s.external_ref, first.order_id, same_key=first.idempotency_key == s.idempotency_key
                    )
                )
        return decisions

    async def _book_credit(
        self, tx: Tx, planned: Sequence[_Planned], decisions: list[Decision]
    ) -> list[Decision]:
        """Books each approved order's amount as its customer's open exposure while the total stays within
        the credit limit, each customer's orders in the group's order (domain.book_in_turn); one that would
        pass it is held for credit with the total it met. A burst cannot overshoot the limit: the totals are
        read and grown with the customers' rows locked (`add_to_totals`).

        Booked first as if each customer had nothing open (so at most its limit: no overflow), which returns
        the totals and locks them; then in turn on what was really open, and put right where the two differ.
        One statement for the totals and one for the orders' rows, one more when a customer is near its
        limit."""
        by_customer: dict[str, list[int]] = {}
        for i, (p, decision) in enumerate(zip(planned, decisions, strict=True)):
            if decision.approved and decision.counts_as_credit:
                by_customer.setdefault(p.submission.customer_id, []).append(i)
        if not by_customer:
            return decisions
        master = tx.repo(MasterDataRepository)
        customers = {}
        for customer_id in by_customer:
            customer = await self.masterdata.customer(master, customer_id)
            assert customer is not None, "decided orders name known customers"
            customers[customer_id] = customer
        amounts = {c: [to_micros(decisions[i].amount) for i in indexes] for c, indexes in by_customer.items()}
        limits = {c: to_micros(customer.credit_limit) for c, customer in customers.items()}
        guessed = {
            c: domain.booked_micros(amounts[c], domain.book_in_turn(0, limits[c], amounts[c]))
            for c in amounts
        }
        exposure = tx.repo(ExposureRepository)
        totals = await exposure.add_to_totals(guessed)
        corrections: dict[str, int] = {}
        booked: list[tuple[str, str, int]] = []
        for customer_id, indexes in by_customer.items():
            bookings = domain.book_in_turn(
                totals[customer_id] - guessed[customer_id], limits[customer_id], amounts[customer_id]
            )
            corrections[customer_id] = (
                domain.booked_micros(amounts[customer_id], bookings) - guessed[customer_id]
            )
            for i, micros, booking in zip(indexes, amounts[customer_id], bookings, strict=True):
                if booking.booked:
                    booked.append((planned[i].order_id, customer_id, micros))
                    continue
                decision = decisions[i]
                for reason in domain.credit_refused(
                    customers[customer_id],
                    decision.payment_terms,
                    decision.amount,
                    Decimal(booking.open_micros) / MICROS,
                ):
                    decision = decision.held_also_for(reason)
                decisions[i] = decision
        await exposure.add_to_totals({c: delta for c, delta in corrections.items() if delta})
        await exposure.add_orders(booked)
        return decisions

    async def delivery_facts(
        self,
        lines: Sequence[domain.OrderLine],
        products: Mapping[str, Product],
        book: CalendarBook,
        country: str,
        now: dt.datetime,
    ) -> tuple[Mapping[str, Mapping[str, int]] | None, Mapping[str, domain.Supply] | None]:
        """What a delivery-date check needs from inventory: the stock of the stocked SKUs, then
        inventory's answer for the units stock does not cover (QuoteSupply: its production queue
        and available to promise). (None, None) when stock could not be read; supply None when the
        quote could not be had."""
        lines = [line for line in lines if line.sku in products]
        stock = await self._stock({line.sku for line in lines if not products[line.sku].make_to_order})
        if stock is None:
            return None, None
        _, missing = domain.stock_arrivals(lines, products, stock, book, country, now)
        return stock, await self._supply(missing, country)

    async def date_reasons(
        self,
        requested: dt.date,
        lines: Sequence[domain.OrderLine],
        products: Mapping[str, Product],
        book: CalendarBook | None,
        country: str,
        now: dt.datetime,
    ) -> list[domain.Reason]:
        """Why `lines` cannot arrive by `requested` (none if they can), asking inventory what it needs: the
        check an approval and a change make again on what they release or add."""
        stock, supply = (
            await self.delivery_facts(lines, products, book, country, now)
            if book is not None and book.warehouses
            else ({}, {})
        )
        reasons, _ = domain.delivery_reasons(requested, lines, products, stock, book, country, now, supply)
        return reasons

    async def _supply(self, missing: dict[str, int], country: str) -> dict[str, domain.Supply] | None:
        """inventory.QuoteSupply (with a deadline) for the units per SKU stock does not cover."""
        if not missing:
            return {}
        if self.inventory is None:
            return None
        request = inventory_pb2.QuoteSupplyRequest(
            ship_to_country=country,
            lines=[inventory_pb2.ReserveLine(sku=sku, quantity=q) for sku, q in missing.items()],
        )
        try:
            answer = await self.inventory.QuoteSupply(
                request, timeout=self.rpc_timeout, metadata=rpc.metadata()
            )
        except grpc.RpcError as exc:
            return _left_to_the_desk("QuoteSupply", exc)
        return {q.sku: domain.Supply(domain.parse_date(q.delivery_date), q.warehouse) for q in answer.quotes}

    async def _stock(self, skus: set[str]) -> Mapping[str, Mapping[str, int]] | None:
        """Available units per warehouse for each SKU; an unknown SKU has none. None if inventory failed."""
        if not skus:
            return {}  # only made-to-order products: nothing to ask
        if self.inventory is None:
            return None

        async def one(sku: str) -> dict[str, int]:
            try:
                level = await self.inventory.GetStock(
                    inventory_pb2.GetStockRequest(sku=sku), timeout=self.rpc_timeout, metadata=rpc.metadata()
                )
            except grpc.RpcError as exc:
                if rpc.describe(exc).code is grpc.StatusCode.NOT_FOUND:
                    return {}
                raise
            return {w.warehouse: w.available for w in level.warehouses}

        ordered = sorted(skus)
        try:
            levels = await asyncio.gather(*[one(sku) for sku in ordered])
        except grpc.RpcError as exc:
            return _left_to_the_desk("GetStock", exc)
        return dict(zip(ordered, levels, strict=True))

    async def _create_order(self, request: orders_pb2.CreateOrderRequest) -> orders_pb2.Order:
        try:
            return await self.orders.CreateOrder(request, timeout=self.rpc_timeout, metadata=rpc.metadata())
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            log.warning(
                "orders.CreateOrder %s failed: %s %s", request.order_id, failure.code, failure.message
            )
            if failure.code in TRANSIENT:
                # The key is claimed with this request: the same submission again completes it.
                raise errors.Unavailable(
                    "the order was accepted but not yet entered (orders did not answer); "
                    "send the same request with the same Idempotency-Key again"
                ) from exc
            passed = rpc.passed_on(exc)  # orders' own refusal (a precondition, a conflict) as intake's
            if passed is exc:
                raise
            raise passed from exc

    # --- credit exposure from orders' events ------------------------------------------
    async def record_order_event(self, tx: Tx, event: events_pb2.Event) -> None:
        """Keeps one order's exposure row current; stale and repeated events change nothing."""
        change = self.exposure_change(event)
        if change is not None:
            await tx.repo(ExposureRepository).record(
                change.order_id, change.customer_id, change.amount, change.is_open, change.version
            )

    async def record_order_events(self, tx: Tx, events: Sequence[events_pb2.Event]) -> None:
        """`record_order_event` of each event in turn (a consumer's batch, in order), with one read and
        multi-row writes for all of them (ExposureRepository.record_many)."""
        changes = [change for change in map(self.exposure_change, events) if change is not None]
        if changes:
            await tx.repo(ExposureRepository).record_many(changes)

    def exposure_change(self, event: events_pb2.Event) -> ExposureChange | None:
        """What an order event says of its order's exposure; None when it says nothing (a status that
        changes nothing, a prepaid order)."""
        state = domain.exposure_state(event.order.status, self.config.exposure_until_paid)
        order = event.order.order
        if state is None or not order.order_id or order.payment_terms.upper() == domain.PREPAID:
            return None
        amount = (
            Decimal(order.total_amount)
            if order.total_amount
            else domain.order_amount(
                [
                    domain.OrderLine(line.sku, line.quantity, Decimal(line.unit_price or "0"))
                    for line in order.lines
                ]
            )
        )
        return ExposureChange(
            order.order_id, order.customer_id, amount, state == "open", event.aggregate_version
        )


def _left_to_the_desk(method: str, exc: grpc.RpcError) -> None:
    """Inventory could not answer a delivery-date check: logged, and the date is left to the desk (None)."""
    failure = rpc.describe(exc)
    log.warning(
        "inventory.%s failed: %s %s; the delivery date is left to the desk",
        method,
        failure.code,
        failure.message,
    )
