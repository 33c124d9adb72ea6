"""The notifier's tables and repository (SQLAlchemy Core): partners' feeds, endpoints, deliveries, attempts.

- `feed`: every event about a partner's orders, numbered 1, 2, 3 ... per partner (`feed_heads` holds
  the counter; its row is updated first, so concurrent appends for one partner queue on its lock).
  An entry keeps the event as published (`event`, protobuf) and its JSON body is made when it is read
  (`rendered`): an entry no partner reads costs no mapping, and the append stays cheap while orders
  pour in. `body` holds the JSON itself only where it was written out (an erasure, an entry from
  before migration 0008); then `event` is NULL.
- `order_partners`: order id -> partner, learnt from order events (order.received always comes first),
  and the order's own event counter (the order sequence a receiver can order by).
- `endpoints`: a partner's webhook targets; `cursor` is the last feed sequence the endpoint has
  taken on (turned into delivery rows). (lease_owner/lease_until are unused: one notifier replica
  delivers at a time, under the runtime's singleton lease.)
- `deliveries` (one per endpoint and feed sequence) and `delivery_attempts` (the log, per attempt).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from orderdesk import ids, personal_data, sealing
from orderdesk.db import (
    DIALECTS,
    Repository,
    RowsInsert,
    UtcDateTime,
    by_unique_keys,
    insert_ignoring_conflicts,
    utcnow,
)
from orderdesk.retention import Prunable
from orderdesk.v1 import events_pb2
from services.notifier import domain

metadata = MetaData()

order_partners = Table(
    "order_partners",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("partner_id", String(64), nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
)

feed_heads = Table(
    "feed_heads",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("last_sequence", BigInteger, nullable=False),
)

feed = Table(
    "feed",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("order_sequence", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("appended_at", UtcDateTime, nullable=False),
    Column("body", Text, nullable=False),  # "" while `event` holds the entry (see rendered())
    Column("event", LargeBinary, nullable=True),  # migration 0008: the Event as published
    Index("ix_feed_appended", "appended_at"),  # migration 0004: retention walks it
    Index("ix_feed_order", "order_id"),  # migration 0006: an order's entries (erasure)
)

endpoints = Table(
    "endpoints",
    metadata,
    Column("endpoint_id", String(40), primary_key=True),
    Column("partner_id", String(64), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("event_types", Text, nullable=False),  # space-separated patterns
    # Needed to sign, so kept sealed (orderdesk/sealing.py; migration 0007), never returned after create/rotate.
    Column("secret", Text, nullable=False),
    # The secret a rotation replaced: it signs beside the new one until previous_secret_until (sealed too).
    Column("previous_secret", Text, nullable=False, server_default=""),
    Column("previous_secret_until", UtcDateTime, nullable=True),
    Column("status", String(16), nullable=False),
    Column("disabled_reason", String(500), nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("lease_owner", String(64), nullable=False),
    Column("lease_until", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_endpoints_partner", "partner_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("endpoint_id", String(40), nullable=False),
    Column("partner_id", String(64), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("total_attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=False),
    Column("last_error", String(500), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
    UniqueConstraint("endpoint_id", "sequence", name="uq_deliveries_endpoint_sequence"),
    Index("ix_deliveries_endpoint_status", "endpoint_id", "status", "sequence"),
    Index("ix_deliveries_endpoint_order", "endpoint_id", "order_id", "status", "sequence"),
    Index("ix_deliveries_status_due", "status", "next_attempt_at"),
    Index("ix_deliveries_updated", "updated_at"),  # migration 0004: retention walks it
    Index(
        "ix_deliveries_order", "order_id", "created_at"
    ),  # migration 0005: an order's deliveries (the desk)
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("delivery_id", String(40), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("error", String(500), nullable=False),
    Column("response_excerpt", String(500), nullable=False),
    Index("ix_delivery_attempts_at", "at"),  # migration 0004: retention walks it
)


def _counter(table: Table, key: Column) -> tuple[Any, Any]:
    """The statements of a sequence counter (a row's `last_sequence`, found by `key` = :key): bump it
    by one and return it, make the row."""
    row = table.update().where(key == bindparam("key"))
    return (
        row.values(last_sequence=table.c.last_sequence + 1).returning(table.c.last_sequence),
        table.insert(),
    )


# Hot-path statements, built once (SQLAlchemy then compiles each once) and executed with parameters.
# The per-order counter (order_sequence) and the per-partner feed head (sequence):
_BUMP_ORDER, _MAKE_ORDER = _counter(order_partners, order_partners.c.order_id)
_BUMP_HEAD, _MAKE_HEAD = _counter(feed_heads, feed_heads.c.partner_id)
_INSERT_FEED = feed.insert()
# A batch's feed rows: one executemany of plain tuples (orderdesk.db.RowsInsert), appended_at once.
_FEED_COLUMNS = (
    "partner_id",
    "sequence",
    "event_id",
    "type",
    "order_id",
    "order_sequence",
    "occurred_at",
    "event",
)
_INSERT_FEED_ROWS = RowsInsert(_INSERT_FEED, _FEED_COLUMNS, constants=("appended_at", "body"))


def _set_counters(dialect: str, table: Table, key: str) -> Any:
    """A batch's counters written back in one statement: new rows made, known ones set to :last_sequence."""
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    return statement.on_conflict_do_update(
        index_elements=[key], set_={"last_sequence": statement.excluded.last_sequence}
    )


_SET_COUNTERS = {
    dialect: (
        RowsInsert(
            _set_counters(dialect, order_partners, "order_id"), ("order_id", "partner_id", "last_sequence")
        ),
        RowsInsert(_set_counters(dialect, feed_heads, "partner_id"), ("partner_id", "last_sequence")),
    )
    for dialect in DIALECTS
}
# The order's counter bumped and its partner read in one statement (an event that names no partner).
_BUMP_ORDER_OF_PARTNER = (
    order_partners.update()
    .where(order_partners.c.order_id == bindparam("key"))
    .values(last_sequence=order_partners.c.last_sequence + 1)
    .returning(order_partners.c.last_sequence, order_partners.c.partner_id)
)


# A batch's counters, read once: its orders' and its partners', each read with its keys in one parameter
# (db.by_unique_keys): an expanding IN is rendered anew for every number of keys (SQLite, 5 to 24 keys: 67 ->
# 52 us of CPU per read; two reads every batch).
_BATCH_READS = {
    dialect: (
        by_unique_keys(
            dialect,
            select(order_partners.c.order_id, order_partners.c.partner_id, order_partners.c.last_sequence),
            order_partners.c.order_id,
            "keys",
        ),
        by_unique_keys(
            dialect,
            select(feed_heads.c.partner_id, feed_heads.c.last_sequence),
            feed_heads.c.partner_id,
            "keys",
        ),
    )
    for dialect in DIALECTS
}
_PARTNERS_OF = select(order_partners.c.order_id, order_partners.c.partner_id).where(
    order_partners.c.order_id.in_(bindparam("keys", expanding=True))
)

_EARLIER = deliveries.alias("earlier")
# Each order's oldest pending delivery (see heads()).
_HEADS = (
    select(deliveries, feed.c.body, feed.c.event, feed.c.order_sequence)
    .join(feed, and_(feed.c.partner_id == deliveries.c.partner_id, feed.c.sequence == deliveries.c.sequence))
    .where(
        deliveries.c.endpoint_id == bindparam("key"),
        deliveries.c.status == "pending",
        ~exists().where(
            _EARLIER.c.endpoint_id == deliveries.c.endpoint_id,
            _EARLIER.c.order_id == deliveries.c.order_id,
            _EARLIER.c.status == "pending",
            _EARLIER.c.sequence < deliveries.c.sequence,
        ),
    )
    .order_by(deliveries.c.sequence)
    .limit(bindparam("limit"))
)
# Across all active endpoints: each order's oldest pending delivery that is due, at most `per_endpoint`
# per endpoint (the earliest due first), so an endpoint with many retries due cannot crowd out the others.
_DUE_RANKED = (
    select(
        deliveries.c.delivery_id,
        func.row_number()
        .over(
            partition_by=deliveries.c.endpoint_id,
            order_by=(deliveries.c.next_attempt_at, deliveries.c.sequence),
        )
        .label("rank"),
    )
    .join(
        endpoints, and_(endpoints.c.endpoint_id == deliveries.c.endpoint_id, endpoints.c.status == "active")
    )
    .where(
        deliveries.c.status == "pending",
        deliveries.c.next_attempt_at <= bindparam("now"),
        ~exists().where(
            _EARLIER.c.endpoint_id == deliveries.c.endpoint_id,
            _EARLIER.c.order_id == deliveries.c.order_id,
            _EARLIER.c.status == "pending",
            _EARLIER.c.sequence < deliveries.c.sequence,
        ),
    )
    .subquery()
)
_DUE_HEADS = (
    select(
        deliveries,
        feed.c.body,
        feed.c.event,
        feed.c.order_sequence,
        endpoints.c.url,
        endpoints.c.secret,
        endpoints.c.previous_secret,
        endpoints.c.previous_secret_until,
    )
    .join(_DUE_RANKED, _DUE_RANKED.c.delivery_id == deliveries.c.delivery_id)
    .join(feed, and_(feed.c.partner_id == deliveries.c.partner_id, feed.c.sequence == deliveries.c.sequence))
    .join(endpoints, endpoints.c.endpoint_id == deliveries.c.endpoint_id)
    .where(_DUE_RANKED.c.rank <= bindparam("per_endpoint"))
    .order_by(deliveries.c.next_attempt_at, deliveries.c.sequence)
)
# Only a head waiting for its retry has a next attempt in the future: the earliest is the next wake-up.
_NEXT_DUE = select(func.min(deliveries.c.next_attempt_at)).where(
    deliveries.c.status == "pending", deliveries.c.next_attempt_at > bindparam("now")
)
# Feed entries not yet taken on by the active endpoints of their partner (up to `batch` per endpoint).
_NOT_TAKEN_ON = (
    select(
        endpoints.c.endpoint_id,
        endpoints.c.event_types,
        endpoints.c.cursor,
        feed.c.partner_id,
        feed.c.sequence,
        feed.c.event_id,
        feed.c.type,
        feed.c.order_id,
        feed.c.occurred_at,
    )
    .join(feed_heads, feed_heads.c.partner_id == endpoints.c.partner_id)
    .join(
        feed,
        and_(
            feed.c.partner_id == endpoints.c.partner_id,
            feed.c.sequence > endpoints.c.cursor,
            feed.c.sequence <= endpoints.c.cursor + bindparam("batch"),
        ),
    )
    .where(endpoints.c.status == "active", endpoints.c.cursor < feed_heads.c.last_sequence)
    .order_by(endpoints.c.endpoint_id, feed.c.sequence)
)
_ENDPOINT = select(endpoints).where(endpoints.c.endpoint_id == bindparam("key"))
_FEED_AFTER = (
    select(feed)
    .where(feed.c.partner_id == bindparam("key"), feed.c.sequence > bindparam("after"))
    .order_by(feed.c.sequence)
    .limit(bindparam("limit"))
)
_MOVE_CURSOR = (
    update(endpoints)
    .where(endpoints.c.endpoint_id == bindparam("key"), endpoints.c.cursor == bindparam("seen"))
    .values(cursor=bindparam("to"))
)
_INSERT_ATTEMPT = delivery_attempts.insert()
_AFTER_ATTEMPT = (
    update(deliveries)
    .where(deliveries.c.delivery_id == bindparam("key"))
    .values(
        status=bindparam("new_status"),
        attempts=bindparam("round"),
        total_attempts=bindparam("total"),
        next_attempt_at=bindparam("next_at"),
        last_status_code=bindparam("code"),
        last_error=bindparam("err"),
        updated_at=bindparam("now"),
        delivered_at=bindparam("done_at"),
    )
)

ACTIVE, PAUSED, DISABLED = "active", "paused", "disabled"
PENDING, DELIVERED, FAILED, PARKED = "pending", "delivered", "failed", "parked"
DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED, PARKED)

# The delivery loop's reads each pass, built once too.
_EXISTING_DELIVERIES = select(deliveries.c.delivery_id).where(
    deliveries.c.delivery_id.in_(bindparam("keys", expanding=True))
)
_COUNT_BY_STATUS = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
_PARTNERS_WITH_ACTIVE = select(endpoints.c.partner_id).where(endpoints.c.status == ACTIVE).distinct()
_LAG = (
    select(func.max(feed_heads.c.last_sequence - endpoints.c.cursor))
    .select_from(endpoints.join(feed_heads, feed_heads.c.partner_id == endpoints.c.partner_id))
    .where(endpoints.c.status == ACTIVE)
)


# --- retention (orderdesk.retention; README "Retention") -------------------------------------------
def _feed_entry_done_with(entry):
    """A feed entry may go once it is old AND no active endpoint still needs it or anything after it: not
    yet taken on (cursor before it), or a pending delivery at or before it. So what is pruned is always a
    prefix of each partner's feed (a reader sees a gap only at its start, see domain.expired_cursor), and
    a delivery under way keeps its body. Paused and disabled endpoints do not hold the feed: on resume
    they skip what was pruned meanwhile (NotifierRepository.skip_pruned)."""
    active = endpoints.alias("holder")
    return and_(
        ~exists().where(
            active.c.partner_id == entry.c.partner_id,
            active.c.status == ACTIVE,
            active.c.cursor < entry.c.sequence,
        ),
        ~exists().where(
            deliveries.c.partner_id == entry.c.partner_id,
            deliveries.c.status == PENDING,
            deliveries.c.sequence <= entry.c.sequence,
            deliveries.c.endpoint_id == active.c.endpoint_id,
            active.c.status == ACTIVE,
        ),
    )


PRUNABLE = (
    Prunable("feed", feed, "appended_at", "feed_days", where=_feed_entry_done_with),
    # Finished deliveries (a pending one is under way) and the attempt log: what the delivery log shows.
    Prunable(
        "webhook_deliveries",
        deliveries,
        "updated_at",
        "webhook_attempts_days",
        where=lambda d: d.c.status != PENDING,
    ),
    Prunable("webhook_attempts", delivery_attempts, "at", "webhook_attempts_days"),
)


@dataclass(frozen=True)
class EndpointRow:
    endpoint_id: str
    partner_id: str
    url: str
    event_types: tuple[str, ...]
    status: str
    disabled_reason: str
    cursor: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row) -> EndpointRow:
        return cls(
            row["endpoint_id"],
            row["partner_id"],
            row["url"],
            tuple(row["event_types"].split()),
            row["status"],
            row["disabled_reason"],
            row["cursor"],
            row["created_at"],
            row["updated_at"],
        )


@dataclass(frozen=True)
class FeedEntry:
    """An event to append to a partner's feed; `event`: the Event as published (its JSON is made when read)."""

    partner_id: str
    event_id: str
    type: str
    order_id: str
    occurred_at: dt.datetime
    event: bytes


@dataclass
class Attempt:
    """One POST's outcome, as the attempt log and the delivery row record it."""

    delivery_id: str
    attempt_no: int  # over the delivery's whole life (replays continue the count)
    status_code: int  # 0: no HTTP answer
    latency_ms: float
    error: str
    excerpt: str
    new_status: str
    attempts: int  # in the current round (what the retry policy counts)
    next_attempt_at: dt.datetime | None
    at: dt.datetime | None = None


def rendered(row) -> Any:
    """A feed entry as readers take it (alone, or joined to a delivery): `body` is its JSON, made from the
    event as published where the entry keeps that. domain.body maps the same event to the same bytes the
    append would have stored, numbers included."""
    event = row["event"]
    if event is None:
        return row
    entry = dict(row)
    entry["body"] = domain.body(
        events_pb2.Event.FromString(event), row["sequence"], row["order_sequence"]
    ).decode()
    return entry


def _pending(endpoint_id: str, entry, now: dt.datetime) -> dict:
    """A new pending delivery of a feed entry to an endpoint."""
    return {
        "delivery_id": new_delivery_id(),
        "endpoint_id": endpoint_id,
        "partner_id": entry["partner_id"],
        "sequence": entry["sequence"],
        "event_id": entry["event_id"],
        "event_type": entry["type"],
        "order_id": entry["order_id"],
        "status": PENDING,
        "attempts": 0,
        "total_attempts": 0,
        "next_attempt_at": now,
        "last_status_code": 0,
        "last_error": "",
        "occurred_at": entry["occurred_at"],
        "created_at": now,
        "updated_at": now,
        "delivered_at": None,
    }


def new_endpoint_id() -> str:
    return "whe_" + uuid.uuid4().hex[:20]


def new_delivery_id() -> str:
    """dlv_ and 24 hex digits that sort by creation time (orderdesk.ids): one per event and endpoint."""
    return "dlv_" + ids.time_ordered_hex(13).lower()


class NotifierRepository(Repository):
    # --- the feed ---------------------------------------------------------------------------------
    async def _bump(self, bump, make, key: str, row: dict) -> int:
        """+1 on a counter row and its new value (UPDATE ... RETURNING: one statement on the hot path);
        an absent row is made at 1. The update holds the row lock until commit."""
        value = (await self.conn.execute(bump, {"key": key})).scalar()
        if value is None:
            await self.conn.execute(make, {**row, "last_sequence": 1})
            value = 1
        return value

    async def bump_known_order(self, order_id: str) -> tuple[int, str] | None:
        """For an event about an order the feed knows: its next order sequence and the order's partner, in
        one statement (the row stays locked until commit). None, changing nothing, for an unknown order."""
        row = (await self.conn.execute(_BUMP_ORDER_OF_PARTNER, {"key": order_id})).first()
        return None if row is None else (row.last_sequence, row.partner_id)

    async def append(
        self,
        partner_id: str,
        event_id: str,
        type: str,
        order_id: str,
        occurred_at: dt.datetime,
        event: bytes,
        order_sequence: int = 0,
    ) -> tuple[int, int]:
        """Appends one event (`event`: as published) to the partner's feed: (sequence, order sequence).
        `order_sequence`: already bumped (bump_known_order); else the order's counter is bumped here."""
        if order_id and not order_sequence:
            order_sequence = await self._bump(
                _BUMP_ORDER, _MAKE_ORDER, order_id, {"order_id": order_id, "partner_id": partner_id}
            )
        sequence = await self._bump(_BUMP_HEAD, _MAKE_HEAD, partner_id, {"partner_id": partner_id})
        await self.conn.execute(
            _INSERT_FEED,
            {
                "partner_id": partner_id,
                "sequence": sequence,
                "event_id": event_id,
                "type": type,
                "order_id": order_id,
                "order_sequence": order_sequence,
                "occurred_at": occurred_at,
                "appended_at": utcnow(),
                "body": "",
                "event": event,
            },
        )
        return sequence, order_sequence

    async def order_counters(self, order_ids) -> dict[str, tuple[str, int]]:
        """order id -> (its partner, its last order sequence), for the orders the feed knows."""
        if not order_ids:
            return {}
        (statement, keys), _heads = _BATCH_READS[self.dialect]
        rows = (await self.conn.execute(statement, {"keys": keys(list(order_ids))})).all()
        return {r.order_id: (r.partner_id, r.last_sequence) for r in rows}

    async def append_many(
        self, entries: list[FeedEntry], orders: dict[str, tuple[str, int]] | None = None
    ) -> None:
        """append() for many events at once (a consumer batch): the counters are read once (`orders`: those
        of the batch's orders, read already by order_counters), numbered here, and written back with one
        statement each. Only the notifier's one feed writer appends (the singleton lease); should another
        ever race it, the feed's key (partner, sequence) refuses the second and its batch is retried event
        by event."""
        order_ids = list({e.order_id for e in entries if e.order_id})
        partner_ids = list({e.partner_id for e in entries})
        if orders is None:
            orders = await self.order_counters(order_ids)
        # (defaultdicts: a counter the database does not hold yet starts at 0)
        order_seq = defaultdict(int, {o: orders[o][1] for o in order_ids if o in orders})
        _orders, (heads_of, keys) = _BATCH_READS[self.dialect]
        heads = defaultdict(int, (await self.conn.execute(heads_of, {"keys": keys(partner_ids)})).all())
        # An order's partner row: a known order keeps its own, a new one takes its first entry's partner.
        partner_of = {e.order_id: e.partner_id for e in reversed(entries) if e.order_id}
        partner_of.update({o: p for o, (p, _seq) in orders.items()})
        now = utcnow()
        rows = []
        for e in entries:
            order_sequence = 0
            if e.order_id:
                order_seq[e.order_id] += 1
                order_sequence = order_seq[e.order_id]
            heads[e.partner_id] += 1
            sequence = heads[e.partner_id]
            rows.append(
                (
                    e.partner_id,
                    sequence,
                    e.event_id,
                    e.type,
                    e.order_id,
                    order_sequence,
                    e.occurred_at,
                    e.event,
                )
            )
        set_orders, set_heads = _SET_COUNTERS[self.dialect]
        await set_orders.execute(self.conn, [(o, partner_of[o], order_seq[o]) for o in order_ids])
        await set_heads.execute(self.conn, [(p, heads[p]) for p in partner_ids])
        await _INSERT_FEED_ROWS.execute(self.conn, rows, appended_at=now, body="")

    async def partners_of_orders(self, order_ids) -> dict[str, str]:
        if not order_ids:
            return {}
        return dict((await self.conn.execute(_PARTNERS_OF, {"keys": list(order_ids)})).all())

    async def erase_entries(self, order_ids: list[str], customer_id: str) -> int:
        """The feed entries of these orders with the customer's personal data erased in their JSON body
        (orderdesk/personal_data.erase_document); sequence, event id and every other fact stay, so a replay
        sends the same event, erased. An entry that kept its event as published gets its JSON written out
        and the event dropped, whatever the erasure found: no copy of the event outlives it. Returns the
        rows whose body changed."""
        changed = 0
        for start in range(0, len(order_ids), 500):
            rows = await self.conn.execute(
                select(
                    feed.c.partner_id, feed.c.sequence, feed.c.order_sequence, feed.c.body, feed.c.event
                ).where(feed.c.order_id.in_(order_ids[start : start + 500]))
            )
            for row in rows.mappings().all():
                body = rendered(row)["body"]
                document = json.loads(body)
                erased = bool(personal_data.erase_document(document, customer_id))
                if erased:
                    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
                if erased or row["event"] is not None:
                    await self.conn.execute(
                        update(feed)
                        .where(feed.c.partner_id == row["partner_id"], feed.c.sequence == row["sequence"])
                        .values(body=body, event=None)
                    )
                changed += erased
        return changed

    async def head(self, partner_id: str) -> int:
        return (
            await self.conn.execute(
                select(feed_heads.c.last_sequence).where(feed_heads.c.partner_id == partner_id)
            )
        ).scalar() or 0

    async def first_kept(self, partner_id: str) -> int | None:
        """The oldest sequence the partner's feed still holds (None: none at all)."""
        return (
            await self.conn.execute(select(func.min(feed.c.sequence)).where(feed.c.partner_id == partner_id))
        ).scalar()

    async def has_entry(self, partner_id: str, sequence: int) -> bool:
        return (
            await self.conn.execute(
                select(feed.c.sequence).where(feed.c.partner_id == partner_id, feed.c.sequence == sequence)
            )
        ).first() is not None

    async def skip_pruned(self, endpoint: EndpointRow) -> tuple[int, int]:
        """For an endpoint about to resume: its cursor moves past entries pruned while it was paused, and its
        pending deliveries whose entry was pruned fail (they could never be sent, and would hold back their
        order's later events). Returns (entries skipped, deliveries failed)."""
        first = await self.first_kept(endpoint.partner_id)
        floor = (first - 1) if first is not None else await self.head(endpoint.partner_id)
        skipped = max(floor - endpoint.cursor, 0)
        if skipped:
            await self.conn.execute(
                _MOVE_CURSOR, {"key": endpoint.endpoint_id, "seen": endpoint.cursor, "to": floor}
            )
        now = utcnow()
        failed = await self.conn.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint.endpoint_id,
                deliveries.c.status == PENDING,
                ~exists().where(
                    feed.c.partner_id == deliveries.c.partner_id, feed.c.sequence == deliveries.c.sequence
                ),
            )
            .values(
                status=FAILED,
                next_attempt_at=None,
                updated_at=now,
                last_error="its event is older than the feed keeps (pruned while the endpoint was not active)",
            )
        )
        return skipped, max(failed.rowcount, 0)

    async def read_feed(self, partner_id: str, after: int, limit: int, to: int | None = None) -> list:
        """The partner's entries after `after` (up to `to`), oldest first, each with its JSON body."""
        return list(map(rendered, await self._entries(partner_id, after, limit, to)))

    async def _entries(self, partner_id: str, after: int, limit: int, to: int | None = None) -> list:
        """read_feed's rows as stored: the bodies of those that keep their event are not made."""
        query = select(feed).where(feed.c.partner_id == partner_id, feed.c.sequence > after)
        if to is not None:
            query = query.where(feed.c.sequence <= to)
        return (await self.conn.execute(query.order_by(feed.c.sequence).limit(limit))).mappings().all()

    # --- endpoints --------------------------------------------------------------------------------
    async def add_endpoint(
        self, partner_id: str, url: str, event_types: list[str], secret: str
    ) -> EndpointRow:
        now = utcnow()
        endpoint_id = new_endpoint_id()
        # A new endpoint receives what happens from now on: its cursor starts at the feed's head.
        await self.conn.execute(
            endpoints.insert().values(
                endpoint_id=endpoint_id,
                partner_id=partner_id,
                url=url,
                event_types=" ".join(event_types),
                secret=sealing.box().seal(secret),
                status=ACTIVE,
                disabled_reason="",
                cursor=await self.head(partner_id),
                lease_owner="",
                lease_until=None,
                created_at=now,
                updated_at=now,
            )
        )
        return await self.endpoint(endpoint_id, partner_id)

    async def endpoint(self, endpoint_id: str, partner_id: str | None = None) -> EndpointRow | None:
        if partner_id is None:  # the workers' hot path
            row = (await self.conn.execute(_ENDPOINT, {"key": endpoint_id})).mappings().first()
        else:
            row = (
                (
                    await self.conn.execute(
                        select(endpoints).where(
                            endpoints.c.endpoint_id == endpoint_id, endpoints.c.partner_id == partner_id
                        )
                    )
                )
                .mappings()
                .first()
            )
        return EndpointRow.of(row) if row else None

    async def endpoints_of(self, partner_id: str) -> list[EndpointRow]:
        rows = (
            await self.conn.execute(
                select(endpoints)
                .where(endpoints.c.partner_id == partner_id)
                .order_by(endpoints.c.created_at, endpoints.c.endpoint_id)
            )
        ).mappings()
        return [EndpointRow.of(r) for r in rows]

    async def active_endpoints(self, endpoint_ids) -> dict[str, EndpointRow]:
        """Those of the given endpoints that are active, by id."""
        rows = await self.conn.execute(
            select(endpoints).where(
                endpoints.c.endpoint_id.in_(list(endpoint_ids)), endpoints.c.status == ACTIVE
            )
        )
        return {row["endpoint_id"]: EndpointRow.of(row) for row in rows.mappings()}

    async def set_endpoint(self, endpoint_id: str, **values) -> None:
        await self.conn.execute(
            update(endpoints)
            .where(endpoints.c.endpoint_id == endpoint_id)
            .values(updated_at=utcnow(), **values)
        )

    async def rotate_secret(self, endpoint_id: str, secret: str, overlap: dt.timedelta) -> None:
        """The new secret signs from now on; the one it replaces signs beside it for `overlap`."""
        now = utcnow()
        values: dict = {
            "secret": sealing.box().seal(secret),
            "previous_secret": "",
            "previous_secret_until": None,
        }
        if overlap > dt.timedelta(0):
            values.update(previous_secret=endpoints.c.secret, previous_secret_until=now + overlap)
        await self.conn.execute(
            update(endpoints).where(endpoints.c.endpoint_id == endpoint_id).values(**values)
        )

    async def seal_plain_secrets(self) -> int:
        """Seals secrets stored before sealing existed, and re-seals under the first key when several are
        configured (a key rotation); returns how many rows changed."""
        box = sealing.box()
        changed = 0
        rows = await self.conn.execute(
            select(endpoints.c.endpoint_id, endpoints.c.secret, endpoints.c.previous_secret)
        )
        for endpoint_id, secret, previous in rows.all():
            new = {
                column: box.reseal(value)
                for column, value in (("secret", secret), ("previous_secret", previous))
                if sealing.needs_sealing(value, box)
            }
            if new:
                # Only if no one changed it meanwhile (another replica sealing, a rotation).
                await self.conn.execute(
                    update(endpoints)
                    .where(endpoints.c.endpoint_id == endpoint_id, endpoints.c.secret == secret)
                    .values(**new)
                )
                changed += 1
        return changed

    async def delete_endpoint(self, endpoint_id: str) -> None:
        ids = select(deliveries.c.delivery_id).where(deliveries.c.endpoint_id == endpoint_id)
        await self.conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(ids)))
        await self.conn.execute(delete(deliveries).where(deliveries.c.endpoint_id == endpoint_id))
        await self.conn.execute(delete(endpoints).where(endpoints.c.endpoint_id == endpoint_id))

    async def parked_counts(self, partner_id: str) -> dict[str, int]:
        rows = await self.conn.execute(
            select(deliveries.c.endpoint_id, func.count())
            .where(deliveries.c.partner_id == partner_id, deliveries.c.status == PARKED)
            .group_by(deliveries.c.endpoint_id)
        )
        return {endpoint_id: count for endpoint_id, count in rows}

    # --- deliveries -------------------------------------------------------------------------------
    async def take_on(self, endpoint: EndpointRow, matches, batch: int = 200) -> int:
        """Turns the feed entries after the endpoint's cursor into pending deliveries (those whose type the
        endpoint wants) and moves the cursor past them. Returns how many entries were looked at."""
        entries = (
            (
                await self.conn.execute(
                    _FEED_AFTER, {"key": endpoint.partner_id, "after": endpoint.cursor, "limit": batch}
                )
            )
            .mappings()
            .all()
        )
        if not entries:
            return 0
        now = utcnow()
        rows = [
            _pending(endpoint.endpoint_id, e, now)
            for e in entries
            if matches(e["type"], endpoint.event_types)
        ]
        if rows:
            await self.conn.execute(insert_ignoring_conflicts(self.dialect, deliveries), rows)
        # Guarded by the cursor read: a concurrent take-on (another replica) moves it only once.
        await self.conn.execute(
            _MOVE_CURSOR,
            {"key": endpoint.endpoint_id, "seen": endpoint.cursor, "to": entries[-1]["sequence"]},
        )
        return len(entries)

    async def heads(self, endpoint_id: str, limit: int) -> list:
        """The endpoint's pending deliveries that may go now order-wise, oldest first, each with its entry's
        body or event (`rendered` makes the body when it is sent): each order's oldest pending delivery
        only, so an order's events arrive in order while a retry of one order never holds back the
        others. (Whether each is due yet is the caller's look.)"""
        return (await self.conn.execute(_HEADS, {"key": endpoint_id, "limit": limit})).mappings().all()

    async def take_on_all(self, matches, batch: int = 500) -> bool:
        """take_on for every active endpoint at once (three statements whatever their number); True when
        some endpoint has more than `batch` entries left (call again)."""
        rows = (await self.conn.execute(_NOT_TAKEN_ON, {"batch": batch})).mappings().all()
        if not rows:
            return False
        now = utcnow()
        new, moves = [], {}
        for e in rows:
            if matches(e["type"], tuple(e["event_types"].split())):
                new.append(_pending(e["endpoint_id"], e, now))
            moves[e["endpoint_id"]] = {"key": e["endpoint_id"], "seen": e["cursor"], "to": e["sequence"]}
        if new:
            await self.conn.execute(insert_ignoring_conflicts(self.dialect, deliveries), new)
        await self.conn.execute(_MOVE_CURSOR, list(moves.values()))
        return any(m["to"] - m["seen"] >= batch for m in moves.values())

    async def due_heads(self, now: dt.datetime, per_endpoint: int) -> list:
        """What may be POSTed now over all active endpoints (see _DUE_RANKED), earliest due first, each with its
        entry's body or event as heads() (a round returns those in flight too: only a POST makes a body)."""
        return (
            (await self.conn.execute(_DUE_HEADS, {"now": now, "per_endpoint": per_endpoint})).mappings().all()
        )

    async def next_due(self, now: dt.datetime) -> dt.datetime | None:
        return (await self.conn.execute(_NEXT_DUE, {"now": now})).scalar()

    async def record_attempt(
        self,
        delivery_id: str,
        attempt_no: int,
        *,
        status_code: int,
        latency_ms: float,
        error: str,
        excerpt: str,
        new_status: str,
        attempts: int,
        next_attempt_at: dt.datetime | None,
    ) -> None:
        await self.record_attempts(
            [
                Attempt(
                    delivery_id,
                    attempt_no,
                    status_code,
                    latency_ms,
                    error,
                    excerpt,
                    new_status,
                    attempts,
                    next_attempt_at,
                )
            ]
        )

    async def record_attempts(self, done: list[Attempt]) -> list[Attempt]:
        """Logs attempts and moves their deliveries on (two statements for any number). Attempts whose
        delivery is gone meanwhile (the endpoint was deleted) are dropped; the recorded ones are returned."""
        if not done:
            return []
        ids = [a.delivery_id for a in done]
        existing = set((await self.conn.execute(_EXISTING_DELIVERIES, {"keys": ids})).scalars())
        done = [a for a in done if a.delivery_id in existing]
        if done:
            now = utcnow()
            await self.conn.execute(
                _INSERT_ATTEMPT,
                [
                    {
                        "delivery_id": a.delivery_id,
                        "attempt": a.attempt_no,
                        "at": a.at or now,
                        "status_code": a.status_code,
                        "latency_ms": a.latency_ms,
                        "error": a.error[:500],
                        "response_excerpt": a.excerpt[:500],
                    }
                    for a in done
                ],
            )
            await self.conn.execute(
                _AFTER_ATTEMPT,
                [
                    {
                        "key": a.delivery_id,
                        "new_status": a.new_status,
                        "round": a.attempts,
                        "total": a.attempt_no,
                        "next_at": a.next_attempt_at,
                        "code": a.status_code,
                        "err": a.error[:500],
                        "now": now,
                        "done_at": (a.at or now) if a.new_status == DELIVERED else None,
                    }
                    for a in done
                ],
            )
        return done

    async def list_deliveries(self, endpoint_id: str, status: str, limit: int, before: int | None) -> list:
        query = select(deliveries).where(deliveries.c.endpoint_id == endpoint_id)
        if status:
            query = query.where(deliveries.c.status == status)
        if before is not None:
            query = query.where(deliveries.c.sequence < before)
        return (
            (await self.conn.execute(query.order_by(deliveries.c.sequence.desc()).limit(limit)))
            .mappings()
            .all()
        )

    async def order_deliveries(self, order_id: str, partner_id: str, limit: int) -> list:
        """An order's deliveries over every endpoint (of `partner_id` when given), oldest first."""
        query = select(deliveries).where(deliveries.c.order_id == order_id)
        if partner_id:
            query = query.where(deliveries.c.partner_id == partner_id)
        query = query.order_by(deliveries.c.created_at, deliveries.c.endpoint_id, deliveries.c.sequence)
        return (await self.conn.execute(query.limit(limit))).mappings().all()

    async def attempts_of(self, delivery_ids: list[str]) -> dict[str, list]:
        found: dict[str, list] = {d: [] for d in delivery_ids}
        if delivery_ids:
            rows = await self.conn.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id.in_(delivery_ids))
                .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
            )
            for row in rows.mappings():
                found[row["delivery_id"]].append(row)
        return found

    async def delivery(self, endpoint_id: str, delivery_id: str):
        return (
            (
                await self.conn.execute(
                    select(deliveries).where(
                        deliveries.c.endpoint_id == endpoint_id, deliveries.c.delivery_id == delivery_id
                    )
                )
            )
            .mappings()
            .first()
        )

    async def replay(self, endpoint_id: str, delivery_id: str) -> None:
        """A new round for one delivery: pending now, attempts counted from zero (the log keeps the old ones)."""
        await self.conn.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint_id,
                deliveries.c.delivery_id == delivery_id,
                deliveries.c.status != PENDING,
            )
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), updated_at=utcnow())
        )

    async def replay_range(self, endpoint: EndpointRow, first: int, last: int, matches) -> int:
        """Every matching feed entry in [first, last] up to the cursor is sent again: existing deliveries
        start a new round, entries from before the endpoint existed get a delivery. Entries past the
        cursor are not touched: they are on their way anyway."""
        last = min(last, endpoint.cursor)
        if last < first:
            return 0
        now = utcnow()
        result = await self.conn.execute(
            update(deliveries)
            .where(
                deliveries.c.endpoint_id == endpoint.endpoint_id,
                deliveries.c.sequence.between(first, last),
                deliveries.c.status != PENDING,
            )
            .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        )
        replayed = result.rowcount
        entries = await self._entries(endpoint.partner_id, first - 1, 100_000, to=last)  # no bodies needed
        rows = [
            _pending(endpoint.endpoint_id, e, now)
            for e in entries
            if matches(e["type"], endpoint.event_types)
        ]
        for row in rows:  # one by one: rowcount tells which were new
            result = await self.conn.execute(insert_ignoring_conflicts(self.dialect, deliveries, row))
            replayed += max(result.rowcount, 0)
        return replayed

    async def count_by_status(self) -> dict[str, int]:
        rows = await self.conn.execute(_COUNT_BY_STATUS)
        return {status: count for status, count in rows}

    async def partners_with_active_endpoints(self) -> set[str]:
        rows = await self.conn.execute(_PARTNERS_WITH_ACTIVE)
        return set(rows.scalars())

    async def lag(self) -> int:
        """The largest number of feed entries an active endpoint has not yet taken on."""
        rows = await self.conn.execute(_LAG)
        return int(rows.scalar() or 0)
