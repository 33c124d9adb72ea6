"""Master data in the CSV import format (see demo/ and the README's "Master data").

Parsing is plain Python: each kind becomes a list of frozen records, and every
bad cell is reported with its row and column, so an import is all or nothing.
The owning services store the records: customers, products and customer-specific
prices in intake (products' supply attributes also in inventory), stock and warehouses in inventory (warehouses also in shipping and
intake), partners in the gateway. Calendars (holidays per warehouse or per country) and lanes
(transit working days) go wherever warehouses go: every date computation reads them through
orderdesk.calendar.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from orderdesk import calendar
from orderdesk.calendar import Holiday, Lane
from orderdesk.errors import FieldViolation, InvalidArgument

# Which component stores each kind (the gateway keeps partners and their hashed keys);
# an import goes to every owner, in this order.
OWNERS: dict[str, tuple[str, ...]] = {
    "customers": ("intake", "returns"),  # returns: the tier, for its return window
    # inventory: make-to-order and lead time, for production runs; returns: returnable and return window
    "products": ("intake", "inventory", "returns"),
    "prices": ("intake",),
    "stock": ("inventory",),
    # inventory for stock rows, shipping for delivery promises, intake for delivery-date checks
    "warehouses": ("inventory", "shipping", "intake"),
    # holidays and transit working days: wherever dates are computed with warehouses
    "calendars": ("inventory", "shipping", "intake", "returns"),  # returns: return windows in working days
    "lanes": ("inventory", "shipping", "intake"),
    "partners": ("gateway",),
}
KINDS = ("customers", "products", "stock", "warehouses", "partners", "prices", "calendars", "lanes")
# The kinds every owner of warehouses also keeps (they build an orderdesk.calendar.CalendarBook).
CALENDAR_KINDS = ("warehouses", "calendars", "lanes")
TIERS = ("strategic", "key", "standard", "new")
MAX_DAYS = 3650  # lead and transit times: ten years is a typo, and keeps date arithmetic in range


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    tier: str
    status: str  # active | blocked
    credit_limit: Decimal
    currency: str
    payment_terms: tuple[str, ...]  # allowed terms, e.g. ("NET30",) or ("PREPAID",)
    email: str
    phone: str
    ship_to_line1: str
    ship_to_city: str
    ship_to_postal_code: str
    ship_to_country: str


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price: Decimal
    currency: str
    make_to_order: bool
    production_lead_time_days: int
    min_order_qty: int
    order_multiple: int
    status: str  # active | discontinued
    # The return policy (optional columns): not returnable means every return is held for the desk;
    # no window means the customer tier's or the default (services/returns/policy.py).
    returnable: bool = True
    return_window_days: int | None = None


@dataclass(frozen=True)
class StockRow:
    sku: str
    warehouse: str
    on_hand: int


@dataclass(frozen=True)
class Warehouse:
    warehouse: str
    name: str
    country: str
    time_zone: str  # IANA, e.g. Europe/Berlin
    cutoff: dt.time  # local time: work released before it ships the same working day
    working_days: frozenset[int]  # weekdays, Monday = 0
    transit_days_domestic: int  # working days, when no lane says otherwise
    transit_days_international: int


@dataclass(frozen=True)
class CustomerPrice:
    """A customer-specific price: replaces the list price for this customer and SKU."""

    customer_id: str
    sku: str
    unit_price: Decimal
    currency: str


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    api_key: str
    scopes: tuple[str, ...]


COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id",
        "name",
        "tier",
        "status",
        "credit_limit",
        "currency",
        "payment_terms",
        "email",
        "phone",
        "ship_to_line1",
        "ship_to_city",
        "ship_to_postal_code",
        "ship_to_country",
    ),
    "products": (
        "sku",
        "name",
        "unit_price",
        "currency",
        "make_to_order",
        "production_lead_time_days",
        "min_order_qty",
        "order_multiple",
        "status",
        "returnable",
        "return_window_days",
    ),
    "stock": ("sku", "warehouse", "on_hand"),
    "warehouses": (
        "warehouse",
        "name",
        "country",
        "time_zone",
        "cutoff",
        "working_days",
        "transit_days_domestic",
        "transit_days_international",
    ),
    # api_key is optional: keys are generated (`orderdesk keys create`); only a development setup
    # (ORDERDESK_DEMO_KEYS) may name one, which the gateway's import checks.
    "partners": ("partner_id", "name", "scopes"),
    "prices": ("customer_id", "sku", "unit_price", "currency"),
    "calendars": ("scope", "code", "date", "name"),
    "lanes": ("carrier", "origin_country", "destination_country", "transit_days"),
}
# Columns a file may leave out, with the value they then take. Warehouses from before working days
# and time zones (a `cutoff_hour_utc` column instead of `cutoff`) still import: UTC, Monday to Friday.
OPTIONAL: dict[str, dict[str, str]] = {
    "warehouses": {"time_zone": "UTC", "working_days": "Mon-Fri"},
    "products": {"returnable": "true", "return_window_days": ""},
    "calendars": {"name": ""},
    "lanes": {"carrier": ""},
}
LEGACY: dict[str, dict[str, str]] = {"warehouses": {"cutoff": "cutoff_hour_utc"}}
SCOPES = ("orders", "returns", "fulfillment", "admin")


class _Row:
    """Reads typed cells from one CSV row, collecting violations instead of stopping."""

    def __init__(self, number: int, cells: dict[str, str], violations: list[FieldViolation]):
        self.number = number
        self.cells = cells
        self.violations = violations

    def _bad(self, column: str, description: str) -> None:
        self.violations.append(FieldViolation(f"row {self.number}.{column}", description))

    def text(self, column: str, *, required: bool = True) -> str:
        value = (self.cells.get(column) or "").strip()
        if required and not value:
            self._bad(column, "required")
        return value

    def choice(self, column: str, allowed: tuple[str, ...]) -> str:
        value = self.text(column).lower()
        if value and value not in allowed:
            self._bad(column, f"must be one of {', '.join(allowed)}")
        return value

    def integer(self, column: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.text(column)
        try:
            value = int(raw)
        except ValueError:
            if raw:
                self._bad(column, "must be a whole number")
            return minimum
        if value < minimum or (maximum is not None and value > maximum):
            self._bad(column, f"must be between {minimum} and {maximum if maximum is not None else 'any'}")
        return value

    def decimal(self, column: str) -> Decimal:
        raw = self.text(column)
        try:
            value = Decimal(raw)
            if not value.is_finite() or value < 0:
                raise InvalidOperation
        except InvalidOperation:
            if raw:
                self._bad(column, "must be a non-negative decimal number")
            return Decimal(0)
        return value

    def boolean(self, column: str) -> bool:
        value = self.text(column).lower()
        if value in ("true", "yes", "1"):
            return True
        if value in ("false", "no", "0"):
            return False
        if value:
            self._bad(column, "must be true or false")
        return False

    def parsed(self, column: str, parse, default, *, required: bool = True):
        """A cell read by `parse` (raising ValueError with the reason), `default` when bad (or empty and
        not required)."""
        raw = self.text(column, required=required)
        if not raw:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            self._bad(column, str(e))
            return default

    def country(self, column: str, *, wildcard: bool = False) -> str:
        value = self.text(column).upper()
        if value and not (value.isalpha() and len(value) == 2) and not (wildcard and value == calendar.ANY):
            self._bad(column, "an ISO 3166 two-letter country code" + (" or *" if wildcard else ""))
        return value

    def words(self, column: str) -> tuple[str, ...]:
        return tuple(w for w in self.text(column).replace(";", " ").replace("|", " ").split() if w)


def _customer(r: _Row) -> Customer:
    return Customer(
        customer_id=r.text("customer_id"),
        name=r.text("name"),
        tier=r.choice("tier", TIERS),
        status=r.choice("status", ("active", "blocked")),
        credit_limit=r.decimal("credit_limit"),
        currency=r.text("currency").upper(),
        payment_terms=tuple(t.upper() for t in r.words("payment_terms")),
        email=r.text("email", required=False),
        phone=r.text("phone", required=False),
        ship_to_line1=r.text("ship_to_line1", required=False),
        ship_to_city=r.text("ship_to_city", required=False),
        ship_to_postal_code=r.text("ship_to_postal_code", required=False),
        ship_to_country=r.text("ship_to_country", required=False).upper(),
    )


def _product(r: _Row) -> Product:
    return Product(
        sku=r.text("sku"),
        name=r.text("name"),
        unit_price=r.decimal("unit_price"),
        currency=r.text("currency").upper(),
        make_to_order=r.boolean("make_to_order"),
        production_lead_time_days=r.integer("production_lead_time_days", minimum=0),
        min_order_qty=r.integer("min_order_qty", minimum=1),
        order_multiple=r.integer("order_multiple", minimum=1),
        status=r.choice("status", ("active", "discontinued")),
        returnable=r.boolean("returnable") if r.text("returnable", required=False) else True,
        return_window_days=r.parsed("return_window_days", _window_days, None, required=False),
    )


def _window_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise ValueError("a whole number of days, or empty for the default window") from None
    if not 0 <= days <= MAX_DAYS:
        raise ValueError(f"must be between 0 and {MAX_DAYS}")
    return days


def _stock(r: _Row) -> StockRow:
    return StockRow(sku=r.text("sku"), warehouse=r.text("warehouse"), on_hand=r.integer("on_hand", minimum=0))


def _warehouse(r: _Row) -> Warehouse:
    code, name, country = r.text("warehouse"), r.text("name"), r.text("country").upper()
    time_zone = r.parsed("time_zone", calendar.check_time_zone, "UTC")  # bad cells reported in column order
    if "cutoff" not in r.cells:  # the older format: a cut-off hour in UTC
        hour = r.integer("cutoff_hour_utc", minimum=0, maximum=23)
        cutoff = dt.time(hour)
    else:
        cutoff = r.parsed("cutoff", calendar.parse_cutoff, dt.time(0))
    return Warehouse(
        warehouse=code,
        name=name,
        country=country,
        time_zone=time_zone,
        cutoff=cutoff,
        working_days=r.parsed("working_days", calendar.parse_working_days, calendar.MONDAY_TO_FRIDAY),
        transit_days_domestic=r.integer("transit_days_domestic", minimum=0, maximum=MAX_DAYS),
        transit_days_international=r.integer("transit_days_international", minimum=0, maximum=MAX_DAYS),
    )


def _holiday(r: _Row) -> Holiday:
    scope = r.choice("scope", calendar.SCOPES)
    code = r.country("code") if scope == calendar.COUNTRY else r.text("code")
    return Holiday(
        scope=scope,
        code=code,
        date=r.parsed("date", _iso_date, dt.date(1970, 1, 1)),
        name=r.text("name", required=False),
    )


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD") from None


def _lane(r: _Row) -> Lane:
    return Lane(
        carrier=r.text("carrier", required=False),
        origin=r.country("origin_country", wildcard=True),
        destination=r.country("destination_country", wildcard=True),
        transit_days=r.integer("transit_days", minimum=0, maximum=MAX_DAYS),
    )


def _partner(r: _Row) -> Partner:
    scopes = r.words("scopes")
    for scope in scopes:
        if scope not in SCOPES:
            r._bad("scopes", f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    if not scopes:
        r._bad("scopes", "at least one scope")
    return Partner(
        partner_id=r.text("partner_id"),
        name=r.text("name"),
        api_key=r.text("api_key", required=False),
        scopes=scopes,
    )


def _price(r: _Row) -> CustomerPrice:
    return CustomerPrice(
        customer_id=r.text("customer_id"),
        sku=r.text("sku"),
        unit_price=r.decimal("unit_price"),
        currency=r.text("currency").upper(),
    )


_PARSERS = {
    "customers": _customer,
    "products": _product,
    "stock": _stock,
    "warehouses": _warehouse,
    "partners": _partner,
    "prices": _price,
    "calendars": _holiday,
    "lanes": _lane,
}
_KEYS = {
    "customers": ("customer_id",),
    "products": ("sku",),
    "stock": ("sku", "warehouse"),
    "warehouses": ("warehouse",),
    "partners": ("partner_id",),
    "prices": ("customer_id", "sku"),
    "calendars": ("scope", "code", "date"),
    "lanes": ("carrier", "origin", "destination"),
}


def parse(kind: str, text: str) -> list:
    """Parses one CSV document of `kind`; raises InvalidArgument listing every bad cell."""
    if kind not in _PARSERS:
        raise InvalidArgument(
            f"unknown kind {kind!r}", [FieldViolation("kind", f"one of {', '.join(KINDS)}")]
        )
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    optional = OPTIONAL.get(kind, {})
    legacy = LEGACY.get(kind, {})
    missing = [
        c for c in COLUMNS[kind] if c not in header and c not in optional and legacy.get(c) not in header
    ]
    if missing:
        raise InvalidArgument(
            f"{kind} CSV is missing columns: {', '.join(missing)}",
            [FieldViolation(f"header.{c}", "missing column") for c in missing],
        )
    violations: list[FieldViolation] = []
    records = []
    seen: dict[tuple, int] = {}
    for number, cells in enumerate(reader, start=2):  # row 1 is the header
        cells = {(k or "").strip(): v for k, v in cells.items()}
        cells = {c: v for c, v in optional.items() if c not in header} | cells
        row = _Row(number, cells, violations)
        record = _PARSERS[kind](row)
        key = tuple(getattr(record, k) for k in _KEYS[kind])
        if key in seen:
            violations.append(FieldViolation(f"row {number}", f"duplicate of row {seen[key]}"))
        seen[key] = number
        records.append(record)
    if violations:
        raise InvalidArgument(
            f"{kind} CSV has {len(violations)} problem(s); nothing was imported", violations
        )
    return records
