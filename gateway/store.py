"""The gateway's own database: partners and their API keys (hashed). Used by the app and the CLI.

Tables (gateway/migrations):
  partners  partner_id, name, scopes (space separated: what the partner may be given)
  api_keys  key_hash (HMAC-SHA256 hex with the pepper; `sha256` rows: stored before 0002, re-hashed at
            their first use), hash_kind, partner_id, name, scopes, source (import | cli), created_at,
            expires_at (none: until revoked; rotation sets it on the old key), last_used_at (to the minute),
            created_by (the actor who made it in the console, orderdesk/actors.py; "" otherwise)

A key's effective scopes are its own scopes that its partner still has, so
narrowing a partner by re-importing the CSV narrows every key it holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.auth import Principal, hash_key, legacy_hash, new_key
from orderdesk.config import demo_keys_allowed, key_pepper
from orderdesk.db import Database, OwnStore, UtcDateTime, utcnow
from orderdesk.errors import FieldViolation, InvalidArgument, NotFound
from orderdesk.masterdata import Partner

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
IMPORTED_KEY_NAME = "csv-import"  # the one key per partner that the partners CSV manages (development)
HMAC, SHA256 = "hmac", "sha256"  # api_keys.hash_kind
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)  # last_used_at is written at most once a minute per key

log = logging.getLogger("gateway.keys")

metadata = sa.MetaData()

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("partner_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("partner_id", sa.String(64), sa.ForeignKey("partners.partner_id"), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("hash_kind", sa.String(8), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("created_by", sa.String(300), nullable=False, server_default=""),
    sa.Column("warehouse", sa.String(32), nullable=False, server_default=""),  # 0004: a 3PL key's warehouse
    sa.Column("carrier", sa.String(64), nullable=False, server_default=""),  # 0004: a carrier key's carrier
)

# 0004: each carrier request's signature, kept a little longer than the signature tolerance: the same
# signature again within it is a replay (409). Older rows are pruned as new ones arrive.
carrier_signatures = sa.Table(
    "carrier_signatures",
    metadata,
    sa.Column("carrier", sa.String(64), primary_key=True),
    sa.Column("signature", sa.String(64), primary_key=True),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.Index("ix_carrier_signatures_seen_at", "seen_at"),
)


@dataclass(frozen=True)
class KeyInfo:
    partner_id: str
    name: str
    scopes: tuple[str, ...]
    source: str
    hash_prefix: str
    created_at: str
    expires_at: str = ""
    last_used_at: str = ""
    hash_kind: str = HMAC
    created_by: str = ""
    warehouse: str = ""
    carrier: str = ""


def _insert(dialect: str, table: sa.Table):
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


# The hot path's miss (each key about once a second per replica, gateway.auth.KeyCache), built once: a
# statement made per call cost more in SQLAlchemy's expression building than the lookup itself. A key is
# found by its peppered hash, or by its pre-pepper sha256 (`legacy`; NULL matches no row).
_BY_HASH = (
    sa.select(
        api_keys.c.key_hash,
        api_keys.c.hash_kind,
        api_keys.c.partner_id,
        api_keys.c.name,
        api_keys.c.scopes,
        api_keys.c.expires_at,
        api_keys.c.last_used_at,
        api_keys.c.warehouse,
        api_keys.c.carrier,
        partners.c.scopes.label("allowed"),
    )
    .join(partners, partners.c.partner_id == api_keys.c.partner_id)
    .where(
        sa.or_(
            sa.and_(api_keys.c.key_hash == sa.bindparam("key_hash"), api_keys.c.hash_kind == HMAC),
            sa.and_(api_keys.c.key_hash == sa.bindparam("legacy"), api_keys.c.hash_kind == SHA256),
        )
    )
)


class PartnerStore(OwnStore):
    """Partners and API keys on an orderdesk.db.Database (SQLite by default, PostgreSQL by URL)."""

    MIGRATIONS_DIR = MIGRATIONS_DIR

    def __init__(self, db: Database, pepper: bytes):
        super().__init__(db)
        self.pepper = pepper

    @classmethod
    async def open(cls, url: str, pepper: bytes | None = None) -> PartnerStore:
        """The store at this URL; `pepper` defaults to the configured one (orderdesk.config.key_pepper)."""
        return cls(await cls.migrated(url), key_pepper() if pepper is None else pepper)

    def hash(self, key: str) -> str:
        return hash_key(key, self.pepper)

    # --- the hot path's miss --------------------------------------------------------------
    async def principal(self, key_hash: str, legacy: str = "") -> Principal | None:
        """The key's Principal, by its peppered hash (or, for a key stored before the pepper, its sha256,
        which is then re-hashed with the pepper); None when unknown or expired. Records the use."""
        async with self.db.read() as conn:
            rows = (await conn.execute(_BY_HASH, {"key_hash": key_hash, "legacy": legacy or None})).all()
        if not rows:
            return None
        row = min(rows, key=lambda r: r.hash_kind != HMAC)  # the peppered row if both exist
        now = utcnow()
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if (
            row.hash_kind == SHA256
            or row.last_used_at is None
            or now - row.last_used_at >= LAST_USED_RESOLUTION
        ):
            await self._used(row.key_hash, row.hash_kind, key_hash, now)
        scopes = frozenset(row.scopes.split()) & frozenset(row.allowed.split())
        return Principal(
            partner_id=row.partner_id,
            key_name=row.name,
            scopes=scopes,
            expires_at=row.expires_at,
            warehouse=row.warehouse,
            carrier=row.carrier,
        )

    async def _used(self, stored_hash: str, kind: str, key_hash: str, now: dt.datetime) -> None:
        """last_used_at, and a pre-pepper row moved to its peppered hash. A failure (the database busy)
        costs the record, never the request."""
        values: dict = {"last_used_at": now}
        if kind == SHA256:
            values.update(key_hash=key_hash, hash_kind=HMAC)
        try:
            async with self.db.transaction() as tx:
                await tx.conn.execute(
                    api_keys.update()
                    .where(api_keys.c.key_hash == stored_hash, api_keys.c.hash_kind == kind)
                    .values(**values)
                )
        except Exception as exc:
            log.warning("could not record a key's use: %s", type(exc).__name__)

    async def lookup_key(self, key: str) -> Principal | None:
        """The Principal of a key in clear (the CLI, tests): what the gateway's authentication finds."""
        return await self.principal(self.hash(key), legacy_hash(key))

    # --- the partners CSV -----------------------------------------------------------------
    async def import_partners(self, records: Sequence[Partner], *, named_keys: bool | None = None) -> int:
        """Upserts partners (and, in development, the key each row names); all rows or none.

        Keys are generated (`orderdesk keys create`): a row naming an api_key is refused, unless
        `named_keys` (default: ORDERDESK_DEMO_KEYS, set by `make run` and the tests for the demo's keys).
        Then the CSV manages one key per partner: a new api_key in the CSV replaces the partner's previous
        imported key (keys made with `orderdesk keys create` stay); a key already held by another partner
        is refused rather than moved.
        """
        named_keys = demo_keys_allowed() if named_keys is None else named_keys
        if not named_keys:
            planted = [
                FieldViolation(
                    f"row {n}.api_key",
                    "keys are generated, not imported: leave api_key empty and run "
                    "`orderdesk keys create --partner <id> --name <name> --scopes <scopes>`",
                    "key_not_generated",
                )
                for n, record in enumerate(records, start=2)
                if record.api_key
            ]
            if planted:
                raise InvalidArgument("the partners CSV names API keys; nothing was imported", planted)
        now = utcnow()
        async with self.db.transaction() as tx:
            conn, dialect = tx.conn, tx.conn.dialect.name
            refused: list[FieldViolation] = []
            for row_number, record in enumerate(records, start=2):
                scopes = " ".join(record.scopes)
                stmt = _insert(dialect, partners).values(
                    partner_id=record.partner_id, name=record.name, scopes=scopes, updated_at=now
                )
                await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["partner_id"],
                        set_={
                            "name": stmt.excluded.name,
                            "scopes": stmt.excluded.scopes,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                )
                if not record.api_key:
                    continue
                key_hash = self.hash(record.api_key)
                await conn.execute(
                    api_keys.delete().where(
                        api_keys.c.partner_id == record.partner_id,
                        api_keys.c.name == IMPORTED_KEY_NAME,
                        api_keys.c.key_hash != key_hash,
                    )
                )
                stmt = _insert(dialect, api_keys).values(
                    key_hash=key_hash,
                    partner_id=record.partner_id,
                    name=IMPORTED_KEY_NAME,
                    scopes=scopes,
                    source="import",
                    created_at=now,
                    hash_kind=HMAC,
                )
                # Conditional upsert: only a key of the same partner is updated; another's is left alone.
                result = await conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["key_hash"],
                        set_={"scopes": stmt.excluded.scopes, "name": stmt.excluded.name},
                        where=api_keys.c.partner_id == stmt.excluded.partner_id,
                    )
                )
                if result.rowcount == 0:
                    refused.append(
                        FieldViolation(
                            f"row {row_number}.api_key", "already the key of another partner", "key_in_use"
                        )
                    )
            if refused:
                raise InvalidArgument(
                    "partners CSV reuses another partner's API key; nothing was imported", refused
                )
        return len(records)

    # --- keys made by an operator ---------------------------------------------------------
    async def create_key(
        self,
        partner_id: str,
        name: str,
        scopes: Sequence[str],
        *,
        partner_name: str | None = None,
        expires_at: dt.datetime | None = None,
        source: str = "cli",
        created_by: str = "",
        warehouse: str = "",
        carrier: str = "",
    ) -> str:
        """Stores a new random key for the partner and returns it (the only time it is seen).

        With `partner_name`, an unknown partner is created with these scopes, which is how
        an operator bootstraps the first admin key of a fresh installation. `expires_at`: none, the key
        works until revoked. `source` and `created_by`: where and by whom (the console: "console" and the
        desk person's actor). `warehouse`: a fulfillment key that sees and moves only that warehouse's
        shipments; `carrier`: a key that may post only that carrier's tracking events.
        """
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidArgument("the expiry is in the past", [FieldViolation("expires", "in the future")])
        if not name:
            raise InvalidArgument("a key needs a name", [FieldViolation("name", "required")])
        if not scopes:
            raise InvalidArgument("a key needs at least one scope", [FieldViolation("scopes", "required")])
        key = new_key()
        now = utcnow()
        async with self.db.transaction() as tx:
            conn = tx.conn
            if partner_name:
                await conn.execute(
                    _insert(conn.dialect.name, partners)
                    .values(
                        partner_id=partner_id,
                        name=partner_name,
                        scopes=" ".join(scopes),
                        updated_at=now,
                    )
                    .on_conflict_do_nothing()
                )
            allowed = (
                await conn.execute(sa.select(partners.c.scopes).where(partners.c.partner_id == partner_id))
            ).scalar()
            if allowed is None:
                raise NotFound(
                    f"unknown partner {partner_id!r}: import it first (orderdesk import partners FILE), "
                    "or give --partner-name to create it"
                )
            beyond = [s for s in scopes if s not in allowed.split()]
            if beyond:
                raise InvalidArgument(
                    f"partner {partner_id} does not have scope(s) {', '.join(beyond)} (it has: {allowed})",
                    [FieldViolation("scopes", "more than the partner has")],
                )
            await conn.execute(
                api_keys.insert().values(
                    key_hash=self.hash(key),
                    partner_id=partner_id,
                    name=name,
                    scopes=" ".join(scopes),
                    source=source,
                    created_at=now,
                    hash_kind=HMAC,
                    expires_at=expires_at,
                    created_by=created_by,
                    warehouse=warehouse.strip(),
                    carrier=carrier.strip().lower(),
                )
            )
        return key

    async def rotate_key(
        self, partner_id: str, name: str, overlap: dt.timedelta, *, expires_at: dt.datetime | None = None
    ) -> str:
        """A new key of this name (the scopes of the newest one it replaces), returned only now; the keys it
        replaces keep working for `overlap` (their expiry moves to now + overlap unless it is earlier), so
        the partner can switch without an outage. 0: the old keys stop at once."""
        if overlap < dt.timedelta(0):
            raise InvalidArgument("the overlap cannot be negative", [FieldViolation("overlap", ">= 0")])
        now = utcnow()
        key = new_key()
        async with self.db.transaction() as tx:
            conn = tx.conn
            current = (
                await conn.execute(
                    sa.select(api_keys.c.scopes, api_keys.c.warehouse, api_keys.c.carrier)
                    .where(api_keys.c.partner_id == partner_id, api_keys.c.name == name)
                    .where(sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
                    .order_by(api_keys.c.created_at.desc())
                )
            ).first()
            if current is None:
                raise NotFound(f"partner {partner_id} has no working key named {name!r} to rotate")
            until = now + overlap
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.partner_id == partner_id, api_keys.c.name == name)
                .where(sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > until))
                .values(expires_at=until)
            )
            await conn.execute(
                api_keys.insert().values(
                    key_hash=self.hash(key),
                    partner_id=partner_id,
                    name=name,
                    scopes=current.scopes,
                    source="cli",
                    created_at=now,
                    hash_kind=HMAC,
                    expires_at=expires_at,
                    warehouse=current.warehouse,
                    carrier=current.carrier,
                )
            )
        return key

    async def list_keys(self, partner_id: str = "") -> list[KeyInfo]:
        query = sa.select(api_keys).order_by(api_keys.c.partner_id, api_keys.c.created_at)
        if partner_id:
            query = query.where(api_keys.c.partner_id == partner_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            KeyInfo(
                r.partner_id,
                r.name,
                tuple(r.scopes.split()),
                r.source,
                r.key_hash[:12],
                r.created_at.isoformat(timespec="seconds"),
                r.expires_at.isoformat(timespec="seconds") if r.expires_at else "",
                r.last_used_at.isoformat(timespec="minutes") if r.last_used_at else "",
                r.hash_kind,
                r.created_by,
                r.warehouse,
                r.carrier,
            )
            for r in rows
        ]

    async def list_partners(self) -> list[Partner]:
        """Every partner with the scopes its keys may be given, by id."""
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(partners).order_by(partners.c.partner_id))).all()
        return [Partner(r.partner_id, r.name, "", tuple(r.scopes.split())) for r in rows]

    # --- carriers' signatures ------------------------------------------------------------------
    async def first_sight(self, carrier: str, signature: str, keep: dt.timedelta) -> bool:
        """True the first time this carrier's signature is seen within `keep` (then remembered), False for
        a replay. Rows older than `keep` are pruned on the way (a few at a time)."""
        now = utcnow()
        async with self.db.transaction() as tx:
            conn = tx.conn
            result = await conn.execute(
                _insert(conn.dialect.name, carrier_signatures)
                .values(carrier=carrier, signature=signature, seen_at=now)
                .on_conflict_do_nothing()
            )
            if result.rowcount == 1:
                return True
            seen_at = (
                await conn.execute(
                    sa.select(carrier_signatures.c.seen_at).where(
                        carrier_signatures.c.carrier == carrier, carrier_signatures.c.signature == signature
                    )
                )
            ).scalar()
            if seen_at is not None and now - seen_at > keep:  # an old row not pruned yet: not a replay
                await conn.execute(
                    carrier_signatures.update()
                    .where(
                        carrier_signatures.c.carrier == carrier, carrier_signatures.c.signature == signature
                    )
                    .values(seen_at=now)
                )
                return True
            return False

    async def prune_signatures(self, keep: dt.timedelta) -> int:
        """Forgets signatures older than `keep` (their timestamps are stale by then anyway)."""
        async with self.db.transaction() as tx:
            result = await tx.conn.execute(
                carrier_signatures.delete().where(carrier_signatures.c.seen_at < utcnow() - keep)
            )
        return result.rowcount

    async def revoke_keys(self, partner_id: str, name: str) -> int:
        async with self.db.transaction() as tx:
            result = await tx.conn.execute(
                api_keys.delete().where(api_keys.c.partner_id == partner_id, api_keys.c.name == name)
            )
        return result.rowcount
