"""Intake's rules: is a submitted order well-formed, should it be held, how urgent is it.

Plain Python, no I/O. Two kinds of findings, kept apart on purpose:

- violations: the request is malformed or names things that do not exist. The
  order is refused as a whole (InvalidArgument listing every problem) and
  nothing is stored, so the partner can fix it and send it again.
- hold reasons: the request is well-formed but breaks a business rule (blocked
  customer, wrong price, ...). The order is created `on_hold` with machine-readable
  reasons and the desk approves or rejects it.

Master data records are orderdesk.masterdata.Customer and Product, the same
records the CSV import produces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.masterdata import Customer, Product

CHANNELS = ("api", "batch", "csv", "grpc")
DEFAULT_CHANNEL = "api"
MAX_IDEMPOTENCY_KEY = 200
MAX_EXTERNAL_REF = 128
MAX_PARTNER_ID = 64
MAX_PAYMENT_TERMS = 32
MAX_ADDRESS_FIELD = 200
MAX_LINES = 500
# Bounded so a typo (an extra zero or six) cannot overflow a column downstream.
MAX_QUANTITY = 1_000_000
ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "country")

# Plain decimal notation only: no sign, exponent, NaN or spaces ("12.50", "3", "0.125").
_PRICE = re.compile(r"\d{1,15}(\.\d{1,6})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


# --- what a partner sends ---------------------------------------------------------
@dataclass(frozen=True)
class SubmittedLine:
    sku: str
    quantity: int
    unit_price: str  # as sent; validated and parsed here, never a float


@dataclass(frozen=True)
class Submission:
    partner_id: str
    idempotency_key: str
    channel: str
    external_ref: str
    customer_id: str
    ship_to: Mapping[str, str]          # ADDRESS_FIELDS; all empty means "the customer's default"
    lines: tuple[SubmittedLine, ...]
    requested_delivery_date: str        # YYYY-MM-DD or empty
    payment_terms: str                  # empty means "the customer's first allowed term"


# --- what intake decides ------------------------------------------------------------
@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    field: str


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Decision:
    """The order to create: what was asked, completed from master data, with its hold reasons."""

    lines: tuple[OrderLine, ...]
    ship_to: dict[str, str]
    payment_terms: str
    currency: str
    priority: int
    hold_reasons: tuple[Reason, ...]

    @property
    def approved(self) -> bool:
        return not self.hold_reasons


def new_order_id() -> str:
    return "ORD-" + uuid.uuid4().hex[:20].upper()


def metric_channel(channel: str) -> str:
    """Metric labels must stay bounded, even for a request refused for its channel."""
    return channel if channel in CHANNELS else "other"


# --- 1. structure: refuse the whole request --------------------------------------------
def check_structure(s: Submission, customer: Customer | None, products: Mapping[str, Product]) -> None:
    """Raises InvalidArgument listing every violation, or returns if the request is well-formed.

    `customer` and `products` are what the store found for the ids in the request.
    """
    v: list[FieldViolation] = []

    def bad(field: str, description: str, reason: str = "invalid") -> None:
        v.append(FieldViolation(field, description, reason))

    if not s.idempotency_key:
        bad("idempotency_key", "required: send an Idempotency-Key so a retry cannot create a second order",
            "required")
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
    if s.requested_delivery_date and parse_date(s.requested_delivery_date) is None:
        bad("requested_delivery_date", "a calendar date written YYYY-MM-DD")
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
            bad(f"{at}.unit_price", "a non-negative decimal string such as \"12.50\"")

    if v:
        raise InvalidArgument(f"the order has {len(v)} problem(s); nothing was stored", v)


def _check_address(address: Mapping[str, str], bad) -> None:
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
        bad("ship_to.country", "an ISO 3166-1 alpha-2 code such as \"DE\"")


def parse_price(text: str) -> Decimal | None:
    return Decimal(text) if _PRICE.fullmatch(text) else None


def parse_date(text: str) -> dt.date | None:
    # fromisoformat alone also accepts "20261201" and week dates: the API promises YYYY-MM-DD.
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


# --- 2. business rules: hold with reasons ----------------------------------------------
def hold_reasons(s: Submission, customer: Customer, products: Mapping[str, Product]) -> list[Reason]:
    """Every business rule the (well-formed) order breaks, customer first, then lines in order."""
    reasons: list[Reason] = []
    if customer.status == "blocked":
        reasons.append(Reason("customer_blocked", f"customer {customer.customer_id} is blocked", "customer_id"))
    if s.payment_terms and s.payment_terms.upper() not in customer.payment_terms:
        allowed = ", ".join(customer.payment_terms) or "none"
        reasons.append(Reason(
            "payment_terms_not_allowed",
            f"payment terms {s.payment_terms} are not agreed with customer {customer.customer_id} (allowed: {allowed})",
            "payment_terms",
        ))
    for i, line in enumerate(s.lines):
        product = products[line.sku]
        at = f"lines[{i}]"
        if product.status == "discontinued":
            reasons.append(Reason("sku_discontinued", f"{line.sku} is discontinued", f"{at}.sku"))
        if product.currency != customer.currency:
            # The list price is in another currency: there is nothing to compare the price with.
            reasons.append(Reason(
                "currency_mismatch",
                f"{line.sku} is priced in {product.currency}; customer {customer.customer_id} buys in "
                f"{customer.currency}",
                f"{at}.sku",
            ))
        else:
            given = parse_price(line.unit_price)
            if given != product.unit_price:  # Decimal equality: "12.5" equals "12.50"
                reasons.append(Reason(
                    "price_mismatch",
                    f"{line.sku}: list price is {product.unit_price} {product.currency}, the order says {given}",
                    f"{at}.unit_price",
                ))
        if line.quantity < product.min_order_qty:
            reasons.append(Reason(
                "below_min_order_qty",
                f"{line.sku}: at least {product.min_order_qty} per order, the order says {line.quantity}",
                f"{at}.quantity",
            ))
        if line.quantity % product.order_multiple:
            reasons.append(Reason(
                "not_order_multiple",
                f"{line.sku}: sold in multiples of {product.order_multiple}, the order says {line.quantity}",
                f"{at}.quantity",
            ))
    return reasons


# --- 3. priority -------------------------------------------------------------------------
TIER_RANK = {"new": 0, "standard": 1, "key": 2, "strategic": 3}
URGENCY_HORIZON_DAYS = 90


def priority(tier: str, requested_delivery_date: dt.date | None, today: dt.date) -> int:
    """Higher is served first when stock is scarce: the customer's tier, then how soon it is due.

    priority = 100 x tier rank (new 0, standard 1, key 2, strategic 3) + urgency, where
    urgency is 0..90: 90 for a date today or already past, one less per day further
    out, 0 from 90 days on or when no date is requested. Urgency never outweighs a
    tier: the tier is a commercial promise, the date orders customers within a tier.
    """
    return 100 * TIER_RANK.get(tier, 0) + urgency(requested_delivery_date, today)


def urgency(requested_delivery_date: dt.date | None, today: dt.date) -> int:
    if requested_delivery_date is None:
        return 0
    days_left = max((requested_delivery_date - today).days, 0)
    return max(URGENCY_HORIZON_DAYS - days_left, 0)


# --- master data -------------------------------------------------------------------------
MASTER_KINDS = ("customers", "products")  # what intake owns; stock and warehouses are inventory's
MAX_MASTER_KEY = 64
MAX_MASTER_INTEGER = 2**31 - 1


def check_master_kind(kind: str) -> None:
    if kind not in MASTER_KINDS:
        raise InvalidArgument(
            f"intake imports {' and '.join(MASTER_KINDS)}, not {kind!r}",
            [FieldViolation("kind", f"one of {', '.join(MASTER_KINDS)}")],
        )


def check_master_records(kind: str, records: list[Customer] | list[Product]) -> None:
    """What the CSV parser leaves to the owner: key lengths and integer ranges it stores."""
    v: list[FieldViolation] = []
    for number, record in enumerate(records, start=2):  # row numbers as the parser counts them
        key = record.customer_id if kind == "customers" else record.sku
        if len(key) > MAX_MASTER_KEY:
            v.append(FieldViolation(f"row {number}.{'customer_id' if kind == 'customers' else 'sku'}",
                                    f"at most {MAX_MASTER_KEY} characters"))
        if isinstance(record, Product):
            for column in ("production_lead_time_days", "min_order_qty", "order_multiple"):
                if getattr(record, column) > MAX_MASTER_INTEGER:
                    v.append(FieldViolation(f"row {number}.{column}", f"at most {MAX_MASTER_INTEGER}"))
    if v:
        raise InvalidArgument(f"{kind} CSV has {len(v)} problem(s); nothing was imported", v)


# --- all together ------------------------------------------------------------------------
def decide(s: Submission, customer: Customer | None, products: Mapping[str, Product], today: dt.date) -> Decision:
    """Checks the request (raising InvalidArgument) and returns the order to create."""
    check_structure(s, customer, products)
    assert customer is not None  # check_structure refused an unknown customer
    return Decision(
        lines=tuple(OrderLine(line.sku, line.quantity, parse_price(line.unit_price)) for line in s.lines),
        ship_to=ship_to(s.ship_to, customer),
        payment_terms=s.payment_terms.upper() or (customer.payment_terms[0] if customer.payment_terms else ""),
        currency=customer.currency,
        priority=priority(customer.tier, parse_date(s.requested_delivery_date), today),
        hold_reasons=tuple(hold_reasons(s, customer, products)),
    )


def ship_to(given: Mapping[str, str], customer: Customer) -> dict[str, str]:
    if any(given.get(f) for f in ADDRESS_FIELDS):
        address = {f: given.get(f, "") for f in ADDRESS_FIELDS}
        address["country"] = address["country"].upper()
        return address
    return {
        "name": customer.name, "line1": customer.ship_to_line1, "city": customer.ship_to_city,
        "postal_code": customer.ship_to_postal_code, "country": customer.ship_to_country, "phone": customer.phone,
    }


# --- idempotency -----------------------------------------------------------------------------
def request_hash(s: Submission) -> str:
    """sha256 of the request without its idempotency key, in a canonical JSON form.

    Values are hashed as sent (only missing address fields read as empty), so the
    same key with any change to the body, even "12.5" for "12.50", is a different request.
    """
    canonical = {
        "partner_id": s.partner_id,
        "channel": s.channel,
        "external_ref": s.external_ref,
        "customer_id": s.customer_id,
        "ship_to": {f: s.ship_to.get(f, "") for f in ADDRESS_FIELDS},
        "lines": [[line.sku, line.quantity, line.unit_price] for line in s.lines],
        "requested_delivery_date": s.requested_delivery_date,
        "payment_terms": s.payment_terms,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_reused() -> InvalidArgument:
    """The same Idempotency-Key with a different body: refused, the first order stands."""
    return InvalidArgument(
        "this Idempotency-Key was already used for a different order; use a new key for a new order",
        [FieldViolation("Idempotency-Key", "already used with another request body", "idempotency_key_reused")],
        reason="idempotency_key_reused",
    )
