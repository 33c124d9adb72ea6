"""What every part of the stock repository stands on: its connection and dialect, and the
conditions that name one stock row and one reservation row."""

from __future__ import annotations

from sqlalchemy import and_, bindparam

from orderdesk.db import insert_ignoring_conflicts
from services.inventory.store.tables import reservations, sku_versions, stock


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
        await self.conn.execute(
            insert_ignoring_conflicts(self.dialect, sku_versions),
            {"sku": sku, "version": 0, "backordered": 0},
        )


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
