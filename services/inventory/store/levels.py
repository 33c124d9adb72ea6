"""Stock levels: reading the rows of a SKU, the guarded changes to one row (reserve, release,
receive, count), the receipts book that applies each receipt once, and the SKUs' event versions.

Every change to a stock row is a conditional UPDATE whose WHERE clause is the domain's rule
(`may_reserve`, `may_release`, `may_count`, given the columns), and its rowcount says whether
the rule held.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from sqlalchemy import ARRAY, Integer, String, bindparam, func, select, update

from orderdesk.db import insert_ignoring_conflicts, utcnow
from orderdesk.errors import Conflict
from services.inventory.domain import (
    RecordedReceipt,
    StockBookError,
    StockLevel,
    may_count,
    may_release,
    may_reserve,
)
from services.inventory.store.base import AT, RepositoryBase, at
from services.inventory.store.tables import receipts, sku_versions, stock
from services.inventory.supply import Run

# Reserve's hot statements, built once (SQLAlchemy then compiles each once and reuses it): building
# a statement per call cost more than executing it when the allocator reserves a backlog.
_AVAILABLE = (
    select(stock.c.sku, stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
    .where(stock.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(stock.c.sku, stock.c.warehouse)
)
_AVAILABLE_LOCKED = _AVAILABLE.with_for_update()
_TAKE_STOCK = (
    update(stock)
    .where(
        stock.c.sku == bindparam("b_sku"),
        stock.c.warehouse == bindparam("b_wh"),
        *may_reserve(stock.c.on_hand, stock.c.reserved, bindparam("b_qty")),
    )
    .values(reserved=stock.c.reserved + bindparam("b_qty"), version=stock.c.version + 1)
)
# A cancellation's and a shipment's statements, built once too.
_LEVELS = (
    select(stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
    .where(stock.c.sku == bindparam("b_sku"))
    .order_by(stock.c.warehouse)
)
_LOCK_LEVELS = _LEVELS.with_for_update()
_RETURN_STOCK = (
    update(stock)
    .where(AT, *may_release(stock.c.on_hand, stock.c.reserved, bindparam("b_qty")))
    .values(reserved=stock.c.reserved - bindparam("b_qty"), version=stock.c.version + 1)
)
# A batch's stock changes on PostgreSQL, whose driver counts no rows of a statement run with many: one
# guarded UPDATE ... FROM unnest(...) for all rows, which returns the rows it changed (so each is checked).
_MOVES = (
    func.unnest(
        bindparam("m_skus", type_=ARRAY(String)),
        bindparam("m_whs", type_=ARRAY(String)),
        bindparam("m_qtys", type_=ARRAY(Integer)),
    )
    .table_valued("sku", "wh", "qty")
    .render_derived(name="moves")
)
_MOVE_AT = (stock.c.sku == _MOVES.c.sku, stock.c.warehouse == _MOVES.c.wh)
_TAKE_STOCK_ALL = (
    update(stock)
    .where(*_MOVE_AT, *may_reserve(stock.c.on_hand, stock.c.reserved, _MOVES.c.qty))
    .values(reserved=stock.c.reserved + _MOVES.c.qty, version=stock.c.version + 1)
    .returning(stock.c.sku)
)
_RETURN_STOCK_ALL = (
    update(stock)
    .where(*_MOVE_AT, *may_release(stock.c.on_hand, stock.c.reserved, _MOVES.c.qty))
    .values(reserved=stock.c.reserved - _MOVES.c.qty, version=stock.c.version + 1)
    .returning(stock.c.sku)
)


@functools.cache
def _recent_receipts(limit: int):
    """GetStock's receipts (read for each stocked SKU of an order with a delivery date), per limit."""
    return (
        select(receipts)
        .where(receipts.c.sku == bindparam("b_sku"))
        .order_by(receipts.c.received_at.desc(), receipts.c.reference.desc())
        .limit(limit)
    )


@dataclass
class Deferred:
    """A batch of Reserves in one transaction (StockLevels.deferring): the levels read once and kept current
    in memory, the reservation rows' additions and each stock row's net change, written at the end with one
    statement each (`flush_deferred`). What it read stays true until it writes: on SQLite transactions are
    serial; on PostgreSQL (`locked`) the batch takes every lock up front in the store's lock order: its
    orders' rows, then its SKUs' stock rows (`read_batch`), then, at the first need, its SKUs' counters."""

    locked: bool = False
    available: dict[str, dict[str, int]] = field(default_factory=dict)  # sku -> warehouse -> available
    holds: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (order, sku, warehouse) -> units
    stock: dict[tuple[str, str], int] = field(default_factory=dict)  # (sku, warehouse) -> reserved change
    new_orders: set[str] = field(default_factory=set)  # order rows the batch created (lock_order)
    skus: list[str] = field(default_factory=list)  # what `read_batch` read (and locked)
    counters: set[str] | None = None  # the SKUs whose counter rows a locked batch holds, once it needed one
    counted: set[str] = field(default_factory=set)  # SKUs whose counter row the batch knows exists
    # What the batch's backorders are promised from (store/supply.py), read once per SKU and kept current as
    # its orders back-order and plan production: SKUs it holds the planner's lock of, their open runs and
    # announced receipts, product records and backordered totals.
    planning: set[str] = field(default_factory=set)
    runs: dict[str, list[Run]] = field(default_factory=dict)
    inbound: dict[str, list[Run]] = field(default_factory=dict)
    products: dict[str, tuple[bool, int] | None] = field(default_factory=dict)
    backordered: dict[str, int] = field(default_factory=dict)


class StockLevels(RepositoryBase):
    # --- a batch of Reserves (ReserveMany) -------------------------------------------------------
    def deferring(self, *, locked: bool = False) -> Deferred:
        """From now on `available`, `take_stock`, `return_stock` and `hold` work on a `Deferred` batch
        (read once, changed in memory); `flush_deferred` writes it. The guarded updates still run at the
        flush, with the summed change of each stock row: a refusal raises as the single one would.
        `locked` (PostgreSQL, where other transactions run alongside): the batch locks what it reads."""
        self._deferred = Deferred(locked=locked)
        return self._deferred

    async def read_batch(self, skus: list[str]) -> None:
        """The batch's levels, read once before any order is planned; a locked batch locks their stock rows
        now (FOR UPDATE, in (sku, warehouse) order) and may later lock only these SKUs' counters."""
        deferred = self._deferred
        assert deferred is not None, "read_batch belongs to a batch (deferring)"
        deferred.skus = sorted(set(skus))
        deferred.available.update(await self._read_available(deferred.skus, lock=deferred.locked))

    async def flush_deferred(self) -> None:
        """The batch's reservation rows in one multi-row statement, then its stock rows' changes (in
        (sku, warehouse) order) in one guarded UPDATE for the takes and one for the returns, each row
        checked by the summed rowcount (SQLite reports it for a statement run with many rows)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None:
            return
        await self._flush_holds(deferred)
        moves = sorted((key, delta) for key, delta in deferred.stock.items() if delta)
        takes = [{"b_sku": sku, "b_wh": wh, "b_qty": delta} for (sku, wh), delta in moves if delta > 0]
        returns = [{"b_sku": sku, "b_wh": wh, "b_qty": -delta} for (sku, wh), delta in moves if delta < 0]
        if takes and await self._move_stock(_TAKE_STOCK, _TAKE_STOCK_ALL, takes) != len(takes):
            raise Conflict("a stock row no longer had what a batch of reserves planned; retry")
        if returns and await self._move_stock(_RETURN_STOCK, _RETURN_STOCK_ALL, returns) != len(returns):
            raise StockBookError("a stock row had fewer units reserved than a batch released")

    async def _move_stock(self, one_row, all_rows, moves: list[dict]) -> int:
        """Guarded changes to many stock rows in one statement; returns how many rows the guards let through."""
        if self.conn.dialect.supports_sane_multi_rowcount:  # SQLite: one statement run with many rows
            return (await self.conn.execute(one_row, moves)).rowcount
        changed = await self.conn.execute(
            all_rows,
            {
                "m_skus": [m["b_sku"] for m in moves],
                "m_whs": [m["b_wh"] for m in moves],
                "m_qtys": [m["b_qty"] for m in moves],
            },
        )
        return len(changed.all())

    async def _flush_holds(self, deferred: Deferred) -> None:
        """The batch's reservation rows (Reservations writes them)."""

    # --- reads -------------------------------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        rows = await self.conn.execute(_LEVELS, {"b_sku": sku})
        return [StockLevel(r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def level(self, sku: str, warehouse: str) -> StockLevel:
        row = (
            await self.conn.execute(select(stock.c.on_hand, stock.c.reserved).where(at(sku, warehouse)))
        ).one()
        return StockLevel(warehouse, row.on_hand, row.reserved)

    async def lock_levels(self, sku: str) -> list[StockLevel]:
        """The SKU's stock rows, locked in warehouse order until the transaction ends (PostgreSQL),
        so a plan made from these numbers still holds when its guarded updates run."""
        rows = await self.conn.execute(_LOCK_LEVELS, {"b_sku": sku})
        return [StockLevel(r.warehouse, r.on_hand, r.reserved) for r in rows]

    async def available(self, skus: list[str], *, lock: bool) -> dict[str, dict[str, int]]:
        """Available per SKU and warehouse, in one query; `lock`: FOR UPDATE in (sku, warehouse) order."""
        deferred = self._deferred
        if deferred is not None:  # a batch: read once, then as the batch left them so far
            unread = [sku for sku in skus if sku not in deferred.available]
            if unread and deferred.locked:  # a lock taken now would be out of the store's lock order
                raise Conflict(f"a batch of reserves needs SKUs it did not lock first ({', '.join(unread)})")
            if unread:
                deferred.available.update(await self._read_available(unread, lock=lock))
            return {sku: dict(deferred.available[sku]) for sku in skus}
        return await self._read_available(skus, lock=lock)

    async def _read_available(self, skus: list[str], *, lock: bool) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {sku: {} for sku in skus}
        for r in await self.conn.execute(_AVAILABLE_LOCKED if lock else _AVAILABLE, {"skus": list(skus)}):
            result[r.sku][r.warehouse] = r.on_hand - r.reserved
        return result

    # --- guarded changes to one row ----------------------------------------------------------------
    async def take_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        """Guarded: refused (Conflict, the caller retries) unless `quantity` is still available."""
        deferred = self._deferred
        if deferred is not None:
            levels = deferred.available.get(sku, {})
            if levels.get(warehouse, 0) < quantity:
                raise Conflict(f"{sku} at {warehouse} no longer has {quantity} available; retry")
            levels[warehouse] -= quantity
            deferred.stock[(sku, warehouse)] = deferred.stock.get((sku, warehouse), 0) + quantity
            return
        result = await self.conn.execute(_TAKE_STOCK, {"b_sku": sku, "b_wh": warehouse, "b_qty": quantity})
        if result.rowcount != 1:
            # Only a plan from stale numbers gets here (another writer took the units first);
            # the guard refused, nothing was oversold: retry.
            raise Conflict(f"{sku} at {warehouse} no longer has {quantity} available; retry")

    async def return_stock(self, sku: str, warehouse: str, quantity: int) -> None:
        deferred = self._deferred
        if deferred is not None:  # checked at the flush (the row's reserved units are not kept here)
            if sku not in deferred.available:
                await self.available([sku], lock=False)
            levels = deferred.available[sku]
            levels[warehouse] = levels.get(warehouse, 0) + quantity
            deferred.stock[(sku, warehouse)] = deferred.stock.get((sku, warehouse), 0) - quantity
            return
        result = await self.conn.execute(_RETURN_STOCK, {"b_sku": sku, "b_wh": warehouse, "b_qty": quantity})
        if result.rowcount != 1:
            raise StockBookError(f"{sku} at {warehouse} has fewer than {quantity} reserved to release")

    async def receive(self, sku: str, warehouse: str, quantity: int) -> StockLevel:
        """Adds to on hand; returns the new level. The row is there: a receipt makes a new SKU/warehouse pair's
        row (at zero) before it takes its locks (`ensure_rows`, InventoryService.receive)."""
        result = await self.conn.execute(
            update(stock)
            .where(at(sku, warehouse))
            .values(on_hand=stock.c.on_hand + quantity, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            raise StockBookError(f"{sku} has no stock row at {warehouse}: ensure_rows makes it first")
        return await self.level(sku, warehouse)

    async def count(self, sku: str, warehouse: str, on_hand: int) -> tuple[StockLevel, StockLevel | None]:
        """A stock count sets on hand unless that is below what is reserved.
        Returns (level before, level after or None when refused)."""
        await self._ensure_row(sku, warehouse)
        row = (
            await self.conn.execute(
                select(stock.c.on_hand, stock.c.reserved).where(at(sku, warehouse)).with_for_update()
            )
        ).one()
        before = StockLevel(warehouse, row.on_hand, row.reserved)
        if row.on_hand == on_hand:
            return before, before
        result = await self.conn.execute(
            update(stock)
            .where(at(sku, warehouse), *may_count(stock.c.on_hand, stock.c.reserved, on_hand))
            .values(on_hand=on_hand, version=stock.c.version + 1)
        )
        if result.rowcount != 1:
            return before, None
        return before, await self.level(sku, warehouse)

    async def ensure_rows(self, pairs: list[tuple[str, str]]) -> None:
        """Stock rows at zero for the (SKU, warehouse) pairs that have none yet, in key order (a receipt's,
        before it takes the SKUs' locks: see InventoryService.receive)."""
        for sku, warehouse in sorted(set(pairs)):
            await self._ensure_row(sku, warehouse)

    async def _ensure_row(self, sku: str, warehouse: str) -> None:
        await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect,
                stock,
                {"sku": sku, "warehouse": warehouse, "on_hand": 0, "reserved": 0, "version": 0},
            )
        )

    # --- receipts and event versions --------------------------------------------------------------
    async def record_receipt(
        self, reference: str, sku: str, warehouse: str, quantity: int, received_by: str = ""
    ) -> bool:
        """True for a new receipt; False for a repeat of one applied before. The same reference
        with other contents is refused by the caller (see `receipt`)."""
        result = await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect,
                receipts,
                {
                    "reference": reference,
                    "sku": sku,
                    "warehouse": warehouse,
                    "quantity": quantity,
                    "received_at": utcnow(),
                    "received_by": received_by,
                },
            )
        )
        return result.rowcount == 1

    async def receipt(self, reference: str) -> tuple[str, str, int] | None:
        """The receipt recorded under this reference (sku, warehouse, quantity), or None."""
        row = (
            await self.conn.execute(
                select(receipts.c.sku, receipts.c.warehouse, receipts.c.quantity).where(
                    receipts.c.reference == reference
                )
            )
        ).first()
        return None if row is None else (row.sku, row.warehouse, row.quantity)

    async def recent_receipts(self, sku: str, limit: int) -> list[RecordedReceipt]:
        """The SKU's last `limit` receipts, newest first (index ix_receipts_sku_received_at)."""
        rows = await self.conn.execute(_recent_receipts(limit), {"b_sku": sku})
        return [
            RecordedReceipt(r.reference, r.warehouse, r.quantity, r.received_at, r.received_by) for r in rows
        ]

    async def next_event_version(self, sku: str) -> int:
        await self._ensure_sku_row(sku)
        await self.conn.execute(
            update(sku_versions).where(sku_versions.c.sku == sku).values(version=sku_versions.c.version + 1)
        )
        return (
            await self.conn.execute(select(sku_versions.c.version).where(sku_versions.c.sku == sku))
        ).scalar_one()
