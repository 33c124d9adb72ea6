"""orderdesk.db.RowsInsert on SQLite and PostgreSQL: rows given as tuples (on SQLite one DB-API executemany,
on PostgreSQL one INSERT … SELECT FROM unnest of a column's values each) are stored exactly as SQLAlchemy's
executemany of dicts stores them (the types' bind processors applied, datetimes and JSON included), ON
CONFLICT templates too, in the rows' order; a failing row fails the whole batch."""

from __future__ import annotations

import datetime as dt
import random
import uuid

import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from devtools.localservers import create_postgres_database, drop_postgres_database
from orderdesk.db import Database, JsonText, RowsInsert, UtcDateTime

metadata = MetaData()


def entries_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("key", String(64), primary_key=True),
        Column("number", BigInteger, nullable=False),
        Column("at", UtcDateTime, nullable=False),
        Column("body", Text, nullable=False),
        Column("stamped_at", UtcDateTime, nullable=False),
    )


BY_DICTS, BY_ROWS = entries_table("by_dicts"), entries_table("by_rows")
COLUMNS = ("key", "number", "at", "body")
UTC, PLUS_2 = dt.UTC, dt.timezone(dt.timedelta(hours=2))


@pytest.fixture
async def database(backend, tmp_path, request):
    admin = name = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'rows.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        name = f"odt_{uuid.uuid4().hex[:16]}"
        url = await create_postgres_database(admin, name)
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield db
    await db.close()
    if name:
        await drop_postgres_database(admin, name)


def rows(n: int) -> list[tuple]:
    return [
        (
            f"k{i}",
            i * 10**12,
            dt.datetime(2026, 3, 1, 12, 0, i % 60, (i * 137) % 1_000_000, tzinfo=UTC if i % 2 else PLUS_2),
            f'b\u00e9{i}"\U0001d538',
        )
        for i in range(n)
    ]


async def stored(db: Database, table: Table) -> list:
    """The rows as the driver returns them (SQLite: the text stored), not as SQLAlchemy's types parse them."""
    async with db.reading() as work:
        result = await work.conn.exec_driver_sql(
            f"SELECT key, number, at, body, stamped_at FROM {table.name}"
        )
        return sorted(tuple(r) for r in result.all())


@pytest.mark.parametrize("n", [1, 2, 57])
async def test_rows_are_stored_as_an_executemany_of_dicts_stores_them(database, n):
    stamped = dt.datetime(2026, 3, 2, 8, 30, tzinfo=PLUS_2)
    async with database.transaction() as tx:
        await tx.conn.execute(
            BY_DICTS.insert(),
            [{**dict(zip(COLUMNS, row, strict=True)), "stamped_at": stamped} for row in rows(n)],
        )
        await RowsInsert(BY_ROWS.insert(), COLUMNS, constants=("stamped_at",)).execute(
            tx.conn, rows(n), stamped_at=stamped
        )
        await RowsInsert(BY_ROWS.insert(), COLUMNS, constants=("stamped_at",)).execute(
            tx.conn, [], stamped_at=stamped
        )  # nothing to insert: no statement
    assert await stored(database, BY_ROWS) == await stored(database, BY_DICTS)
    assert len(await stored(database, BY_ROWS)) == n


async def test_an_on_conflict_template_inserts_and_updates_in_one_batch(database, backend):
    dialect = postgresql if backend == "postgresql" else sqlite
    template = dialect.insert(BY_ROWS)
    template = template.on_conflict_do_update(
        index_elements=["key"], set_={"number": template.excluded.number, "body": template.excluded.body}
    )
    upsert = RowsInsert(template, ("key", "number", "at", "body", "stamped_at"))
    at = dt.datetime(2026, 3, 1, tzinfo=UTC)
    async with database.transaction() as tx:
        await upsert.execute(tx.conn, [("a", 1, at, "one", at), ("b", 2, at, "two", at)])
    async with database.transaction() as tx:
        await upsert.execute(tx.conn, [("b", 3, at, "three", at), ("c", 4, at, "four", at)])
    async with database.reading() as work:
        got = (await work.conn.execute(select(BY_ROWS.c.key, BY_ROWS.c.number, BY_ROWS.c.body))).all()
    assert sorted(tuple(r) for r in got) == [("a", 1, "one"), ("b", 3, "three"), ("c", 4, "four")]


async def test_a_failing_row_fails_the_whole_batch(database):
    insert = RowsInsert(BY_ROWS.insert(), COLUMNS, constants=("stamped_at",))
    now = dt.datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        async with database.transaction() as tx:
            await insert.execute(tx.conn, [*rows(3), rows(1)[0]], stamped_at=now)  # k0 twice
    assert await stored(database, BY_ROWS) == []
    with pytest.raises(ValueError, match="naive datetime"):  # the column types' checks still apply
        async with database.transaction() as tx:
            await insert.execute(tx.conn, [("n", 1, dt.datetime(2026, 3, 1), "naive")], stamped_at=now)
    assert await stored(database, BY_ROWS) == []


def test_the_rows_must_name_what_the_statement_binds():
    template = BY_ROWS.insert().values(body=bindparam("text"))
    with pytest.raises(TypeError, match="binds"):
        RowsInsert(template, (*COLUMNS, "stamped_at"))._for(sqlite.dialect(paramstyle="qmark"))


async def test_a_template_with_value_expressions_of_its_own_stays_an_executemany(database, backend):
    """`.values(stamped_at=func.now())` cannot take a SELECT of arrays as well: PostgreSQL runs it row by row."""
    statements = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[-1]))
    insert = RowsInsert(BY_ROWS.insert().values(stamped_at=func.now()), COLUMNS)
    async with database.transaction() as tx:
        await insert.execute(tx.conn, rows(3))
    assert statements == [True]  # an executemany on either backend
    assert [r[0] for r in await stored(database, BY_ROWS)] == ["k0", "k1", "k2"]


def test_a_table_with_an_autoincrement_key_is_inserted_into_without_returning_it():
    """The database's key is left to it: no RETURNING (PostgreSQL adds one to a single row's INSERT)."""
    numbered = Table("numbered", MetaData(), Column("id", BigInteger, primary_key=True), Column("body", Text))
    insert = RowsInsert(numbered.insert(), ("body",))
    for dialect in (
        postgresql.asyncpg.dialect(paramstyle="numeric_dollar"),
        sqlite.dialect(paramstyle="qmark"),
    ):
        sql, _, _, _ = insert._for(dialect)
        columns = sql.split("(")[1].split(")")[0]  # INSERT INTO numbered (…)
        assert "RETURNING" not in sql and "id" not in columns.split(", "), sql


NUMBERED = Table(
    "numbered_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # Integer: SQLite's rowid
    Column("key", String(64), nullable=False, unique=True),
    Column("document", JsonText, nullable=False),
)


async def test_a_batch_is_one_statement_on_postgresql_and_keeps_the_rows_order(database, backend):
    """PostgreSQL: one statement for the batch (unnest of each column's values), not a statement a row; the
    rows numbered by the table's serial key in the order given (the outbox publishes in its ids' order), a
    JSON column's lists and dicts stored as documents (not as one more dimension of the array)."""
    statements = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[-1]))
    documents = [[], [1, [2]], {"lines": [{"sku": "A"}]}, "text", None, 7]
    keys = [f"d{i}" for i in range(60)]
    random.Random(4).shuffle(keys)  # not in the keys' own order
    given = [(key, documents[i % len(documents)]) for i, key in enumerate(keys)]
    async with database.transaction() as tx:
        await RowsInsert(NUMBERED.insert(), ("key", "document")).execute(tx.conn, given)
    assert statements == ([False] if backend == "postgresql" else [True])  # each call's executemany flag
    async with database.reading() as work:
        got = (
            await work.conn.execute(select(NUMBERED.c.key, NUMBERED.c.document).order_by(NUMBERED.c.id))
        ).all()
    assert [tuple(r) for r in got] == given


def ignoring(backend: str, table: Table):
    """INSERT … ON CONFLICT DO NOTHING RETURNING key, number: what a claim of keys runs."""
    dialect = postgresql if backend == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing().returning(table.c.key, table.c.number)


@pytest.mark.parametrize("n", [1, 3, 57])
async def test_returned_gives_what_returning_gives_for_every_row_in_one_statement(database, backend, n):
    """`returned` gives the rows RETURNING gives for SQLAlchemy's executemany of dicts, and stores the same:
    a key taken before, or twice in the call (the first holds it), is not inserted and not returned. One
    statement for the call on either backend (SQLite: one INSERT of n VALUES)."""
    stamped = dt.datetime(2026, 3, 2, 8, 30, tzinfo=PLUS_2)
    given = rows(n) + rows(n)[:1]  # k0 twice
    taken = [r for r in rows(n) if r[0] in ("k1", "k2")]  # sent before
    async with database.transaction() as tx:
        for table in (BY_DICTS, BY_ROWS):
            await RowsInsert(table.insert(), COLUMNS, constants=("stamped_at",)).execute(
                tx.conn, taken, stamped_at=stamped
            )
    statements = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[-1]))
    async with database.transaction() as tx:
        by_dicts = await tx.conn.execute(
            ignoring(backend, BY_DICTS),
            [{**dict(zip(COLUMNS, row, strict=True)), "stamped_at": stamped} for row in given],
        )
        expected = sorted(tuple(r) for r in by_dicts)
        statements.clear()
        got = await RowsInsert(ignoring(backend, BY_ROWS), COLUMNS, constants=("stamped_at",)).returned(
            tx.conn, given, stamped_at=stamped
        )
    assert statements == [False]  # one statement, not an executemany
    assert sorted(tuple(r) for r in got) == expected
    assert sorted(key for key, _number in got) == sorted(f"k{i}" for i in range(n) if i not in (1, 2))
    assert await stored(database, BY_ROWS) == await stored(database, BY_DICTS)


async def test_returned_on_sqlite_splits_what_one_statement_cannot_bind(database, backend, monkeypatch):
    """Past the values SQLite binds in one statement, the rows go in several, in order: all returned. The
    tuples' columns need not be in the table's order."""
    monkeypatch.setattr("orderdesk.db.SQLITE_MAX_VARIABLES", 26)  # 5 rows of 5 values a statement
    statements = []
    event.listen(database.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[-1]))
    now = dt.datetime(2026, 3, 1, tzinfo=UTC)
    shuffled = ("body", "at", "key", "number")
    async with database.transaction() as tx:
        got = await RowsInsert(ignoring(backend, BY_ROWS), shuffled, constants=("stamped_at",)).returned(
            tx.conn, [(body, at, key, number) for key, number, at, body in rows(23)], stamped_at=now
        )
        await RowsInsert(BY_DICTS.insert(), COLUMNS, constants=("stamped_at",)).execute(
            tx.conn, rows(23), stamped_at=now
        )
    assert len(statements) == (1 if backend == "postgresql" else 5) + 1
    assert sorted(tuple(r) for r in got) == sorted((key, number) for key, number, _, _ in rows(23))
    assert await stored(database, BY_ROWS) == await stored(database, BY_DICTS)


async def test_an_upsert_returns_the_rows_as_it_left_them(database, backend):
    """ON CONFLICT DO UPDATE … RETURNING: a customer's total as the booking left it (intake's credit)."""
    dialect = postgresql if backend == "postgresql" else sqlite
    template = dialect.insert(BY_ROWS)
    template = template.on_conflict_do_update(
        index_elements=["key"], set_={"number": BY_ROWS.c.number + template.excluded.number}
    ).returning(BY_ROWS.c.key, BY_ROWS.c.number)
    add = RowsInsert(template, ("key", "number"), constants=("at", "body", "stamped_at"))
    at = dt.datetime(2026, 3, 1, tzinfo=UTC)
    async with database.transaction() as tx:
        first = await add.returned(tx.conn, [("a", 5), ("b", 7)], at=at, body="", stamped_at=at)
        then = await add.returned(tx.conn, [("b", 10), ("c", 1)], at=at, body="", stamped_at=at)
    assert sorted(tuple(r) for r in first) == [("a", 5), ("b", 7)]
    assert sorted(tuple(r) for r in then) == [("b", 17), ("c", 1)]
    async with database.reading() as work:
        got = (await work.conn.execute(select(BY_ROWS.c.key, BY_ROWS.c.number))).all()
    assert sorted(tuple(r) for r in got) == [("a", 5), ("b", 17), ("c", 1)]


async def test_returning_goes_through_returned_and_only_there(database, backend):
    now = dt.datetime(2026, 3, 1, tzinfo=UTC)
    async with database.transaction() as tx:
        with pytest.raises(TypeError, match="returned"):
            await RowsInsert(ignoring(backend, BY_ROWS), COLUMNS, constants=("stamped_at",)).execute(
                tx.conn, rows(2), stamped_at=now
            )
        with pytest.raises(TypeError, match="RETURNING"):
            await RowsInsert(BY_ROWS.insert(), COLUMNS, constants=("stamped_at",)).returned(
                tx.conn, rows(2), stamped_at=now
            )
    assert await stored(database, BY_ROWS) == []
