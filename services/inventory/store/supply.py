"""Supply: the orders' backorders and each SKU's running total of them, the demand ahead of an
order in fill order (summed in SQL), products' supply attributes, and production runs."""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from orderdesk.db import UtcDateTime, upsert, utcnow
from services.inventory.domain import OrderState
from services.inventory.store.base import RepositoryBase
from services.inventory.store.tables import (
    backorders,
    inbound_receipts,
    order_states,
    production_runs,
    products,
    sku_versions,
)
from services.inventory.supply import INBOUND_PREFIX, Backorder, Inbound, Run

# Reserve's hot statement (see levels.py).
_ORDER_BACKORDERS = select(backorders.c.sku, backorders.c.quantity).where(
    backorders.c.order_id == bindparam("oid")
)
_DROP_BACKORDER = delete(backorders).where(
    backorders.c.order_id == bindparam("oid"), backorders.c.sku == bindparam("b_sku")
)
_CLEAR_BACKORDERS = delete(backorders).where(backorders.c.order_id == bindparam("oid"))
_ADD_BACKORDERED = (
    update(sku_versions)
    .where(sku_versions.c.sku == bindparam("b_sku"))
    .values(backordered=sku_versions.c.backordered + bindparam("b_delta"))
)
_BACKORDERS_FOR = (
    select(
        backorders.c.order_id,
        backorders.c.sku,
        backorders.c.quantity,
        order_states.c.priority,
        order_states.c.placed_at,
        order_states.c.updated_at,
        order_states.c.country,
    )
    .join(order_states, order_states.c.order_id == backorders.c.order_id)
    .where(
        backorders.c.sku.in_(bindparam("skus", expanding=True)),
        order_states.c.state != OrderState.RELEASED.value,
    )
)


# A backordered order's promise (`_promise`: each backordered SKU), templates too.
_LOCK_SKU = select(sku_versions.c.sku).where(sku_versions.c.sku == bindparam("b_sku")).with_for_update()
_BACKORDERED_TOTAL = select(sku_versions.c.backordered).where(sku_versions.c.sku == bindparam("b_sku"))
_PRODUCT = select(products.c.make_to_order, products.c.lead_time_days).where(
    products.c.sku == bindparam("b_sku")
)
_OPEN_RUNS = (
    select(production_runs)
    .where(production_runs.c.sku == bindparam("b_sku"), production_runs.c.status == "open")
    .order_by(production_runs.c.expected_date, production_runs.c.production_id)
)
_ADD_RUN = production_runs.insert().values(status="open")  # executed with the run's other columns
_GROW_RUN = (
    update(production_runs)
    .where(production_runs.c.production_id == bindparam("pid"), production_runs.c.status == "open")
    .values(quantity=production_runs.c.quantity + bindparam("more"))
)
_OPEN_INBOUND = (
    select(inbound_receipts)
    .where(inbound_receipts.c.sku == bindparam("b_sku"), inbound_receipts.c.status == "open")
    .order_by(inbound_receipts.c.expected_date, inbound_receipts.c.reference)
)
# backorder_demand: the order's place in fill order (priority, then time placed, then id), and the units
# owed to the SKU's backorders up to it and in all.
_FILL_PLACE = select(order_states.c.priority, order_states.c.placed_at, order_states.c.updated_at).where(
    order_states.c.order_id == bindparam("oid")
)
_MY_PRIORITY = bindparam("my_priority")
_MY_TIME = bindparam("my_time", type_=UtcDateTime)
_PLACED = func.coalesce(order_states.c.placed_at, order_states.c.updated_at, type_=UtcDateTime)
_AHEAD = or_(
    order_states.c.priority > _MY_PRIORITY,
    and_(
        order_states.c.priority == _MY_PRIORITY,
        or_(_PLACED < _MY_TIME, and_(_PLACED == _MY_TIME, order_states.c.order_id <= bindparam("oid"))),
    ),
)
_DEMAND = (
    select(
        func.coalesce(func.sum(case((_AHEAD, backorders.c.quantity), else_=0)), 0).label("through"),
        func.coalesce(func.sum(backorders.c.quantity), 0).label("total"),
    )
    .select_from(backorders.join(order_states, order_states.c.order_id == backorders.c.order_id))
    .where(backorders.c.sku == bindparam("b_sku"), order_states.c.state != OrderState.RELEASED.value)
)


@functools.cache
def _set_backorder(dialect: str):
    """INSERT ... ON CONFLICT (order_id, sku) DO UPDATE SET quantity: one template per backend."""
    statement = (pg_dialect if dialect == "postgresql" else sqlite_dialect).insert(backorders)
    return statement.on_conflict_do_update(
        index_elements=["order_id", "sku"], set_={"quantity": statement.excluded.quantity}
    )


class Supply(RepositoryBase):
    async def lock_sku(self, sku: str) -> None:
        """Serialises production planning for a SKU (its event-counter row; last in the lock order)."""
        deferred = self._deferred
        if deferred is not None and sku in deferred.planning:  # a batch locks it once
            return
        if not await self._batch_holds_counter(sku):
            await self._ensure_sku_row(sku)
            await self.conn.execute(_LOCK_SKU, {"b_sku": sku})
        if deferred is not None:
            deferred.planning.add(sku)

    # --- backorders ----------------------------------------------------------------------------------
    async def order_backorders(self, order_id: str) -> dict[str, int]:
        rows = await self.conn.execute(_ORDER_BACKORDERS, {"oid": order_id})
        return {r.sku: r.quantity for r in rows}

    async def set_backorder(self, order_id: str, sku: str, quantity: int) -> None:
        if quantity > 0:
            await self.conn.execute(
                _set_backorder(self.dialect), {"order_id": order_id, "sku": sku, "quantity": quantity}
            )
        else:
            await self.conn.execute(_DROP_BACKORDER, {"oid": order_id, "b_sku": sku})

    async def clear_backorders(self, order_id: str) -> dict[str, int]:
        """Deletes the order's backorders; returns what they were (for the SKUs' totals)."""
        cleared = await self.order_backorders(order_id)
        if cleared:
            await self.conn.execute(_CLEAR_BACKORDERS, {"oid": order_id})
        return cleared

    async def add_backordered(self, deltas: dict[str, int]) -> None:
        """Moves the SKUs' running totals, in SKU order (their rows come last in the lock order)."""
        deferred = self._deferred
        for sku in sorted(deltas):
            if deltas[sku]:
                await self._ensure_sku_row(sku)
                await self.conn.execute(_ADD_BACKORDERED, {"b_sku": sku, "b_delta": deltas[sku]})
                if deferred is not None and sku in deferred.backordered:
                    deferred.backordered[sku] += deltas[sku]

    async def backordered_total(self, sku: str) -> int:
        deferred = self._deferred
        if deferred is not None and sku in deferred.backordered:
            return deferred.backordered[sku]
        total = (await self.conn.execute(_BACKORDERED_TOTAL, {"b_sku": sku})).scalar_one_or_none() or 0
        if deferred is not None and sku in deferred.planning:  # locked: only the batch moves it now
            deferred.backordered[sku] = total
        return total

    async def backorders_for(self, skus: list[str]) -> list[Backorder]:
        """Open backorders of active orders for these SKUs (any order; the caller sorts them)."""
        if not skus:
            return []
        rows = await self.conn.execute(_BACKORDERS_FOR, {"skus": sorted(set(skus))})
        return [
            Backorder(r.order_id, r.sku, r.quantity, r.priority, r.placed_at or r.updated_at, r.country)
            for r in rows
        ]

    async def backorder_demand(self, sku: str, order_id: str) -> tuple[int, int]:
        """(units owed to this SKU's backorders up to and including `order_id`'s in fill order,
        units owed to all of them), summed in the database: no rows travel."""
        me = (await self.conn.execute(_FILL_PLACE, {"oid": order_id})).one()
        row = (
            await self.conn.execute(
                _DEMAND,
                {
                    "b_sku": sku,
                    "oid": order_id,
                    "my_priority": me.priority,
                    "my_time": me.placed_at or me.updated_at,
                },
            )
        ).one()
        return int(row.through), int(row.total)

    async def backordered_units(self, sku: str) -> int:
        rows = await self.conn.execute(
            select(backorders.c.quantity)
            .join(order_states, order_states.c.order_id == backorders.c.order_id)
            .where(backorders.c.sku == sku, order_states.c.state != OrderState.RELEASED.value)
        )
        return sum(rows.scalars())

    # --- products ------------------------------------------------------------------------------------
    async def product(self, sku: str) -> tuple[bool, int] | None:
        """(make to order, lead time in days), or None for a SKU inventory has no product record of."""
        deferred = self._deferred
        if deferred is not None and sku in deferred.products:
            return deferred.products[sku]
        row = (await self.conn.execute(_PRODUCT, {"b_sku": sku})).first()
        found = (row.make_to_order, row.lead_time_days) if row else None
        if deferred is not None:
            deferred.products[sku] = found
        return found

    async def upsert_product(self, sku: str, make_to_order: bool, lead_time_days: int) -> None:
        await self.conn.execute(
            upsert(
                self.dialect,
                products,
                {"sku": sku, "make_to_order": make_to_order, "lead_time_days": lead_time_days},
                ["sku"],
                ["make_to_order", "lead_time_days"],
            )
        )

    # --- production runs -------------------------------------------------------------------------------
    async def open_runs(self, sku: str) -> list[Run]:
        """The SKU's open runs by date, then id; in a batch that holds the SKU's planner lock, read once
        (only its planner changes them: `add_run`, `grow_run` keep the copy current)."""
        deferred = self._deferred
        if deferred is not None and sku in deferred.runs:
            return list(deferred.runs[sku])
        rows = await self.conn.execute(_OPEN_RUNS, {"b_sku": sku})
        runs = [_run(r) for r in rows]
        if deferred is not None and sku in deferred.planning:
            deferred.runs[sku] = list(runs)
        return runs

    async def add_run(self, run: Run) -> None:
        deferred = self._deferred
        if deferred is not None and run.sku in deferred.runs:
            deferred.runs[run.sku] = sorted(
                [*deferred.runs[run.sku], run], key=lambda r: (r.expected_date, r.production_id)
            )
        await self.conn.execute(
            _ADD_RUN,
            {
                "production_id": run.production_id,
                "sku": run.sku,
                "warehouse": run.warehouse,
                "quantity": run.quantity,
                "expected_date": run.expected_date.isoformat(),
                "created_at": utcnow(),
            },
        )

    async def grow_run(self, production_id: str, quantity: int) -> None:
        await self.conn.execute(_GROW_RUN, {"pid": production_id, "more": quantity})
        deferred = self._deferred
        for runs in deferred.runs.values() if deferred is not None else ():
            for n, r in enumerate(runs):
                if r.production_id == production_id:
                    runs[n] = Run(r.production_id, r.sku, r.warehouse, r.quantity + quantity, r.expected_date)

    async def move_run(self, production_id: str, expected_date: dt.date) -> bool:
        """Guarded by the status: False if the run was completed meanwhile."""
        result = await self.conn.execute(
            update(production_runs)
            .where(production_runs.c.production_id == production_id, production_runs.c.status == "open")
            .values(expected_date=expected_date.isoformat())
        )
        return result.rowcount == 1

    async def run(self, production_id: str) -> tuple[Run, str] | None:
        row = (
            await self.conn.execute(
                select(production_runs).where(production_runs.c.production_id == production_id)
            )
        ).first()
        return (_run(row), row.status) if row else None

    async def shrink_run(self, production_id: str, seen: int, made: int) -> bool:
        """A partial completion: `made` of the `seen` units are done. Guarded by the size read: False if the
        run grew or was completed meanwhile."""
        return await self._change_open_run(production_id, seen, quantity=production_runs.c.quantity - made)

    async def complete_run(self, production_id: str, quantity: int) -> bool:
        """Guarded by the quantity received: False if the run was completed or grew meanwhile."""
        return await self._change_open_run(production_id, quantity, status="completed", completed_at=utcnow())

    async def _change_open_run(self, production_id: str, seen: int, **values) -> bool:
        """Changes the run only while it is open and still of the size read (`seen`); False otherwise."""
        result = await self.conn.execute(
            update(production_runs)
            .where(
                production_runs.c.production_id == production_id,
                production_runs.c.status == "open",
                production_runs.c.quantity == seen,
            )
            .values(**values)
        )
        return result.rowcount == 1

    async def runs(self, sku: str = "", status: str = "", limit: int = 100) -> list[tuple[Run, str]]:
        query = select(production_runs).order_by(
            production_runs.c.expected_date, production_runs.c.production_id
        )
        if sku:
            query = query.where(production_runs.c.sku == sku)
        if status:
            query = query.where(production_runs.c.status == status)
        return [(_run(r), r.status) for r in await self.conn.execute(query.limit(limit))]

    # --- inbound receipts announced by suppliers ------------------------------------------------------
    async def open_inbound(self, sku: str) -> list[Run]:
        """The SKU's announced receipts not yet received, as supply (a Run named INB:<reference>); in a batch
        that holds the SKU's planner lock, read once (a Reserve never changes them)."""
        deferred = self._deferred
        if deferred is not None and sku in deferred.inbound:
            return list(deferred.inbound[sku])
        rows = await self.conn.execute(_OPEN_INBOUND, {"b_sku": sku})
        inbound = [
            Run(
                INBOUND_PREFIX + r.reference,
                r.sku,
                r.warehouse,
                r.quantity,
                dt.date.fromisoformat(r.expected_date),
            )
            for r in rows
        ]
        if deferred is not None and sku in deferred.planning:
            deferred.inbound[sku] = list(inbound)
        return inbound

    async def inbound(self, reference: str) -> Inbound | None:
        row = (
            await self.conn.execute(select(inbound_receipts).where(inbound_receipts.c.reference == reference))
        ).first()
        if row is None:
            return None
        return Inbound(
            row.reference,
            row.sku,
            row.warehouse,
            row.quantity,
            dt.date.fromisoformat(row.expected_date),
            row.status,
        )

    async def announce_inbound(self, inbound: Inbound) -> None:
        """Inserts the announcement, or moves the open one of that reference to its new date."""
        now = utcnow()
        await self.conn.execute(
            upsert(
                self.dialect,
                inbound_receipts,
                {
                    "reference": inbound.reference,
                    "sku": inbound.sku,
                    "warehouse": inbound.warehouse,
                    "quantity": inbound.quantity,
                    "expected_date": inbound.expected_date.isoformat(),
                    "status": "open",
                    "created_at": now,
                    "updated_at": now,
                },
                ["reference"],
                ["expected_date", "updated_at"],
            )
        )

    async def receive_inbound(self, reference: str, sku: str) -> bool:
        """The announced receipt arrived (a receipt of the same reference and SKU): no longer supply to come."""
        result = await self.conn.execute(
            update(inbound_receipts)
            .where(
                inbound_receipts.c.reference == reference,
                inbound_receipts.c.sku == sku,
                inbound_receipts.c.status == "open",
            )
            .values(status="received", updated_at=utcnow())
        )
        return result.rowcount == 1


def _run(row) -> Run:
    return Run(
        row.production_id, row.sku, row.warehouse, row.quantity, dt.date.fromisoformat(row.expected_date)
    )
