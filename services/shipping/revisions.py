"""Shipments revised after they were made: the order changed, or the desk resolved an exception.

- order.changed: the order's lines, reservations or address moved, so the shipments follow. Per
  warehouse of the order's allocation: a shipment still in the warehouse gets the new lines (and a
  new promised date when the destination country changed), a missing one is created, one whose
  warehouse holds nothing any more is cancelled. A shipment that left is
  never touched (orders' policy refuses such changes; a late one here is logged and skipped).
  Once some of the order shipped (partially_shipped; shipped or completed when the change cancelled
  the rest), only its remainder follows: the allocations less what the shipments that left carry
  (`still_to_ship`), against the shipments still in the warehouse.
- order.exception resolved with change_carrier: the named shipment gets the new carrier and
  tracking number. With accept_delay: the shipments not yet delivered are promised the accepted
  date (on time is measured against it). With reship: a new shipment per warehouse of "reship_lines" (held by
  inventory for it), with its own id, so the lost parcel's shipment stays as it was.

Both run inside the consumer's transaction. A carrier's delayed / lost tracking events are steps
reported through RecordShipmentEvent (service.py): shipment.delayed / shipment.lost, which orders
records as carrier_delay / lost_parcel exceptions.
"""

from __future__ import annotations

import logging

from orderdesk.db import Tx
from services.shipping.domain import (
    Status,
    promised_delivery_date,
    shipment_id_for,
    split_by_warehouse,
    still_to_ship,
)
from services.shipping.service import ShippingService, save_changes
from services.shipping.store import ShipmentRepository

log = logging.getLogger("shipping.revisions")
# The order statuses whose changes the shipments follow: after shipping, only the remainder's (a change
# that cancels all of it leaves the order shipped or completed; nothing of what left is touched).
FOLLOWED = ("allocated", "partially_shipped", "shipped", "completed")


async def follow_order_change(service: ShippingService, tx: Tx, event) -> None:
    """An order.changed event: shipments follow the order's allocation (only once it is allocated)."""
    order = event.order.order
    if order.status not in FOLLOWED:
        return  # before allocation there are no shipments
    if order.status in ("shipped", "completed") and not any(
        c.field.startswith("lines[") for c in event.order.changes
    ):
        return  # a shipped order's other changes (a date accepted …) leave its shipments alone
    repo = tx.repo(ShipmentRepository)
    if not await repo.open_for_shipments(order.order_id):
        return
    plan = split_by_warehouse([(a.sku, a.warehouse, a.quantity) for a in order.allocations])
    existing = await repo.for_order(order.order_id)
    ours = [s for s in existing if s.status is not Status.CANCELLED and "-R" not in s.shipment_id[-4:]]
    if order.status != "allocated":  # the remainder of an order some of which shipped
        left = [s for s in ours if s.status in (Status.SHIPPED, Status.DELIVERED)]
        plan = still_to_ship(plan, [(s.warehouse, s.lines) for s in left])
        ours = [s for s in ours if s not in left]
    live = {s.warehouse: s for s in ours}
    reason = f"order changed: {event.reason}" if event.reason else "order changed"
    new_country = any(c.field == "ship_to.country" for c in event.order.changes)
    actor = event.actor or "system"
    for warehouse, lines in plan.items():
        shipment = live.get(warehouse)
        if shipment is None:
            base = shipment_id_for(order.order_id, warehouse)
            taken = {s.shipment_id for s in existing}
            shipment_id = (
                base
                if base not in taken
                else next(f"{base}-{n}" for n in range(2, 100) if f"{base}-{n}" not in taken)
            )
            await service.add_shipment(tx, order, shipment_id, warehouse, lines, reason=reason)
        elif shipment.cancellable:
            promise = ""
            if (
                new_country
            ):  # transit days depend on the destination: promise again, from the shipment's making
                promise = promised_delivery_date(
                    allocated_at=shipment.created_at or service.clock(),
                    book=await service.book(tx),
                    warehouse=warehouse,
                    destination_country=order.ship_to.country,
                    requested_delivery_date=order.requested_delivery_date,
                )
            if shipment.revise(
                lines,
                at=service.clock(),
                actor=actor,
                reason=reason,
                promised_delivery_date=promise,
                destination_country=order.ship_to.country if new_country else "",
                book=await service.book(tx) if new_country else None,
            ):
                await save_changes(tx, shipment)
        elif shipment.lines != lines:
            log.warning(
                "order %s changed after shipment %s left; not applied", order.order_id, shipment.shipment_id
            )
    for warehouse, shipment in live.items():
        if warehouse not in plan and shipment.cancellable:
            if shipment.cancel(service.clock(), actor, f"{reason} (nothing left to ship from {warehouse})"):
                await save_changes(tx, shipment)


async def follow_resolution(service: ShippingService, tx: Tx, event) -> None:
    """An order.exception event: act on change_carrier, accept_delay and reship resolutions."""
    exception = event.order.exception
    if exception.status != "resolved":
        return
    action, details = exception.resolution.action, dict(exception.resolution.details)
    repo = tx.repo(ShipmentRepository)
    actor = exception.resolution.actor or "desk"
    if action == "change_carrier":
        shipment = await repo.get(details.get("shipment_id") or exception.shipment_id)
        if shipment is None:
            log.warning("carrier change for unknown shipment %s", details.get("shipment_id"))
            return
        if shipment.change_carrier(
            details.get("carrier", ""), details.get("tracking_number", ""), at=service.clock(), actor=actor
        ):
            await save_changes(tx, shipment)
    elif action == "accept_delay":  # the accepted date is the promise of what has not been delivered yet
        date = details.get("expected_date") or exception.expected_date
        for shipment in await repo.for_order(event.order_id):
            if shipment.repromise(
                date,
                at=service.clock(),
                actor=actor,
                reason=f"delay accepted ({exception.exception_id})",
                book=await service.book(tx),
            ):
                await save_changes(tx, shipment)
    elif action == "reship":
        plan: dict[str, dict[str, int]] = {}
        for part in filter(None, details.get("reship_lines", "").split(";")):
            where, qty = part.rsplit("=", 1)
            sku, warehouse = where.rsplit("@", 1)
            plan.setdefault(warehouse, {})[sku] = int(qty)
        existing = {s.shipment_id for s in await repo.for_order(event.order_id)}
        for warehouse, lines in plan.items():
            base = f"{shipment_id_for(event.order_id, warehouse)}-R"
            shipment_id = next(f"{base}{n}" for n in range(1, 100) if f"{base}{n}" not in existing)
            await service.add_shipment(
                tx,
                event.order.order,
                shipment_id,
                warehouse,
                lines,
                reason=f"reship for {exception.exception_id} ({exception.shipment_id} {exception.type})",
            )
