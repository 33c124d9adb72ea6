"""Async SQLAlchemy 2 (Core) for every service: SQLite by default, PostgreSQL by URL.

A `Database.transaction()` yields a `Tx` whose `emit()` writes events into the
outbox table in the same transaction as the state change: there is no other way
to publish, so no status change can commit without its event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import itertools
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from sqlalchemy import JSON, String, Table, bindparam, event, func, literal_column, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import Null
from sqlalchemy.types import DateTime, TypeDecorator

from orderdesk import clock, metrics, migrations
from orderdesk.aio import within

R = TypeVar("R")


def utcnow() -> dt.datetime:
    """Now, by the processes' clock (orderdesk.clock: real time unless ORDERDESK_CLOCK_AT moved it)."""
    return clock.now()


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text).

    On SQLite each value goes through one function each way (_sqlite_text, _sqlite_instant) rather than
    this decorator's and the dialect's processors one after the other: the same text and the same
    datetimes (tests/integration/runtime/test_column_types.py), two Python calls fewer per value."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None or value.tzinfo is dt.UTC:  # (most are: no astimezone call for them)
            return value
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UtcDateTime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value

    def bind_processor(self, dialect):
        if dialect.name == "sqlite" and type(self.impl_instance.dialect_impl(dialect)) is _SQLITE_DATETIME:
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect, coltype):
        if dialect.name == "sqlite" and type(self.impl_instance.dialect_impl(dialect)) is _SQLITE_DATETIME:
            return _sqlite_instant
        return super().result_processor(dialect, coltype)


_SQLITE_DATETIME = sqlite.DATETIME


def _sqlite_text(value: dt.datetime | None) -> str | None:
    """SQLite's DATETIME text of an aware datetime, in UTC: "YYYY-MM-DD HH:MM:SS.ffffff", as the dialect writes
    it (UtcDateTime.process_bind_param, then sqlite.DATETIME's bind processor)."""
    if value is None:
        return None
    if value.tzinfo is not dt.UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given to UtcDateTime")
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_instant(value: str | None) -> dt.datetime | None:
    """An aware datetime from SQLite's text (sqlite.DATETIME's result processor, then
    UtcDateTime.process_result_value): naive text is UTC."""
    if value is None:
        return None
    instant = dt.datetime.fromisoformat(value)
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=dt.UTC)


class JsonText(TypeDecorator):
    """A JSON column (sqlalchemy.JSON) whose SQLite processors are json_text and json_value themselves, rather
    than the dialect's wrappers around the engine's serializer and deserializer (two and three Python calls
    per value): the same text and values. PostgreSQL keeps JSON's (asyncpg's codec does the work)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect):
        if dialect.name == "sqlite":
            return _json_bind
        return super().bind_processor(dialect)

    def result_processor(self, dialect, coltype):
        if dialect.name == "sqlite":
            return _json_result
        return super().result_processor(dialect, coltype)


def _json_bind(value: Any) -> str | None:
    """As sqlalchemy.JSON binds: None and JSON.NULL are JSON's null, only null() is SQL NULL. A list or a dict
    (nearly every value: an order saves eleven JSON columns) goes to json_text before the checks for those."""
    kind = value.__class__
    if kind is not list and kind is not dict:
        if value is JSON.NULL:
            value = None
        elif isinstance(value, Null):
            return None
    return json_text(value)


def _json_result(value: Any) -> Any:
    if value.__class__ is str:
        return json_value(value)
    if value is None or isinstance(value, int | float):  # as SQLite's JSON type gives a number back
        return value
    return json_value(value)


def json_text(value: Any) -> str:
    """A JSON column's text, as json.dumps writes it. Most of an order's JSON columns hold an empty list
    (no risks, notes, exceptions …): written without the encoder's half dozen calls per column."""
    if not value:
        kind = type(value)
        if kind is list:
            return "[]"
        if kind is dict:
            return "{}"
    return json.dumps(value)


def json_value(text: str) -> Any:
    """A JSON column's value from its text (json.loads), an empty list or object without the decoder."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return json.loads(text)


# SQL parameters (addresses, notes, secrets, keys' hashes) never reach a log or an exception's text: a
# failing statement is reported with its SQL and "[SQL parameters hidden due to hide_parameters=True]".
ENGINE_OPTIONS: dict = {
    "hide_parameters": True,
    "json_serializer": json_text,
    "json_deserializer": json_value,
}


def create_engine(url: str) -> AsyncEngine:
    engine = _create_engine(url)
    # Counted for the SRE's view and for `make bench` (statements and commits per order): a few microseconds.
    statements, commits = metrics.DB_STATEMENTS.inc, metrics.DB_COMMITS.inc
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *_args: statements())
    event.listen(engine.sync_engine, "commit", lambda *_args: commits())
    if os.environ.get("ORDERDESK_SQL_TRACE"):
        from orderdesk import profiling

        profiling.trace_statements(engine.sync_engine, os.environ["ORDERDESK_SQL_TRACE"])
    return engine


def _create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has a single writer anyway, and queueing in the pool
        # is cheaper and safer than SQLITE_BUSY retries across connections.
        options: dict = {}
        if os.environ.get("ORDERDESK_SQLITE_DRIVER", "inline") == "inline":
            from orderdesk import sqlite_inline

            options["async_creator"] = sqlite_inline.async_creator(parsed.database or ":memory:")
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, **ENGINE_OPTIONS, **options
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=20, max_overflow=10, **ENGINE_OPTIONS)
    _check_on_checkout(engine)
    return engine


# A pooled PostgreSQL connection is checked when it leaves the pool, at no cost while the service is busy:
# one the server closed (a restart, an administrator's pg_terminate_backend: asyncpg has already seen
# the socket close) is replaced at once, and one idle for longer than this is pinged first (a single
# round trip), for a connection a network device dropped without a word. `pool_pre_ping` did the ping on
# every checkout, and the asyncpg dialect's ping is three round trips (BEGIN, an empty query, ROLLBACK):
# more than a small unit of work's own statements. A connection that breaks while in use (or whose close
# the client has not read yet when it leaves the pool: the unit of work racing a restart) raises in its
# unit of work: SQLAlchemy then sees the disconnect and invalidates the whole pool (every connection
# older than the error is replaced at its next checkout), and the caller's own retry (a consumer's
# redelivery, the relay's backoff, the client's retry of UNAVAILABLE) runs it again on a fresh one.
IDLE_PING_SECONDS = 10.0


def _check_on_checkout(engine: AsyncEngine) -> None:
    from sqlalchemy.exc import DisconnectionError
    from sqlalchemy.util import await_

    monotonic = time.monotonic

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn, record) -> None:
        if record is not None:
            record.info["idle_since"] = monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(_dbapi_conn, record, _proxy) -> None:
        driver = record.driver_connection
        if driver is None or driver.is_closed():
            raise DisconnectionError("the server closed the connection")  # the pool connects anew
        idle_since = record.info.pop("idle_since", None)
        if idle_since is not None and monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                await_(driver.fetchrow(";"))
            except Exception as exc:
                raise DisconnectionError(f"an idle connection failed its ping: {exc}") from exc


class Repository:
    """A repository on one unit of work's connection (`tx.repo(SomeRepository)`): every repository starts
    from the connection and its dialect's name, so it is written here once."""

    def __init__(self, conn):
        self.conn = conn
        self.dialect = conn.dialect.name


class Work:
    """One unit of work on the database: its connection and the repositories that hang on it.

    A use case asks for a repository with `work.repo(OrderRepository)` instead of building
    one on a connection, so a unit test can hand it a fake unit of work with in-memory
    repositories (tests/unit/fakes.py). The repository classes are the keys; the database
    they were handed in to (`Database(repositories=...)`) may map a key to another factory.
    """

    def __init__(
        self, conn: AsyncConnection, factories: dict[type, Callable[[AsyncConnection], Any]] | None = None
    ):
        self.conn = conn
        self._factories = factories or {}
        self._repos: dict[type, Any] = {}

    def repo(self, kind: type[R]) -> R:
        """The repository `kind` on this unit of work (one instance per unit of work)."""
        found = self._repos.get(kind)
        if found is None:
            found = self._repos[kind] = self._factories.get(kind, kind)(self.conn)
        return found

    async def execute(self, statement, params=None):
        return (
            await self.conn.execute(statement, params)
            if params is not None
            else await self.conn.execute(statement)
        )


class Tx(Work):
    """One database transaction: the connection, its repositories and the events it will publish."""

    def __init__(
        self, conn: AsyncConnection, factories: dict[type, Callable[[AsyncConnection], Any]] | None = None
    ):
        super().__init__(conn, factories)
        self.emitted = 0
        self.after_commit: list[Callable[[], None]] = []  # called once the transaction has committed
        self._outbox_rows: list[tuple[str, str, bytes]] = []

    async def emit(self, event) -> None:
        """The event's outbox row, written with the transaction's others in one statement just
        before it commits (so it commits with the state change, or not at all)."""
        # From the module itself: outbox imports this module, and a name from a package costs a call each time.
        from orderdesk.outbox import row

        self._outbox_rows.append(row(event))
        self.emitted += 1

    async def flush_outbox(self) -> None:
        from orderdesk.outbox import append_rows

        if self._outbox_rows:
            rows, self._outbox_rows = self._outbox_rows, []
            await append_rows(self.conn, rows)


class Database:
    def __init__(self, url: str, repositories: dict[type, Callable[[AsyncConnection], Any]] | None = None):
        """`repositories` maps a repository class to another factory (rarely needed: by default
        `work.repo(X)` builds X on the unit of work's connection)."""
        self.url = url
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self.repositories = dict(repositories or {})
        self._listeners: list[Callable[[], None]] = []
        # SQLite: the one connection is held for the process's life and units of work take turns on it. A
        # checkout from the pool and back cost more than a small transaction's own statements (about 200
        # Python calls of its 350). PostgreSQL keeps its pool: units of work there run side by side.
        self._held: AsyncConnection | None = None
        self._turn = asyncio.Lock() if self.dialect == "sqlite" else None
        self._turn_holder: asyncio.Task | None = None
        # PostgreSQL: reads outside a transaction block (each statement its own, as under READ COMMITTED
        # anyway), which saves the BEGIN and the ROLLBACK round trips around every read. A reader that needs
        # a transaction sets another isolation level first (`conn.execution_options(isolation_level=...)`).
        self._reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT") if self._turn is None else None
        )

    def on_commit_with_events(self, listener: Callable[[], None]) -> None:
        """The outbox relay registers here to wake as soon as events are committed."""
        self._listeners.append(listener)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction: committed on leaving, rolled back if the block raised. Use this, never
        `engine.begin()`: on SQLite the engine's one connection is the one this process holds."""
        if self._turn is None:
            try:
                async with self.engine.begin() as conn:
                    yield conn
            except DBAPIError as exc:
                _raise_lost_race(exc)
                raise
            return
        async with self._held_turn() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.begin() as conn:
            tx = Tx(conn, self.repositories)
            yield tx
            await tx.flush_outbox()  # skipped when the body raised: everything rolls back
        for callback in tx.after_commit:
            callback()
        if tx.emitted:
            for listener in self._listeners:
                listener()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that are not a use case's (reports, feeds, health); reads only: on
        PostgreSQL its statements are not in a transaction block unless the reader asks for one (see
        `in_transaction_block`), so a write here would commit at once. Writes go through `begin()`."""
        if self._reader is not None:
            async with self._reader.connect() as conn:
                yield conn
            return
        async with self._held_turn() as conn:
            try:
                yield conn
            finally:
                if conn.in_transaction():  # the reads' implicit transaction; nothing a reader wrote is kept
                    await conn.rollback()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Work]:
        """A read-only unit of work: `work.repo(X)` as in a transaction, nothing written."""
        async with self.read() as conn:
            yield Work(conn, self.repositories)

    @asynccontextmanager
    async def _held_turn(self) -> AsyncIterator[AsyncConnection]:
        """SQLite: this task's turn on the held connection (opened on first use, again after it broke)."""
        assert self._turn is not None
        me = asyncio.current_task()
        if me is not None and self._turn_holder is me:
            # The pool of one would wait for itself forever: say so at once instead.
            raise RuntimeError("a unit of work opened inside another on the same SQLite database")
        async with self._turn:
            self._turn_holder = me
            try:
                if self._held is None or self._held.closed or self._held.invalidated:
                    if self._held is not None:
                        await self._held.close()
                    self._held = await self.engine.connect()
                yield self._held
            finally:
                self._turn_holder = None

    async def close(self) -> None:
        if self._held is not None:
            assert self._turn is not None
            # After the unit of work in progress, if any (bounded: a stuck one must not stop a shutdown).
            with contextlib.suppress(TimeoutError):
                await within(self._turn.acquire(), 10)
            await self._held.close()
            self._held = None
        await self.engine.dispose()


async def in_transaction_block(conn: AsyncConnection) -> None:
    """A reader's next statements in one transaction block (for SET LOCAL, a lock held to the end): on a
    PostgreSQL `Database.read()` connection, before its first statement; a no-op elsewhere."""
    sync = conn.sync_connection
    if sync is not None and sync.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
        await conn.execution_options(isolation_level="READ COMMITTED")


class OwnStore:
    """A process's own database beside the services' (the gateway's keys, the console's accounts): its
    tables under MIGRATIONS_DIR (alembic), migrated to the head when opened; `ping` for readiness."""

    MIGRATIONS_DIR: ClassVar[Path]

    def __init__(self, db: Database):
        self.db = db

    @classmethod
    async def migrated(cls, url: str) -> Database:
        """The database at this URL, migrated to the current schema."""
        db = Database(url)
        await migrations.upgrade(db.engine, cls.MIGRATIONS_DIR)
        return db

    @classmethod
    async def open(cls, url: str) -> Self:
        return cls(await cls.migrated(url))

    @classmethod
    @asynccontextmanager
    async def opened(cls, url: str) -> AsyncIterator[Self]:
        """The store at this URL (migrated to the current schema), closed on leaving."""
        store = await cls.open(url)
        try:
            yield store
        finally:
            await store.close()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        async with self.db.read() as conn:
            await conn.execute(text("SELECT 1"))


# Statements on hot paths are templates, built once and executed with their parameters
# (`conn.execute(template, params)`): a statement built per call with its values inside costs SQLAlchemy
# about seven times the Python work to construct and key for its compiled cache (a 17-column insert: ~1,050
# calls against ~150), more than the database spends on it.


def insert_ignoring_conflicts(
    dialect_name: str, table: Table, values: dict[str, Any] | list[dict[str, Any]] | None = None
):
    """INSERT ... ON CONFLICT DO NOTHING on either backend; rowcount tells if it inserted.

    Without `values` the statement is a template to execute with parameters, built once per table and
    backend: use that form on hot paths."""
    if values is None:
        return _insert_ignoring_conflicts(dialect_name, table)
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).values(values).on_conflict_do_nothing()


@functools.cache
def _insert_ignoring_conflicts(dialect_name: str, table: Table):
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def upsert(dialect_name: str, table: Table, values: dict[str, Any], keys: list[str], update: list[str]):
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(values)
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})


DIALECTS = ("postgresql", "sqlite")  # the backends a statement is built for, where it differs between them
# What listed, by_keys and by_unique_keys give: the statement (or column) taking a list of strings as ONE
# parameter, and how to give it the list.
Listed = tuple[Any, Callable[[list[str]], Any]]


def listed(dialect_name: str, name: str) -> Listed:
    """A list of strings bound as ONE parameter `name`, as a column of its items to select from, and how to
    give the list: PostgreSQL an array (unnest), SQLite a JSON text (json_each). One statement text for any
    number of items, where an expanding IN is rendered (and its parameters processed) anew per length."""
    if dialect_name == "postgresql":
        return func.unnest(bindparam(name, type_=postgresql.ARRAY(String))), list
    return func.json_each(bindparam(name, type_=String)).table_valued("value").c.value, json.dumps


def by_unique_keys(dialect_name: str, query, key, name: str) -> Listed:
    """`query` (one table's columns) for the rows whose unique `key` is one of the strings given as ONE
    parameter `name` (db.listed), and how to give them.

    On PostgreSQL each key is looked up on its own: `FROM unnest(:keys) AS wanted(key) JOIN LATERAL (query
    WHERE key = wanted.key LIMIT 1)`. The LIMIT keeps the planner from folding the lookup into a join, so
    the plan is a probe of the key's index per key once the table holds about 120 rows, and stays so as it
    grows. `key IN (SELECT unnest(...))` is planned as a join: a prepared statement's generic plan made
    below about 1,000 rows hashes the keys and scans the whole table, and keeps doing so while the table
    grows until it is analyzed again (tests/integration/runtime/test_planner_settings.py shows both).
    `key = ANY(...)` scans below about 300 rows, comparing each row with every key (README "CPU per order")."""
    return by_keys(dialect_name, lambda match: query.where(match(key)), name, unique=True)


def by_keys(dialect_name: str, build, name: str, *, unique: bool = False) -> Listed:
    """by_unique_keys for any query: `build(match)` makes it, `match(column)` the condition that the column
    holds one of the keys (a UNION's branches each use it). For a key many rows share (an order's lines,
    `unique=False`) PostgreSQL's lookup of each key is fenced by `OFFSET 0` rather than `LIMIT 1`: the planner
    folds no subquery with either into the join."""
    if dialect_name != "postgresql":
        values, encode = listed(dialect_name, name)
        return build(lambda column: column.in_(select(values))), encode
    wanted = func.unnest(bindparam(name, type_=postgresql.ARRAY(String))).table_valued("key")
    wanted = wanted.render_derived(name="wanted")
    lookup = build(lambda column: column == wanted.c.key)
    fenced = lookup.limit(literal_column("1")) if unique else lookup.offset(literal_column("0"))
    found = fenced.lateral("found")
    return select(*found.c).select_from(wanted.join(found, true())), _each_once


def _each_once(keys: list[str]) -> list[str]:
    """The keys without repeats (in order), so that each row comes once as with IN."""
    return list(dict.fromkeys(keys))


# PostgreSQL's answers that say "this transaction lost to another; run it again": a deadlock it broke by
# cancelling this one, a serialization failure. The stores take locks in one order so neither should come;
# should one still (a lock order missed), the use case's retry runs it again rather than failing the caller.
_LOST_RACE_SQLSTATES = frozenset({"40P01", "40001"})


def _raise_lost_race(exc: DBAPIError) -> None:
    """Conflict (retried by usecase.retrying, gRPC ABORTED past it) for a transaction PostgreSQL cancelled."""
    state = getattr(exc.orig, "sqlstate", None)
    if state in _LOST_RACE_SQLSTATES:
        from orderdesk.errors import Conflict

        metrics.DB_LOST_RACES.inc()
        raise Conflict(f"the database cancelled the transaction ({state}); retry") from exc


async def update_versioned(
    conn, table: Table, key_column, key, loaded_version: int, values: dict[str, Any], what: str
) -> None:
    """Saves an aggregate's row only if nobody changed it since it was read (optimistic version column).

    A lost race raises Conflict (gRPC ABORTED): the use case reloads and tries again, or the caller does."""
    from orderdesk.errors import Conflict

    result = await conn.execute(
        _versioned_update(table, key_column.name),
        {**values, "where_key": key, "where_version": loaded_version},
    )
    if result.rowcount != 1:
        raise Conflict(f"{what} was changed concurrently; retry")


@functools.cache
def _versioned_update(table: Table, key_column: str):
    """UPDATE table SET <the parameters' columns> WHERE key = :where_key AND version = :where_version."""
    from sqlalchemy import bindparam, update

    return update(table).where(
        table.c[key_column] == bindparam("where_key"), table.c.version == bindparam("where_version")
    )


SQLITE_MAX_VARIABLES = 32_766  # values bound in one statement (SQLite's default since 3.32)


class RowsInsert:
    """An INSERT (any insert() template, ON CONFLICT clauses included) of many rows given as tuples, in one
    call. `conn.execute(template, [dicts])` spends a dozen Python calls a row on parameters (each row's dict
    turned into the driver's, a datetime column's bind processor two functions deep); here each column's
    bind processor runs over that column's values and nothing else runs per row. `columns`: the rows'
    values, in order; `constants`: columns with one value for the whole batch (an appended_at), given to
    execute() by name and processed once.

    On SQLite the rows go as one DB-API executemany. On PostgreSQL a template of VALUES is run as one
    statement, `INSERT … SELECT … FROM unnest($1::type[], …)` with a column's values in one array each:
    an executemany runs the statement once a row (a Bind and an Execute each, the executor started and
    ended each time), 11-12 us of the server's CPU a row of an outbox-shaped table against 7-8 as one
    statement. The rows go in in the tuples' order (the function scan hands them to the insert one by one, in
    the arrays' order): a serial key is numbered in it, as the outbox's ids must be.
    Its keys must differ within one call where the template's ON CONFLICT updates (one statement may not
    change a row twice); every caller's do (each row is a different event, order or partner)."""

    def __init__(self, template, columns: tuple[str, ...], constants: tuple[str, ...] = ()):
        self.template = template
        self.columns = columns
        self.constants = constants
        self._returns = bool(template.returning_column_descriptions)  # run by returned(), not execute()
        self._compiled: dict[str, Any] = {}  # by dialect: _for's and _values_group's

    def _for(self, dialect) -> tuple[str, list[int], dict[int, Callable], bool]:
        """The statement's SQL in the driver's positional style, each placeholder's value (an index into
        the columns, then the constants), the bind processor of each value that has one, and whether each
        column's values go as one array (the unnest form)."""
        try:
            return self._compiled[dialect.name]
        except KeyError:
            pass
        names = [*self.columns, *self.constants]
        unnested = None
        if dialect.name == "postgresql":
            unnested = _unnested(self.template, self.columns, self.constants)
        template, arrays = (self.template, False) if unnested is None else (unnested, True)
        # for_executemany: PostgreSQL would otherwise add RETURNING for a table's autoincrement key (an
        # INSERT of a SELECT, the unnest form, gets none)
        compiled = template.compile(dialect=dialect, column_keys=names, for_executemany=not arrays)
        if not compiled.positional or compiled.positiontup is None:
            raise TypeError(f"{dialect.name}: RowsInsert needs a positional paramstyle")
        if sorted(compiled.positiontup) != sorted(names):
            raise TypeError(f"RowsInsert: the statement binds {compiled.positiontup}, not {names}")
        # Each value's type is its placeholder's: a column's for the values set, a bindparam's (an UPDATE's
        # WHERE) for the others; in the unnest form a column's array's items' (an array's own processor
        # would take a JSON list for one more dimension of the array).
        types = {name: compiled.binds[name].type for name in names}
        types.update({name: types[name].item_type for name in self.columns if arrays})
        processors = {
            i: processor
            for i, name in enumerate(names)
            if (processor := types[name].dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        made = self._compiled[dialect.name] = (
            compiled.string,
            [names.index(name) for name in compiled.positiontup],
            processors,
            arrays,
        )
        return made

    def _values(self, processors: dict[int, Callable], rows: list[tuple], constants: dict[str, Any]) -> list:
        """Each column's values (a sequence), then each constant's one value, through their bind processors."""
        values: list[Any] = [*zip(*rows, strict=True)]
        values += [constants[name] for name in self.constants]
        for i, processor in processors.items():
            values[i] = list(map(processor, values[i])) if i < len(self.columns) else processor(values[i])
        return values

    async def execute(self, conn: AsyncConnection, rows: list[tuple], **constants: Any):
        """The driver's result (its rowcount: the rows the statement touched; of an executemany, where the
        backend counts one: `dialect.supports_sane_multi_rowcount`); None for no rows. A template with
        RETURNING goes through `returned`."""
        if self._returns:
            raise TypeError("RowsInsert: a template with RETURNING is run by returned(), not execute()")
        if not rows:
            return None
        sql, order, processors, arrays = self._for(conn.dialect)
        values = self._values(processors, rows, constants)
        if arrays:  # one list per column, one value per constant
            return await conn.exec_driver_sql(sql, tuple(values[i] for i in order))
        for i in range(len(self.columns), len(values)):  # a constant: its one value in every row
            values[i] = (values[i],) * len(rows)
        return await conn.exec_driver_sql(sql, [*zip(*[values[i] for i in order], strict=True)])

    async def returned(self, conn: AsyncConnection, rows: list[tuple], **constants: Any) -> list:
        """What the template's RETURNING gives for `rows` (the keys an INSERT … ON CONFLICT DO NOTHING took,
        the totals an upsert left), in no particular order: one statement, on PostgreSQL the unnest form.
        SQLite's executemany returns no rows, so there it is one INSERT of as many VALUES as rows (as many
        as SQLite binds values in a statement), its SQL the one-row statement's with the row's group repeated (as
        SQLAlchemy's "insertmanyvalues" makes it), its parameters the values row after row."""
        if not self._returns:
            raise TypeError("RowsInsert.returned() needs a template with RETURNING")
        if not rows:
            return []
        sql, order, processors, arrays = self._for(conn.dialect)
        values = self._values(processors, rows, constants)
        if arrays:
            return list((await conn.exec_driver_sql(sql, tuple(values[i] for i in order))).all())
        head, group, tail, places = self._values_group(conn.dialect)
        found: list = []
        width = len(self.columns)
        step = SQLITE_MAX_VARIABLES // len(places)
        for start in range(0, len(rows), step):
            size = min(step, len(rows) - start)
            in_place = [
                values[j][start : start + size] if j < width else itertools.repeat(values[j], size)
                for j in places
            ]
            found += (
                await conn.exec_driver_sql(
                    head + ", ".join([group] * size) + tail,
                    tuple(itertools.chain.from_iterable(zip(*in_place, strict=True))),
                )
            ).all()
        return found

    def _values_group(self, dialect) -> tuple[str, str, str, list[int]]:
        """The one-row INSERT's SQL split around its row's VALUES group, and the group's placeholders (value
        indexes, in order); checked against the two-row statement SQLAlchemy compiles."""
        key = f"{dialect.name}:group"
        if key in self._compiled:
            return self._compiled[key]
        names = [*self.columns, *self.constants]
        if not _inserts_values(self.template):
            raise TypeError("RowsInsert.returned() needs an INSERT of VALUES")
        table = self.template.table
        one, two = (
            self.template.values(
                [{n: bindparam(f"{n}__{i}", type_=table.c[n].type) for n in names} for i in range(count)]
            ).compile(dialect=dialect)
            for count in (1, 2)
        )
        first = list(one.positiontup or ())
        if not one.positional or sorted(first) != sorted(f"{n}__0" for n in names):
            raise TypeError(f"RowsInsert: {dialect.name} binds {first}, not {names}")
        if list(two.positiontup or ()) != [*first, *(p.replace("__0", "__1") for p in first)]:
            raise TypeError(f"RowsInsert: {two.string!r} does not bind its rows one after the other")
        places = [names.index(p.rsplit("__", 1)[0]) for p in first]
        # two = head + group + ", " + group + tail, where one = head + group + tail
        size = len(two.string) - len(one.string) - 2
        for end in range(len(one.string), size - 1, -1):
            group = one.string[end - size : end]
            if two.string == one.string[:end] + ", " + group + one.string[end:]:
                break
        else:
            raise TypeError(f"RowsInsert: no VALUES group found in {one.string!r}")
        made = self._compiled[key] = (one.string[: end - size], group, one.string[end:], places)
        return made


def _inserts_values(template) -> bool:
    """Whether `template` is an INSERT of VALUES (not of a SELECT, not an UPDATE)."""
    return isinstance(template, Insert) and template.select is None


def _unnested(template, columns: tuple[str, ...], constants: tuple[str, ...]):
    """`template` (an INSERT of VALUES, its ON CONFLICT kept) inserting `SELECT * FROM unnest(:a, :b, …)`:
    each of `columns` bound as one array of the column's type, each constant as one value. None for what
    stays an executemany: an UPDATE (RowsUpdate), an INSERT of a SELECT already, or one that sets value
    expressions of its own (`.values(at=func.now())`)."""
    if not _inserts_values(template):
        return None
    table = template.table
    arrays = [bindparam(name, type_=postgresql.ARRAY(table.c[name].type)) for name in columns]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived()
    each = select(
        *(rows.c[name] for name in columns), *(bindparam(n, type_=table.c[n].type) for n in constants)
    )
    try:
        return template.from_select([*columns, *constants], each)
    except InvalidRequestError:  # "This construct already inserts value expressions"
        return None


class RowsUpdate(RowsInsert):
    """An UPDATE template (`update(t).where(t.c.k == bindparam("key"))`) run for many rows given as tuples,
    one DB-API executemany, as RowsInsert runs an INSERT: `columns` names the columns set and the
    bindparams, in the tuples' order (a bindparam may not share a column's name)."""
