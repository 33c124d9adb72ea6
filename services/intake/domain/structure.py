"""The structure check: is a submission well-formed and does it name things that exist?

A violation refuses the whole order (InvalidArgument listing every problem) and nothing is
stored, so the partner can fix it and send it again. A requested delivery date in the past
is such a violation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping

from orderdesk.domain import ADDRESS_FIELDS, REQUIRED_ADDRESS_FIELDS
from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.masterdata import Customer, Product
from services.intake.domain.submission import CHANNELS, Submission, parse_date, parse_price

MAX_IDEMPOTENCY_KEY = 200  # intake's own limit: its keys are stored in a 200-character column
MAX_EXTERNAL_REF = 128
MAX_PARTNER_ID = 64
MAX_PAYMENT_TERMS = 32
MAX_ADDRESS_FIELD = 200
MAX_LINES = 500
# Bounded so a typo (an extra zero or six) cannot overflow a column downstream.
MAX_QUANTITY = 1_000_000

_COUNTRY = re.compile(r"[A-Za-z]{2}")

Complain = Callable[..., None]  # bad(field, description, reason="invalid")


def check_structure(
    s: Submission, customer: Customer | None, products: Mapping[str, Product], today: dt.date | None = None
) -> None:
    """Raises InvalidArgument listing every violation, or returns if the request is well-formed.

    `customer` and `products` are what the store found for the ids in the request;
    with `today`, a requested delivery date before it is refused too.
    """
    v: list[FieldViolation] = []

    def bad(field: str, description: str, reason: str = "invalid") -> None:
        v.append(FieldViolation(field, description, reason))

    if not s.idempotency_key:
        bad(
            "idempotency_key",
            "required: send an Idempotency-Key so a retry cannot create a second order",
            "required",
        )
    elif len(s.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        bad("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters", "too_long")
    if len(s.partner_id) > MAX_PARTNER_ID:
        bad("partner_id", f"at most {MAX_PARTNER_ID} characters", "too_long")
    if s.channel not in CHANNELS:
        bad("channel", f"one of {', '.join(CHANNELS)}")
    if len(s.external_ref) > MAX_EXTERNAL_REF:
        bad("external_ref", f"at most {MAX_EXTERNAL_REF} characters", "too_long")
    if not s.customer_id:
        bad("customer_id", "required", "required")
    elif customer is None:
        bad("customer_id", f"unknown customer {s.customer_id!r}", "unknown")
    if len(s.payment_terms) > MAX_PAYMENT_TERMS:
        bad("payment_terms", f"at most {MAX_PAYMENT_TERMS} characters", "too_long")
    if s.requested_delivery_date:
        requested = parse_date(s.requested_delivery_date)
        if requested is None:
            bad("requested_delivery_date", "a calendar date written YYYY-MM-DD")
        elif today is not None and requested < today:
            bad(
                "requested_delivery_date", f"{requested} is in the past (today is {today} UTC)", "in_the_past"
            )
    _check_address(s.ship_to, bad)

    if not s.lines:
        bad("lines", "at least one line", "required")
    elif len(s.lines) > MAX_LINES:
        bad("lines", f"at most {MAX_LINES} lines per order", "too_many")
    for i, line in enumerate(s.lines):
        at = f"lines[{i}]"
        if not line.sku:
            bad(f"{at}.sku", "required", "required")
        elif line.sku not in products:
            bad(f"{at}.sku", f"unknown SKU {line.sku!r}", "unknown")
        if line.quantity <= 0:
            bad(f"{at}.quantity", "must be a positive whole number")
        elif line.quantity > MAX_QUANTITY:
            bad(f"{at}.quantity", f"at most {MAX_QUANTITY}")
        if parse_price(line.unit_price) is None:
            bad(f"{at}.unit_price", 'a non-negative decimal string such as "12.50"')

    if v:
        raise InvalidArgument(f"the order has {len(v)} problem(s); nothing was stored", v)


def _check_address(address: Mapping[str, str], bad: Complain) -> None:
    if not any(address.get(f) for f in ADDRESS_FIELDS):
        return  # empty: the customer's default address is used
    for f in REQUIRED_ADDRESS_FIELDS:
        if not address.get(f):
            bad(f"ship_to.{f}", "required when ship_to is given", "required")
    for f in ADDRESS_FIELDS:
        if len(address.get(f, "")) > MAX_ADDRESS_FIELD:
            bad(f"ship_to.{f}", f"at most {MAX_ADDRESS_FIELD} characters", "too_long")
    country = address.get("country", "")
    if country and not _COUNTRY.fullmatch(country):
        bad("ship_to.country", 'an ISO 3166-1 alpha-2 code such as "DE"')
