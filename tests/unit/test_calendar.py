"""The calendar module: working days, cut-offs in time zones, DST, lanes, the book."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orderdesk.calendar import (
    EVERY_DAY,
    Calendar,
    CalendarBook,
    Holiday,
    Lane,
    Lanes,
    WarehouseCalendar,
    add_working_days,
    delivery_date,
    format_working_days,
    is_working_day,
    latest_ship_date,
    next_working_day,
    parse_cutoff,
    parse_working_days,
    ship_date,
    working_day_on_or_after,
    working_days_between,
)

UTC = dt.UTC
FRI = dt.date(2026, 12, 4)  # a Friday
ZONES = ("UTC", "Europe/Berlin", "America/Chicago", "Asia/Shanghai", "Pacific/Auckland", "Asia/Kolkata")

days = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2028, 12, 31))
weekdays = st.frozensets(st.integers(0, 6), min_size=1)
holiday_sets = st.frozensets(days, max_size=40)
calendars = st.builds(Calendar, working_days=weekdays, holidays=holiday_sets)
cutoffs = st.times().map(lambda t: t.replace(microsecond=0))
warehouse_calendars = st.builds(
    WarehouseCalendar,
    working_days=weekdays,
    holidays=holiday_sets,
    time_zone=st.sampled_from(ZONES),
    cutoff=cutoffs,
)
instants = st.datetimes(
    min_value=dt.datetime(2025, 1, 2), max_value=dt.datetime(2028, 12, 30), timezones=st.just(UTC)
)


# --- properties ----------------------------------------------------------------------------------
@given(warehouse_calendars, calendars, instants, st.integers(0, 30))
def test_no_promised_date_lands_on_a_closed_day(warehouse, destination, now, transit):
    ship = ship_date(now, warehouse)
    assert is_working_day(ship, warehouse)
    assert ship >= warehouse.today(now)
    delivered = delivery_date(ship, transit, destination)
    assert is_working_day(delivered, destination)
    assert delivered >= ship
    assert working_days_between(ship, delivered, destination) >= transit


@given(calendars, days, days, st.integers(-40, 40))
def test_adding_working_days_is_monotonic_in_the_day(calendar, a, b, n):
    early, late = min(a, b), max(a, b)
    assert add_working_days(early, n, calendar) <= add_working_days(late, n, calendar)


@given(calendars, days, st.integers(-40, 40), st.integers(-40, 40))
def test_adding_working_days_is_monotonic_in_n(calendar, day, m, n):
    low, high = min(m, n), max(m, n)
    assert add_working_days(day, low, calendar) <= add_working_days(day, high, calendar)
    if low < high and is_working_day(day, calendar):  # from a closed day, 0 and 1 both roll forward
        assert add_working_days(day, low, calendar) < add_working_days(day, high, calendar)


@given(calendars, days, st.integers(-40, 40))
def test_a_sum_of_working_days_is_a_working_day_and_counts_back(calendar, day, n):
    result = add_working_days(day, n, calendar)
    assert is_working_day(result, calendar)
    if n > 0 or (n < 0 and is_working_day(day, calendar)):
        assert working_days_between(day, result, calendar) == n


@given(calendars, days, st.integers(1, 20), st.integers(1, 20))
def test_adding_in_steps_is_adding_at_once(calendar, day, m, n):
    assert add_working_days(add_working_days(day, m, calendar), n, calendar) == add_working_days(
        day, m + n, calendar
    )


@given(calendars, days, st.integers(0, 20))
def test_the_latest_ship_date_still_arrives_in_time(calendar, day, transit):
    target = working_day_on_or_after(day, calendar)
    latest = latest_ship_date(target, transit, calendar)
    assert delivery_date(latest, transit, calendar) <= target
    assert delivery_date(next_working_day(latest, calendar), transit, calendar) > target or transit == 0


@given(warehouse_calendars, instants)
def test_before_the_cut_off_on_a_working_day_ships_today_at_it_tomorrow(warehouse, now):
    today = warehouse.today(now)
    assume(is_working_day(today, warehouse))
    cutoff = warehouse.cutoff_at(today)
    assume(warehouse.today(cutoff) == today)  # a cut-off in a DST gap may move; checked below
    if now < cutoff:
        assert ship_date(now, warehouse) == today
    else:
        assert ship_date(now, warehouse) == next_working_day(today, warehouse)


@given(st.sampled_from(ZONES), cutoffs, days)
def test_the_instant_of_the_cut_off_ships_the_next_working_day(zone, cutoff, day):
    warehouse = WarehouseCalendar(working_days=EVERY_DAY, time_zone=zone, cutoff=cutoff)
    at = warehouse.cutoff_at(day)
    assume(warehouse.local(at).time() == cutoff)  # not in a DST gap
    assert ship_date(at, warehouse) == day + dt.timedelta(days=1)
    assert ship_date(at - dt.timedelta(seconds=1), warehouse) == day


# --- cut-off edges in time zones -----------------------------------------------------------------
def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


HAMBURG = WarehouseCalendar(time_zone="Europe/Berlin", cutoff=dt.time(14, 0))
SHANGHAI = WarehouseCalendar(time_zone="Asia/Shanghai", cutoff=dt.time(9, 0))
CHICAGO = WarehouseCalendar(time_zone="America/Chicago", cutoff=dt.time(15, 30))


@pytest.mark.parametrize(
    ("warehouse", "now", "expected"),
    [
        # Hamburg in winter (UTC+1): 14:00 local is 13:00 UTC
        (HAMBURG, "2026-12-03T12:59:59+00:00", "2026-12-03"),
        (HAMBURG, "2026-12-03T13:00:00+00:00", "2026-12-04"),
        # Friday after the cut-off ships Monday; Saturday too
        (HAMBURG, "2026-12-04T13:00:00+00:00", "2026-12-07"),
        (HAMBURG, "2026-12-05T08:00:00+00:00", "2026-12-07"),
        # Shanghai (UTC+8): Thursday 23:30 UTC is Friday 07:30 local, before its 09:00 cut-off
        (SHANGHAI, "2026-12-03T23:30:00+00:00", "2026-12-04"),
        (SHANGHAI, "2026-12-04T01:00:00+00:00", "2026-12-07"),
        # Chicago (UTC-6): Friday 23:00 UTC is 17:00 local, after its cut-off; Saturday 03:00 UTC is
        # still Friday evening there
        (CHICAGO, "2026-12-04T21:29:00+00:00", "2026-12-04"),
        (CHICAGO, "2026-12-04T21:30:00+00:00", "2026-12-07"),
        (CHICAGO, "2026-12-05T03:00:00+00:00", "2026-12-07"),
        # Monday 04:00 UTC is Sunday 22:00 in Chicago: ships Monday
        (CHICAGO, "2026-12-07T04:00:00+00:00", "2026-12-07"),
    ],
)
def test_cut_off_edges(warehouse, now, expected):
    assert ship_date(at(now), warehouse) == dt.date.fromisoformat(expected)


# --- daylight saving time ------------------------------------------------------------------------
def test_the_cut_off_follows_daylight_saving_time_in_berlin():
    # 2026-03-27 (Fri) is CET (UTC+1): 14:00 local = 13:00 UTC; 2026-03-30 (Mon) is CEST: 12:00 UTC
    assert ship_date(at("2026-03-27T12:30:00+00:00"), HAMBURG) == dt.date(2026, 3, 27)
    assert ship_date(at("2026-03-30T12:30:00+00:00"), HAMBURG) == dt.date(2026, 3, 31)
    assert HAMBURG.cutoff_at(dt.date(2026, 3, 27)) == at("2026-03-27T13:00:00+00:00")
    assert HAMBURG.cutoff_at(dt.date(2026, 3, 30)) == at("2026-03-30T12:00:00+00:00")
    # and back in autumn: 2026-10-26 (Mon) is CET again
    assert ship_date(at("2026-10-23T12:30:00+00:00"), HAMBURG) == dt.date(2026, 10, 26)
    assert ship_date(at("2026-10-26T12:30:00+00:00"), HAMBURG) == dt.date(2026, 10, 26)


def test_a_cut_off_in_the_spring_gap_or_the_repeated_autumn_hour():
    night = WarehouseCalendar(working_days=EVERY_DAY, time_zone="Europe/Berlin", cutoff=dt.time(2, 30))
    # 2026-03-29 02:30 does not exist in Berlin (clocks jump 02:00 -> 03:00): the cut-off is 01:30 UTC
    assert night.cutoff_at(dt.date(2026, 3, 29)) == at("2026-03-29T01:30:00+00:00")
    assert ship_date(at("2026-03-29T00:59:00+00:00"), night) == dt.date(2026, 3, 29)  # 01:59 CET
    assert ship_date(at("2026-03-29T01:00:00+00:00"), night) == dt.date(2026, 3, 30)  # 03:00 CEST
    # 2026-10-25 02:30 happens twice: the first time (CEST, 00:30 UTC) is the cut-off
    assert night.cutoff_at(dt.date(2026, 10, 25)) == at("2026-10-25T00:30:00+00:00")
    assert ship_date(at("2026-10-25T00:29:00+00:00"), night) == dt.date(2026, 10, 25)


def test_working_days_in_a_dst_week_are_whole_days():
    # the spring change falls on a Sunday; transit counts days, not hours
    assert delivery_date(dt.date(2026, 3, 27), 1, HAMBURG) == dt.date(2026, 3, 30)
    assert delivery_date(dt.date(2026, 3, 27), 2, HAMBURG) == dt.date(2026, 3, 31)


# --- working days ------------------------------------------------------------------------------
def test_a_friday_before_a_holiday_monday():
    easter = Calendar(holidays=frozenset({dt.date(2026, 4, 6)}))  # Easter Monday
    assert next_working_day(dt.date(2026, 4, 3), easter) == dt.date(2026, 4, 7)
    assert add_working_days(dt.date(2026, 4, 2), 2, easter) == dt.date(2026, 4, 7)
    assert working_day_on_or_after(dt.date(2026, 4, 4), easter) == dt.date(2026, 4, 7)
    assert add_working_days(dt.date(2026, 4, 7), -1, easter) == dt.date(2026, 4, 3)
    assert working_days_between(dt.date(2026, 4, 3), dt.date(2026, 4, 8), easter) == 2


def test_a_calendar_without_working_days_is_refused():
    with pytest.raises(ValueError, match="working_days"):
        Calendar(working_days=frozenset())
    with pytest.raises(ValueError, match="working_days"):
        Calendar(working_days=frozenset({7}))
    with pytest.raises(ValueError, match="time zone"):
        WarehouseCalendar(time_zone="Mars/Olympus")
    closed = Calendar(
        working_days=frozenset({0}),
        holidays=frozenset(dt.date(2026, 1, 5) + dt.timedelta(weeks=w) for w in range(600)),
    )
    with pytest.raises(ValueError, match="every day is closed"):
        next_working_day(dt.date(2026, 1, 1), closed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mon-Fri", {0, 1, 2, 3, 4}),
        ("mon tue wed thu fri sat", {0, 1, 2, 3, 4, 5}),
        ("Sun-Thu", {6, 0, 1, 2, 3}),
        ("1-5", {0, 1, 2, 3, 4}),
        ("Monday;Wednesday|friday", {0, 2, 4}),
        ("Sat-Fri", set(range(7))),
    ],
)
def test_working_days_are_read_from_text(text, expected):
    assert parse_working_days(text) == frozenset(expected)
    assert parse_working_days(format_working_days(expected)) == frozenset(expected)


@pytest.mark.parametrize("text", ["", "Mo", "Mon-Funday", "0", "8", "weekdays"])
def test_bad_working_days_are_refused(text):
    with pytest.raises(ValueError):
        parse_working_days(text)


def test_cut_off_times():
    assert parse_cutoff("14:00") == dt.time(14)
    assert parse_cutoff("9") == dt.time(9)
    assert parse_cutoff("23:59") == dt.time(23, 59)
    for bad in ("24:00", "14:60", "2pm", ""):
        with pytest.raises(ValueError):
            parse_cutoff(bad)


# --- lanes and the book ------------------------------------------------------------------------
def test_the_most_specific_lane_wins():
    lanes = Lanes(
        (
            Lane("DE", "FR", 2),
            Lane("DE", "FR", 1, carrier="DHL"),
            Lane("DE", "*", 4),
            Lane("*", "FR", 6),
            Lane("*", "*", 8),
        )
    )
    assert lanes.transit_days("DE", "FR", "dhl") == 1
    assert lanes.transit_days("DE", "FR", "UPS") == 2
    assert lanes.transit_days("de", "it") == 4
    assert lanes.transit_days("CN", "FR") == 6
    assert lanes.transit_days("CN", "US") == 8
    assert Lanes(()).transit_days("CN", "US") == 5
    assert Lanes(()).transit_days("CN", "US", fallback=9) == 9


@dataclass(frozen=True)
class W:
    warehouse: str
    country: str
    time_zone: str = "UTC"
    cutoff: dt.time = dt.time(14)
    working_days: frozenset[int] = frozenset(range(5))
    transit_days_domestic: int = 2
    transit_days_international: int = 6


def test_the_book_puts_warehouse_country_and_destination_holidays_together():
    book = CalendarBook(
        [
            W("WH-HAM", "DE", "Europe/Berlin", dt.time(14)),
            W("WH-SAT", "DE", working_days=frozenset(range(6))),
        ],
        [
            Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7), "stocktake"),
            Holiday("country", "DE", dt.date(2026, 12, 25), "Christmas"),
            Holiday("country", "FR", dt.date(2026, 12, 8), "a French holiday"),
        ],
        [Lane("DE", "FR", 1, carrier="DHL")],
    )
    ham = book.warehouse("WH-HAM")
    assert ham is not None and ham.holidays == {dt.date(2026, 12, 7), dt.date(2026, 12, 25)}
    assert book.warehouse("WH-SAT").holidays == {dt.date(2026, 12, 25)}
    assert book.warehouse("nope") is None
    # Friday after the cut-off: Monday is the stocktake, so Tuesday; domestic 2 working days
    promise = book.promise(at("2026-12-04T15:00:00+00:00"), "WH-HAM", "DE")
    assert (promise.ship_date, promise.delivery_date, promise.transit_days) == (
        dt.date(2026, 12, 8),
        dt.date(2026, 12, 10),
        2,
    )
    # to France with DHL: 1 working day on France's calendar (Tuesday the 8th is closed there)
    assert book.delivery_date(dt.date(2026, 12, 7), "WH-HAM", "FR", "DHL") == dt.date(2026, 12, 9)
    # a Saturday warehouse ships on Saturday
    assert book.ship_date(at("2026-12-05T10:00:00+00:00"), "WH-SAT") == dt.date(2026, 12, 5)
    # international without a lane: the warehouse's days
    assert book.transit_days("WH-HAM", "US") == 6
    assert book.transit_days("WH-HAM", "") == 6
    # goods made on a Sunday ship on Monday... the stocktake, so Tuesday
    assert book.arrival_from(dt.date(2026, 12, 6), "WH-HAM", "DE") == dt.date(2026, 12, 10)


def test_an_unknown_warehouse_gets_the_safer_promise():
    book = CalendarBook()
    promise = book.promise(at("2026-12-04T08:00:00+00:00"), "WH-X", "DE")
    assert promise.ship_date == dt.date(2026, 12, 7)
    assert promise.delivery_date == dt.date(2026, 12, 14)
    assert FRI.weekday() == 4


# --- the CSV imports -----------------------------------------------------------------------------
def test_the_demo_calendars_lanes_and_warehouses_parse():
    from pathlib import Path

    from orderdesk import masterdata

    demo = Path(__file__).resolve().parents[2] / "demo"
    holidays = masterdata.parse("calendars", (demo / "calendars.csv").read_text())
    assert Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7), "Stocktake (closed)") in holidays
    lanes = masterdata.parse("lanes", (demo / "lanes.csv").read_text())
    assert Lane("DE", "FR", 1, "DHL") in lanes
    (chicago,) = [
        w for w in masterdata.parse("warehouses", (demo / "warehouses.csv").read_text()) if w.country == "US"
    ]
    assert (chicago.time_zone, chicago.cutoff, chicago.working_days) == (
        "America/Chicago",
        dt.time(14),
        frozenset(range(6)),
    )


def test_bad_calendar_and_lane_cells_are_reported_by_row_and_column():
    from orderdesk import masterdata
    from orderdesk.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as err:
        masterdata.parse(
            "calendars",
            "scope,code,date,name\n"
            "region,X,2026-12-24,\n"
            "country,Germany,2026-12-24,\n"
            "warehouse,WH-1,24.12.2026,\n"
            "country,de,2026-12-25,ok\n"
            "country,DE,2026-12-25,twice\n",
        )
    assert [(v.field, v.description) for v in err.value.violations] == [
        ("row 2.scope", "must be one of warehouse, country"),
        ("row 3.code", "an ISO 3166 two-letter country code"),
        ("row 4.date", "must be a date YYYY-MM-DD"),
        ("row 6", "duplicate of row 5"),
    ]
    # name is optional; carrier too
    assert masterdata.parse("calendars", "scope,code,date\ncountry,fr,2026-07-14\n") == [
        Holiday("country", "FR", dt.date(2026, 7, 14), "")
    ]
    assert masterdata.parse("lanes", "origin_country,destination_country,transit_days\nde,*,3\n") == [
        Lane("DE", "*", 3)
    ]
    with pytest.raises(InvalidArgument) as err:
        masterdata.parse("lanes", "carrier,origin_country,destination_country,transit_days\nUPS,DEU,FR,-1\n")
    assert [v.field for v in err.value.violations] == ["row 2.origin_country", "row 2.transit_days"]


async def test_the_book_cache_reads_again_only_when_stale_or_cleared():
    from orderdesk.calendar_store import BookCache, CalendarRepository
    from tests.unit.fakes import FakeCalendars, FakeWork

    now, reads = [0.0], []

    async def warehouses(work):
        reads.append(now[0])
        return [W("WH-HAM", "DE")]

    cache = BookCache(warehouses, ttl=5.0, clock=lambda: now[0])
    work = FakeWork({CalendarRepository: FakeCalendars()})
    assert cache.cached() is None
    book = await cache.get(work)
    assert cache.cached() is book and await cache.get(work) is book and reads == [0.0]
    now[0] = 6.0
    assert cache.cached() is None and await cache.get(work) is not book and reads == [0.0, 6.0]
    cache.clear()
    await cache.get(work)
    assert reads == [0.0, 6.0, 6.0]
