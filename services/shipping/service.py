"""Shipping's use cases: load the shipment, apply a domain rule, save it with its events.

Each use case is one transaction: the shipment row (guarded by its version) and the
outbox rows for its changes commit together. The order consumers run inside the
consumer's transaction, so the inbox row, the shipments and their events commit as
one (the reactions to order changes and resolutions are in revisions.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from orderdesk import errors, masterdata, metrics, usecase
from orderdesk.calendar import CalendarBook
from orderdesk.calendar_store import BookCache, import_calendar_kind
from orderdesk.db import Database, Tx, Work, utcnow
from orderdesk.v1 import events_pb2, orders_pb2
from services.shipping.domain import (
    TRACKING,
    CarrierClaim,
    Change,
    Promises,
    Shipment,
    Status,
    carrier_claim_id,
    check_step,
    plan_carrier_claims,
    shipment_id_for,
    split_by_warehouse,
)
from services.shipping.proto import shipment_to_proto, tracking_to_proto
from services.shipping.store import (
    CarrierClaimRepository,
    ShipmentRepository,
    TrackingRepository,
    WarehouseRepository,
)
from services.shipping.tracking import Outcome, Reported, TrackingEntry, check, choose_shipment


def count_change(shipment: Shipment, change: Change) -> None:
    metrics.SHIPMENT_EVENTS.labels(change.event_name).inc()
    if change.status is Status.DELIVERED:
        metrics.SHIPMENTS_DELIVERED.labels(str(bool(shipment.on_time)).lower()).inc()


# One event per recorded change, in order, each carrying the shipment as it now is; counted in the
# metrics once the transaction has committed.
publish_changes = usecase.Publisher[Shipment](
    aggregate_id=lambda shipment: shipment.shipment_id,
    snapshot=shipment_to_proto,
    payload=lambda change, snapshot: {
        "shipment": events_pb2.ShipmentEvent(
            shipment=snapshot, tracking=tracking_to_proto(change.tracking) if change.tracking else None
        )
    },
    count=count_change,
)


async def save_changes(tx: Tx, shipment: Shipment) -> None:
    """Saves a changed shipment (guarded by the version read) with one event per change."""
    await tx.repo(ShipmentRepository).save(shipment)
    await publish_changes(tx, shipment)


class ShippingService:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.clock = clock
        self.calendars = BookCache(lambda work: work.repo(WarehouseRepository).all())
        self._promises: Promises | None = None

    async def book(self, work: Work) -> CalendarBook:
        """Warehouses, holidays and lanes: what every promise is computed with (orderdesk.calendar)."""
        return await self.calendars.get(work)

    async def _held_book(self) -> CalendarBook:
        """The book for work outside a transaction: the one held, else read on its own."""
        book = self.calendars.cached()
        if book is None:
            async with self.db.reading() as work:
                book = await self.book(work)
        return book

    async def promises(self, work: Work) -> Promises:
        """New shipments' promises and schedules, each worked out once while the book is held."""
        book = await self.book(work)
        if self._promises is None or self._promises.book is not book:
            self._promises = Promises(book)
        return self._promises

    # --- master data -----------------------------------------------------------
    async def import_master_data(self, kind: str, text: str) -> int:
        """Warehouses (country, time zone, cut-off, working days, transit days), calendars
        (holidays) and lanes for delivery promises; all rows or none."""
        if kind not in masterdata.CALENDAR_KINDS:
            kinds = ", ".join(masterdata.CALENDAR_KINDS)
            raise errors.InvalidArgument(
                f"shipping imports {kinds}, not {kind!r}",
                [errors.FieldViolation("kind", f"shipping keeps only {kinds}", "unsupported_kind")],
            )
        records = masterdata.parse(kind, text)
        async with self.db.transaction() as tx:
            if kind == "warehouses":
                await tx.repo(WarehouseRepository).save_all(records)
            else:
                await import_calendar_kind(tx, kind, records)
        self.calendars.clear()
        return len(records)

    # --- reactions to orders (inside the consumer's transaction) ------------------
    async def create_for_allocated_orders(
        self, tx: Tx, allocated: Sequence[tuple[orders_pb2.Order, dt.datetime | None]]
    ) -> list[Shipment]:
        """One shipment per warehouse of each order's allocation, (order, allocated at) in turn (a consumer's
        batch, in order, or one event alone), with one statement for the orders' gates, one multi-row insert
        of all the shipments and their events in the transaction's one outbox statement. An order cancelled
        before we saw its allocation gets nothing; a repeat creates nothing (deterministic ids): a shipment
        id planned twice (the same order allocated again) is planned once, from the first."""
        repo = tx.repo(ShipmentRepository)
        open_orders = await repo.open_many_for_shipments([order.order_id for order, _at in allocated])
        promises = await self.promises(tx) if open_orders else None
        planned: dict[str, Shipment] = {}
        for order, allocated_at in allocated:
            if order.order_id not in open_orders:
                continue  # cancelled before we saw the allocation: nothing to ship
            allocated_at = allocated_at or self.clock()
            plan = split_by_warehouse([(a.sku, a.warehouse, a.quantity) for a in order.allocations])
            for warehouse, lines in plan.items():
                shipment_id = shipment_id_for(order.order_id, warehouse)
                if shipment_id not in planned:
                    assert promises is not None
                    planned[shipment_id] = self._new_shipment(
                        promises, order, shipment_id, warehouse, lines, allocated_at, "order allocated"
                    )
        return await self._add_new(tx, list(planned.values()))

    async def _add_new(self, tx: Tx, shipments: list[Shipment]) -> list[Shipment]:
        """Inserts the shipments in one statement and publishes those that were new (shipment.created);
        one whose id exists already is left as it is."""
        added = await tx.repo(ShipmentRepository).add_many(shipments)
        created = [shipment for shipment in shipments if shipment.shipment_id in added]
        for shipment in created:
            await publish_changes(tx, shipment)
        return created

    async def add_shipment(
        self,
        tx: Tx,
        order: orders_pb2.Order,
        shipment_id: str,
        warehouse: str,
        lines: dict[str, int],
        *,
        allocated_at: dt.datetime | None = None,
        reason: str = "order allocated",
    ) -> Shipment | None:
        """A new pending shipment of `lines` from `warehouse`, promised from `allocated_at` (now by
        default) and published as shipment.created; None when one with its id exists already."""
        shipment = self._new_shipment(
            await self.promises(tx),
            order,
            shipment_id,
            warehouse,
            lines,
            allocated_at or self.clock(),
            reason,
        )
        created = await self._add_new(tx, [shipment])
        return created[0] if created else None

    def _new_shipment(
        self,
        promises: Promises,
        order: orders_pb2.Order,
        shipment_id: str,
        warehouse: str,
        lines: dict[str, int],
        allocated_at: dt.datetime,
        reason: str,
    ) -> Shipment:
        """A pending shipment of `lines` from `warehouse`, promised from `allocated_at`, scheduled (pick-by
        and deliver-by for orders' promise watch)."""
        country = order.ship_to.country
        promised = promises.promised_delivery_date(
            allocated_at, warehouse, country, order.requested_delivery_date
        )
        planned = promises.schedule(warehouse, country, promised)
        return Shipment.create(
            at=self.clock(),
            reason=reason,
            shipment_id=shipment_id,
            order_id=order.order_id,
            partner_id=order.partner_id,
            warehouse=warehouse,
            lines=lines,
            destination_country=country,
            promised_delivery_date=promised,
            pick_by=planned.pick_by,
            deliver_by=planned.deliver_by,
        )

    async def open_carrier_claims(self, tx: Tx, ret) -> list[CarrierClaim]:
        """A damaged-in-transit claim (issue 14, return.claim_opened; `ret` the RMA as published): a carrier
        claim, status open, on each shipment of the order that left with a carrier and carried the damaged
        units, noted on the shipment (shipment.carrier_claim_opened). Ids follow the RMA: a redelivery opens
        nothing new. Other RMAs are ignored."""
        if ret.kind != "claim" or ret.claim_reason != "damaged_in_transit":
            return []
        damaged: dict[str, int] = {}
        for line in ret.lines:
            damaged[line.sku] = damaged.get(line.sku, 0) + int(line.quantity)
        repo = tx.repo(ShipmentRepository)
        claims_repo = tx.repo(CarrierClaimRepository)
        opened = []
        now = self.clock()
        actor = ret.decided_by or "system"
        for n, (shipment, lines) in enumerate(
            plan_carrier_claims(damaged, await repo.for_order(ret.order_id))
        ):
            claim = CarrierClaim(
                claim_id=carrier_claim_id(ret.rma_id, n),
                shipment_id=shipment.shipment_id,
                rma_id=ret.rma_id,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                lines=lines,
                reason=ret.evidence,
                opened_by=actor,
                opened_at=now,
            )
            if not await claims_repo.add(claim):
                continue  # opened before: a redelivery
            shipment.open_carrier_claim(claim, now, actor)
            await save_changes(tx, shipment)
            opened.append(claim)
        return opened

    async def cancel_for_order(self, tx: Tx, order_id: str, actor: str, reason: str) -> list[Shipment]:
        """Cancels the order's shipments whose goods are still in the warehouse."""
        repo = tx.repo(ShipmentRepository)
        await repo.mark_cancelled(order_id)
        cancelled = []
        for shipment in await repo.for_order(order_id):
            if shipment.cancellable and shipment.cancel(self.clock(), actor, reason):
                await save_changes(tx, shipment)
                cancelled.append(shipment)
        return cancelled

    # --- steps reported by warehouses and carriers ----------------------------------
    async def record_event(
        self,
        shipment_id: str,
        step: str,
        *,
        carrier: str = "",
        tracking_number: str = "",
        occurred_at: dt.datetime | None = None,
        actor: str = "",
        cause: str = "",
        expected_delivery_date: str = "",
        warehouse: str = "",
    ) -> Shipment:
        """picked | packed | shipped | delivered, or a carrier's tracking event on a shipped parcel
        (delayed | lost); retried once or twice if another writer got there first. `warehouse`: a key
        tied to one moves only its shipments (another's is not found)."""
        at = occurred_at or self.clock()
        if step in TRACKING:
            return await self._change(
                shipment_id,
                warehouse,
                lambda shipment: shipment.report(
                    step, at=at, actor=actor, cause=cause, expected_delivery_date=expected_delivery_date
                ),
            )
        check_step(step, carrier, tracking_number)  # bad input is refused before the shipment is read
        book = await self._held_book()  # the warehouse's time zone dates a delivery
        return await self._change(
            shipment_id,
            warehouse,
            lambda shipment: shipment.record(
                step,
                at=at,
                actor=actor,
                carrier=carrier,
                tracking_number=tracking_number,
                time_zone=book.time_zone(shipment.warehouse),
                book=book,
            ),
        )

    # --- carriers and tracking aggregators (README "Carriers") ------------------------------------
    async def record_carrier_events(
        self, reported: list[Reported], *, actor: str, warehouse: str = ""
    ) -> list[tuple[TrackingEntry, Outcome, Shipment | None]]:
        """A carrier's batch: checked whole first (a bad field refuses the batch, recording nothing), then
        each event in its own transaction, in the order sent: recorded once per sender and event id,
        applied to its shipment (Shipment.track). `warehouse`: a key tied to one only finds its shipments."""
        problems = check(reported, self.clock())
        if problems:
            raise errors.InvalidArgument(
                "the carrier events are invalid",
                [errors.FieldViolation(path, why, rule) for path, why, rule in problems],
            )
        book = await self._held_book()
        results = []
        for item in reported:
            outcome, shipment = await self._track(item, book, actor=actor, warehouse=warehouse)
            entry = item.entry
            results.append((entry, outcome, shipment))
            metrics.CARRIER_EVENTS.labels(entry.source, entry.status.value, outcome.value).inc()
        return results

    async def _track(
        self, item: Reported, book: CalendarBook, *, actor: str, warehouse: str
    ) -> tuple[Outcome, Shipment | None]:
        entry = item.entry

        async def work(tx: Tx) -> tuple[Outcome, Shipment | None]:
            repo, timeline = tx.repo(ShipmentRepository), tx.repo(TrackingRepository)
            seen = await timeline.seen(entry.source, entry.event_id)
            if seen is not None:
                return Outcome.DUPLICATE, await repo.get(seen)
            shipment_id, outcome = item.shipment_id, Outcome.APPLIED
            if not shipment_id:
                candidates = await repo.by_tracking_number(entry.tracking_number, warehouse)
                shipment_id, outcome = choose_shipment(candidates, entry.carrier_name)
            shipment = await repo.get(shipment_id, warehouse=warehouse) if shipment_id else None
            if shipment is None:
                return outcome if outcome is not Outcome.APPLIED else Outcome.UNKNOWN_SHIPMENT, None
            if not await timeline.add(shipment.shipment_id, entry):
                return Outcome.DUPLICATE, shipment  # the same event in a request running beside this one
            if not shipment.track(
                entry, actor=actor, time_zone=book.time_zone(shipment.warehouse), book=book
            ):
                return Outcome.RECORDED, shipment
            await save_changes(tx, shipment)
            return Outcome.APPLIED, shipment

        return await usecase.retrying(self.db, work)

    async def _change(self, shipment_id: str, warehouse: str, change: Callable[[Shipment], bool]) -> Shipment:
        """Load, change, save with its events (`change` says whether anything changed)."""
        return await usecase.changing(
            self.db,
            ShipmentRepository,
            (shipment_id, "", warehouse),
            change,
            publish_changes,
            missing=f"shipment {shipment_id} not found",
        )

    # --- reads -------------------------------------------------------------------------
    async def get(self, shipment_id: str, partner_id: str, warehouse: str = "") -> Shipment:
        return await usecase.load(
            self.db,
            ShipmentRepository,
            (shipment_id, partner_id, warehouse),
            missing=f"shipment {shipment_id} not found",
        )

    async def list_for_order(self, order_id: str, partner_id: str, warehouse: str = "") -> list[Shipment]:
        """The order's shipments (a warehouse's only, for a key tied to it)."""
        async with self.db.reading() as work:
            return await work.repo(ShipmentRepository).for_order(order_id, partner_id, warehouse)

    async def carrier_claims(self, shipment_ids: list[str]) -> dict[str, list[CarrierClaim]]:
        """Each shipment's carrier claims, oldest first."""
        async with self.db.reading() as work:
            return await work.repo(CarrierClaimRepository).for_shipments(shipment_ids)

    async def timelines(self, shipment_ids: list[str]) -> dict[str, list[TrackingEntry]]:
        """Each shipment's carrier events, in the carrier's time order."""
        async with self.db.reading() as work:
            return await work.repo(TrackingRepository).for_shipments(shipment_ids)
