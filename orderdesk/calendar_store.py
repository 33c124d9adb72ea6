"""Storage of the calendar master data, the same in every service that computes dates
(intake, inventory, shipping): holidays and lanes tables, the warehouses' calendar columns,
the migration that adds them, and a repository that builds an orderdesk.calendar.CalendarBook.

Each service's warehouses table keeps its own shape; the calendar columns are the same
everywhere (time_zone, cutoff "HH:MM", working_days "Mon Tue Wed Thu Fri")."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, delete, select, tuple_

from orderdesk.calendar import (
    CalendarBook,
    Holiday,
    Lane,
    format_working_days,
    parse_cutoff,
    parse_working_days,
)
from orderdesk.db import Repository, UtcDateTime, upsert, utcnow
from orderdesk.masterdata import Warehouse

calendar_metadata = MetaData()

holidays_table = Table(
    "holidays",
    calendar_metadata,
    Column("scope", String(16), primary_key=True),  # warehouse | country
    Column("code", String(64), primary_key=True),
    Column("date", String(10), primary_key=True),  # YYYY-MM-DD
    Column("name", String(200), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

lanes_table = Table(
    "lanes",
    calendar_metadata,
    Column("carrier", String(64), primary_key=True),  # "" = any carrier
    Column("origin", String(2), primary_key=True),  # country, or "*"
    Column("destination", String(2), primary_key=True),
    Column("transit_days", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The warehouses table's calendar columns (each service's table declares them too).
CALENDAR_COLUMNS = ("time_zone", "cutoff", "working_days")
DEFAULT_WORKING_DAYS = "Mon Tue Wed Thu Fri"


def calendar_columns() -> list[Column]:
    return [
        Column("time_zone", String(64), nullable=False, server_default="UTC"),
        Column("cutoff", String(5), nullable=False, server_default="00:00"),
        Column("working_days", String(32), nullable=False, server_default=DEFAULT_WORKING_DAYS),
    ]


def upgrade_calendars(op) -> None:
    """The migration every date-computing service runs: warehouses gain a time zone, a local
    cut-off (the old UTC cut-off hour, in UTC) and working days (Monday to Friday); the
    holidays and lanes tables."""
    import sqlalchemy as sa

    for column in calendar_columns():
        op.add_column("warehouses", column)
    old = sa.table("warehouses", sa.column("cutoff_hour_utc", sa.Integer), sa.column("cutoff", sa.String))
    hour = old.c.cutoff_hour_utc
    padding = sa.case((hour < 10, sa.literal("0")), else_=sa.literal(""))
    op.execute(old.update().values(cutoff=padding + sa.cast(hour, sa.String(2)) + sa.literal(":00")))
    with op.batch_alter_table("warehouses") as batch:
        batch.drop_column("cutoff_hour_utc")
    for table in (holidays_table, lanes_table):
        op.create_table(table.name, *[c._copy() for c in table.columns])


def downgrade_calendars(op) -> None:
    import sqlalchemy as sa

    op.drop_table("lanes")
    op.drop_table("holidays")
    op.add_column("warehouses", sa.Column("cutoff_hour_utc", sa.Integer, nullable=False, server_default="0"))
    new = sa.table("warehouses", sa.column("cutoff_hour_utc", sa.Integer), sa.column("cutoff", sa.String))
    op.execute(new.update().values(cutoff_hour_utc=sa.cast(sa.func.substr(new.c.cutoff, 1, 2), sa.Integer)))
    with op.batch_alter_table("warehouses") as batch:
        for name in CALENDAR_COLUMNS:
            batch.drop_column(name)


def warehouse_values(w: Warehouse) -> dict[str, Any]:
    """A warehouse record as its row's values (without updated_at)."""
    return {
        "warehouse": w.warehouse,
        "name": w.name,
        "country": w.country,
        "time_zone": w.time_zone,
        "cutoff": w.cutoff.strftime("%H:%M"),
        "working_days": format_working_days(w.working_days),
        "transit_days_domestic": w.transit_days_domestic,
        "transit_days_international": w.transit_days_international,
    }


def warehouse_record(row: Mapping[str, Any]) -> Warehouse:
    return Warehouse(
        warehouse=row["warehouse"],
        name=row["name"],
        country=row["country"],
        time_zone=row["time_zone"],
        cutoff=parse_cutoff(row["cutoff"]),
        working_days=parse_working_days(row["working_days"]),
        transit_days_domestic=row["transit_days_domestic"],
        transit_days_international=row["transit_days_international"],
    )


# Built once (a book is read again every few seconds on each service that dates deliveries).
_HOLIDAYS = select(holidays_table).order_by(
    holidays_table.c.scope, holidays_table.c.code, holidays_table.c.date
)
_LANES = select(lanes_table).order_by(lanes_table.c.origin, lanes_table.c.destination, lanes_table.c.carrier)


class CalendarRepository(Repository):
    """Holidays and lanes on one unit of work (`tx.repo(CalendarRepository)`)."""

    async def replace_holidays(self, records: Iterable[Holiday]) -> None:
        """A calendars import is the whole list of each warehouse or country it names: their
        holidays not in it are removed (so a holiday is taken back by importing without it)."""
        records = list(records)
        named = sorted({(h.scope, h.code) for h in records})
        for chunk in _chunks(named, 200):
            await self.conn.execute(
                delete(holidays_table).where(tuple_(holidays_table.c.scope, holidays_table.c.code).in_(chunk))
            )
        now = utcnow()
        rows = [
            {"scope": h.scope, "code": h.code, "date": h.date.isoformat(), "name": h.name, "updated_at": now}
            for h in records
        ]
        for chunk in _chunks(rows, 500):
            await self.conn.execute(holidays_table.insert(), chunk)

    async def upsert_lanes(self, records: Iterable[Lane]) -> None:
        now = utcnow()
        for lane in records:
            values = {
                "carrier": lane.carrier,
                "origin": lane.origin,
                "destination": lane.destination,
                "transit_days": lane.transit_days,
                "updated_at": now,
            }
            await self.conn.execute(
                upsert(
                    self.dialect,
                    lanes_table,
                    values,
                    keys=["carrier", "origin", "destination"],
                    update=["transit_days", "updated_at"],
                )
            )

    async def holidays(self) -> list[Holiday]:
        rows = await self.conn.execute(_HOLIDAYS)
        return [Holiday(r.scope, r.code, dt.date.fromisoformat(r.date), r.name) for r in rows]

    async def lanes(self) -> list[Lane]:
        rows = await self.conn.execute(_LANES)
        return [Lane(r.origin, r.destination, r.transit_days, r.carrier) for r in rows]

    async def book(self, warehouses: Iterable[Warehouse] | Mapping[str, Warehouse]) -> CalendarBook:
        """The calendar book over `warehouses` (read by the service from its own table)."""
        return CalendarBook(warehouses, await self.holidays(), await self.lanes())


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# How long a process trusts the calendar book it read (holidays, lanes and warehouses change
# only by import; an import through the process clears it at once).
BOOK_CACHE_SECONDS = 5.0


class BookCache:
    """One process's calendar book, read again at most every `ttl` seconds (0: every time).

    `warehouses` reads the service's own warehouses table on a unit of work."""

    def __init__(
        self,
        warehouses: Callable[[Any], Awaitable[Iterable[Warehouse]]],
        ttl: float = BOOK_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._warehouses = warehouses
        self.ttl = ttl
        self._clock = clock
        self._cached: tuple[float, CalendarBook] | None = None

    def cached(self) -> CalendarBook | None:
        """The book when the one held is fresh enough, else None (read it with `get`)."""
        if self._cached is not None and self.ttl > 0 and self._clock() - self._cached[0] <= self.ttl:
            return self._cached[1]
        return None

    async def get(self, work) -> CalendarBook:
        """The book, read on `work` (a Tx or a reading unit) when the cached one is too old."""
        book = self.cached()
        if book is None:
            now = self._clock()
            book = await work.repo(CalendarRepository).book(await self._warehouses(work))
            self._cached = (now, book)
        return book

    def clear(self) -> None:
        self._cached = None


async def import_calendar_kind(work, kind: str, records: list) -> None:
    """Stores an import of `calendars` (replacing the named warehouses' and countries' holidays)
    or `lanes` (upserted) on `work`, in the owning service's transaction."""
    repo = work.repo(CalendarRepository)
    if kind == "calendars":
        await repo.replace_holidays(records)
    elif kind == "lanes":
        await repo.upsert_lanes(records)
    else:
        raise ValueError(f"not a calendar kind: {kind}")
