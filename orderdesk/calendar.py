"""Working days and time zones: the one calendar every date computation uses. Plain Python, no I/O.

- A `Calendar` says which days are working days: working weekdays (Monday = 0) minus holidays.
- A `WarehouseCalendar` is a warehouse's: its calendar plus its IANA time zone and its local
  cut-off time. An order allocated before the cut-off on a working day (local time) ships that
  day; later, or on a closed day, it ships on the next working day (`ship_date`).
- Transit is counted in working days (`delivery_date`): `n` working days after the ship date,
  on the calendar it is given; the book gives the destination's (Monday to Friday minus the
  destination country's holidays). A promise therefore never lands on a closed day.
- `Lanes`: a carrier's transit working days per lane, warehouse country -> destination country,
  the most specific lane first, else the warehouse's domestic / international days, else
  DEFAULT_TRANSIT_DAYS.
- `CalendarBook` puts the master data together (warehouses, holidays per warehouse or per
  country, lanes) and answers per warehouse code and destination country.

Dates are `datetime.date` in the local calendar of the place they describe (a warehouse's ship
date, a destination's delivery date); instants are aware datetimes (a naive one counts as UTC).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONDAY_TO_FRIDAY = frozenset(range(5))
EVERY_DAY = frozenset(range(7))
# Transit when neither a lane nor the warehouse says anything.
DEFAULT_TRANSIT_DAYS = 5
# Searching further than this for a working day means the calendar has none (all holidays).
MAX_SEARCH_DAYS = 3660
ANY = "*"  # a lane's wildcard country


# --- parsing the master data's cells ---------------------------------------------------------
def parse_working_days(text: str) -> frozenset[int]:
    """ "Mon-Fri", "mon tue wed thu fri sat", "Sun-Thu" (a range may wrap), "1-5" (ISO numbers).

    Raises ValueError naming what is wrong."""
    days: set[int] = set()
    for word in text.replace(",", " ").replace(";", " ").replace("|", " ").split():
        first, sep, last = word.partition("-")
        start = _weekday(first)
        end = _weekday(last) if sep else start
        day = start
        days.add(day)
        while day != end:
            day = (day + 1) % 7
            days.add(day)
    if not days:
        raise ValueError("at least one working day (e.g. Mon-Fri)")
    return frozenset(days)


def _weekday(word: str) -> int:
    w = word.strip().lower()
    if w.isdigit() and 1 <= int(w) <= 7:
        return int(w) - 1
    for i, name in enumerate(_FULL_NAMES):
        if len(w) >= 3 and name.startswith(w):
            return i
    raise ValueError(f"unknown weekday {word!r}; use Mon..Sun or 1..7 (ISO)")


_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def format_working_days(days: Iterable[int]) -> str:
    """The canonical text of a set of working days ("Mon Tue Wed Thu Fri")."""
    return " ".join(WEEKDAY_NAMES[d].capitalize() for d in sorted(set(days)))


def parse_cutoff(text: str) -> dt.time:
    """A local time of day, "HH:MM" (or "HH"). Raises ValueError."""
    raw = text.strip()
    hour, sep, minute = raw.partition(":")
    try:
        value = dt.time(int(hour), int(minute) if sep else 0)
    except ValueError:
        raise ValueError("must be a time of day HH:MM (00:00-23:59)") from None
    return value


def check_time_zone(name: str) -> str:
    """The IANA name when known ("Europe/Berlin"); raises ValueError otherwise."""
    zone(name)
    return name


@cache
def zone(name: str) -> ZoneInfo:
    try:
        if not name or name != name.strip():
            raise ValueError
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


# --- calendars ---------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Calendar:
    """Which days are working days: the working weekdays (Monday = 0) minus the holidays."""

    working_days: frozenset[int] = MONDAY_TO_FRIDAY
    holidays: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        if not self.working_days or not self.working_days <= EVERY_DAY:
            raise ValueError("working_days: a non-empty set of weekdays 0 (Monday) .. 6 (Sunday)")


@dataclass(frozen=True, kw_only=True)
class WarehouseCalendar(Calendar):
    """A warehouse's calendar, its IANA time zone and its local cut-off time."""

    time_zone: str = "UTC"
    cutoff: dt.time = dt.time(23, 59)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_time_zone(self.time_zone)

    def local(self, instant: dt.datetime) -> dt.datetime:
        """`instant` in the warehouse's local time."""
        return as_utc(instant).astimezone(zone(self.time_zone))

    def today(self, instant: dt.datetime) -> dt.date:
        """The warehouse's local date at `instant`."""
        return self.local(instant).date()

    def cutoff_at(self, day: dt.date) -> dt.datetime:
        """The cut-off of local `day` as a UTC instant (a cut-off inside a DST gap moves forward)."""
        local = dt.datetime.combine(day, self.cutoff, tzinfo=zone(self.time_zone))
        return local.astimezone(dt.UTC)


def as_utc(instant: dt.datetime) -> dt.datetime:
    return (instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant).astimezone(dt.UTC)


def is_working_day(day: dt.date, calendar: Calendar) -> bool:
    return day.weekday() in calendar.working_days and day not in calendar.holidays


def next_working_day(day: dt.date, calendar: Calendar) -> dt.date:
    """The first working day strictly after `day`."""
    return add_working_days(day, 1, calendar)


def previous_working_day(day: dt.date, calendar: Calendar) -> dt.date:
    """The last working day strictly before `day`."""
    return add_working_days(day, -1, calendar)


def working_day_on_or_after(day: dt.date, calendar: Calendar) -> dt.date:
    """`day` when it is a working day, else the next one."""
    return add_working_days(day, 0, calendar)


def working_day_on_or_before(day: dt.date, calendar: Calendar) -> dt.date:
    """`day` when it is a working day, else the last one before it (a date to deliver *by*)."""
    return day if is_working_day(day, calendar) else previous_working_day(day, calendar)


def add_working_days(day: dt.date, n: int, calendar: Calendar) -> dt.date:
    """The `n`-th working day after `day` (n > 0), before it (n < 0); n = 0 rolls a closed day
    forward to the next working day. Always a working day; monotonic in `day` and in `n`."""
    step = dt.timedelta(days=-1 if n < 0 else 1)
    left = abs(n) if n else (0 if is_working_day(day, calendar) else 1)
    current, closed_in_a_row = day, 0
    while left:
        current += step
        if is_working_day(current, calendar):
            left -= 1
            closed_in_a_row = 0
        else:
            closed_in_a_row += 1
            if closed_in_a_row > MAX_SEARCH_DAYS:
                raise ValueError(
                    f"no working day within {MAX_SEARCH_DAYS} days of {current}: every day is closed"
                )
    return current


def working_days_between(start: dt.date, end: dt.date, calendar: Calendar) -> int:
    """Working days in (start, end]: how many working days `end` lies after `start` (negative
    when `end` is earlier: minus those in (end, start]). add_working_days(start, k) is `end` for
    that k when `end` is a working day (and, for k < 0, `start` too)."""
    if end < start:
        return -working_days_between(end, start, calendar)
    return sum(
        1 for i in range(1, (end - start).days + 1) if is_working_day(start + dt.timedelta(days=i), calendar)
    )


def ship_date(now: dt.datetime, warehouse: WarehouseCalendar) -> dt.date:
    """The warehouse's local today when `now` is before its cut-off on a working day, else its
    next working day. At the cut-off itself the day's last pick wave has gone."""
    local = warehouse.local(now)
    today = local.date()
    if is_working_day(today, warehouse) and local.time().replace(tzinfo=None) < warehouse.cutoff:
        return today
    return next_working_day(today, warehouse)


def delivery_date(ship_day: dt.date, transit_days: int, calendar: Calendar) -> dt.date:
    """`transit_days` working days after `ship_day` on `calendar` (the destination's, or the
    warehouse's when the destination has none); 0 days: the ship day, rolled to a working day."""
    return add_working_days(ship_day, max(transit_days, 0), calendar)


def latest_ship_date(delivery: dt.date, transit_days: int, calendar: Calendar) -> dt.date:
    """The last day a parcel can leave and still arrive by `delivery` (the inverse of
    delivery_date: delivery_date(latest_ship_date(d, t, c), t, c) <= d for a working day d)."""
    if transit_days <= 0:
        return delivery
    return add_working_days(delivery, -transit_days, calendar)


def local_date(instant: dt.datetime, time_zone: str = "UTC") -> dt.date:
    """The date of `instant` in `time_zone`."""
    return as_utc(instant).astimezone(zone(time_zone)).date()


def delivered_on_time(delivered_at: dt.datetime, promised: dt.date, time_zone: str = "UTC") -> bool:
    """The on-time rule: delivered on the promised date or before, the delivery's date taken in
    `time_zone` (the shipping warehouse's: the destination's own zone is not known)."""
    return local_date(delivered_at, time_zone) <= promised


# --- lanes -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lane:
    """Transit in working days from a warehouse country to a destination country; carrier ""
    means any carrier, a country "*" any country."""

    origin: str
    destination: str
    transit_days: int
    carrier: str = ""


@dataclass(frozen=True)
class Lanes:
    lanes: tuple[Lane, ...] = ()
    default: int = DEFAULT_TRANSIT_DAYS
    _index: dict[tuple[str, str, str], int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[tuple[str, str, str], int] = {}
        for lane in self.lanes:
            index[(lane.carrier.lower(), lane.origin.upper(), lane.destination.upper())] = lane.transit_days
        object.__setattr__(self, "_index", index)

    def transit_days(
        self, origin: str, destination: str, carrier: str = "", fallback: int | None = None
    ) -> int:
        """The most specific lane: carrier before any carrier, then the exact route before
        origin -> any, any -> destination, any -> any; else `fallback`, else the default."""
        o, d, c = origin.upper(), destination.upper(), carrier.lower()
        routes = ((o, d), (o, ANY), (ANY, d), (ANY, ANY)) if d else ((o, ANY), (ANY, ANY))
        for route in routes:
            for who in (c, "") if c else ("",):
                days = self._index.get((who, *route))
                if days is not None:
                    return days
        return self.default if fallback is None else fallback


# --- the book: master data put together --------------------------------------------------------
class WarehouseRecord(Protocol):
    """What the book reads of a warehouse (orderdesk.masterdata.Warehouse has it)."""

    @property
    def warehouse(self) -> str: ...
    @property
    def country(self) -> str: ...
    @property
    def time_zone(self) -> str: ...
    @property
    def cutoff(self) -> dt.time: ...
    @property
    def working_days(self) -> frozenset[int]: ...
    @property
    def transit_days_domestic(self) -> int: ...
    @property
    def transit_days_international(self) -> int: ...


WAREHOUSE = "warehouse"
COUNTRY = "country"
SCOPES = (WAREHOUSE, COUNTRY)


@dataclass(frozen=True)
class Holiday:
    """A closed day of one warehouse (scope "warehouse", code = warehouse code) or of a whole
    country (scope "country", code = ISO country code): its warehouses and deliveries there."""

    scope: str
    code: str
    date: dt.date
    name: str = ""


@dataclass(frozen=True)
class Promise:
    ship_date: dt.date
    delivery_date: dt.date
    transit_days: int


class CalendarBook:
    """Warehouses' calendars, countries' holidays and lanes, answering by warehouse code."""

    def __init__(
        self,
        warehouses: Iterable[WarehouseRecord] | Mapping[str, WarehouseRecord] = (),
        holidays: Iterable[Holiday] = (),
        lanes: Iterable[Lane] = (),
        default_transit_days: int = DEFAULT_TRANSIT_DAYS,
    ):
        records = warehouses.values() if isinstance(warehouses, Mapping) else warehouses
        self.warehouses: dict[str, WarehouseRecord] = {w.warehouse: w for w in records}
        self._by_warehouse: dict[str, set[dt.date]] = {}
        self._by_country: dict[str, set[dt.date]] = {}
        for h in holidays:
            book = self._by_warehouse if h.scope == WAREHOUSE else self._by_country
            key = h.code if h.scope == WAREHOUSE else h.code.upper()
            book.setdefault(key, set()).add(h.date)
        self.lanes = Lanes(tuple(lanes), default_transit_days)
        self._calendars: dict[str, WarehouseCalendar] = {}

    def warehouse(self, code: str) -> WarehouseCalendar | None:
        """The warehouse's calendar (its own holidays and its country's), None when unknown."""
        record = self.warehouses.get(code)
        if record is None:
            return None
        calendar = self._calendars.get(code)
        if calendar is None:
            holidays = self._by_warehouse.get(code, set()) | self._by_country.get(
                record.country.upper(), set()
            )
            calendar = WarehouseCalendar(
                working_days=record.working_days,
                holidays=frozenset(holidays),
                time_zone=record.time_zone,
                cutoff=record.cutoff,
            )
            self._calendars[code] = calendar
        return calendar

    def time_zone(self, warehouse: str) -> str:
        """The warehouse's time zone, UTC for an unknown one."""
        record = self.warehouses.get(warehouse)
        return record.time_zone if record is not None else "UTC"

    def destination(self, country: str, warehouse: str = "") -> Calendar:
        """Deliveries' calendar: Monday to Friday minus the destination country's holidays (carriers
        deliver on the destination's working days, whatever days the warehouse works); for an
        unknown destination, the warehouse's country's."""
        if not country:
            record = self.warehouses.get(warehouse)
            country = record.country if record is not None else ""
        return Calendar(holidays=frozenset(self._by_country.get(country.upper(), ())))

    def transit_days(self, warehouse: str, country: str, carrier: str = "") -> int:
        """Working days in transit from the warehouse to `country`: its lane, else the warehouse's
        domestic / international days (an unknown destination counts as international)."""
        record = self.warehouses.get(warehouse)
        if record is None:
            return self.lanes.transit_days("", country, carrier)
        domestic = bool(country) and country.upper() == record.country.upper()
        fallback = record.transit_days_domestic if domestic else record.transit_days_international
        return self.lanes.transit_days(record.country, country, carrier, fallback)

    def ship_date(self, now: dt.datetime, warehouse: str) -> dt.date:
        """The warehouse's ship date for work released at `now`; for an unknown warehouse the
        next UTC working day (Monday to Friday) after today: the safer promise."""
        calendar = self.warehouse(warehouse)
        if calendar is None:
            return next_working_day(as_utc(now).date(), Calendar())
        return ship_date(now, calendar)

    def delivery_date(self, ship_day: dt.date, warehouse: str, country: str, carrier: str = "") -> dt.date:
        """When a parcel leaving `warehouse` on `ship_day` arrives in `country`."""
        return delivery_date(
            ship_day, self.transit_days(warehouse, country, carrier), self.destination(country, warehouse)
        )

    def deliver_by(self, requested: dt.date, warehouse: str, country: str) -> dt.date:
        """A date asked for as the promise: itself on a working day at the destination, else the
        last working day before it (nothing is delivered on a closed day)."""
        return working_day_on_or_before(requested, self.destination(country, warehouse))

    def promise(self, now: dt.datetime, warehouse: str, country: str, carrier: str = "") -> Promise:
        """Ship date and delivery date for work released at `now` (allocation)."""
        ship = self.ship_date(now, warehouse)
        transit = self.transit_days(warehouse, country, carrier)
        return Promise(ship, delivery_date(ship, transit, self.destination(country, warehouse)), transit)

    def arrival_from(self, ready: dt.date, warehouse: str, country: str, carrier: str = "") -> dt.date:
        """When goods ready at `warehouse` on local day `ready` (a production run's date) arrive:
        they ship on that day when it is a working day, else on the next one."""
        calendar = self.warehouse(warehouse) or Calendar()
        ship = working_day_on_or_after(ready, calendar)
        return self.delivery_date(ship, warehouse, country, carrier)
