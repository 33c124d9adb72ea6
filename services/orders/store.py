"""Orders' tables and the repository for the order aggregate (SQLAlchemy Core).

The hot tables (orders, order_lines, order_history) hold the orders the service works on; closed
orders old enough move whole into their archive mirrors (archived_orders, archived_order_lines,
archived_order_history; the ledger's in services/orders/kpi/store.py), see services/orders/archive.
The repository reads an order from either place; saving an archived order brings it back first.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    or_,
    select,
    text,
    union_all,
    update,
)

from orderdesk.db import (
    DIALECTS,
    JsonText,
    Repository,
    RowsInsert,
    RowsUpdate,
    UtcDateTime,
    by_keys,
    by_unique_keys,
    in_transaction_block,
    utcnow,
)
from orderdesk.errors import Conflict
from orderdesk.personal_data import OrderClosure
from services.orders.changes import ChangeRecord
from services.orders.domain import (
    AWAITING_STOCK,
    TERMINAL,
    Allocation,
    HistoryEntry,
    Line,
    Listing,
    Order,
    OrderSearch,
    ShipmentView,
    Status,
    tokens,
)
from services.orders.exceptions import OrderException
from services.orders.notes import Note
from services.orders.promise import AT_ONCE, Risk
from services.orders.replacements import Replacement

CLOSED_STATUSES = frozenset(s.value for s in TERMINAL)
_CLOSED = tuple(f"'{s}'" for s in sorted(CLOSED_STATUSES))  # as SQL literals


def partial(where: str) -> dict:
    """An Index's keywords making it partial on both backends: only rows meeting `where` have an entry."""
    return {"postgresql_where": text(where), "sqlite_where": text(where)}


def _aware(at):
    """SQLite hands an aggregate of a UtcDateTime back as naive text or datetime: UTC either way."""
    import datetime as dt

    if at is None:
        return None
    if isinstance(at, str):
        at = dt.datetime.fromisoformat(at)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # stable cursor for listings
    Column("order_id", String(40), nullable=False, unique=True),
    Column("partner_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("external_ref", String(128), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("ship_to", JsonText, nullable=False),
    Column("requested_delivery_date", String(10), nullable=False),
    Column("payment_terms", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("version", Integer, nullable=False),
    Column("hold_reasons", JsonText, nullable=False),
    Column("allocations", JsonText, nullable=False),
    Column("shipments", JsonText, nullable=False),
    Column("total_amount", String(32), nullable=False),
    Column("proposals", JsonText, nullable=False),  # migration 0002
    Column("urgent", Boolean, nullable=False),  # migration 0002
    Column("change_log", JsonText, nullable=False),  # migration 0003: accepted change requests
    Column("exceptions", JsonText, nullable=False),  # migration 0003
    Column("expected_ship_date", String(10), nullable=False),  # migration 0005: backorder dates
    Column("expected_delivery_date", String(10), nullable=False),  # migration 0005
    Column("split_from", String(40), nullable=False),  # migration 0006: split deliveries
    Column("split_into", JsonText, nullable=False),  # migration 0006
    Column(
        "notes", JsonText, nullable=False
    ),  # migration 0010: the desk's notes (internal and to the customer)
    Column(
        "replacements", JsonText, nullable=False
    ),  # migration 0017: its returns' and claims' replacement orders
    Column("risks", JsonText, nullable=False),  # migration 0012: the promise watch's current risks
    Column("risk_codes", String(200), nullable=False),  # migration 0012: " code code ", "" when on track
    Column("risk_slip", Integer, nullable=False),  # migration 0012: the largest slip in days
    Column("watch_at", UtcDateTime, nullable=True),  # migration 0012: next assessment; NULL: settled
    # migration 0013: the desk's work queues (Order.queue_keys), " a b " as risk_codes
    Column("hold_codes", String(200), nullable=False),  # the hold reasons while on hold
    Column("exception_types", String(200), nullable=False),  # the open exceptions' types, open orders only
    Column("warehouses", String(200), nullable=False),  # allocated at or shipping from
    Column("expected_ship_key", String(10), nullable=False),  # migration 0014: the backorders' sort key
    Column("risk_key", String(10), nullable=False),  # migration 0015: the at-risk queue's sort key
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_orders_partner_seq", "partner_id", "seq"),
    Index("ix_orders_status_priority", "status", text("priority DESC"), "seq"),  # migration 0015: DESC
    # migration 0008: the order search (services/orders/domain.py OrderSearch), newest first
    Index("ix_orders_status_seq", "status", "seq"),
    Index("ix_orders_external_ref_seq", "external_ref", "seq"),
    Index("ix_orders_customer_seq", "customer_id", "seq"),
    Index("ix_orders_channel_seq", "channel", "seq"),
    Index("ix_orders_created_at", "created_at"),
    Index("ix_orders_status_expected_ship", "status", "expected_ship_key", "seq"),  # migration 0014
    # Migration 0018: the sparse queues' indexes are partial, holding only the orders of their queue: a save
    # that moves the status adds the row's new version to every index (no HOT update on PostgreSQL) but
    # those whose predicate it does not meet. Their queries say the predicate as a literal (_EMPTY, _HELD,
    # CLOSED_ORDERS): a prepared statement's generic plan, blind to values, could not use the index else.
    # The archive's candidates (migration 0009), oldest change first.
    Index("ix_orders_closed_updated", "updated_at", **partial(f"status IN ({', '.join(_CLOSED)})")),
    # The promise watch's due orders (migration 0012); a settled order is never due.
    Index("ix_orders_watch_at", "watch_at", **partial("watch_at IS NOT NULL")),
    # The at-risk queue (migrations 0012, 0015): its counts (covering) and its page in order.
    Index("ix_orders_risk_codes", "risk_codes", "status", **partial("risk_codes > ''")),
    Index("ix_orders_risk_key", "risk_key", text("risk_slip DESC"), "seq", **partial("risk_key > ''")),
    # The held queue's counts per reason (covering; its page reads ix_orders_status_priority) and the open
    # exceptions queue (migration 0013).
    Index(
        "ix_orders_status_hold_codes",
        "status",  # so that SQLite, which keeps no statistics, prefers it to ix_orders_status_priority
        "hold_codes",
        **partial(f"status = '{Status.ON_HOLD.value}'"),
    ),
    Index("ix_orders_exception_types", "exception_types", **partial("exception_types > ''")),
)
# What the queues' queries say for their partial index's predicate, as literals (not bound parameters).
_EMPTY = literal_column("''")
_HELD = literal_column(f"'{Status.ON_HOLD.value}'")
CLOSED_ORDERS = orders.c.status.in_([literal_column(v) for v in _CLOSED])
# A saved order is due for the watch at once unless the repository knows the watch's rule (OrderRepository).
DUE_NOW = AT_ONCE


def risk_codes(risks) -> str:
    """The listing's and the gauge's form of an order's risk codes: " a b " (sorted), "" for none."""
    return tokens(r.code.value for r in risks) if risks else ""  # most orders: none, without the generator


order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.order_id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", String(32), nullable=False),
    Column("allocated", Integer, nullable=False),
    Column("shipped", Integer, nullable=False),
    Column("delivered", Integer, nullable=False),
    Column("returned", Integer, nullable=False),
    Index("ix_order_lines_sku", "sku", "order_id"),  # migration 0008: orders having a line of a SKU
)

# Migration 0017: what the desk's filters on a warehouse and on a SKU read, one row per (order, warehouse) and
# per (order, SKU), keyed by the order's seq (a queue's index holds it: a look-up needs no order row), kept by
# OrderRepository with the order (hot orders only; the archive's searches read archived_orders.warehouses and
# archived_order_lines). An order's warehouses (those it is allocated at or ships from) carry the keys a
# queue of one status is sorted by: such a queue narrowed to a warehouse (backorders soonest expected first,
# or by priority, or first come) reads an index in the queue's order, a page at a time, however few or many
# orders are at that warehouse.
order_warehouses = Table(
    "order_warehouses",
    metadata,
    Column("seq", Integer, ForeignKey("orders.seq"), primary_key=True, autoincrement=False),
    Column("warehouse", String(64), primary_key=True),
    Column("status", String(24), nullable=False),  # the order's
    Column("expected_ship_key", String(10), nullable=False),  # the order's (Order.queue_keys)
    Column("priority", Integer, nullable=False),  # the order's
    Index("ix_order_warehouses_expected", "warehouse", "status", "expected_ship_key", "seq"),
    Index("ix_order_warehouses_priority", "warehouse", "status", text("priority DESC"), "seq"),
    Index("ix_order_warehouses_seq", "warehouse", "status", "seq"),
)
# The SKUs of an order's lines, each once: a SKU's orders newest first from the index (sku, seq) (order_lines'
# (sku, order_id) gathered every order of the SKU and sorted them per page).
order_skus = Table(
    "order_skus",
    metadata,
    Column("seq", Integer, ForeignKey("orders.seq"), primary_key=True, autoincrement=False),
    Column("sku", String(64), primary_key=True),
    Index("ix_order_skus_sku_seq", "sku", "seq"),
)

order_history = Table(
    "order_history",
    metadata,
    Column("order_id", String(40), ForeignKey("orders.order_id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("status", String(24), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("reason", String(1000), nullable=False),
    Index("ix_order_history_at", "at"),  # migration 0004
)


def mirror(table: Table, name: str, *, parent: str = "", key: tuple[str, ...] = (), extra=(), indexes=()):
    """An archive table with `table`'s columns (same names and types, so rows move with INSERT … SELECT):
    `key` its primary key (default the same), `order_id` referring to `parent`, `extra` columns added."""
    primary = set(key) or {c.name for c in table.primary_key.columns}
    columns = [
        Column(
            c.name,
            c.type,
            *([ForeignKey(f"{parent}.order_id")] if parent and c.name == "order_id" else []),
            primary_key=c.name in primary,
            nullable=c.nullable and c.name not in primary,
            autoincrement=False,
        )
        for c in table.columns
    ]
    return Table(name, table.metadata, *columns, *extra, *indexes)


# The archive (migration 0009): closed orders, whole, out of the hot tables. `seq` keeps the order's place
# in listings; archived_at says when it moved.
archived_orders = mirror(
    orders,
    "archived_orders",
    key=("order_id",),
    extra=[Column("archived_at", UtcDateTime, nullable=False)],
    indexes=[  # the search's (as the hot table's, migration 0008) and the export's
        Index("ix_archived_orders_partner_seq", "partner_id", "seq"),
        Index("ix_archived_orders_external_ref_seq", "external_ref", "seq"),
        Index("ix_archived_orders_customer_seq", "customer_id", "seq"),
        Index("ix_archived_orders_channel_seq", "channel", "seq"),
        Index("ix_archived_orders_created", "created_at", "order_id"),
        Index("ix_archived_orders_archived", "archived_at", "order_id"),
    ],
)
archived_order_lines = mirror(
    order_lines,
    "archived_order_lines",
    parent="archived_orders",
    indexes=[Index("ix_archived_order_lines_sku", "sku", "order_id")],
)
archived_order_history = mirror(
    order_history,
    "archived_order_history",
    parent="archived_orders",
    indexes=[Index("ix_archived_order_history_at", "at")],
)


@dataclass(frozen=True)
class OrderTables:
    """Where orders are: the hot tables, or the archive's."""

    orders: Table
    lines: Table
    history: Table
    archived: bool

    def children_of(self, dialect_name: str):
        """The lines and the history entries of the orders `ids` in one read: a UNION of both, each row
        with the other's columns NULL, `kind` saying which (0 a line, 1 an entry), in line and version
        order. The first branch's casts give every column its type (UtcDateTime's `at` comes back aware).
        The ids go as one parameter (db.by_keys; given as its encoding says): one statement text, prepared
        once, for any number of orders."""
        query, encode = by_keys(dialect_name, self._children, "ids")
        return query.order_by(literal_column("kind"), literal_column("n")), encode

    def _children(self, match):
        lines, history = self.lines.c, self.history.c
        return union_all(
            select(
                lines.order_id,
                literal_column("0").label("kind"),
                lines.line_no.label("n"),
                lines.sku,
                lines.quantity,
                lines.unit_price,
                lines.allocated,
                lines.shipped,
                lines.delivered,
                lines.returned,
                cast(null(), String).label("status"),
                cast(null(), UtcDateTime).label("at"),
                cast(null(), String).label("actor"),
                cast(null(), String).label("reason"),
            ).where(match(lines.order_id)),
            select(
                history.order_id,
                literal_column("1"),
                history.version,
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                null(),
                history.status,
                history.at,
                history.actor,
                history.reason,
            ).where(match(history.order_id)),
        )


HOT = OrderTables(orders, order_lines, order_history, archived=False)
ARCHIVE = OrderTables(archived_orders, archived_order_lines, archived_order_history, archived=True)


def _order_row(order: Order, watch_at: dt.datetime | None) -> dict:
    """Every field the domain may change after the order is created (tests/integration/orders/
    test_saved_fields.py changes each one and reads it back, so a new field cannot be forgotten here)."""
    keys = order.queue_keys  # migration 0013: the work queues' keys (each QueueKeys field a column)
    return {
        "requested_delivery_date": order.requested_delivery_date,
        "payment_terms": order.payment_terms,
        "priority": order.priority,
        "proposals": order.proposals,
        "urgent": order.urgent,
        "status": order.status._value_,  # .value without the enum property's two calls
        "version": order.version,
        "hold_reasons": order.hold_reasons,
        "allocations": [[a.sku, a.warehouse, a.quantity] for a in order.allocations],
        "shipments": [
            {
                "shipment_id": s.shipment_id,
                "warehouse": s.warehouse,
                "status": s.status,
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "lines": s.lines,
                "on_time": s.on_time,
                "version": s.version,
                "promised_delivery_date": s.promised_delivery_date,
                "expected_delivery_date": s.expected_delivery_date,
                "shipped_at": s.shipped_at,
                "last_event": s.last_event,
                "last_event_at": s.last_event_at,
                "pick_by": s.pick_by,
                "deliver_by": s.deliver_by,
            }
            for s in order.shipments.values()
        ],
        "total_amount": str(order.total_amount),
        "change_log": [c.to_json() for c in order.change_log],
        "exceptions": [e.to_json() for e in order.exceptions],
        "ship_to": order.ship_to,
        "expected_ship_date": order.expected_ship_date,
        "expected_delivery_date": order.expected_delivery_date,
        "split_into": order.split_into,
        "notes": [n.to_json() for n in order.notes],
        "replacements": [r.to_json() for r in order.replacements],
        "risks": [r.to_json() for r in order.risks],
        "risk_codes": risk_codes(order.risks),
        # Named one by one: dataclasses.asdict deep-copies field by field, a few dozen calls per save.
        "hold_codes": keys.hold_codes,
        "exception_types": keys.exception_types,
        "warehouses": keys.warehouses,
        "expected_ship_key": keys.expected_ship_key,
        "risk_key": keys.risk_key,
        "risk_slip": max(r.slip_days for r in order.risks) if order.risks else 0,
        "watch_at": watch_at,
        "updated_at": utcnow(),
    }


def _line_row(order_id: str, no: int, line: Line) -> tuple:
    """An order_lines row in _INSERT_LINES' columns."""
    return (
        order_id,
        no,
        line.sku,
        line.quantity,
        str(line.unit_price),
        line.allocated,
        line.shipped,
        line.delivered,
        line.returned,
    )


def _history_row(order: Order, t) -> tuple:
    """An order_history row in _INSERT_HISTORY's columns."""
    return (order.order_id, t.version, t.status._value_, t.entry.at, t.entry.actor, t.entry.reason)


def _counts(line: Line) -> tuple[int, int, int, int]:
    return line.allocated, line.shipped, line.delivered, line.returned


def _moved_lines(order: Order) -> list[tuple]:
    """_SAVE_LINES' rows for the order's lines whose counts moved since the load (all when unknown)."""
    loaded = getattr(order, "_loaded_counts", None)
    return [
        (line.allocated, line.shipped, line.delivered, line.returned, order.order_id, i)
        for i, line in enumerate(order.lines)
        if loaded is None or i >= len(loaded) or loaded[i] != _counts(line)
    ]


# The statements every order goes through, built once (SQLAlchemy then skips building and
# compiling them per call). "oid", "pid", "no", "loaded" name the row; a bind parameter may
# not share a name with a column the statement sets.
_ORDER = select(orders).where(orders.c.order_id == bindparam("oid"))
# Orders and their children by a list of ids, the ids as one parameter (db.by_unique_keys, db.by_keys): an
# expanding IN is a new statement for each number of ids, which PostgreSQL parses and plans anew (the
# children's read of a batch of 50 orders took 0.6 ms to plan; as many plans as reads).
_ORDERS_OF = {d: by_unique_keys(d, select(orders), orders.c.order_id, "ids") for d in DIALECTS}
_ORDER_OF_PARTNER = _ORDER.where(orders.c.partner_id == bindparam("pid"))
_CHILDREN = {(t.archived, d): t.children_of(d) for t in (HOT, ARCHIVE) for d in DIALECTS}
_CUSTOM_PLANS = text("SET LOCAL plan_cache_mode = force_custom_plan")
# New rows as one executemany of tuples (orderdesk.db.RowsInsert: no per-row parameter processing by
# SQLAlchemy). _order_values: a new order's row (its fixed fields and _order_row's) as such a tuple.
_ORDER_COLUMNS = tuple(c.name for c in orders.columns if c.name != "seq")  # seq: the database's
_order_values = operator.itemgetter(*_ORDER_COLUMNS)
# Each new order's seq comes back with it: its order_skus and order_warehouses rows are keyed by it.
_INSERT_ORDERS = RowsInsert(orders.insert().returning(orders.c.order_id, orders.c.seq), _ORDER_COLUMNS)
_INSERT_LINES = RowsInsert(
    order_lines.insert(),
    ("order_id", "line_no", "sku", "quantity", "unit_price", "allocated", "shipped", "delivered", "returned"),
)
_INSERT_HISTORY = RowsInsert(
    order_history.insert(), ("order_id", "version", "status", "at", "actor", "reason")
)
_SAVE_ORDER = update(orders).where(
    orders.c.order_id == bindparam("oid"), orders.c.version == bindparam("loaded")
)
# _SAVE_ORDER's rows as tuples (RowsUpdate): _order_row's values, in its keys' order, then the guard's.
_ROW_COLUMNS = (
    "requested_delivery_date", "payment_terms", "priority", "proposals", "urgent", "status", "version",
    "hold_reasons", "allocations", "shipments", "total_amount", "change_log", "exceptions", "ship_to",
    "expected_ship_date", "expected_delivery_date", "split_into", "notes", "replacements", "risks",
    "risk_codes", "hold_codes", "exception_types", "warehouses", "expected_ship_key", "risk_key",
    "risk_slip", "watch_at", "updated_at",
)  # fmt: skip
_row_values = operator.itemgetter(*_ROW_COLUMNS)
# Set by every save whatever they were read as: the version and updated_at change with every save, and the
# promise watch writes watch_at and priority without a new version (watch.py _LOOKED_AT), so the values read
# may no longer be the stored ones; every other column changes only with the version, which the save's
# WHERE holds to the one read. The JSON columns too: none is indexed, and the order may hold (and change in
# place) the very lists and dicts read, so a comparison with what was read could miss a change.
_ALWAYS_SET = frozenset(
    {
        "version",
        "updated_at",
        "watch_at",
        "priority",
        *(c.name for c in orders.columns if isinstance(c.type, JsonText)),
    }
)
_SET_ALWAYS = tuple(c in _ALWAYS_SET for c in _ROW_COLUMNS)
_ROW_INDICES = range(len(_ROW_COLUMNS))


@functools.lru_cache(maxsize=256)
def _save_orders(columns: tuple[str, ...]) -> RowsUpdate:
    """_SAVE_ORDER setting these columns (their values, then the guard's), compiled once per set."""
    return RowsUpdate(_SAVE_ORDER, (*columns, "oid", "loaded"))


def _order_updates(saved: list[Order], rows: list[dict]) -> dict[tuple[str, ...], list[tuple]]:
    """The orders' row updates grouped by the columns each sets: the scalar ones whose value differs from the
    one read (hydrate keeps them: _loaded_row) and _ALWAYS_SET; every column of an order not read from its row.
    SQLite rewrites every index on a column an UPDATE sets, changed or not (nine of the orders table's for a
    row set whole): a save that moves the status sets the status, one that records a shipment does not."""
    updates: dict[tuple[str, ...], list[tuple]] = {}
    for order, row in zip(saved, rows, strict=True):
        values = _row_values(row)
        loaded = getattr(order, "_loaded_row", None)
        if loaded is None:
            columns, kept = _ROW_COLUMNS, values
        else:
            moved = [i for i in _ROW_INDICES if _SET_ALWAYS[i] or values[i] != loaded[i]]
            columns, kept = tuple([_ROW_COLUMNS[i] for i in moved]), tuple([values[i] for i in moved])
        updates.setdefault(columns, []).append((*kept, order.order_id, order.loaded_version))
    return updates


_SAVE_LINES = RowsUpdate(
    update(order_lines).where(
        order_lines.c.order_id == bindparam("oid"), order_lines.c.line_no == bindparam("no")
    ),
    ("allocated", "shipped", "delivered", "returned", "oid", "no"),
)
# order_warehouses and order_skus (migration 0017): an order's rows made from its saved row (status,
# expected_ship_key, priority) and lines, so they say what the order says, keyed by the order's seq (each
# order the repository read or added knows it: _seq). As tuples, one statement a batch on PostgreSQL
# (RowsInsert's unnest form), where an INSERT … SELECT of the order's row by its id was one a row.
_WAREHOUSE_ROWS = RowsInsert(
    order_warehouses.insert(), ("seq", "warehouse", "status", "expected_ship_key", "priority")
)
_WAREHOUSE_KEYS = RowsUpdate(
    update(order_warehouses)
    .where(order_warehouses.c.seq == bindparam("s"))
    .values(status=bindparam("st"), expected_ship_key=bindparam("expected"), priority=bindparam("prio")),
    ("st", "expected", "prio", "s"),
)
_NO_WAREHOUSES = order_warehouses.delete().where(
    order_warehouses.c.seq.in_(bindparam("seqs", expanding=True))
)
_SEQS_OF = select(orders.c.order_id, orders.c.seq).where(
    orders.c.order_id.in_(bindparam("ids", expanding=True))
)
# save_many's versions, the rows locked in order id order (the ids given sorted: each row is locked as its id
# is looked up), the ids as one parameter as intake's exposure rows are (db.by_unique_keys).
_VERSIONS_FOR_UPDATE = {
    d: by_unique_keys(
        d, select(orders.c.order_id, orders.c.version).with_for_update(), orders.c.order_id, "ids"
    )
    for d in DIALECTS
}
_NO_SKUS = order_skus.delete().where(order_skus.c.seq == bindparam("s"))
_NO_LINES = order_lines.delete().where(order_lines.c.order_id == bindparam("oid"))


def rows_of(table: Table, order_ids):
    """order_skus' or order_warehouses' rows of these orders: a DELETE."""
    return table.delete().where(table.c.seq.in_(select(orders.c.seq).where(orders.c.order_id.in_(order_ids))))


def sku_rows_of(order_ids):
    """INSERT … SELECT of order_skus' rows for these orders (each SKU of an order once), from the hot
    tables (migration 0017's backfill is the same statement over every order)."""
    lines = (
        select(orders.c.seq, order_lines.c.sku)
        .join(orders, orders.c.order_id == order_lines.c.order_id)
        .where(order_lines.c.order_id.in_(order_ids))
        .distinct()
    )
    return order_skus.insert().from_select(["seq", "sku"], lines)


_SKU_ROWS = sku_rows_of(bindparam("ids", expanding=True))  # sku_rows_of's template: executed with "ids"
# A new order's order_skus rows, one (seq, SKU) tuple each.
_NEW_SKU_ROWS = RowsInsert(order_skus.insert(), ("seq", "sku"))


# What a new order's order_warehouses rows were made from: none (no warehouses).
_NO_ROWS = ("", "", "", 0)


# The promise watch's gauge (every few seconds) and the desk's Today.
_RISK_COUNTS = (
    select(orders.c.risk_codes, func.count())
    .where(orders.c.risk_codes > _EMPTY, orders.c.status.not_in([s.value for s in TERMINAL]))
    .group_by(orders.c.risk_codes)
)


def _warehouse_keys(row: dict) -> tuple[str, str, str, int]:
    """What an order's order_warehouses rows depend on, from its saved row (_order_row): its warehouses
    (" a b "), status, backorder key and priority."""
    return row["warehouses"], row["status"], row["expected_ship_key"], row["priority"]


def _narrowed(query, search: OrderSearch, tables: OrderTables):
    """The search's conditions; each has an index that starts with its column (migrations 0008 and, for
    the archive, 0009), so a page of a narrow search reads about a page of rows, also among 100,000 orders.
    A SKU is the hot tables' join with order_skus (_page) and the archive's lines here."""
    o, lines = tables.orders, tables.lines
    for name in ("external_ref", "customer_id", "channel"):
        if value := getattr(search, name):
            query = query.where(o.c[name] == value)
    if search.sku and tables.archived:  # orders having a line of it: the lines' (sku, order_id) index
        query = query.where(o.c.order_id.in_(select(lines.c.order_id).where(lines.c.sku == search.sku)))
    elif search.sku and _few(search):  # the few orders found by their own index, each looked up by key
        skus = order_skus
        query = query.where(
            select(skus.c.sku).where(skus.c.seq == o.c.seq, skus.c.sku == search.sku).exists()
        )
    if search.created_from is not None:
        query = query.where(o.c.created_at >= search.created_from)
    if search.created_to is not None:
        query = query.where(o.c.created_at < search.created_to)
    return query


def _few(search: OrderSearch) -> bool:
    """Whether the search names something its own index narrows to a few orders (a partner reference, a
    customer, a time range), so a SKU is better checked per order found than walked on its own index."""
    return bool(search.external_ref or search.customer_id or search.created_from or search.created_to)


def _page(tables: OrderTables, *, partner_id: str, status: str, limit: int, listing: Listing):
    """One page of `tables`' orders in the listing's order (limit + 1 rows: the one more says there is more)."""
    o = tables.orders
    query = select(o).limit(limit + 1)
    seq, expected = o.c.seq, o.c.expected_ship_key  # the expected ship date, or NO_DATE (Order.queue_keys)
    priority = o.c.priority
    by_warehouse = False  # walking the warehouse's rows of the status in the queue's order (order_warehouses)
    search = listing.search
    if not tables.archived and search.sku and not _few(search):
        # A SKU's orders walked in seq order on (sku, seq), stopping at a page: one order_skus row per order
        # and SKU, so the join repeats no order.
        query = query.select_from(order_skus.join(o, o.c.seq == order_skus.c.seq))
        query = query.where(order_skus.c.sku == search.sku)
        seq = order_skus.c.seq
    elif not tables.archived and listing.warehouse and status and not listing.at_risk:
        # A queue of one status narrowed to a warehouse (the backorders at WH-2, soonest expected first): its
        # rows on (warehouse, status, the queue's sort key, seq), in the queue's order.
        w = order_warehouses
        query = query.select_from(w.join(o, o.c.seq == w.c.seq))
        query = query.where(w.c.warehouse == listing.warehouse, w.c.status == status)
        seq, expected, priority, by_warehouse = w.c.seq, w.c.expected_ship_key, w.c.priority, True
    # The exceptions queue is a few orders among many: SQLite, unable to tell, would walk the whole table in
    # seq order; "seq + 0" orders the same but lets it find the few by their index first.
    if listing.open_exception:
        seq = seq + 0
    if listing.at_risk:  # the at-risk queue: soonest promise first, then the largest slip, then first come
        # risk_key > "": a range of the index the queue is sorted by (!= "" would walk every order)
        promised = o.c.risk_key  # the promised date, NO_DATE for none, while at risk (Order.queue_keys)
        query = query.where(promised > _EMPTY).order_by(promised, o.c.risk_slip.desc(), o.c.seq)
        if listing.risk:
            query = query.where(o.c.risk_codes.like(f"% {listing.risk} %"))
        if listing.risk_after is not None:
            date, slip, last = listing.risk_after
            query = query.where(
                or_(
                    promised > date,
                    and_(promised == date, o.c.risk_slip < slip),
                    and_(promised == date, o.c.risk_slip == slip, o.c.seq > last),
                )
            )
    elif listing.by_priority:  # the desk's queue: highest priority first, then first come
        query = query.order_by(priority.desc(), seq)
        if listing.after is not None:
            above, last = listing.after
            query = query.where(or_(priority < above, and_(priority == above, seq > last)))
    elif listing.order_by == "expected":  # backorders: the soonest expected ship date first, then first come
        query = query.order_by(expected, seq)
        if listing.after is not None:
            date, last = listing.after
            query = query.where(or_(expected > date, and_(expected == date, seq > last)))
    elif listing.order_by == "oldest":
        query = query.order_by(seq)
        if listing.after is not None:
            query = query.where(seq > listing.after[1])
    else:
        query = query.order_by(seq.desc())
        if listing.after is not None:
            query = query.where(seq < listing.after[1])
    if partner_id:
        query = query.where(o.c.partner_id == partner_id)
    if status and not by_warehouse:
        query = query.where(o.c.status == status)
    query = _narrowed(query, listing.search, tables)
    if listing.hold_reason:
        # hold_reasons is a JSON list serialised by json.dumps on both backends: match the quoted code.
        code = listing.hold_reason.replace("_", "\\_")
        query = query.where(cast(o.c.hold_reasons, Text).like(f'%"code": "{code}"%', escape="\\"))
    if listing.open_exception:  # the exceptions queue: the index on exception_types skips the others
        query = query.where(o.c.exception_types > _EMPTY)  # a range, so the index is searched, not scanned
        if listing.exception_type:
            query = query.where(
                o.c.exception_types.like(f"% {_escaped(listing.exception_type)} %", escape="\\")
            )
    if listing.warehouse and tables.archived:
        query = query.where(o.c.warehouses.like(f"% {_escaped(listing.warehouse)} %", escape="\\"))
    elif listing.warehouse and not by_warehouse:
        # Each order the queue's own index walks to, looked up by (seq, warehouse) from that index's entry.
        w = order_warehouses
        query = query.where(
            select(w.c.seq).where(w.c.seq == o.c.seq, w.c.warehouse == listing.warehouse).exists()
        )
    return query


@functools.cache
def _awaiting_stock(whole: bool, include_scheduled: bool):
    """OrderRepository.awaiting_stock's query, built once per form: the orders' ids or (`whole`) their rows,
    `n` of them (a parameter). Each status is read on its own, highest priority first then first come, from
    ix_orders_status_priority in that order, so a read stops after `n` entries: one ORDER BY over both
    statuses (confirmed first) is an order no index has: it read and sorted every confirmed order, 14 ms a
    pass on PostgreSQL in the bench, where the allocator runs behind the orders coming in."""
    statuses = [s.value for s in AWAITING_STOCK] if include_scheduled else [Status.CONFIRMED.value]
    columns = list(orders.columns) if whole else [orders.c.order_id, orders.c.priority, orders.c.seq]
    by_priority = (orders.c.priority.desc(), orders.c.seq)
    batch = bindparam("n", type_=Integer)
    if len(statuses) == 1:
        return select(*columns).where(orders.c.status == statuses[0]).order_by(*by_priority).limit(batch)
    tiers = union_all(
        *(
            # a subquery each: SQLite takes no ORDER BY or LIMIT inside a compound SELECT's parts
            select(
                select(*columns, literal_column(str(tier)).label("tier"))
                .where(orders.c.status == status)
                .order_by(*by_priority)
                .limit(batch)
                .subquery()
            )
            for tier, status in enumerate(statuses)  # AWAITING_STOCK: confirmed first
        )
    ).subquery()
    return (
        select(*(tiers.c[c.name] for c in columns))
        .order_by(tiers.c.tier, tiers.c.priority.desc(), tiers.c.seq)
        .limit(batch)
    )


def _escaped(token: str) -> str:
    """A token for LIKE: its own % and _ match only themselves."""
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class QueueCounts:
    """OrderRepository.queue_counts: each queue's size and, per code, how many of its orders have it (an
    order with two reasons counts under both)."""

    held: int
    held_by_reason: dict[str, int]
    exceptions: int
    exceptions_by_type: dict[str, int]
    at_risk: int
    at_risk_by_risk: dict[str, int]
    backorders: int


def _per_token(rows) -> tuple[int, dict[str, int]]:
    """(total, per code) of (tokens, count) rows grouped by a queue column."""
    total, per_code = 0, {}
    for codes, n in rows:
        total += n
        for code in codes.split():
            per_code[code] = per_code.get(code, 0) + n
    return total, per_code


class OrderRepository(Repository):
    """Loads and saves whole orders; saves are guarded by the version read.

    `next_look(order)`: when the promise watch next needs to look at the order as saved (Watch.next_look,
    wired by the service: Watch.repository); without it every save leaves the order due at once."""

    def __init__(self, conn, next_look: Callable[[Order], dt.datetime | None] | None = None):
        super().__init__(conn)
        self.next_look = next_look

    def _watch_at(self, order: Order) -> dt.datetime | None:
        order.watch_at = DUE_NOW if self.next_look is None else self.next_look(order)
        return order.watch_at

    async def add(self, order: Order) -> None:
        await self.add_many([order])

    async def add_many(self, new_orders: list[Order]) -> None:
        """New orders with their lines and history: three statements however many orders."""
        rows = [_order_row(o, self._watch_at(o)) for o in new_orders]
        seqs = await _INSERT_ORDERS.returned(
            self.conn,
            [
                _order_values(
                    {
                        "order_id": o.order_id,
                        "partner_id": o.partner_id,
                        "channel": o.channel,
                        "external_ref": o.external_ref,
                        "customer_id": o.customer_id,
                        "currency": o.currency,
                        "split_from": o.split_from,
                        "created_at": o.created_at,
                        **row,
                    }
                )
                for o, row in zip(new_orders, rows, strict=True)
            ],
        )
        seq_of = dict(seqs)
        for order in new_orders:
            order._seq = seq_of[order.order_id]
        await _INSERT_LINES.execute(
            self.conn, [_line_row(o.order_id, i, line) for o in new_orders for i, line in enumerate(o.lines)]
        )
        await _INSERT_HISTORY.execute(
            self.conn, [_history_row(o, t) for o in new_orders for t in o.transitions]
        )
        await _NEW_SKU_ROWS.execute(
            self.conn,
            [(o._seq, sku) for o in new_orders for sku in dict.fromkeys(ln.sku for ln in o.lines)],
        )
        # A new order has no order_warehouses rows yet: nothing to delete (and for most nothing to write).
        await self._write_warehouses(new_orders, rows, [_NO_ROWS] * len(new_orders))

    async def _write_warehouses(
        self, saved: list[Order], saved_rows: list[dict], loaded: list[tuple[str, str, str, int] | None]
    ) -> None:
        """Saved orders' order_warehouses rows, at most three statements however many orders: rewritten when
        an order's warehouses changed, their keys updated when only its status, expected date or priority did
        (`saved_rows`: each order's row as just saved; `loaded`: what each order's rows were made from; None:
        unknown, rewritten)."""
        await self._know_seqs(saved)
        cleared: list[int] = []
        rows: list[tuple[int, str, str, str, int]] = []
        keys: list[tuple[str, str, int, int]] = []
        for order, saved_row, was in zip(saved, saved_rows, loaded, strict=True):
            now = _warehouse_keys(saved_row)
            if now != was:
                warehouses, status, expected, priority = now
                if was is not None and was[0] == warehouses:
                    if warehouses:
                        keys.append((status, expected, priority, order._seq))
                else:
                    if was is None or was[0]:
                        cleared.append(order._seq)
                    rows += [(order._seq, w, status, expected, priority) for w in warehouses.split()]
            order._loaded_warehouse_keys = now
        if cleared:
            await self.conn.execute(_NO_WAREHOUSES, {"seqs": cleared})
        await _WAREHOUSE_ROWS.execute(self.conn, rows)
        await _WAREHOUSE_KEYS.execute(self.conn, keys)

    async def _know_seqs(self, saved: list[Order]) -> None:
        """Each order's seq (order_warehouses' and order_skus' key): known to every order this repository read
        or added; read for any other (one statement)."""
        unknown = [o for o in saved if getattr(o, "_seq", None) is None]
        if unknown:
            found = await self.conn.execute(_SEQS_OF, {"ids": [o.order_id for o in unknown]})
            seq_of = {order_id: seq for order_id, seq in found}
            for order in unknown:
                order._seq = seq_of[order.order_id]

    async def save(self, order: Order) -> None:
        if order.archived:  # a late change of an archived order: back to the hot tables first, then saved
            from services.orders.archive.store import OrderArchive  # the archive builds on this module

            await OrderArchive(self.conn).restore(order)
        row = _order_row(order, self._watch_at(order))
        ((columns, values),) = _order_updates([order], [row]).items()
        result = await _save_orders(columns).execute(self.conn, values)
        if result.rowcount != 1:
            raise Conflict(f"order {order.order_id} was changed concurrently; retry")
        if order.lines_changed:  # a change request: the lines are rewritten (numbers follow the new order)
            await self.conn.execute(_NO_LINES, {"oid": order.order_id})
            await _INSERT_LINES.execute(
                self.conn, [_line_row(order.order_id, i, line) for i, line in enumerate(order.lines)]
            )
            await self._know_seqs([order])
            await self.conn.execute(_NO_SKUS, {"s": order._seq})
            await self.conn.execute(_SKU_ROWS, {"ids": [order.order_id]})
            order.lines_changed = False
        else:  # only the lines whose counts moved since the load (most events touch none)
            changed = _moved_lines(order)
            await _SAVE_LINES.execute(self.conn, changed)
        order._loaded_counts = [_counts(line) for line in order.lines]
        await self._write_warehouses([order], [row], [getattr(order, "_loaded_warehouse_keys", None)])
        await self._append_history(order)

    async def _append_history(self, order: Order) -> None:
        await _INSERT_HISTORY.execute(self.conn, [_history_row(order, t) for t in order.transitions])

    async def save_many(self, changed: list[Order]) -> None:
        """Orders changed together (the allocator's chunk), as `save` would save each, in a few statements
        for all of them: their rows, the lines that moved, their order_warehouses rows and their history.
        Each row is guarded by the version read, as in `save`: Conflict when any of them was changed
        meanwhile (the caller then saves each on its own, from a fresh read). An archived order or one
        with new lines is saved on its own."""
        if len(changed) < 2 or len({o.order_id for o in changed}) != len(changed):
            for order in changed:
                await self.save(order)
            return
        together = [o for o in changed if not (o.archived or o.lines_changed)]
        for order in changed:
            if order.archived or order.lines_changed:
                await self.save(order)
        if not together:
            return
        sane = self.conn.dialect.supports_sane_multi_rowcount
        if not sane:
            # asyncpg gives no row count for a statement run with many rows: the rows are locked first (in
            # one order, no deadlock between two such batches) and their versions compared with those read.
            query, encode = _VERSIONS_FOR_UPDATE[self.conn.dialect.name]
            ids = sorted(o.order_id for o in together)
            held = {r.order_id: r.version for r in await self.conn.execute(query, {"ids": encode(ids)})}
            moved = [o.order_id for o in together if held.get(o.order_id) != o.loaded_version]
            if moved:
                raise Conflict(f"orders {', '.join(moved)} were changed concurrently; retry")
        rows = [_order_row(o, self._watch_at(o)) for o in together]
        updated = 0
        for columns, values in _order_updates(together, rows).items():
            updated += (await _save_orders(columns).execute(self.conn, values)).rowcount
        if sane and updated != len(together):
            raise Conflict(
                f"{len(together) - updated} of orders {', '.join(o.order_id for o in together)} "
                "were changed concurrently; retry"
            )
        lines = [row for o in together for row in _moved_lines(o)]
        await _SAVE_LINES.execute(self.conn, lines)
        for order in together:
            order._loaded_counts = [_counts(line) for line in order.lines]
        await self._write_warehouses(
            together, rows, [getattr(o, "_loaded_warehouse_keys", None) for o in together]
        )
        await _INSERT_HISTORY.execute(
            self.conn, [_history_row(o, t) for o in together for t in o.transitions]
        )

    async def get(self, order_id: str, partner_id: str = "") -> Order | None:
        if partner_id:
            found = await self.conn.execute(_ORDER_OF_PARTNER, {"oid": order_id, "pid": partner_id})
        else:
            found = await self.conn.execute(_ORDER, {"oid": order_id})
        row = found.mappings().first()
        if row is None:  # archived? (README "Archive": an archived order is still found by its id)
            from services.orders.archive.store import OrderArchive  # the archive builds on this module

            return await OrderArchive(self.conn).get(order_id, partner_id)
        return (await self._hydrate([row]))[0]

    async def get_many(self, order_ids: list[str]) -> list[Order]:
        """The orders of these ids that exist, in the order of the ids, in two queries."""
        if not order_ids:
            return []
        query, encode = _ORDERS_OF[self.conn.dialect.name]
        found = await self.conn.execute(query, {"ids": encode(list(order_ids))})
        rows = {r["order_id"]: r for r in found.mappings().all()}  # fetched at once, not row by row
        return await self._hydrate([rows[i] for i in dict.fromkeys(order_ids) if i in rows])

    async def list(
        self, *, partner_id: str, status: str, limit: int, listing: Listing
    ) -> tuple[list[Order], str]:
        """One page of orders in the listing's order; returns the orders and the next page's cursor.

        A search (any of its filters: a partner reference, a customer, …) looks in the archive too and
        merges both by the listing's keys (an archived order keeps its seq, and no hot order ever gets an
        archived one's: services/orders/archive/store.py); a plain listing reads the hot tables only."""
        where = {"partner_id": partner_id, "status": status, "limit": limit, "listing": listing}
        if self.conn.dialect.name == "postgresql" and listing.narrowed:
            # asyncpg prepares statements; after five runs PostgreSQL may keep a generic plan, blind to
            # how rare the searched value is (measured: a rare SKU's page went from 7 ms to 90 ms).
            await in_transaction_block(self.conn)  # SET LOCAL lasts to the end of a transaction block
            await self.conn.execute(_CUSTOM_PLANS)
        found = [(row, HOT) for row in (await self.conn.execute(_page(HOT, **where))).mappings().all()]
        if listing.narrowed:
            archived = (await self.conn.execute(_page(ARCHIVE, **where))).mappings().all()
            found += [(row, ARCHIVE) for row in archived]
            if listing.at_risk:
                found.sort(
                    key=lambda f: (
                        f[0]["requested_delivery_date"] or Listing.NO_DATE,
                        -f[0]["risk_slip"],
                        f[0]["seq"],
                    )
                )
            elif listing.by_priority:
                found.sort(key=lambda f: (-f[0]["priority"], f[0]["seq"]))
            elif listing.order_by == "expected":
                found.sort(key=lambda f: (f[0]["expected_ship_date"] or Listing.NO_DATE, f[0]["seq"]))
            elif listing.order_by == "oldest":
                found.sort(key=lambda f: f[0]["seq"])
            else:
                found.sort(key=lambda f: -f[0]["seq"])
        more = len(found) > limit
        found = found[:limit]
        cursor = ""
        if more and found:
            last = found[-1][0]
            cursor = listing.cursor_after(
                last["priority"],
                last["seq"],
                promised=last["requested_delivery_date"],
                slip=last["risk_slip"],
                expected=last["expected_ship_date"],
            )
        hydrated = {}
        for tables in (HOT, ARCHIVE):
            rows = [row for row, where_from in found if where_from is tables]
            hydrated.update({o.order_id: o for o in await hydrate(self.conn, rows, tables)})
        return [hydrated[row["order_id"]] for row, _ in found], cursor

    async def risk_counts(self) -> tuple[int, dict[str, int]]:
        """Open orders the promise watch sees at risk now, and per risk code (an order with two counts in both)."""
        return _per_token((await self.conn.execute(_RISK_COUNTS)).all())

    async def queue_counts(self) -> QueueCounts:
        """The desk's work queues' sizes (Today): held orders (and per hold reason), open orders with an open
        exception (and per type), at risk (and per risk) and backordered (scheduled): COUNTs grouped by the
        queue columns over their indexes, never an order read whole."""
        o = orders
        held = await self.conn.execute(
            select(o.c.hold_codes, func.count()).where(o.c.status == _HELD).group_by(o.c.hold_codes)
        )
        exceptions = await self.conn.execute(
            select(o.c.exception_types, func.count())
            .where(o.c.exception_types > _EMPTY)
            .group_by(o.c.exception_types)
        )
        at_risk, per_risk = await self.risk_counts()
        backorders = await self.conn.execute(
            select(func.count()).select_from(o).where(o.c.status == Status.SCHEDULED.value)
        )
        held_total, per_reason = _per_token(held.all())
        exception_total, per_type = _per_token(exceptions.all())
        return QueueCounts(
            held=held_total,
            held_by_reason=per_reason,
            exceptions=exception_total,
            exceptions_by_type=per_type,
            at_risk=at_risk,
            at_risk_by_risk=per_risk,
            backorders=backorders.scalar_one(),
        )

    async def awaiting_stock(self, *, limit: int, include_scheduled: bool) -> list[str]:
        """Order ids to reserve stock for: confirmed ones before retries of backordered (scheduled) ones,
        each highest priority first, then first come. New orders never wait behind a long tail of
        backorders (inventory fills those by priority itself when stock arrives)."""
        rows = await self.conn.execute(_awaiting_stock(False, include_scheduled), {"n": limit})
        return [r.order_id for r in rows]

    async def awaiting_stock_orders(self, *, limit: int, include_scheduled: bool) -> list[Order]:
        """The orders awaiting_stock names, in its order, whole: their rows in the same read."""
        found = await self.conn.execute(_awaiting_stock(True, include_scheduled), {"n": limit})
        return await self._hydrate(found.mappings().all())

    async def closures_of_customer(self, customer_id: str) -> list[OrderClosure]:
        """Every order of the customer, hot or archived, with its status and, when closed, when it closed
        (its last history entry into that status): what the personal data retention rule needs."""
        found = []
        for tables in (HOT, ARCHIVE):
            o, h = tables.orders, tables.history
            closing = (
                select(h.c.order_id, func.max(h.c.at).label("closed_at"))
                .join(o, o.c.order_id == h.c.order_id)
                .where(o.c.customer_id == customer_id, h.c.status == o.c.status)
                .group_by(h.c.order_id)
                .subquery()
            )
            rows = await self.conn.execute(
                select(o.c.order_id, o.c.status, closing.c.closed_at)
                .outerjoin(closing, closing.c.order_id == o.c.order_id)
                .where(o.c.customer_id == customer_id)
            )
            found += [
                OrderClosure(
                    r.order_id, r.status, _aware(r.closed_at) if r.status in CLOSED_STATUSES else None
                )
                for r in rows
            ]
        return found

    async def get_wherever(self, order_ids: list[str]) -> list[Order]:
        """These orders from the hot tables or the archive (each says which: `archived`), as they are there:
        read for an erasure, which changes an archived order in place rather than bringing it back."""
        found = await self.get_many(order_ids)
        missing = sorted(set(order_ids) - {o.order_id for o in found})
        if missing:
            a = ARCHIVE.orders
            rows = (await self.conn.execute(select(a).where(a.c.order_id.in_(missing)))).mappings().all()
            found += await hydrate(self.conn, rows, ARCHIVE)
        return found

    async def save_erasure(self, order: Order) -> None:
        """An order whose personal data was erased (Order.erase_personal_data), where it is (hot or archived):
        only the fields that hold some, and the version (guarded, like save); updated_at stays (no business
        change: the archive's age and the books' dates are not moved)."""
        table = (ARCHIVE if order.archived else HOT).orders
        result = await self.conn.execute(
            update(table)
            .where(table.c.order_id == order.order_id, table.c.version == order.loaded_version)
            .values(
                ship_to=order.ship_to,
                change_log=[c.to_json() for c in order.change_log],
                exceptions=[e.to_json() for e in order.exceptions],
                notes=[n.to_json() for n in order.notes],
                version=order.version,
            )
        )
        if result.rowcount != 1:
            raise Conflict(f"order {order.order_id} was changed concurrently; retry")

    async def scrub_reasons(self, order: Order, scrub) -> int:
        """The order's free-text reasons kept beside the aggregate (status history, the KPI ledger's copy),
        hot or archived, passed through `scrub(text)`; codes, quantities and times stay. Returns the rows
        changed."""
        from services.orders.kpi.store import FACTS

        tables = ARCHIVE if order.archived else HOT
        changed = 0
        for table in (tables.history, FACTS[tables.archived]):
            key = [c for c in table.primary_key.columns if c.name != "order_id"]
            rows = await self.conn.execute(
                select(*key, table.c.reason).where(table.c.order_id == order.order_id, table.c.reason != "")
            )
            for row in rows.all():
                reason = scrub(row.reason)
                if reason != row.reason:
                    await self.conn.execute(
                        update(table)
                        .where(table.c.order_id == order.order_id, *[c == getattr(row, c.name) for c in key])
                        .values(reason=reason)
                    )
                    changed += 1
        return changed

    async def _hydrate(self, rows) -> list[Order]:
        return await hydrate(self.conn, rows, HOT)


async def hydrate(conn, rows, tables: OrderTables) -> list[Order]:
    """Whole orders from their rows in `tables` (the hot ones or the archive's): one more query."""
    if not rows:
        return []
    ids = [r["order_id"] for r in rows]
    lines: dict[str, list[Line]] = {i: [] for i in ids}
    history: dict[str, list[HistoryEntry]] = {i: [] for i in ids}
    query, encode = _CHILDREN[tables.archived, conn.dialect.name]
    for r in (await conn.execute(query, {"ids": encode(ids)})).mappings().all():
        if r["kind"] == 0:
            lines[r["order_id"]].append(
                Line(
                    sku=r["sku"],
                    quantity=r["quantity"],
                    unit_price=Decimal(r["unit_price"]),
                    allocated=r["allocated"],
                    shipped=r["shipped"],
                    delivered=r["delivered"],
                    returned=r["returned"],
                )
            )
        else:
            history[r["order_id"]].append(HistoryEntry(Status(r["status"]), r["at"], r["actor"], r["reason"]))
    result = []
    for r in rows:
        order = Order(
            order_id=r["order_id"],
            partner_id=r["partner_id"],
            channel=r["channel"],
            external_ref=r["external_ref"],
            customer_id=r["customer_id"],
            ship_to=r["ship_to"],
            lines=lines[r["order_id"]],
            requested_delivery_date=r["requested_delivery_date"],
            payment_terms=r["payment_terms"],
            currency=r["currency"],
            priority=r["priority"],
            status=Status(r["status"]),
            version=r["version"],
            hold_reasons=r["hold_reasons"],
            history=history[r["order_id"]],
            allocations=[Allocation(*a) for a in r["allocations"]],
            shipments={s["shipment_id"]: ShipmentView(**s) for s in r["shipments"]},
            proposals=r["proposals"],
            urgent=r["urgent"],
            change_log=[ChangeRecord.from_json(c) for c in r["change_log"]],
            exceptions=[OrderException.from_json(e) for e in r["exceptions"]],
            expected_ship_date=r["expected_ship_date"],
            expected_delivery_date=r["expected_delivery_date"],
            split_from=r["split_from"],
            split_into=r["split_into"],
            notes=[Note.from_json(n) for n in r["notes"]],
            replacements=[Replacement.from_json(x) for x in r["replacements"]],
            risks=[Risk.from_json(x) for x in r["risks"]],
            created_at=r["created_at"],
            loaded_version=r["version"],
            archived=tables.archived,
            watch_at=r["watch_at"],
        )
        order._loaded_counts = [_counts(line) for line in order.lines]  # lets save() skip unchanged lines
        order._loaded_row = _row_values(r)  # lets save() set only the columns that changed
        order._seq = r["seq"]  # its order_skus and order_warehouses rows' key (an archived order keeps it)
        # What its order_warehouses rows were made from (save() touches them only when it changes); an
        # archived order has none until it is restored.
        order._loaded_warehouse_keys = (
            None if tables.archived else (r["warehouses"], r["status"], r["expected_ship_key"], r["priority"])
        )
        result.append(order)
    return result
