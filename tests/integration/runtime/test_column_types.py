"""orderdesk.db's column types on SQLite: UtcDateTime's and JsonText's single-function processors write the
same text and read the same values as the processors they stand for (the decorator's, then the dialect's,
around the engine's serializer and deserializer), and a table of both reads back what it wrote."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, null, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from orderdesk.db import ENGINE_OPTIONS, Database, JsonText, UtcDateTime

DIALECT = sqlite.dialect(
    json_serializer=ENGINE_OPTIONS["json_serializer"], json_deserializer=ENGINE_OPTIONS["json_deserializer"]
)
PLUS_2, MINUS_5 = dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))
INSTANTS = [
    dt.datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 2, 9, 30, tzinfo=dt.UTC),  # no microseconds: still six digits
    dt.datetime(2026, 12, 2, 23, 59, 59, 999999, tzinfo=PLUS_2),
    dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=MINUS_5),
    dt.datetime(999, 3, 4, 5, 6, 7, tzinfo=dt.UTC),  # a short year: padded
    None,
]
VALUES = [[], {}, None, [1, 2.5, "é"], {"a": {"b": [None, True, False]}}, "text", 7, 0.25, [float("nan")], ""]


def old(kind, value):
    """The chain the type stood for: TypeDecorator's composition of its own and its impl's processors."""
    return TypeDecorator.bind_processor(kind.dialect_impl(DIALECT), DIALECT)(value)


def old_result(kind, text):
    return TypeDecorator.result_processor(kind.dialect_impl(DIALECT), DIALECT, None)(text)


def new(kind, value):
    """What SQLAlchemy runs now: the processor of the type's form for the dialect."""
    return kind.dialect_impl(DIALECT).bind_processor(DIALECT)(value)


def new_result(kind, text):
    return kind.dialect_impl(DIALECT).result_processor(DIALECT, None)(text)


@pytest.mark.parametrize("instant", INSTANTS)
def test_a_datetime_is_written_and_read_as_before(instant):
    kind = UtcDateTime()
    text = new(kind, instant)
    assert text == old(kind, instant)
    back = new_result(kind, text)
    assert back == old_result(kind, text) == instant
    assert back is None or back.tzinfo is dt.UTC
    for stored in ("2026-12-02 09:30:15.123456", "2026-12-02 09:30:15", "2026-12-02T09:30:15+02:00"):
        assert new_result(kind, stored) == old_result(kind, stored)
        assert new_result(kind, stored).utcoffset() == old_result(kind, stored).utcoffset()


def test_a_naive_datetime_is_refused_as_before():
    kind = UtcDateTime()
    for bind in (new, old):
        with pytest.raises(ValueError, match="naive datetime"):
            bind(kind, dt.datetime(2026, 12, 2))


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_json_is_written_and_read_as_before(value):
    kind, before = JsonText(), JSON().dialect_impl(DIALECT)
    text = new(kind, value)
    assert text == before.bind_processor(DIALECT)(value)
    assert repr(new_result(kind, text)) == repr(before.result_processor(DIALECT, None)(text))
    assert new(kind, JSON.NULL) == before.bind_processor(DIALECT)(JSON.NULL) == "null"
    assert new(kind, null()) is None is before.bind_processor(DIALECT)(null())
    for stored in (None, 3, 2.5):  # SQLite may hand back NULL or a number
        assert new_result(kind, stored) == before.result_processor(DIALECT, None)(stored)


async def test_a_table_reads_back_what_it_wrote(tmp_path):
    table = Table(
        "things",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UtcDateTime, nullable=True),
        Column("body", JsonText, nullable=True),
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'things.db'}")
    try:
        async with db.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(
                table.insert(),
                [
                    {"id": i, "at": at, "body": body}
                    for i, (at, body) in enumerate(zip(INSTANTS, VALUES[:6], strict=True))
                ],
            )
        async with db.read() as conn:
            rows = (await conn.execute(select(table).order_by(table.c.id))).all()
            texts = (await conn.exec_driver_sql("SELECT at, body FROM things ORDER BY id")).all()
    finally:
        await db.close()
    assert [(r.at, r.body) for r in rows] == list(zip(INSTANTS, VALUES[:6], strict=True))
    assert texts[0] == ("2026-12-02 09:30:15.123456", "[]")
    assert texts[2] == ("2026-12-02 21:59:59.999999", "null")
