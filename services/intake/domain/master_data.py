"""Master-data imports: which kinds intake owns (customers, products, customer prices, and the
copies of warehouses, calendars and lanes it plans delivery dates with; stock stays inventory's, read through
GetStock) and the limits the CSV parser leaves to the owner (key lengths, integer ranges)."""

from __future__ import annotations

from collections.abc import Sequence

from orderdesk.calendar import Holiday, Lane
from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.masterdata import Customer, CustomerPrice, Product, Warehouse
from services.intake.domain.submission import parse_price

MASTER_KINDS = ("customers", "products", "prices", "warehouses", "calendars", "lanes")
MAX_MASTER_KEY = 64
MAX_MASTER_INTEGER = 2**31 - 1
MAX_DAYS = 3650  # lead and transit times: ten years is a typo, and keeps date arithmetic in range
_MASTER_KEYS = {
    "customers": ("customer_id",),
    "products": ("sku",),
    "prices": ("customer_id", "sku"),
    "warehouses": ("warehouse",),
    "calendars": ("code",),
    "lanes": ("carrier",),
}


def check_master_kind(kind: str) -> None:
    if kind not in MASTER_KINDS:
        raise InvalidArgument(
            f"intake imports {', '.join(MASTER_KINDS)}, not {kind!r}",
            [FieldViolation("kind", f"one of {', '.join(MASTER_KINDS)}")],
        )


def check_master_records(
    kind: str, records: Sequence[Customer | Product | CustomerPrice | Warehouse | Holiday | Lane]
) -> None:
    """What the CSV parser leaves to the owner: key lengths and integer ranges it stores."""
    v: list[FieldViolation] = []
    for number, record in enumerate(records, start=2):  # row numbers as the parser counts them
        for key in _MASTER_KEYS[kind]:
            if len(getattr(record, key)) > MAX_MASTER_KEY:
                v.append(FieldViolation(f"row {number}.{key}", f"at most {MAX_MASTER_KEY} characters"))
        if isinstance(record, Product):
            for column in ("production_lead_time_days", "min_order_qty", "order_multiple"):
                limit = MAX_DAYS if column == "production_lead_time_days" else MAX_MASTER_INTEGER
                if getattr(record, column) > limit:
                    v.append(FieldViolation(f"row {number}.{column}", f"at most {limit}"))
        if isinstance(record, Warehouse):
            for column in ("transit_days_domestic", "transit_days_international"):
                if getattr(record, column) > MAX_DAYS:
                    v.append(FieldViolation(f"row {number}.{column}", f"at most {MAX_DAYS}"))
        if isinstance(record, CustomerPrice) and parse_price(str(record.unit_price)) is None:
            v.append(
                FieldViolation(f"row {number}.unit_price", "a plain decimal with at most 6 decimal places")
            )
    if v:
        raise InvalidArgument(f"{kind} CSV has {len(v)} problem(s); nothing was imported", v)
