"""The gateway's own database: partners and their API keys (hashed). Used by the app and the CLI.

Tables (revision 0001, gateway/migrations):
  partners  partner_id, name, scopes (space separated: what the partner may be given)
  api_keys  key_hash (sha256 hex), partner_id, name, scopes, source (import | cli), created_at

A key's effective scopes are its own scopes that its partner still has, so
narrowing a partner by re-importing the CSV narrows every key it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.auth import Principal, hash_key, new_key
from orderdesk import migrations
from orderdesk.db import Database, UtcDateTime, utcnow
from orderdesk.errors import FieldViolation, InvalidArgument, NotFound
from orderdesk.masterdata import Partner

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
IMPORTED_KEY_NAME = "csv-import"  # the one key per partner that the partners CSV manages

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
)


@dataclass(frozen=True)
class KeyInfo:
    partner_id: str
    name: str
    scopes: tuple[str, ...]
    source: str
    hash_prefix: str
    created_at: str


def _insert(dialect: str, table: sa.Table):
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)


class PartnerStore:
    """Partners and API keys on an orderdesk.db.Database (SQLite by default, PostgreSQL by URL)."""

    def __init__(self, db: Database):
        self.db = db

    @classmethod
    async def open(cls, url: str) -> PartnerStore:
        db = Database(url)
        await migrations.upgrade(db.engine, MIGRATIONS_DIR)
        return cls(db)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        async with self.db.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    # --- the hot path's miss --------------------------------------------------------------
    async def principal(self, key_hash: str) -> Principal | None:
        query = (
            sa.select(
                api_keys.c.partner_id, api_keys.c.name, api_keys.c.scopes, partners.c.scopes.label("allowed")
            )
            .join(partners, partners.c.partner_id == api_keys.c.partner_id)
            .where(api_keys.c.key_hash == key_hash)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        scopes = frozenset(row.scopes.split()) & frozenset(row.allowed.split())
        return Principal(partner_id=row.partner_id, key_name=row.name, scopes=scopes)

    # --- the partners CSV -----------------------------------------------------------------
    async def import_partners(self, records: Sequence[Partner]) -> int:
        """Upserts partners and the key each row names; all rows or none.

        The CSV manages one key per partner: a new api_key in the CSV replaces the
        partner's previous imported key (keys made with `orderdesk keys create` stay).
        A key already held by another partner is refused rather than moved.
        """
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
                key_hash = hash_key(record.api_key)
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
        self, partner_id: str, name: str, scopes: Sequence[str], *, partner_name: str | None = None
    ) -> str:
        """Stores a new random key for the partner and returns it (the only time it is seen).

        With `partner_name`, an unknown partner is created with these scopes, which is how
        an operator bootstraps the first admin key of a fresh installation.
        """
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
                    key_hash=hash_key(key),
                    partner_id=partner_id,
                    name=name,
                    scopes=" ".join(scopes),
                    source="cli",
                    created_at=now,
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
            )
            for r in rows
        ]

    async def revoke_keys(self, partner_id: str, name: str) -> int:
        async with self.db.transaction() as tx:
            result = await tx.conn.execute(
                api_keys.delete().where(api_keys.c.partner_id == partner_id, api_keys.c.name == name)
            )
        return result.rowcount
