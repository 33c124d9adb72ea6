"""Orders and their reservations: the order's state row (created and locked first in every
transaction that changes the order), the reservation rows per (sku, warehouse), and the moves
that change a reservation together with its stock row (reserve, unreserve, consume).

A reservation row changes only while its order's row is locked, so nobody else writes it
meanwhile; its guards (`quantity >= :q`) refuse giving back or shipping more than it holds.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam, delete, select, union, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from orderdesk.db import RowsInsert, insert_ignoring_conflicts, utcnow
from orderdesk.errors import Conflict
from services.inventory.domain import OrderReservations, OrderState, StockBookError, may_ship
from services.inventory.store.base import AT, RESERVATION_OF
from services.inventory.store.levels import Deferred, StockLevels
from services.inventory.store.tables import backorders, order_states, reservations, stock

# Reserve's hot statements, built once (see levels.py).
_ORDER_STATE = (
    select(order_states.c.state, order_states.c.priority, order_states.c.country)
    .where(order_states.c.order_id == bindparam("oid"))
    .with_for_update()
)
_ORDER_HELD = select(
    reservations.c.sku, reservations.c.warehouse, reservations.c.quantity, reservations.c.shipped
).where(reservations.c.order_id == bindparam("oid"))


# A cancellation's and a shipment's too, and the order's state changes.
_SET_COUNTRY = update(order_states).where(order_states.c.order_id == bindparam("oid"))
_SAVE_ORDER_STATE = _SET_COUNTRY  # executed with the columns it sets (state, priority, updated_at)
_REACTIVATE = (
    update(order_states)
    .where(order_states.c.order_id == bindparam("oid"), order_states.c.state == OrderState.CONSUMED.value)
    .values(state=OrderState.ACTIVE.value)
)
_LOCK_ORDERS = (
    select(order_states.c.order_id)
    .where(order_states.c.order_id.in_(bindparam("oids", expanding=True)))
    .order_by(order_states.c.order_id)
    .with_for_update()
)
_LOCK_FREE_ORDERS = _LOCK_ORDERS.with_for_update(skip_locked=True)
_ORDER_SKUS = union(
    select(reservations.c.sku).where(
        reservations.c.order_id.in_(bindparam("oids", expanding=True)), reservations.c.quantity > 0
    ),
    select(backorders.c.sku).where(backorders.c.order_id.in_(bindparam("b_oids", expanding=True))),
)
_HELD_SKUS = select(reservations.c.sku).where(
    reservations.c.order_id == bindparam("oid"), reservations.c.quantity > 0
)
_HELD_WAREHOUSES = select(reservations.c.warehouse).where(
    reservations.c.order_id == bindparam("oid"), reservations.c.quantity > 0
)
_DROP_EMPTY = delete(reservations).where(
    reservations.c.order_id == bindparam("oid"), reservations.c.quantity == 0, reservations.c.shipped == 0
)
_UNHOLD = (
    update(reservations)
    .where(RESERVATION_OF, reservations.c.quantity >= bindparam("b_qty"))
    .values(quantity=reservations.c.quantity - bindparam("b_qty"))
)
_CONSUME_HELD = (
    update(reservations)
    .where(RESERVATION_OF, reservations.c.quantity >= bindparam("b_qty"))
    .values(
        quantity=reservations.c.quantity - bindparam("b_qty"),
        shipped=reservations.c.shipped + bindparam("b_qty"),
    )
)
_CONSUME_STOCK = (
    update(stock)
    .where(AT, *may_ship(stock.c.on_hand, stock.c.reserved, bindparam("b_qty")))
    .values(
        on_hand=stock.c.on_hand - bindparam("b_qty"),
        reserved=stock.c.reserved - bindparam("b_qty"),
        version=stock.c.version + 1,
    )
)


@functools.cache
def _new_order_states(dialect: str) -> RowsInsert:
    """New orders' state rows (active, nothing held yet) as tuples: the ids of those it made."""
    return RowsInsert(
        insert_ignoring_conflicts(dialect, order_states).returning(order_states.c.order_id),
        ("order_id", "priority", "country", "placed_at"),
        constants=("state", "updated_at"),
    )


@functools.cache
def _holds(dialect: str) -> RowsInsert:
    """Adds to orders' reservation rows, (order id, sku, warehouse, quantity) each, creating those absent
    (one statement; each row once in it)."""
    statement = (pg_dialect if dialect == "postgresql" else sqlite_dialect).insert(reservations)
    template = statement.on_conflict_do_update(
        index_elements=["order_id", "sku", "warehouse"],
        set_={"quantity": reservations.c.quantity + statement.excluded.quantity},
    )
    return RowsInsert(template, ("order_id", "sku", "warehouse", "quantity"), constants=("shipped",))


class Reservations(StockLevels):
    # --- one order, locked for the transaction ---------------------------------------------------
    async def lock_order(
        self, order_id: str, priority: int = 0, *, country: str = "", placed_at: dt.datetime | None = None
    ) -> OrderReservations:
        """Creates the order's state row if absent and locks it (PostgreSQL: FOR UPDATE)."""
        deferred = self._deferred
        if deferred is not None and order_id in deferred.new_orders:  # made by `create_orders` just now
            deferred.new_orders.discard(order_id)
            self.created_order = True
            return OrderReservations(order_id, OrderState.ACTIVE, {}, {}, priority=priority)
        now = utcnow()
        created = await _new_order_states(self.dialect).returned(
            self.conn,
            [(order_id, priority, country[:2], placed_at or now)],
            state=OrderState.ACTIVE.value,
            updated_at=now,
        )
        self.created_order = bool(created)  # a first Reserve: it has no reservations or backorders yet
        if self.created_order:  # the new row is ours (locked by the insert) and holds what we just wrote
            return OrderReservations(order_id, OrderState.ACTIVE, {}, {}, priority=priority)
        row = (await self.conn.execute(_ORDER_STATE, {"oid": order_id})).one()
        if country and row.country != country[:2]:  # the ship-to changed: nearest warehouses change too
            await self.conn.execute(_SET_COUNTRY, {"oid": order_id, "country": country[:2]})
        rows = await self.conn.execute(_ORDER_HELD, {"oid": order_id})
        held, shipped = {}, {}
        for r in rows:
            if r.quantity:
                held[(r.sku, r.warehouse)] = r.quantity
            if r.shipped:
                shipped[(r.sku, r.warehouse)] = r.shipped
        return OrderReservations(order_id, OrderState(row.state), held, shipped, priority=row.priority)

    async def create_orders(self, orders: list[tuple[str, int, str, dt.datetime | None]]) -> list[str]:
        """A batch's (`deferring`) order rows, (order id, priority, country, placed at) each, made in one
        multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING: `lock_order` then knows the new ones
        without a statement (and reads the others as usual). A locked batch first locks the rows that
        exist, then creates the others, each in order-id order; one created meanwhile by another
        transaction is a Conflict (its lock would come out of order). Returns the existing orders' ids."""
        deferred = self._deferred
        if deferred is None or not orders:
            return []
        existing: list[str] = []
        if deferred.locked:
            existing = list(
                (await self.conn.execute(_LOCK_ORDERS, {"oids": sorted({o[0] for o in orders})})).scalars()
            )
        now = utcnow()
        rows = [
            (order_id, priority, country[:2], placed_at or now)
            for order_id, priority, country, placed_at in sorted(orders, key=lambda o: o[0])
            if order_id not in existing
        ]
        if rows:
            found = await _new_order_states(self.dialect).returned(
                self.conn, rows, state=OrderState.ACTIVE.value, updated_at=now
            )
            made = {order_id for (order_id,) in found}
            if deferred.locked and len(made) != len(rows):
                raise Conflict("an order of a batch of reserves was created meanwhile; retry")
            deferred.new_orders.update(made)
        return existing

    async def order_skus(self, order_ids: list[str]) -> set[str]:
        """The SKUs these orders hold or are owed: what a locked batch locks besides those it is asked for."""
        if not order_ids:
            return set()
        rows = await self.conn.execute(_ORDER_SKUS, {"oids": order_ids, "b_oids": order_ids})
        return set(rows.scalars())

    async def lock_orders(self, order_ids: list[str]) -> None:
        """Locks existing order rows in order-id order (the store's lock order, before any stock row)."""
        if order_ids:
            await self.conn.execute(_LOCK_ORDERS, {"oids": sorted(set(order_ids))})

    async def lock_orders_unless(
        self, order_ids: list[str], more_wait: Callable[[], Awaitable[bool]]
    ) -> bool:
        """Locks the order rows (`lock_orders`) in a savepoint, then asks `more_wait()`: if more orders need
        locking, rolls the savepoint back, which gives these locks up again (to be taken with the others in
        order-id order), and returns False. SQLite's transactions are serial: no savepoint, nothing to ask."""
        if self.dialect == "sqlite":
            await self.lock_orders(order_ids)
            return True
        savepoint = await self.conn.begin_nested()
        await self.lock_orders(order_ids)
        if await more_wait():
            await savepoint.rollback()
            return False
        await savepoint.commit()
        return True

    async def lock_free_orders(self, order_ids: list[str]) -> set[str]:
        """Locks those of these order rows no other transaction holds, never waiting for one (SKIP LOCKED):
        a lock taken after stock rows, out of the store's lock order, that cannot deadlock. Returns the
        orders it locked (on SQLite, whose transactions are serial: all)."""
        if not order_ids:
            return set()
        return set((await self.conn.execute(_LOCK_FREE_ORDERS, {"oids": sorted(set(order_ids))})).scalars())

    async def save_order_state(self, order: OrderReservations) -> None:
        await self.conn.execute(
            _SAVE_ORDER_STATE,
            {
                "oid": order.order_id,
                "state": order.state.value,
                "priority": order.priority,
                "updated_at": utcnow(),
            },
        )

    async def reactivate(self, order_id: str) -> None:
        """A fill reserved for an order whose earlier units had all shipped: it holds stock again."""
        await self.conn.execute(_REACTIVATE, {"oid": order_id, "updated_at": utcnow()})

    # --- what the order holds --------------------------------------------------------------------
    async def held_skus(self, order_id: str) -> list[str]:
        rows = await self.conn.execute(_HELD_SKUS, {"oid": order_id})
        return sorted(set(rows.scalars()))

    async def held_warehouses(self, order_id: str) -> set[str]:
        rows = await self.conn.execute(_HELD_WAREHOUSES, {"oid": order_id})
        return set(rows.scalars())

    async def drop_empty_reservations(self, order_id: str) -> None:
        await self.conn.execute(_DROP_EMPTY, {"oid": order_id})

    # The reservation row alone, for Reserve, which touches the stock rows last (take_stock, return_stock).
    async def hold(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        """Adds to the order's reservation row, creating it if absent (one statement; in a batch, at
        its flush)."""
        deferred = self._deferred
        if deferred is not None:
            key = (order_id, sku, warehouse)
            deferred.holds[key] = deferred.holds.get(key, 0) + quantity
            return
        await _holds(self.dialect).execute(self.conn, [(order_id, sku, warehouse, quantity)], shipped=0)

    async def _flush_holds(self, deferred: Deferred) -> None:
        """A batch's additions to reservation rows in one multi-row upsert (each row once in it)."""
        await _holds(self.dialect).execute(
            self.conn, [(*key, qty) for key, qty in deferred.holds.items()], shipped=0
        )

    async def unhold(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        taken = await self.conn.execute(
            _UNHOLD, {"b_order": order_id, "b_sku": sku, "b_wh": warehouse, "b_qty": quantity}
        )
        if taken.rowcount != 1:
            raise StockBookError(f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse}")

    # --- a reservation and its stock row together --------------------------------------------------
    async def reserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        # The stock rows are locked and the plan came from them, so only a concurrent writer that
        # bypassed the lock is refused by take_stock (Conflict: nothing was oversold, retry).
        await self.take_stock(sku, warehouse, quantity)
        await self.hold(order_id, sku, warehouse, quantity)

    async def unreserve(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        await self.unhold(order_id, sku, warehouse, quantity)
        await self.return_stock(sku, warehouse, quantity)

    async def consume(self, order_id: str, sku: str, warehouse: str, quantity: int) -> None:
        """Shipped units leave the books: the order's reservation, reserved and on hand all drop."""
        moved = {"b_order": order_id, "b_sku": sku, "b_wh": warehouse, "b_qty": quantity}
        taken = await self.conn.execute(_CONSUME_HELD, moved)
        if taken.rowcount != 1:
            raise StockBookError(
                f"order {order_id} holds fewer than {quantity} of {sku} at {warehouse} to ship"
            )
        result = await self.conn.execute(_CONSUME_STOCK, moved)
        if result.rowcount != 1:
            raise StockBookError(f"{sku} at {warehouse} has fewer than {quantity} reserved to ship")
