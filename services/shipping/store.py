"""Shipping's tables and the repository for shipments and warehouses (SQLAlchemy Core)."""

from __future__ import annotations

import datetime as dt
import functools
import operator

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from orderdesk.calendar_store import calendar_columns, warehouse_record, warehouse_values
from orderdesk.db import (
    Repository,
    RowsInsert,
    UtcDateTime,
    insert_ignoring_conflicts,
    update_versioned,
    upsert,
    utcnow,
)
from orderdesk.masterdata import Warehouse
from services.shipping.domain import CarrierClaim, Shipment, Status
from services.shipping.tracking import TrackingEntry, TrackingStatus, in_time_order

metadata = MetaData()

shipments = Table(
    "shipments",
    metadata,
    Column("shipment_id", String(80), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("partner_id", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("lines", JSON, nullable=False),  # [[sku, quantity], ...]: revised while still in the warehouse
    Column("promised_delivery_date", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(128), nullable=False),
    Column("delivered_on", String(10), nullable=False),
    Column("on_time", Boolean, nullable=True),
    Column("expected_delivery_date", String(10), nullable=False),  # migration 0002: a carrier's revised date
    # migration 0005: the promise watch's facts (domain.schedule) and the destination they count to
    Column("destination_country", String(16), nullable=False),
    Column("pick_by", UtcDateTime, nullable=True),
    Column("deliver_by", String(10), nullable=False),
    Column("tracking_status", String(32), nullable=False),  # migration 0006: the carrier's last word
    Column("tracked_at", UtcDateTime, nullable=True),  # migration 0006: … and its time
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_shipments_order", "order_id"),
    Index("ix_shipments_tracking_number", "tracking_number"),  # migration 0006: carriers name parcels by it
)

# Migration 0007: carrier claims (issue 14), one per shipment and damaged-in-transit claim (RMA).
carrier_claims = Table(
    "carrier_claims",
    metadata,
    Column("claim_id", String(80), primary_key=True),
    Column("shipment_id", String(80), nullable=False),
    Column("rma_id", String(40), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # open
    Column("lines", JSON, nullable=False),  # [[sku, quantity], ...]: the damaged units it carried
    Column("reason", String(1000), nullable=False),
    Column("opened_by", String(128), nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    UniqueConstraint("shipment_id", "rma_id", name="uq_carrier_claims_shipment_rma"),
)

# Migration 0006: every carrier event, once per sender and event id (a repeat inserts nothing).
tracking_events = Table(
    "tracking_events",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("shipment_id", String(80), nullable=False),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(128), nullable=False),
    Column("status", String(32), nullable=False),
    Column("carrier_status", String(128), nullable=False),
    Column("message", String(1000), nullable=False),
    Column("location", String(200), nullable=False),
    Column("expected_delivery_date", String(10), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_tracking_events_shipment", "shipment_id", "occurred_at"),
)

# Shipping's memory of each order it has heard of. Both order consumers lock this row,
# so an allocation and a cancellation of one order handled at the same time (they come
# through separate durable consumers) are applied one after the other, never interleaved.
order_states = Table(
    "order_states",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("cancelled", Boolean, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse", String(32), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("country", String(16), nullable=False),
    *calendar_columns(),  # time zone, local cut-off, working days (orderdesk.calendar_store)
    Column("transit_days_domestic", Integer, nullable=False),
    Column("transit_days_international", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


def _shipment_row(shipment: Shipment, now: dt.datetime) -> dict:
    return {
        "status": shipment.status.value,
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "delivered_on": shipment.delivered_on,
        "on_time": shipment.on_time,
        "lines": [[sku, qty] for sku, qty in shipment.lines.items()],  # revised by order changes
        "promised_delivery_date": shipment.promised_delivery_date,  # and by a new address
        "expected_delivery_date": shipment.expected_delivery_date,
        "destination_country": shipment.destination_country,
        "pick_by": shipment.pick_by,
        "deliver_by": shipment.deliver_by,
        "tracking_status": shipment.tracking_status,
        "tracked_at": shipment.tracked_at,
        "version": shipment.version,
        "updated_at": now,
    }


# A new shipment's row as a tuple in the table's column order (ShipmentRepository.add_many, orderdesk.db.RowsInsert):
# what it is made with and what _shipment_row sets.
_NEW_SHIPMENT_COLUMNS = tuple(c.name for c in shipments.columns)
_new_shipment_values = operator.itemgetter(*_NEW_SHIPMENT_COLUMNS)


def _new_shipment_row(shipment: Shipment, now: dt.datetime) -> tuple:
    return _new_shipment_values(
        {
            "shipment_id": shipment.shipment_id,
            "order_id": shipment.order_id,
            "partner_id": shipment.partner_id,
            "warehouse": shipment.warehouse,
            "created_at": shipment.created_at,
            **_shipment_row(shipment, now),
        }
    )


def _shipment(row) -> Shipment:
    return Shipment(
        shipment_id=row["shipment_id"],
        order_id=row["order_id"],
        partner_id=row["partner_id"],
        warehouse=row["warehouse"],
        lines={sku: qty for sku, qty in row["lines"]},
        promised_delivery_date=row["promised_delivery_date"],
        status=Status(row["status"]),
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        delivered_on=row["delivered_on"],
        on_time=row["on_time"],
        expected_delivery_date=row["expected_delivery_date"],
        destination_country=row["destination_country"],
        pick_by=row["pick_by"],
        deliver_by=row["deliver_by"],
        tracking_status=row["tracking_status"],
        tracked_at=row["tracked_at"],
        version=row["version"],
        created_at=row["created_at"],
        loaded_version=row["version"],
    )


def _open_orders(dialect) -> RowsInsert:
    """Orders' gates, made if new (not cancelled), else touched unless cancelled: the ids of the open ones."""
    statement = dialect.insert(order_states)
    template = statement.on_conflict_do_update(
        index_elements=["order_id"],
        set_={"updated_at": statement.excluded.updated_at},
        where=order_states.c.cancelled.is_(False),
    ).returning(order_states.c.order_id)
    return RowsInsert(template, ("order_id",), constants=("cancelled", "updated_at"))


_OPEN_ORDERS = {"postgresql": _open_orders(postgresql), "sqlite": _open_orders(sqlite)}  # compiled once each


def _cancel_order(dialect):
    statement = dialect.insert(order_states).values(
        order_id=bindparam("order_id"), cancelled=True, updated_at=bindparam("now")
    )
    return statement.on_conflict_do_update(
        index_elements=["order_id"],
        set_={"cancelled": statement.excluded.cancelled, "updated_at": statement.excluded.updated_at},
    )


_CANCEL_ORDER = {"postgresql": _cancel_order(postgresql), "sqlite": _cancel_order(sqlite)}


# Reads on the per-order path (consumers, warehouse steps, carrier events) are templates too, one per
# combination of the optional scopes (a partner's or a warehouse's key), executed with parameters.
@functools.cache
def _scoped(by: str, partner: bool, warehouse: bool, ordered: bool):
    query = select(shipments).where(shipments.c[by] == bindparam("key"))
    if partner:
        query = query.where(shipments.c.partner_id == bindparam("partner"))
    if warehouse:
        query = query.where(shipments.c.warehouse == bindparam("wh"))
    return query.order_by(shipments.c.shipment_id) if ordered else query


def _scope(key: str, partner_id: str, warehouse: str) -> dict:
    return {"key": key, "partner": partner_id, "wh": warehouse}


@functools.cache
def _by_tracking_number(warehouse: bool):
    query = select(shipments.c.shipment_id, shipments.c.carrier).where(
        shipments.c.tracking_number == bindparam("key")
    )
    return query.where(shipments.c.warehouse == bindparam("wh")) if warehouse else query


_SEEN = select(tracking_events.c.shipment_id).where(
    tracking_events.c.source == bindparam("src"), tracking_events.c.event_id == bindparam("eid")
)


class ShipmentRepository(Repository):
    """Loads and saves whole shipments; saves are guarded by the version read."""

    async def add_many(self, new: list[Shipment]) -> set[str]:
        """Inserts each shipment unless one with its id exists, in one multi-row INSERT ... ON CONFLICT DO
        NOTHING RETURNING: the ids of those that were new."""
        if not new:
            return set()
        now = utcnow()
        found = await _add_returning(self.dialect).returned(
            self.conn, [_new_shipment_row(shipment, now) for shipment in new]
        )
        return {shipment_id for (shipment_id,) in found}

    async def save(self, shipment: Shipment) -> None:
        await update_versioned(
            self.conn,
            shipments,
            shipments.c.shipment_id,
            shipment.shipment_id,
            shipment.loaded_version,
            _shipment_row(shipment, utcnow()),
            f"shipment {shipment.shipment_id}",
        )

    async def get(self, shipment_id: str, partner_id: str = "", warehouse: str = "") -> Shipment | None:
        query = _scoped("shipment_id", bool(partner_id), bool(warehouse), ordered=False)
        row = (await self.conn.execute(query, _scope(shipment_id, partner_id, warehouse))).mappings().first()
        return _shipment(row) if row is not None else None

    async def for_order(self, order_id: str, partner_id: str = "", warehouse: str = "") -> list[Shipment]:
        query = _scoped("order_id", bool(partner_id), bool(warehouse), ordered=True)
        rows = await self.conn.execute(query, _scope(order_id, partner_id, warehouse))
        return [_shipment(row) for row in rows.mappings()]

    async def by_tracking_number(self, tracking_number: str, warehouse: str = "") -> list[tuple[str, str]]:
        """(shipment id, carrier) of the shipments with this tracking number (usually one)."""
        rows = await self.conn.execute(
            _by_tracking_number(bool(warehouse)), {"key": tracking_number, "wh": warehouse}
        )
        return [(row.shipment_id, row.carrier) for row in rows]

    # --- the per-order gate ------------------------------------------------------
    async def open_for_shipments(self, order_id: str) -> bool:
        """False if the order was cancelled already; else True, holding the order's row until commit."""
        return order_id in await self.open_many_for_shipments([order_id])

    async def open_many_for_shipments(self, order_ids: list[str]) -> set[str]:
        """The orders' gates in one statement (in order id order, each once): the ids of those not cancelled
        already, their rows held until commit."""
        # Made if new, else touched unless cancelled. The conflict takes the row lock (PostgreSQL waits
        # here for a cancel in flight, then reads the row as that cancel left it).
        if not order_ids:
            return set()
        found = await _OPEN_ORDERS[self.dialect].returned(
            self.conn, [(i,) for i in sorted(set(order_ids))], cancelled=False, updated_at=utcnow()
        )
        return {order_id for (order_id,) in found}

    async def mark_cancelled(self, order_id: str) -> None:
        """Remembers the cancel (a late allocation creates nothing), waiting for a creation in flight."""
        await self.conn.execute(_CANCEL_ORDER[self.dialect], {"order_id": order_id, "now": utcnow()})


@functools.cache
def _add_returning(dialect_name: str) -> RowsInsert:
    """A batch of new shipments (_new_shipment_row's tuples): INSERT ... ON CONFLICT DO NOTHING RETURNING
    the ids it inserted."""
    return RowsInsert(
        insert_ignoring_conflicts(dialect_name, shipments).returning(shipments.c.shipment_id),
        _NEW_SHIPMENT_COLUMNS,
    )


_WAREHOUSE = select(warehouses).where(warehouses.c.warehouse == bindparam("key"))
_WAREHOUSES = select(warehouses).order_by(warehouses.c.warehouse)


class WarehouseRepository(Repository):
    async def get(self, code: str) -> Warehouse | None:
        row = (await self.conn.execute(_WAREHOUSE, {"key": code})).mappings().first()
        return None if row is None else warehouse_record(row)

    async def all(self) -> list[Warehouse]:
        rows = (await self.conn.execute(_WAREHOUSES)).mappings()
        return [warehouse_record(row) for row in rows]

    async def save_all(self, records: list[Warehouse]) -> None:
        now = utcnow()
        for record in records:
            values = warehouse_values(record) | {"updated_at": now}
            await self.conn.execute(
                upsert(
                    self.dialect,
                    warehouses,
                    values,
                    keys=["warehouse"],
                    update=[c for c in values if c != "warehouse"],
                )
            )


class TrackingRepository(Repository):
    """The carriers' timeline: one row per (sender, event id)."""

    async def add(self, shipment_id: str, entry: TrackingEntry) -> bool:
        """Records the event unless the sender's event id is recorded already; True if it was new."""
        result = await self.conn.execute(
            insert_ignoring_conflicts(self.dialect, tracking_events),
            {
                "source": entry.source,
                "event_id": entry.event_id,
                "shipment_id": shipment_id,
                "carrier": entry.carrier,
                "tracking_number": entry.tracking_number,
                "status": entry.status.value,
                "carrier_status": entry.carrier_status,
                "message": entry.message,
                "location": entry.location,
                "expected_delivery_date": entry.expected_delivery_date,
                "occurred_at": entry.occurred_at,
                "received_at": entry.received_at or utcnow(),
            },
        )
        return result.rowcount == 1

    async def seen(self, source: str, event_id: str) -> str | None:
        """The shipment an event id of this sender was recorded for, or None."""
        row = (await self.conn.execute(_SEEN, {"src": source, "eid": event_id})).first()
        return None if row is None else row.shipment_id

    async def for_shipments(self, shipment_ids: list[str]) -> dict[str, list[TrackingEntry]]:
        """Each shipment's timeline, in the carrier's time order."""
        if not shipment_ids:
            return {}
        rows = await self.conn.execute(
            select(tracking_events).where(tracking_events.c.shipment_id.in_(shipment_ids))
        )
        found: dict[str, list[TrackingEntry]] = {sid: [] for sid in shipment_ids}
        for row in rows.mappings():
            found[row["shipment_id"]].append(
                TrackingEntry(
                    source=row["source"],
                    event_id=row["event_id"],
                    status=TrackingStatus(row["status"]),
                    occurred_at=row["occurred_at"],
                    carrier_status=row["carrier_status"],
                    message=row["message"],
                    location=row["location"],
                    expected_delivery_date=row["expected_delivery_date"],
                    carrier=row["carrier"],
                    tracking_number=row["tracking_number"],
                    received_at=row["received_at"],
                )
            )
        return {sid: in_time_order(entries) for sid, entries in found.items()}


class CarrierClaimRepository(Repository):
    """Carrier claims: one row per shipment and claim (a repeat inserts nothing)."""

    async def add(self, claim: CarrierClaim) -> bool:
        result = await self.conn.execute(
            insert_ignoring_conflicts(self.dialect, carrier_claims),
            {
                "claim_id": claim.claim_id,
                "shipment_id": claim.shipment_id,
                "rma_id": claim.rma_id,
                "carrier": claim.carrier,
                "tracking_number": claim.tracking_number,
                "status": claim.status,
                "lines": [[sku, qty] for sku, qty in claim.lines.items()],
                "reason": claim.reason,
                "opened_by": claim.opened_by,
                "opened_at": claim.opened_at,
            },
        )
        return result.rowcount == 1

    async def for_shipments(self, shipment_ids: list[str]) -> dict[str, list[CarrierClaim]]:
        """Each shipment's carrier claims, oldest first."""
        found: dict[str, list[CarrierClaim]] = {sid: [] for sid in shipment_ids}
        if not shipment_ids:
            return found
        rows = await self.conn.execute(
            select(carrier_claims)
            .where(carrier_claims.c.shipment_id.in_(shipment_ids))
            .order_by(carrier_claims.c.opened_at, carrier_claims.c.claim_id)
        )
        for r in rows.mappings():
            found[r["shipment_id"]].append(
                CarrierClaim(
                    claim_id=r["claim_id"],
                    shipment_id=r["shipment_id"],
                    rma_id=r["rma_id"],
                    carrier=r["carrier"],
                    tracking_number=r["tracking_number"],
                    status=r["status"],
                    lines={sku: int(qty) for sku, qty in r["lines"]},
                    reason=r["reason"],
                    opened_by=r["opened_by"],
                    opened_at=r["opened_at"],
                )
            )
        return found
