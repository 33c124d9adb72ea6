"""Inventory's tables and guarded stock operations (SQLAlchemy Core).

Every change to a stock row is a conditional UPDATE whose WHERE clause carries the
rule (enough available, enough reserved), and the rowcount says whether it held.
CHECK constraints repeat the invariants in the database: reserved >= 0, on_hand >= reserved.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Integer, MetaData, String, Table, and_, delete, select, update

from orderdesk.db import UtcDateTime, insert_ignoring_conflicts, upsert, utcnow
from services.inventory.domain import OrderHold, StockLevel

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

order_holds = Table(
    "order_holds", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),  # active | released | consumed
    Column("updated_at", UtcDateTime, nullable=False),
)

reservations = Table(
    "reservations", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity >= 0", name="ck_reservation_not_negative"),
)

receipts = Table(
    "receipts", metadata,
    Column("reference", String(200), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)


class StockRepository:
    def __init__(self, conn, dialect: str):
        self.conn = conn
        self.dialect = dialect

    # --- reads ---------------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        rows = await self.conn.execute(
            select(stock.c.warehouse, stock.c.on_hand, stock.c.reserved).where(stock.c.sku == sku).order_by(stock.c.warehouse)
        )
        return [StockLevel(r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def available(self, sku: str) -> dict[str, int]:
        return {lv.warehouse: lv.available for lv in await self.levels(sku)}

    async def warehouse_exists(self, warehouse: str) -> bool:
        row = await self.conn.execute(select(warehouses.c.warehouse).where(warehouses.c.warehouse == warehouse))
        return row.first() is not None

    async def version(self, sku: str, warehouse: str) -> int:
        row = await self.conn.execute(
            select(stock.c.version).where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse))
        )
        return row.scalar_one()

    # --- an order's hold, locked for the transaction ---------------------------
    async def lock_hold(self, order_id: str) -> OrderHold:
        """Creates the order's hold row if absent and locks it (PostgreSQL: FOR UPDATE;
        SQLite runs one connection, so transactions are serial already)."""
        await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, order_holds, {"order_id": order_id, "state": OrderHold.ACTIVE, "updated_at": utcnow()}
            )
        )
        state = (
            await self.conn.execute(
                select(order_holds.c.state).where(order_holds.c.order_id == order_id).with_for_update()
            )
        ).scalar_one()
        rows = await self.conn.execute(
            select(reservations.c.sku, reservations.c.warehouse, reservations.c.quantity).where(
                and_(reservations.c.order_id == order_id, reservations.c.quantity > 0)
            )
        )
        return OrderHold(order_id, state, {(r.sku, r.warehouse): r.quantity for r in rows})

    async def set_hold_state(self, order_id: str, state: str) -> None:
        await self.conn.execute(
            update(order_holds).where(order_holds.c.order_id == order_id).values(state=state, updated_at=utcnow())
        )

    # --- guarded stock changes ----------------------------------------------------
    async def try_reserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> bool:
        result = await self.conn.execute(
            update(stock)
            .where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse,
                        stock.c.on_hand - stock.c.reserved >= quantity))
            .values(reserved=stock.c.reserved + quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            return False
        await self._add_reservation(order_id, sku, warehouse, quantity)
        return True

    async def unreserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        await self._take_reservation(order_id, sku, warehouse, quantity)
        result = await self.conn.execute(
            update(stock)
            .where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse, stock.c.reserved >= quantity))
            .values(reserved=stock.c.reserved - quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise RuntimeError(f"stock {sku}@{warehouse} holds less reserved than order {order_id}'s reservation")

    async def consume(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        """Shipped units leave the books: the reservation and on-hand both drop."""
        await self._take_reservation(order_id, sku, warehouse, quantity)
        result = await self.conn.execute(
            update(stock)
            .where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse, stock.c.reserved >= quantity))
            .values(on_hand=stock.c.on_hand - quantity, reserved=stock.c.reserved - quantity,
                    version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise RuntimeError(f"stock {sku}@{warehouse} cannot consume {quantity} for order {order_id}")

    async def add_on_hand(self, sku: str, warehouse: str, quantity: int) -> None:
        result = await self.conn.execute(
            update(stock).where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse))
            .values(on_hand=stock.c.on_hand + quantity, version=stock.c.version + 1)
        )
        if result.rowcount == 0:
            await self.conn.execute(
                stock.insert().values(sku=sku, warehouse=warehouse, on_hand=quantity, reserved=0, version=1)
            )

    async def set_on_hand(self, sku: str, warehouse: str, on_hand: int) -> tuple[bool, int]:
        """Import: sets on-hand unless that would leave less than is reserved.
        Returns (applied, previous on-hand)."""
        current = (
            await self.conn.execute(
                select(stock.c.on_hand).where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse))
            )
        ).scalar_one_or_none()
        if current is None:
            await self.conn.execute(
                stock.insert().values(sku=sku, warehouse=warehouse, on_hand=on_hand, reserved=0, version=1)
            )
            return True, 0
        result = await self.conn.execute(
            update(stock)
            .where(and_(stock.c.sku == sku, stock.c.warehouse == warehouse, stock.c.reserved <= on_hand))
            .values(on_hand=on_hand, version=stock.c.version + 1)
        )
        return result.rowcount == 1, current

    async def record_receipt(self, reference: str, sku: str, warehouse: str, quantity: int) -> bool:
        """False when this receipt was applied before (a retried delivery note)."""
        result = await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, receipts,
                {"reference": reference, "sku": sku, "warehouse": warehouse, "quantity": quantity,
                 "received_at": utcnow()},
            )
        )
        return result.rowcount == 1

    async def upsert_warehouse(self, values: dict) -> None:
        await self.conn.execute(
            upsert(self.dialect, warehouses, values, ["warehouse"], [k for k in values if k != "warehouse"])
        )

    async def drop_empty_reservations(self, order_id: str) -> None:
        await self.conn.execute(
            delete(reservations).where(and_(reservations.c.order_id == order_id, reservations.c.quantity == 0))
        )

    # --- reservation rows ------------------------------------------------------------
    async def _add_reservation(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        result = await self.conn.execute(
            update(reservations)
            .where(and_(reservations.c.order_id == order_id, reservations.c.sku == sku,
                        reservations.c.warehouse == warehouse))
            .values(quantity=reservations.c.quantity + quantity)
        )
        if result.rowcount == 0:
            await self.conn.execute(
                reservations.insert().values(order_id=order_id, sku=sku, warehouse=warehouse, quantity=quantity)
            )

    async def _take_reservation(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        result = await self.conn.execute(
            update(reservations)
            .where(and_(reservations.c.order_id == order_id, reservations.c.sku == sku,
                        reservations.c.warehouse == warehouse, reservations.c.quantity >= quantity))
            .values(quantity=reservations.c.quantity - quantity)
        )
        if result.rowcount != 1:
            raise RuntimeError(f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse}")
