"""What every part of the stock repository stands on: its connection and dialect, and the
conditions that name one stock row and one reservation row."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, select

from orderdesk.db import insert_ignoring_conflicts
from orderdesk.errors import Conflict
from services.inventory.store.tables import reservations, sku_versions, stock

_LOCK_COUNTERS = (
    select(sku_versions.c.sku)
    .where(sku_versions.c.sku.in_(bindparam("skus", expanding=True)))
    .order_by(sku_versions.c.sku)
    .with_for_update()
)


class RepositoryBase:
    def __init__(self, conn, dialect: str | None = None):
        """`conn`: the unit of work's connection (`tx.repo(StockRepository)` passes only that;
        the dialect is then the connection's)."""
        self.conn = conn
        self.dialect = dialect or conn.dialect.name
        self.created_order = False  # set by lock_order: the order's row was created just now
        # Set by `deferring` (levels.py): a batch of Reserves' stock and reservation writes, kept until flushed.
        self._deferred = None

    async def _ensure_sku_row(self, sku: str) -> None:
        """The SKU's row of event version and backorder total, created at zero if absent."""
        deferred = self._deferred
        if await self._batch_holds_counter(sku) or (deferred is not None and sku in deferred.counted):
            return
        await self.conn.execute(
            insert_ignoring_conflicts(self.dialect, sku_versions),
            {"sku": sku, "version": 0, "backordered": 0},
        )
        if deferred is not None:  # a batch makes sure of it once
            deferred.counted.add(sku)

    async def _batch_holds_counter(self, sku: str) -> bool:
        """In a locked batch of reserves (PostgreSQL): True once the SKU's counter row is locked. The batch
        locks the counters of all its SKUs at the first one any of its orders needs, in SKU order, whatever
        order its orders come in (the store's lock order); a SKU outside them is a Conflict (the batch is
        retried, then each order runs on its own)."""
        deferred = self._deferred
        if deferred is None or not deferred.locked:
            return False
        if deferred.counters is None:
            deferred.counters = await self._lock_counters(deferred.skus)
        if sku not in deferred.counters:
            raise Conflict(f"a batch of reserves needs SKU {sku}'s counter, which it did not lock first")
        return True

    async def _lock_counters(self, skus: list[str]) -> set[str]:
        """Locks the SKUs' counter rows (sorted), then creates the missing ones. Another transaction creating
        one of those meanwhile would put its lock out of order: a Conflict."""
        held = set((await self.conn.execute(_LOCK_COUNTERS, {"skus": skus})).scalars())
        missing = [sku for sku in skus if sku not in held]
        if missing:
            made = await self.conn.execute(
                insert_ignoring_conflicts(self.dialect, sku_versions).returning(sku_versions.c.sku),
                [{"sku": sku, "version": 0, "backordered": 0} for sku in missing],
            )
            if len(set(made.scalars())) != len(missing):
                raise Conflict("a SKU's counter was created while a batch of reserves locked them; retry")
        return set(skus)


# The same conditions in templates (orderdesk.db: statements on hot paths are built once and executed
# with parameters). Bind names differ from the column names, which an UPDATE's SET may use.
AT = and_(stock.c.sku == bindparam("b_sku"), stock.c.warehouse == bindparam("b_wh"))
RESERVATION_OF = and_(
    reservations.c.order_id == bindparam("b_order"),
    reservations.c.sku == bindparam("b_sku"),
    reservations.c.warehouse == bindparam("b_wh"),
)


def at(sku: str, warehouse: str):
    return and_(stock.c.sku == sku, stock.c.warehouse == warehouse)


def reservation_of(order_id: str, sku: str, warehouse: str):
    return and_(
        reservations.c.order_id == order_id, reservations.c.sku == sku, reservations.c.warehouse == warehouse
    )
