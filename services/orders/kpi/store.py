"""The desk's numbers at the edges: the order_facts ledger, the query that gathers a period's facts,
and the Prometheus counters fed from the very same rows (so dashboard and report agree).

Ledger rows are written in the transaction that makes the change (see service.publish_transitions
and service.record_return); a repeat of the same row (same order, kind, ref, line) is ignored.
Use cases reach the ledger as a repository on their unit of work: `tx.repo(KpiLedger)`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, select, union

from orderdesk import metrics
from orderdesk.db import Repository, RowsInsert, UtcDateTime, insert_ignoring_conflicts
from services.orders.domain import Status
from services.orders.kpi import rules
from services.orders.kpi.rules import Fact, LineFacts, OrderFacts, StatusAt
from services.orders.store import ARCHIVE, HOT, OrderTables, metadata, mirror

T = TypeVar("T")

order_facts = Table(
    "order_facts",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.order_id"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("ref", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("filled", Integer, nullable=False),
    Column("code", String(40), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_order_facts_at", "at"),
)
# The ledger of archived orders (migration 0009): their rows move with them, and the report reads both.
archived_order_facts = mirror(
    order_facts,
    "archived_order_facts",
    parent="archived_orders",
    indexes=[Index("ix_archived_order_facts_at", "at")],
)
FACTS = {False: order_facts, True: archived_order_facts}  # by OrderTables.archived
CHUNK = 500  # orders hydrated per query


_COLUMNS = ("order_id", "kind", "ref", "line_no", "sku", "quantity", "filled", "code", "reason", "at")


def _rows(order_id: str, facts: Iterable[Fact]) -> list[tuple]:
    """The facts' ledger rows in _COLUMNS' order."""
    return [
        (order_id, f.kind, f.ref, f.line_no, f.sku, f.quantity, f.filled, f.code, f.reason, f.at)
        for f in facts
    ]


async def record_many(conn, facts: Iterable[tuple[str, Iterable[Fact]]]) -> None:
    """`record` for several orders' rows (order id, facts) in one statement (a repeated row is ignored)."""
    await _insert_rows(conn.dialect.name).execute(
        conn, [row for order_id, of_order in facts for row in _rows(order_id, of_order)]
    )


async def record(conn, order_id: str, facts: Iterable[Fact], *, count_new: bool = False) -> int:
    """Appends ledger rows (a repeated row is ignored). With count_new, rows go one at a time and the
    number of new ones is returned; otherwise one batch (the hot path: first reservations)."""
    rows = _rows(order_id, facts)
    if not count_new:
        await _insert_rows(conn.dialect.name).execute(conn, rows)
        return len(rows)
    statement = _insert(conn.dialect.name)
    return sum(
        [(await conn.execute(statement, dict(zip(_COLUMNS, row, strict=True)))).rowcount == 1 for row in rows]
    )


class KpiLedger(Repository):
    """The order_facts ledger as a repository on a unit of work (`tx.repo(KpiLedger)`)."""

    async def record(self, order_id: str, facts: Iterable[Fact], *, count_new: bool = False) -> int:
        return await record(self.conn, order_id, facts, count_new=count_new)

    async def record_many(self, facts: Iterable[tuple[str, Iterable[Fact]]]) -> None:
        await record_many(self.conn, facts)

    async def gather(self, start: dt.datetime, end: dt.datetime) -> list[OrderFacts]:
        return await gather(self.conn, start, end)

    async def known_skus(self) -> list[str]:
        return await known_skus(self.conn)


@functools.cache
def _insert(dialect_name: str):
    return insert_ignoring_conflicts(dialect_name, order_facts)  # built once, executed with parameters


@functools.cache
def _insert_rows(dialect_name: str) -> RowsInsert:
    """_insert for a batch of rows as tuples: one executemany, no per-row parameter processing."""
    return RowsInsert(_insert(dialect_name), _COLUMNS)


def count_metrics(order, facts: Iterable[Fact]) -> None:
    """The counters behind the PromQL of README "The desk's numbers", from the ledger rows and the
    transitions of one saved change (orderdesk_order_status_transitions_total is counted beside)."""
    child = metrics.child
    for f in facts:
        if f.kind == "first_allocation":
            child(metrics.LINES_FIRST_ALLOCATED, "true" if f.filled >= f.quantity else "false").inc()
            child(metrics.UNITS_FIRST_ALLOCATED, "filled").inc(min(f.filled, f.quantity))
            child(metrics.UNITS_FIRST_ALLOCATED, "short").inc(max(f.quantity - f.filled, 0))
        elif f.kind == "held":
            child(metrics.ORDER_HOLD_REASONS, f.code).inc()
        elif f.kind == "cancelled":
            child(metrics.UNITS_CANCELLED, f.code).inc(f.quantity)
    for t in order.transitions:
        status = t.status
        if status is Status.CANCELLED:
            child(metrics.ORDER_CANCELLATIONS, rules.reason_class(t.entry.reason, rules.CANCEL_REASONS)).inc()
        if status is Status.COMPLETED:
            metrics.UNITS_DELIVERED.inc(sum(line.delivered for line in order.lines))
        ended = _STAGES_ENDED_BY.get(status)
        # A stage ends at the FIRST entry of its end status (rules.stage_ends): only that transition observes it.
        if ended and _first_entry(order, status) is t.entry:
            for stage, start in ended:
                began = _first_entry(order, start)
                if began is not None:
                    child(metrics.ORDER_CYCLE_SECONDS, stage).observe((t.entry.at - began.at).total_seconds())


def _stages_ended_by() -> dict[Status, list[tuple[str, Status]]]:
    """rules.STAGE_BOUNDS by the status that ends each stage: (stage, the status it starts at)."""
    ended: dict[Status, list[tuple[str, Status]]] = {}
    for stage, (start, end) in rules.STAGE_BOUNDS.items():
        ended.setdefault(Status(end), []).append((stage, Status(start)))
    return ended


_STAGES_ENDED_BY = _stages_ended_by()


def _first_entry(order, status: Status):
    return next((h for h in order.history if h.status is status), None)


def count_returns(facts: Iterable[Fact]) -> None:
    """Returned units by reason class, counted when orders records the refunded return."""
    for f in facts:
        metrics.child(metrics.UNITS_RETURNED, f.code).inc(f.quantity)


async def gather(conn, start: dt.datetime, end: dt.datetime) -> list[OrderFacts]:
    """Every order with a status change or a ledger row in [start, end), or whose promised day ended in it
    (late_at, the end of the promised day, in [start, end): the promised day in [start - 1 day, end - 1 day]),
    with its whole story: from the hot tables and from the archive (an archived order still counts where
    its events fall)."""
    first_day = (start - dt.timedelta(days=1)).date().isoformat()
    last_day = (end - dt.timedelta(days=1)).date().isoformat()
    result: dict[str, OrderFacts] = {}
    for tables in (ARCHIVE, HOT):  # an order moved while this ran is counted once, as it is now
        facts = FACTS[tables.archived]
        promised = tables.orders.c.requested_delivery_date
        touched = union(
            select(tables.history.c.order_id).where(tables.history.c.at >= start, tables.history.c.at < end),
            select(facts.c.order_id).where(facts.c.at >= start, facts.c.at < end),
            select(tables.orders.c.order_id).where(promised >= first_day, promised <= last_day),
        ).subquery()
        ids = sorted(r[0] for r in await conn.execute(select(touched.c.order_id)))
        for i in range(0, len(ids), CHUNK):
            for order in await _hydrate(conn, ids[i : i + CHUNK], tables):
                result[order.order_id] = order
    return [result[i] for i in sorted(result)]


async def known_skus(conn) -> list[str]:
    """Every SKU ever ordered, archived orders too (orders has no product master: this stands in for it
    in slow sellers)."""
    lines = union(select(HOT.lines.c.sku), select(ARCHIVE.lines.c.sku)).subquery()
    return [r[0] for r in await conn.execute(select(lines.c.sku).distinct())]


async def _hydrate(conn, ids: list[str], tables: OrderTables) -> list[OrderFacts]:
    orders, order_lines, order_history = tables.orders, tables.lines, tables.history
    order_facts = FACTS[tables.archived]
    heads = (
        (
            await conn.execute(
                select(
                    orders.c.order_id,
                    orders.c.customer_id,
                    orders.c.channel,
                    orders.c.currency,
                    orders.c.status,
                    orders.c.shipments,
                    orders.c.requested_delivery_date,
                ).where(orders.c.order_id.in_(ids))
            )
        )
        .mappings()
        .all()
    )
    lines = await _per_order(
        conn,
        ids,
        select(order_lines),
        order_lines.c.line_no,
        lambda r: LineFacts(r["sku"], r["quantity"], Decimal(r["unit_price"]), r["delivered"]),
    )
    history = await _per_order(
        conn,
        ids,
        select(order_history.c.order_id, order_history.c.status, order_history.c.at),
        order_history.c.version,
        lambda r: StatusAt(r["status"], r["at"]),
    )
    facts = await _per_order(
        conn,
        ids,
        select(order_facts),
        order_facts.c.at,
        lambda r: Fact(
            r["kind"],
            r["at"],
            r["line_no"],
            r["sku"],
            r["quantity"],
            r["filled"],
            r["code"],
            r["reason"],
            r["ref"],
        ),
    )
    return [
        OrderFacts(
            h["order_id"],
            h["customer_id"],
            h["channel"],
            h["currency"],
            h["status"],
            tuple(history[h["order_id"]]),
            tuple(lines[h["order_id"]]),
            tuple(facts[h["order_id"]]),
            on_time=all(
                s.get("on_time") is not False for s in h["shipments"] if s.get("status") == "delivered"
            ),
            promised=h["requested_delivery_date"],
        )
        for h in heads
    ]


async def _per_order(conn, ids: list[str], query, then, make: Callable[[Any], T]) -> dict[str, list[T]]:
    """`query`'s rows of the orders `ids` (its table's, ordered by `then` within each order), each
    made into `make(row)`, per order id; an order without rows has an empty list."""
    table = then.table
    rows: dict[str, list[T]] = {i: [] for i in ids}
    query = query.where(table.c.order_id.in_(ids)).order_by(table.c.order_id, then)
    for r in (await conn.execute(query)).mappings():
        rows[r["order_id"]].append(make(r))
    return rows
