"""The archive's storage: moving closed orders whole out of the hot tables and back, and reading them.

An order is its row and every row that hangs off it: its lines, its history and its ledger rows (the
KPI report's order_facts); its change log, exceptions, allocations, shipments and proposals are columns
of the order row. MOVES lists the pairs, parents first: rows are copied parents first and deleted
children first, so every foreign key holds at every statement, on SQLite and PostgreSQL alike.

A batch moves in one transaction and takes only the orders whose version it read (`move`): the claim
`UPDATE orders … WHERE (order_id, version) IN (what was read)` locks the rows it matches (PostgreSQL) or
runs under SQLite's one writer, so an order a consumer changed since the read stays hot with its change,
and a consumer that read an order before it moved finds its save refused (Conflict) and, retried, reads
the order from the archive and saves it back into the hot tables (`restore`, called by
OrderRepository.save).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, tuple_, update

from orderdesk.db import Repository
from orderdesk.errors import Conflict
from services.orders.archive.rules import CLOSED_VALUES
from services.orders.domain import Order
from services.orders.kpi.store import FACTS
from services.orders.store import (
    ARCHIVE,
    CLOSED_ORDERS,
    HOT,
    hydrate,
    order_skus,
    order_warehouses,
    rows_of,
    sku_rows_of,
)

# (hot, archive), parents first.
MOVES: tuple[tuple[Table, Table], ...] = (
    (HOT.orders, ARCHIVE.orders),
    (HOT.lines, ARCHIVE.lines),
    (HOT.history, ARCHIVE.history),
    (FACTS[False], FACTS[True]),
)


@dataclass(frozen=True)
class Candidate:
    order_id: str
    version: int


@dataclass(frozen=True)
class Exported:
    """One archived order as exported: the order, and when it was created, closed and archived."""

    order: Order
    created_at: dt.datetime
    closed_at: dt.datetime
    archived_at: dt.datetime


EXPORT_BY = {"archived": ARCHIVE.orders.c.archived_at, "created": ARCHIVE.orders.c.created_at}


def _copy(source: Table, target: Table, ids, **extra):
    """INSERT INTO target (…) SELECT … FROM source WHERE order_id IN ids (extra: constant columns)."""
    names = [c.name for c in source.columns]
    values = [source.c[n] for n in names] + [
        bindparam(k, v, type_=target.c[k].type) for k, v in extra.items()
    ]
    return target.insert().from_select([*names, *extra], select(*values).where(source.c.order_id.in_(ids)))


class OrderArchive(Repository):
    """The archive as a repository on a unit of work (`tx.repo(OrderArchive)`)."""

    # --- the job -----------------------------------------------------------------------------------
    async def candidates(self, cutoff: dt.datetime, limit: int) -> list[Candidate]:
        """Closed orders last changed before `cutoff`, oldest first, with the version read. Never the order
        with the highest seq: SQLite gives a new row the highest rowid + 1, so while that row stays no new
        order can take the seq of an archived one (listings merge both by seq; a restore keeps it)."""
        o = HOT.orders
        newest = select(func.max(o.c.seq)).scalar_subquery()
        rows = await self.conn.execute(
            select(o.c.order_id, o.c.version)
            # CLOSED_ORDERS: the statuses as literals (ix_orders_closed_updated's predicate), so that
            # PostgreSQL reads that index, oldest first, a page at a time, also in a generic plan (SQLite,
            # without statistics, reads ix_orders_status_seq and sorts, as it did before that index)
            .where(CLOSED_ORDERS, o.c.updated_at < cutoff, o.c.seq < newest)
            .order_by(o.c.updated_at)
            .limit(limit)
        )
        return [Candidate(r.order_id, r.version) for r in rows]

    async def move(self, candidates: Sequence[Candidate], now: dt.datetime) -> list[str]:
        """Moves those of `candidates` still at the version read (and still closed) into the archive, whole;
        returns their ids. Run it in one transaction: the claim holds them until it commits."""
        if not candidates:
            return []
        o = HOT.orders
        claimed = await self.conn.execute(
            update(o)
            .where(
                tuple_(o.c.order_id, o.c.version).in_([(c.order_id, c.version) for c in candidates]),
                o.c.status.in_(CLOSED_VALUES),
            )
            .values(version=o.c.version)  # takes the row: a concurrent save waits, then finds it gone
            .returning(o.c.order_id)
        )
        ids = sorted(r[0] for r in claimed)
        if not ids:
            return []
        for hot, archive in MOVES:
            extra = {"archived_at": now} if archive is ARCHIVE.orders else {}
            await self.conn.execute(_copy(hot, archive, ids, **extra))
        for kept in (order_skus, order_warehouses):  # the hot orders' search rows go with them
            await self.conn.execute(rows_of(kept, ids))
        for hot, _archive in reversed(MOVES):
            await self.conn.execute(delete(hot).where(hot.c.order_id.in_(ids)))
        return ids

    async def restore(self, order: Order) -> None:
        """Brings an archived order back into the hot tables, as it was archived (its version the one
        read, or Conflict: another writer restored it first). Part of the caller's transaction."""
        a = ARCHIVE.orders
        ids = [order.order_id]
        names = [c.name for c in HOT.orders.columns]
        restored = await self.conn.execute(
            HOT.orders.insert().from_select(
                names,
                select(*[a.c[n] for n in names]).where(
                    a.c.order_id == order.order_id, a.c.version == order.loaded_version
                ),
            )
        )
        if restored.rowcount != 1:
            raise Conflict(f"order {order.order_id} was changed concurrently; retry")
        for hot, archive in MOVES[1:]:
            await self.conn.execute(_copy(archive, hot, ids))
        await self.conn.execute(sku_rows_of(ids))  # its order_warehouses rows: save() writes them
        for _hot, archive in reversed(MOVES):
            await self.conn.execute(delete(archive).where(archive.c.order_id.in_(ids)))
        order.archived = False
        order._loaded_warehouse_keys = None  # none in the hot tables yet: save() writes them

    # --- reads -------------------------------------------------------------------------------------
    async def get(self, order_id: str, partner_id: str = "") -> Order | None:
        a = ARCHIVE.orders
        query = select(a).where(a.c.order_id == order_id)
        if partner_id:
            query = query.where(a.c.partner_id == partner_id)
        row = (await self.conn.execute(query)).mappings().first()
        return None if row is None else (await hydrate(self.conn, [row], ARCHIVE))[0]

    async def export_page(
        self,
        by: str,
        start: dt.datetime,
        end: dt.datetime,
        after: tuple[dt.datetime, str] | None,
        limit: int,
    ) -> list[Exported]:
        """One page of the archived orders whose `by` time (archived | created) is in [start, end),
        in that time's order then by id; `after` is the last (time, order id) of the page before."""
        a = ARCHIVE.orders
        at = EXPORT_BY[by]
        query = select(a).where(at >= start, at < end).order_by(at, a.c.order_id).limit(limit)
        if after is not None:
            query = query.where(or_(at > after[0], and_(at == after[0], a.c.order_id > after[1])))
        rows = (await self.conn.execute(query)).mappings().all()
        orders = await hydrate(self.conn, rows, ARCHIVE)
        return [
            Exported(
                order,
                r["created_at"],
                order.history[-1].at if order.history else r["updated_at"],
                r["archived_at"],
            )
            for r, order in zip(rows, orders, strict=True)
        ]

    async def count(self) -> int:
        return (await self.conn.execute(select(func.count()).select_from(ARCHIVE.orders))).scalar_one()
