"""Inventory's tables and guarded stock operations (SQLAlchemy Core).

Every change to a stock row is a conditional UPDATE whose WHERE clause is the rule
(enough available, enough reserved), and its rowcount says whether the rule held;
CHECK constraints repeat the invariants (reserved >= 0, on_hand >= reserved).

Lock order, the same in every transaction so PostgreSQL never deadlocks:
    order_states row (one order) -> stock rows by (sku, warehouse) -> sku_versions rows by sku.
SQLite runs each service on one connection, so its transactions are serial anyway.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    delete,
    select,
    update,
)

from orderdesk.db import UtcDateTime, insert_ignoring_conflicts, upsert, utcnow
from orderdesk.errors import Conflict
from services.inventory.domain import OrderReservations, OrderState, StockBookError, StockLevel

metadata = MetaData()

warehouses = Table(
    "warehouses", metadata,
    Column("warehouse", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("cutoff_hour_utc", Integer, nullable=False),
    Column("transit_days_domestic", Integer, nullable=False),
    Column("transit_days_international", Integer, nullable=False),
)

stock = Table(
    "stock", metadata,
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    CheckConstraint("on_hand >= reserved", name="ck_stock_on_hand_covers_reserved"),
)

# The version of each SKU's stock.restocked events: one counter per SKU (the event's
# aggregate), so a consumer sees it increase whichever warehouse the stock went to.
sku_versions = Table(
    "sku_versions", metadata,
    Column("sku", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

# One row per order inventory has heard of; locking it serialises the order's changes.
order_states = Table(
    "order_states", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),  # active | released | consumed
    Column("priority", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

reservations = Table(
    "reservations", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),  # held now
    Column("shipped", Integer, nullable=False),   # held once, then consumed by a shipment
    CheckConstraint("quantity >= 0", name="ck_reservation_not_negative"),
    CheckConstraint("shipped >= 0", name="ck_reservation_shipped_not_negative"),
)

# Receipts applied, by reference: a retried Restock (or a redelivered refund) adds nothing.
receipts = Table(
    "receipts", metadata,
    Column("reference", String(200), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)


def _at(sku: str, warehouse: str):
    return and_(stock.c.sku == sku, stock.c.warehouse == warehouse)


def _reservation(order_id: str, sku: str, warehouse: str):
    return and_(reservations.c.order_id == order_id, reservations.c.sku == sku, reservations.c.warehouse == warehouse)


class StockRepository:
    def __init__(self, conn, dialect: str):
        self.conn = conn
        self.dialect = dialect

    # --- reads -------------------------------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        rows = await self.conn.execute(
            select(stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
            .where(stock.c.sku == sku).order_by(stock.c.warehouse)
        )
        return [StockLevel(r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def level(self, sku: str, warehouse: str) -> StockLevel:
        row = (await self.conn.execute(select(stock.c.on_hand, stock.c.reserved).where(_at(sku, warehouse)))).one()
        return StockLevel(warehouse, row.on_hand, row.reserved)

    async def lock_levels(self, sku: str) -> list[StockLevel]:
        """The SKU's stock rows, locked in warehouse order until the transaction ends (PostgreSQL),
        so a plan made from these numbers still holds when its guarded updates run."""
        rows = await self.conn.execute(
            select(stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
            .where(stock.c.sku == sku).order_by(stock.c.warehouse).with_for_update()
        )
        return [StockLevel(r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def warehouse_codes(self) -> set[str]:
        return set((await self.conn.execute(select(warehouses.c.warehouse))).scalars())

    # --- one order, locked for the transaction ---------------------------------------------------
    async def lock_order(self, order_id: str, priority: int = 0) -> OrderReservations:
        """Creates the order's state row if absent and locks it (PostgreSQL: FOR UPDATE)."""
        await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, order_states,
                {"order_id": order_id, "state": OrderState.ACTIVE.value, "priority": priority,
                 "updated_at": utcnow()},
            )
        )
        row = (
            await self.conn.execute(
                select(order_states.c.state, order_states.c.priority)
                .where(order_states.c.order_id == order_id).with_for_update()
            )
        ).one()
        rows = await self.conn.execute(
            select(reservations.c.sku, reservations.c.warehouse, reservations.c.quantity, reservations.c.shipped)
            .where(reservations.c.order_id == order_id)
        )
        held, shipped = {}, {}
        for r in rows:
            if r.quantity:
                held[(r.sku, r.warehouse)] = r.quantity
            if r.shipped:
                shipped[(r.sku, r.warehouse)] = r.shipped
        return OrderReservations(order_id, OrderState(row.state), held, shipped, priority=row.priority)

    async def save_order_state(self, order: OrderReservations) -> None:
        await self.conn.execute(
            update(order_states).where(order_states.c.order_id == order.order_id)
            .values(state=order.state.value, priority=order.priority, updated_at=utcnow())
        )

    # --- guarded stock changes ----------------------------------------------------------------------
    async def reserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        result = await self.conn.execute(
            update(stock)
            .where(_at(sku, warehouse), stock.c.on_hand - stock.c.reserved >= quantity)
            .values(reserved=stock.c.reserved + quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            # The rows are locked and the plan came from them, so only a concurrent writer that
            # bypassed the lock gets here; the guard refused, nothing was oversold: retry.
            raise Conflict(f"{sku} at {warehouse} no longer has {quantity} available; retry")
        changed = await self.conn.execute(
            update(reservations).where(_reservation(order_id, sku, warehouse))
            .values(quantity=reservations.c.quantity + quantity)
        )
        if changed.rowcount == 0:  # the order row is locked: nobody else inserts this row meanwhile
            await self.conn.execute(
                reservations.insert().values(order_id=order_id, sku=sku, warehouse=warehouse, quantity=quantity,
                                             shipped=0)
            )

    async def unreserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        taken = await self.conn.execute(
            update(reservations)
            .where(_reservation(order_id, sku, warehouse), reservations.c.quantity >= quantity)
            .values(quantity=reservations.c.quantity - quantity)
        )
        if taken.rowcount != 1:
            raise StockBookError(f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse}")
        result = await self.conn.execute(
            update(stock)
            .where(_at(sku, warehouse), stock.c.reserved >= quantity)
            .values(reserved=stock.c.reserved - quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise StockBookError(f"{sku} at {warehouse} has fewer than {quantity} reserved to release")

    async def consume(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        """Shipped units leave the books: the order's reservation, reserved and on hand all drop."""
        taken = await self.conn.execute(
            update(reservations)
            .where(_reservation(order_id, sku, warehouse), reservations.c.quantity >= quantity)
            .values(quantity=reservations.c.quantity - quantity, shipped=reservations.c.shipped + quantity)
        )
        if taken.rowcount != 1:
            raise StockBookError(f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse} to ship")
        result = await self.conn.execute(
            update(stock)
            .where(_at(sku, warehouse), stock.c.reserved >= quantity, stock.c.on_hand >= quantity)
            .values(on_hand=stock.c.on_hand - quantity, reserved=stock.c.reserved - quantity,
                    version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise StockBookError(f"{sku} at {warehouse} has fewer than {quantity} reserved to ship")

    async def receive(self, sku: str, warehouse: str, quantity: int) -> StockLevel:
        """Adds to on hand (a new SKU/warehouse pair starts at zero); returns the new level."""
        await self._ensure_row(sku, warehouse)
        await self.conn.execute(
            update(stock).where(_at(sku, warehouse))
            .values(on_hand=stock.c.on_hand + quantity, version=stock.c.version + 1)
        )
        return await self.level(sku, warehouse)

    async def count(self, sku: str, warehouse: str, on_hand: int) -> tuple[StockLevel, StockLevel | None]:
        """A stock count sets on hand unless that is below what is reserved.
        Returns (level before, level after or None when refused)."""
        await self._ensure_row(sku, warehouse)
        row = (
            await self.conn.execute(
                select(stock.c.on_hand, stock.c.reserved).where(_at(sku, warehouse)).with_for_update()
            )
        ).one()
        before = StockLevel(warehouse, row.on_hand, row.reserved)
        if row.on_hand == on_hand:
            return before, before
        result = await self.conn.execute(
            update(stock).where(_at(sku, warehouse), stock.c.reserved <= on_hand)
            .values(on_hand=on_hand, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            return before, None
        return before, await self.level(sku, warehouse)

    async def _ensure_row(self, sku: str, warehouse: str) -> None:
        await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, stock, {"sku": sku, "warehouse": warehouse, "on_hand": 0, "reserved": 0, "version": 0}
            )
        )

    # --- receipts and event versions --------------------------------------------------------------
    async def record_receipt(self, reference: str, sku: str, warehouse: str, quantity: int) -> bool:
        """True for a new receipt; False for a repeat of one applied before. The same reference
        with other contents is refused by the caller (see `receipt`)."""
        result = await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, receipts,
                {"reference": reference, "sku": sku, "warehouse": warehouse, "quantity": quantity,
                 "received_at": utcnow()},
            )
        )
        return result.rowcount == 1

    async def receipt(self, reference: str) -> tuple[str, str, int]:
        row = (
            await self.conn.execute(
                select(receipts.c.sku, receipts.c.warehouse, receipts.c.quantity).where(receipts.c.reference == reference)
            )
        ).one()
        return row.sku, row.warehouse, row.quantity

    async def next_event_version(self, sku: str) -> int:
        await self.conn.execute(insert_ignoring_conflicts(self.dialect, sku_versions, {"sku": sku, "version": 0}))
        await self.conn.execute(
            update(sku_versions).where(sku_versions.c.sku == sku).values(version=sku_versions.c.version + 1)
        )
        return (await self.conn.execute(select(sku_versions.c.version).where(sku_versions.c.sku == sku))).scalar_one()

    # --- master data and housekeeping ----------------------------------------------------------------
    async def upsert_warehouse(self, values: dict) -> None:
        await self.conn.execute(
            upsert(self.dialect, warehouses, values, ["warehouse"], [k for k in values if k != "warehouse"])
        )

    async def drop_empty_reservations(self, order_id: str) -> None:
        await self.conn.execute(
            delete(reservations).where(
                reservations.c.order_id == order_id, reservations.c.quantity == 0, reservations.c.shipped == 0
            )
        )
