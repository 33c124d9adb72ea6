"""The console's own database: desk accounts, their sessions and failed sign-ins. Used by the console and
by `orderdesk users` (through console.accounts). SQLite var/console.db by default, PostgreSQL by URL
(ORDERDESK_CONSOLE_DATABASE_URL); alembic migrations in console/migrations.

Tables (revision 0001):
  accounts         account_id, email (unique, lower case), name, role, password_hash (argon2),
                   approval_limits (JSON {"USD": "5000"}), locale ("" follows the browser), disabled,
                   failures_in_a_row, locked_until, created_at, updated_at
  sessions         token_hash (sha256 hex of the cookie's token; the token itself is never stored),
                   account_id, csrf_token, created_at, last_seen_at
  signin_failures  email, address, at: the throttle's window (pruned as it passes)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from orderdesk.db import OwnStore, UtcDateTime
from orderdesk.errors import AlreadyExists, NotFound

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("approval_limits", sa.Text, nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("failures_in_a_row", sa.Integer, nullable=False),
    sa.Column("locked_until", UtcDateTime, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.account_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
)

signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("failure_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index("ix_signin_failures_email_at", "email", "at"),
    sa.Index("ix_signin_failures_address_at", "address", "at"),
)


@dataclass(frozen=True)
class Account:
    account_id: int
    email: str
    name: str
    role: str
    limits: dict[str, Decimal]
    locale: str
    disabled: bool
    failures_in_a_row: int
    locked_until: dt.datetime | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Session:
    token_hash: str
    account: Account
    csrf_token: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


def _limits_json(limits: dict[str, Decimal]) -> str:
    return json.dumps({currency: str(amount) for currency, amount in sorted(limits.items())})


def _account(row) -> Account:
    return Account(
        account_id=row.account_id,
        email=row.email,
        name=row.name,
        role=row.role,
        limits={c: Decimal(a) for c, a in json.loads(row.approval_limits).items()},
        locale=row.locale,
        disabled=bool(row.disabled),
        failures_in_a_row=row.failures_in_a_row,
        locked_until=row.locked_until,
        created_at=row.created_at,
    )


class ConsoleStore(OwnStore):
    MIGRATIONS_DIR = MIGRATIONS_DIR

    # --- accounts ------------------------------------------------------------------------------------
    async def create_account(
        self,
        *,
        email: str,
        name: str,
        role: str,
        password_hash: str,
        limits: dict[str, Decimal],
        locale: str,
        now: dt.datetime,
    ) -> Account:
        try:
            async with self.db.transaction() as tx:
                await tx.conn.execute(
                    accounts.insert().values(
                        email=email,
                        name=name,
                        role=role,
                        password_hash=password_hash,
                        approval_limits=_limits_json(limits),
                        locale=locale,
                        disabled=False,
                        failures_in_a_row=0,
                        locked_until=None,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            raise AlreadyExists(f"an account for {email} exists already", reason="account_exists") from None
        found = await self.account(email)
        assert found is not None
        return found

    async def account(self, email: str) -> Account | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.email == email))).first()
        return _account(row) if row else None

    async def account_by_id(self, account_id: int) -> Account | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.account_id == account_id))).first()
        return _account(row) if row else None

    async def credentials(self, email: str) -> tuple[Account, str] | None:
        """The account and its password hash (for signing in only)."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(accounts).where(accounts.c.email == email))).first()
        return (_account(row), row.password_hash) if row else None

    async def list_accounts(self) -> list[Account]:
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(accounts).order_by(accounts.c.email))).all()
        return [_account(r) for r in rows]

    async def update_account(
        self,
        email: str,
        now: dt.datetime,
        *,
        name: str | None = None,
        role: str | None = None,
        limits: dict[str, Decimal] | None = None,
        locale: str | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Changes what is given. Disabling, or a new role, ends the account's sessions (it signs in again
        with what it may now do)."""
        values: dict = {"updated_at": now}
        for column, value in (("name", name), ("role", role), ("locale", locale), ("disabled", disabled)):
            if value is not None:
                values[column] = value
        if limits is not None:
            values["approval_limits"] = _limits_json(limits)
        async with self.db.transaction() as tx:
            account_id = (
                await tx.conn.execute(
                    accounts.update()
                    .where(accounts.c.email == email)
                    .values(**values)
                    .returning(accounts.c.account_id)
                )
            ).scalar()
            if account_id is None:
                raise NotFound(f"no account for {email}")
            if disabled or role is not None:
                await tx.conn.execute(sessions.delete().where(sessions.c.account_id == account_id))
        found = await self.account(email)
        assert found is not None
        return found

    async def set_password(self, email: str, password_hash: str, now: dt.datetime) -> None:
        """A new password: the lock and the failures are cleared, and every session of the account ends."""
        async with self.db.transaction() as tx:
            account_id = (
                await tx.conn.execute(
                    accounts.update()
                    .where(accounts.c.email == email)
                    .values(
                        password_hash=password_hash, failures_in_a_row=0, locked_until=None, updated_at=now
                    )
                    .returning(accounts.c.account_id)
                )
            ).scalar()
            if account_id is None:
                raise NotFound(f"no account for {email}")
            await tx.conn.execute(sessions.delete().where(sessions.c.account_id == account_id))

    async def replace_hash(self, account_id: int, old_hash: str, new_hash: str) -> None:
        """The same password hashed with today's parameters (nothing else changes; a password changed
        meanwhile is left alone)."""
        async with self.db.transaction() as tx:
            await tx.conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id, accounts.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )

    # --- signing in --------------------------------------------------------------------------------------
    async def failures_since(self, email: str, address: str, since: dt.datetime) -> tuple[int, int]:
        """Failed sign-ins since `since`: for this e-mail, and from this address."""
        count = sa.func.count()
        async with self.db.read() as conn:
            by_email = (
                await conn.execute(
                    sa.select(count).where(signin_failures.c.email == email, signin_failures.c.at >= since)
                )
            ).scalar_one()
            by_address = (
                await conn.execute(
                    sa.select(count).where(
                        signin_failures.c.address == address, signin_failures.c.at >= since
                    )
                )
            ).scalar_one()
        return by_email, by_address

    async def record_failure(
        self,
        email: str,
        address: str,
        now: dt.datetime,
        *,
        lock_after: int,
        lock_until: dt.datetime,
        forget_before: dt.datetime,
    ) -> bool:
        """One failed sign-in; True when it locks the account (`lock_after` failures in a row: locked until
        `lock_until`). The count is kept by the database (one conditional update, so failures at the same
        moment all count) and starts again after a lock has run out; rows older than the throttle's window
        are pruned on the way."""
        async with self.db.transaction() as tx:
            await tx.conn.execute(signin_failures.insert().values(email=email, address=address, at=now))
            await tx.conn.execute(signin_failures.delete().where(signin_failures.c.at < forget_before))
            ran_out = sa.and_(accounts.c.locked_until.is_not(None), accounts.c.locked_until <= now)
            count = (
                await tx.conn.execute(
                    accounts.update()
                    .where(accounts.c.email == email)
                    .values(failures_in_a_row=sa.case((ran_out, 1), else_=accounts.c.failures_in_a_row + 1))
                    .returning(accounts.c.failures_in_a_row)
                )
            ).scalar()
            if count is None or count < lock_after:
                return False
            await tx.conn.execute(
                accounts.update().where(accounts.c.email == email).values(locked_until=lock_until)
            )
            return True

    async def start_session(
        self,
        account_id: int,
        token_hash: str,
        csrf_token: str,
        now: dt.datetime,
        *,
        started_before: dt.datetime,
        idle_since: dt.datetime,
    ) -> None:
        """A successful sign-in: failures in a row cleared, the session stored, and every session that has
        ended meanwhile (started before `started_before` or unused since `idle_since`) pruned on the way."""
        async with self.db.transaction() as tx:
            await tx.conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id)
                .values(failures_in_a_row=0, locked_until=None)
            )
            await tx.conn.execute(
                sessions.delete().where(
                    sa.or_(sessions.c.created_at < started_before, sessions.c.last_seen_at < idle_since)
                )
            )
            await tx.conn.execute(
                sessions.insert().values(
                    token_hash=token_hash,
                    account_id=account_id,
                    csrf_token=csrf_token,
                    created_at=now,
                    last_seen_at=now,
                )
            )

    async def session(self, token_hash: str) -> Session | None:
        query = (
            sa.select(sessions, accounts)
            .join(accounts, accounts.c.account_id == sessions.c.account_id)
            .where(sessions.c.token_hash == token_hash)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return Session(row.token_hash, _account(row), row.csrf_token, row.created_at, row.last_seen_at)

    async def touch_session(self, token_hash: str, now: dt.datetime) -> None:
        async with self.db.transaction() as tx:
            await tx.conn.execute(
                sessions.update().where(sessions.c.token_hash == token_hash).values(last_seen_at=now)
            )

    async def end_session(self, token_hash: str) -> None:
        async with self.db.transaction() as tx:
            await tx.conn.execute(sessions.delete().where(sessions.c.token_hash == token_hash))
