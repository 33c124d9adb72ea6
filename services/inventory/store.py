"""Inventory's tables and guarded stock operations (SQLAlchemy Core).

Every change to a stock row is a conditional UPDATE whose WHERE clause is the rule
(enough available, enough reserved), and its rowcount says whether the rule held;
CHECK constraints repeat the invariants (reserved >= 0, on_hand >= reserved).

Lock order, the same in every transaction so PostgreSQL never deadlocks:
    order_states rows (by order id) -> stock rows by (sku, warehouse) -> sku_versions rows by sku
    -> production_runs row.
Reserve plans from unlocked levels and updates its stock rows last (a hot row is locked only
from its guarded update to the commit); a guard that refuses is retried, the last time with
the levels locked first (FOR UPDATE), so it always goes through.
SQLite runs each service on one connection, so its transactions are serial anyway.
"""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from orderdesk.db import UtcDateTime, insert_ignoring_conflicts, upsert, utcnow
from orderdesk.errors import Conflict
from services.inventory.domain import OrderReservations, OrderState, StockBookError, StockLevel
from services.inventory.supply import Backorder, Run

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
    # Units owed to the SKU's open backorders, kept as a running total (migration 0003).
    Column("backordered", Integer, nullable=False),
)

# One row per order inventory has heard of; locking it serialises the order's changes.
order_states = Table(
    "order_states", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),  # active | released | consumed
    Column("priority", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("country", String(2), nullable=False),  # ship-to, for the nearest warehouse (0002)
    Column("placed_at", UtcDateTime, nullable=True),  # first come within a priority (0002)
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


# Supply (migration 0002). Products: the supply attributes of the catalogue (intake owns the rest).
products = Table(
    "products", metadata,
    Column("sku", String(64), primary_key=True),
    Column("make_to_order", Boolean, nullable=False),
    Column("lead_time_days", Integer, nullable=False),
)

# What an active order still misses of a SKU after its last Reserve (or fill).
backorders = Table(
    "backorders", metadata,
    Column("order_id", String(40), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="ck_backorder_positive"),
)

production_runs = Table(
    "production_runs", metadata,
    Column("production_id", String(40), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("expected_date", String(10), nullable=False),  # ISO date
    Column("status", String(16), nullable=False),          # open | completed
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    CheckConstraint("quantity > 0", name="ck_production_positive"),
)


# Reserve's hot statements, built once (SQLAlchemy then compiles each once and reuses it): building
# a statement per call cost more than executing it when the allocator reserves a backlog.
_AVAILABLE = (select(stock.c.sku, stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
              .where(stock.c.sku.in_(bindparam("skus", expanding=True))).order_by(stock.c.sku, stock.c.warehouse))
_AVAILABLE_LOCKED = _AVAILABLE.with_for_update()
_ORDER_STATE = (select(order_states.c.state, order_states.c.priority, order_states.c.country)
                .where(order_states.c.order_id == bindparam("oid")).with_for_update())
_ORDER_HELD = (select(reservations.c.sku, reservations.c.warehouse, reservations.c.quantity, reservations.c.shipped)
               .where(reservations.c.order_id == bindparam("oid")))
_ORDER_BACKORDERS = select(backorders.c.sku, backorders.c.quantity).where(backorders.c.order_id == bindparam("oid"))
_TAKE_STOCK = (update(stock)
               .where(stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh"),
                      stock.c.on_hand - stock.c.reserved >= bindparam("b_qty"))
               .values(reserved=stock.c.reserved + bindparam("b_qty"), version=stock.c.version + 1))


@functools.cache
def _new_order_state(dialect: str):
    return insert_ignoring_conflicts(dialect, order_states)


@functools.cache
def _hold(dialect: str):
    """Adds to the order's reservation row, creating it if absent (one statement)."""
    statement = (pg_dialect if dialect == "postgresql" else sqlite_dialect).insert(reservations).values(
        order_id=bindparam("b_order"), sku=bindparam("b_sku"), warehouse=bindparam("b_wh"),
        quantity=bindparam("b_qty"), shipped=0)
    return statement.on_conflict_do_update(
        index_elements=["order_id", "sku", "warehouse"],
        set_={"quantity": reservations.c.quantity + statement.excluded.quantity},
    )


def _at(sku: str, warehouse: str):
    return and_(stock.c.sku == sku, stock.c.warehouse == warehouse)


def _reservation(order_id: str, sku: str, warehouse: str):
    return and_(reservations.c.order_id == order_id, reservations.c.sku == sku, reservations.c.warehouse == warehouse)


class StockRepository:
    def __init__(self, conn, dialect: str):
        self.conn = conn
        self.dialect = dialect
        self.created_order = False

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

    async def available(self, skus: list[str], *, lock: bool) -> dict[str, dict[str, int]]:
        """Available per SKU and warehouse, in one query; `lock`: FOR UPDATE in (sku, warehouse) order."""
        result: dict[str, dict[str, int]] = {sku: {} for sku in skus}
        for r in await self.conn.execute(_AVAILABLE_LOCKED if lock else _AVAILABLE, {"skus": list(skus)}):
            result[r.sku][r.warehouse] = r.on_hand - r.reserved
        return result

    async def warehouse_codes(self) -> set[str]:
        return set((await self.conn.execute(select(warehouses.c.warehouse))).scalars())

    # --- one order, locked for the transaction ---------------------------------------------------
    async def lock_order(self, order_id: str, priority: int = 0, *, country: str = "",
                         placed_at: dt.datetime | None = None) -> OrderReservations:
        """Creates the order's state row if absent and locks it (PostgreSQL: FOR UPDATE)."""
        now = utcnow()
        created = await self.conn.execute(
            _new_order_state(self.dialect),
            {"order_id": order_id, "state": OrderState.ACTIVE.value, "priority": priority,
             "updated_at": now, "country": country[:2], "placed_at": placed_at or now},
        )
        self.created_order = created.rowcount == 1  # a first Reserve: it has no reservations or backorders yet
        if self.created_order:  # the new row is ours (locked by the insert) and holds what we just wrote
            return OrderReservations(order_id, OrderState.ACTIVE, {}, {}, priority=priority)
        row = (await self.conn.execute(_ORDER_STATE, {"oid": order_id})).one()
        if country and row.country != country[:2]:  # the ship-to changed: nearest warehouses change too
            await self.conn.execute(
                update(order_states).where(order_states.c.order_id == order_id).values(country=country[:2])
            )
        rows = await self.conn.execute(_ORDER_HELD, {"oid": order_id})
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

    # The two halves of reserve/unreserve, for Reserve, which touches the stock rows last.
    async def hold(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        """Adds to the order's reservation row, creating it if absent (one statement)."""
        await self.conn.execute(_hold(self.dialect), {"b_order": order_id, "b_sku": sku, "b_wh": warehouse,
                                                      "b_qty": quantity})

    async def unhold(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        taken = await self.conn.execute(
            update(reservations)
            .where(_reservation(order_id, sku, warehouse), reservations.c.quantity >= quantity)
            .values(quantity=reservations.c.quantity - quantity)
        )
        if taken.rowcount != 1:
            raise StockBookError(f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse}")

    async def take_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        """Guarded: refused (Conflict, the caller retries) unless `quantity` is still available."""
        result = await self.conn.execute(_TAKE_STOCK, {"b_sku": sku, "b_wh": warehouse, "b_qty": quantity})
        if result.rowcount != 1:
            raise Conflict(f"{sku} at {warehouse} no longer has {quantity} available; retry")

    async def return_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        result = await self.conn.execute(
            update(stock)
            .where(_at(sku, warehouse), stock.c.reserved >= quantity)
            .values(reserved=stock.c.reserved - quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise StockBookError(f"{sku} at {warehouse} has fewer than {quantity} reserved to release")

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
        await self.conn.execute(insert_ignoring_conflicts(self.dialect, sku_versions, {"sku": sku, "version": 0, "backordered": 0}))
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

    # --- supply: locks, backorders, products, production runs --------------------------------------
    async def lock_orders(self, order_ids: list[str]) -> None:
        """Locks existing order rows in order-id order (the store's lock order, before any stock row)."""
        if order_ids:
            await self.conn.execute(
                select(order_states.c.order_id).where(order_states.c.order_id.in_(sorted(set(order_ids))))
                .order_by(order_states.c.order_id).with_for_update()
            )

    async def lock_sku(self, sku: str) -> None:
        """Serialises production planning for a SKU (its event-counter row; last in the lock order)."""
        await self.conn.execute(insert_ignoring_conflicts(self.dialect, sku_versions, {"sku": sku, "version": 0, "backordered": 0}))
        await self.conn.execute(select(sku_versions.c.sku).where(sku_versions.c.sku == sku).with_for_update())

    async def order_backorders(self, order_id: str) -> dict[str, int]:
        rows = await self.conn.execute(_ORDER_BACKORDERS, {"oid": order_id})
        return {r.sku: r.quantity for r in rows}

    async def set_backorder(self, order_id: str, sku: str, quantity: int) -> None:
        if quantity > 0:
            await self.conn.execute(
                upsert(self.dialect, backorders, {"order_id": order_id, "sku": sku, "quantity": quantity},
                       ["order_id", "sku"], ["quantity"])
            )
        else:
            await self.conn.execute(
                delete(backorders).where(backorders.c.order_id == order_id, backorders.c.sku == sku)
            )

    async def clear_backorders(self, order_id: str) -> dict[str, int]:
        """Deletes the order's backorders; returns what they were (for the SKUs' totals)."""
        cleared = await self.order_backorders(order_id)
        if cleared:
            await self.conn.execute(delete(backorders).where(backorders.c.order_id == order_id))
        return cleared

    async def add_backordered(self, deltas: dict[str, int]) -> None:
        """Moves the SKUs' running totals, in SKU order (their rows come last in the lock order)."""
        for sku in sorted(deltas):
            if deltas[sku]:
                await self.conn.execute(insert_ignoring_conflicts(
                    self.dialect, sku_versions, {"sku": sku, "version": 0, "backordered": 0}))
                await self.conn.execute(
                    update(sku_versions).where(sku_versions.c.sku == sku)
                    .values(backordered=sku_versions.c.backordered + deltas[sku]))

    async def backordered_total(self, sku: str) -> int:
        return (await self.conn.execute(
            select(sku_versions.c.backordered).where(sku_versions.c.sku == sku))).scalar_one_or_none() or 0

    async def backorders_for(self, skus: list[str]) -> list[Backorder]:
        """Open backorders of active orders for these SKUs (any order; the caller sorts them)."""
        if not skus:
            return []
        rows = await self.conn.execute(
            select(backorders.c.order_id, backorders.c.sku, backorders.c.quantity, order_states.c.priority,
                   order_states.c.placed_at, order_states.c.updated_at, order_states.c.country)
            .join(order_states, order_states.c.order_id == backorders.c.order_id)
            .where(backorders.c.sku.in_(sorted(set(skus))), order_states.c.state != OrderState.RELEASED.value)
        )
        return [Backorder(r.order_id, r.sku, r.quantity, r.priority, r.placed_at or r.updated_at, r.country)
                for r in rows]

    async def backorder_demand(self, sku: str, order_id: str) -> tuple[int, int]:
        """(units owed to this SKU's backorders up to and including `order_id`'s in fill order,
        units owed to all of them), summed in the database: no rows travel."""
        me = (await self.conn.execute(
            select(order_states.c.priority, order_states.c.placed_at, order_states.c.updated_at)
            .where(order_states.c.order_id == order_id)
        )).one()
        my_time = me.placed_at or me.updated_at
        placed = func.coalesce(order_states.c.placed_at, order_states.c.updated_at, type_=UtcDateTime)
        ahead = or_(
            order_states.c.priority > me.priority,
            and_(order_states.c.priority == me.priority,
                 or_(placed < my_time, and_(placed == my_time, order_states.c.order_id <= order_id))),
        )
        row = (await self.conn.execute(
            select(func.coalesce(func.sum(case((ahead, backorders.c.quantity), else_=0)), 0).label("through"),
                   func.coalesce(func.sum(backorders.c.quantity), 0).label("total"))
            .select_from(backorders.join(order_states, order_states.c.order_id == backorders.c.order_id))
            .where(backorders.c.sku == sku, order_states.c.state != OrderState.RELEASED.value)
        )).one()
        return int(row.through), int(row.total)

    async def backordered_units(self, sku: str) -> int:
        rows = await self.conn.execute(
            select(backorders.c.quantity)
            .join(order_states, order_states.c.order_id == backorders.c.order_id)
            .where(backorders.c.sku == sku, order_states.c.state != OrderState.RELEASED.value)
        )
        return sum(rows.scalars())

    async def held_skus(self, order_id: str) -> list[str]:
        rows = await self.conn.execute(
            select(reservations.c.sku).where(reservations.c.order_id == order_id, reservations.c.quantity > 0)
        )
        return sorted(set(rows.scalars()))

    async def held_warehouses(self, order_id: str) -> set[str]:
        rows = await self.conn.execute(
            select(reservations.c.warehouse).where(reservations.c.order_id == order_id, reservations.c.quantity > 0)
        )
        return set(rows.scalars())

    async def reactivate(self, order_id: str) -> None:
        """A fill reserved for an order whose earlier units had all shipped: it holds stock again."""
        await self.conn.execute(
            update(order_states)
            .where(order_states.c.order_id == order_id, order_states.c.state == OrderState.CONSUMED.value)
            .values(state=OrderState.ACTIVE.value, updated_at=utcnow())
        )

    async def product(self, sku: str) -> tuple[bool, int] | None:
        row = (await self.conn.execute(
            select(products.c.make_to_order, products.c.lead_time_days).where(products.c.sku == sku)
        )).first()
        return (row.make_to_order, row.lead_time_days) if row else None

    async def upsert_product(self, sku: str, make_to_order: bool, lead_time_days: int) -> None:
        await self.conn.execute(upsert(
            self.dialect, products, {"sku": sku, "make_to_order": make_to_order, "lead_time_days": lead_time_days},
            ["sku"], ["make_to_order", "lead_time_days"],
        ))

    async def warehouse_rows(self) -> list:
        return list(await self.conn.execute(
            select(warehouses.c.warehouse, warehouses.c.country, warehouses.c.transit_days_domestic,
                   warehouses.c.transit_days_international).order_by(warehouses.c.warehouse)
        ))

    async def open_runs(self, sku: str) -> list[Run]:
        rows = await self.conn.execute(
            select(production_runs).where(production_runs.c.sku == sku, production_runs.c.status == "open")
            .order_by(production_runs.c.expected_date, production_runs.c.production_id)
        )
        return [_run(r) for r in rows]

    async def add_run(self, run: Run) -> None:
        await self.conn.execute(production_runs.insert().values(
            production_id=run.production_id, sku=run.sku, warehouse=run.warehouse, quantity=run.quantity,
            expected_date=run.expected_date.isoformat(), status="open", created_at=utcnow(),
        ))

    async def grow_run(self, production_id: str, quantity: int) -> None:
        await self.conn.execute(
            update(production_runs)
            .where(production_runs.c.production_id == production_id, production_runs.c.status == "open")
            .values(quantity=production_runs.c.quantity + quantity)
        )

    async def run(self, production_id: str) -> tuple[Run, str] | None:
        row = (await self.conn.execute(
            select(production_runs).where(production_runs.c.production_id == production_id)
        )).first()
        return (_run(row), row.status) if row else None

    async def complete_run(self, production_id: str, quantity: int) -> bool:
        """Guarded by the quantity received: False if the run was completed or grew meanwhile."""
        result = await self.conn.execute(
            update(production_runs)
            .where(production_runs.c.production_id == production_id, production_runs.c.status == "open",
                   production_runs.c.quantity == quantity)
            .values(status="completed", completed_at=utcnow())
        )
        return result.rowcount == 1

    async def runs(self, sku: str = "", status: str = "", limit: int = 100) -> list[tuple[Run, str]]:
        query = select(production_runs).order_by(production_runs.c.expected_date, production_runs.c.production_id)
        if sku:
            query = query.where(production_runs.c.sku == sku)
        if status:
            query = query.where(production_runs.c.status == status)
        return [(_run(r), r.status) for r in await self.conn.execute(query.limit(limit))]


def _run(row) -> Run:
    return Run(row.production_id, row.sku, row.warehouse, row.quantity, dt.date.fromisoformat(row.expected_date))
