"""Shipping's use cases: load the shipment, apply a domain rule, save it with its events.

Each use case is one transaction: the shipment row (guarded by its version) and the
outbox rows for its changes commit together. The two order consumers run inside
the consumer's transaction, so the inbox row, the shipments and their events commit
as one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from orderdesk import errors, events, masterdata, metrics
from orderdesk.db import Database, Tx, utcnow
from orderdesk.v1 import events_pb2, orders_pb2
from services.shipping import changes
from services.shipping.domain import (
    TRACKING,
    Shipment,
    Status,
    check_step,
    promised_delivery_date,
    shipment_id_for,
    split_by_warehouse,
)
from services.shipping.proto import shipment_to_proto
from services.shipping.store import ShipmentRepository, WarehouseRepository


async def publish_changes(tx: Tx, shipment: Shipment) -> None:
    """One event per change, in order; each carries the shipment as it now is."""
    snapshot = shipment_to_proto(shipment) if shipment.changes else None
    for change in shipment.changes:
        await tx.emit(
            events.new_event(
                f"shipment.{change.event_name}",
                aggregate_id=shipment.shipment_id,
                version=change.version,
                order_id=shipment.order_id,
                actor=change.actor,
                reason=change.reason,
                at=change.at,
                shipment=events_pb2.ShipmentEvent(shipment=snapshot),
            )
        )


def count_changes(shipment: Shipment) -> None:
    for change in shipment.changes:
        metrics.SHIPMENT_EVENTS.labels(change.event_name).inc()
        if change.status is Status.DELIVERED:
            metrics.SHIPMENTS_DELIVERED.labels(str(bool(shipment.on_time)).lower()).inc()


class ShippingService:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime] = utcnow):
        self.db = db
        self.clock = clock

    # --- master data -----------------------------------------------------------
    async def import_master_data(self, kind: str, text: str) -> int:
        """Warehouses (country, cut-off, transit days) for delivery promises; all rows or none."""
        if kind != "warehouses":
            raise errors.InvalidArgument(
                f"shipping imports warehouses, not {kind!r}",
                [errors.FieldViolation("kind", "shipping keeps only warehouses", "unsupported_kind")],
            )
        records = masterdata.parse(kind, text)
        async with self.db.transaction() as tx:
            await WarehouseRepository(tx.conn).save_all(records)
        return len(records)

    # --- reactions to orders (inside the consumer's transaction) ------------------
    async def create_for_allocated_order(
        self, tx: Tx, order: orders_pb2.Order, allocated_at: dt.datetime | None = None
    ) -> list[Shipment]:
        """One shipment per warehouse of the allocation; a repeat creates nothing (deterministic ids)."""
        repo = ShipmentRepository(tx.conn)
        if not await repo.open_for_shipments(order.order_id):
            return []  # cancelled before we saw the allocation: nothing to ship
        allocated_at = allocated_at or self.clock()
        warehouses = WarehouseRepository(tx.conn)
        plan = split_by_warehouse([(a.sku, a.warehouse, a.quantity) for a in order.allocations])
        created = []
        for warehouse, lines in plan.items():
            shipment = Shipment.create(
                at=self.clock(),
                shipment_id=shipment_id_for(order.order_id, warehouse),
                order_id=order.order_id,
                partner_id=order.partner_id,
                warehouse=warehouse,
                lines=lines,
                promised_delivery_date=promised_delivery_date(
                    allocated_at=allocated_at,
                    warehouse=await warehouses.get(warehouse),
                    destination_country=order.ship_to.country,
                    requested_delivery_date=order.requested_delivery_date,
                ),
            )
            if await repo.add(shipment):
                await publish_changes(tx, shipment)
                count_changes(shipment)
                created.append(shipment)
        return created

    async def cancel_for_order(self, tx: Tx, order_id: str, actor: str, reason: str) -> list[Shipment]:
        """Cancels the order's shipments whose goods are still in the warehouse."""
        repo = ShipmentRepository(tx.conn)
        await repo.mark_cancelled(order_id)
        cancelled = []
        for shipment in await repo.for_order(order_id):
            if shipment.cancellable and shipment.cancel(self.clock(), actor, reason):
                await repo.save(shipment)
                await publish_changes(tx, shipment)
                count_changes(shipment)
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
    ) -> Shipment:
        """picked | packed | shipped | delivered, retried once or twice if another writer got there first.
        delayed | lost are a carrier's tracking events (services/shipping/changes.py)."""
        if step in TRACKING:
            return await changes.record_tracking(self, shipment_id, step, at=occurred_at or self.clock(), actor=actor,
                                                 cause=cause, expected_delivery_date=expected_delivery_date)
        check_step(step, carrier, tracking_number)
        at = occurred_at or self.clock()
        for attempt in range(3):
            try:
                async with self.db.transaction() as tx:
                    repo = ShipmentRepository(tx.conn)
                    shipment = await repo.get(shipment_id)
                    if shipment is None:
                        raise errors.NotFound(f"shipment {shipment_id} not found")
                    if shipment.record(step, at=at, actor=actor, carrier=carrier, tracking_number=tracking_number):
                        await repo.save(shipment)
                        await publish_changes(tx, shipment)
                break
            except errors.Conflict:
                if attempt == 2:
                    raise
        count_changes(shipment)
        return shipment

    # --- reads -------------------------------------------------------------------------
    async def get(self, shipment_id: str, partner_id: str) -> Shipment:
        async with self.db.read() as conn:
            shipment = await ShipmentRepository(conn).get(shipment_id, partner_id)
        if shipment is None:
            raise errors.NotFound(f"shipment {shipment_id} not found")
        return shipment

    async def list_for_order(self, order_id: str, partner_id: str) -> list[Shipment]:
        async with self.db.read() as conn:
            return await ShipmentRepository(conn).for_order(order_id, partner_id)
