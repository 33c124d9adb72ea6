"""Intake's rules: is a submitted order well-formed, should it be held, how urgent is it.

Plain Python, no I/O. Two kinds of findings, kept apart on purpose:

- violations: the request is malformed or names things that do not exist. The
  order is refused as a whole (InvalidArgument listing every problem) and
  nothing is stored, so the partner can fix it and send it again. A requested
  delivery date in the past is such a violation.
- hold reasons: the request is well-formed but breaks a business rule (blocked
  customer, wrong price, ...). The order is created `on_hold` with machine-readable
  reasons and the desk approves or rejects it.

Hold reason codes (stable: partners and the desk's filters match on them), in the
order they are reported (the line rules line by line, in this order within a line),
with the field path each names:

  customer_blocked           customer_id              the customer is blocked (policy "hold"; "refuse"
                                                      refuses the order with FAILED_PRECONDITION instead)
  contact_missing            customer.email |         no plausible e-mail in the customer's master data,
                             ship_to.phone            or no plausible phone on the ship-to or the customer
  ship_to_incomplete         ship_to.<field>          the delivery address lacks name, line1, city, country,
                                                      or a postal code where the country uses them
  country_unknown            ship_to.country          not an ISO 3166-1 alpha-2 code
  postal_code_invalid        ship_to.postal_code      does not match the country's format (POSTAL_CODES)
  payment_terms_not_allowed  payment_terms            terms not agreed with the customer; a PREPAID-only
                                                      customer cannot order on any other terms
  duplicate_line             lines[i].sku             the SKU is already on an earlier line. Flagged, not
                                                      merged: the lines may differ in price, and merging
                                                      would silently renumber the partner's lines
  sku_discontinued           lines[i].sku
  currency_mismatch          lines[i].sku             the price (list or customer-specific) is in another
                                                      currency than the customer buys in
  price_mismatch             lines[i].unit_price      differs from the customer's price (customer-specific
                                                      price, else list price) by more than the tolerance
  below_min_order_qty        lines[i].quantity
  not_order_multiple         lines[i].quantity
  delivery_date_infeasible   requested_delivery_date  the whole order cannot arrive by then; proposals:
                                                      earliest_date, and split when part of it can
  delivery_date_unverified   requested_delivery_date  stock or warehouse data could not be read, so
                                                      the date could not be checked
  credit_limit_exceeded      customer_id              open exposure + this order > credit limit
                                                      (PREPAID orders and PREPAID-only customers are exempt:
                                                      they pay before anything ships)
  new_customer_review        customer_id              auto-approval policy: tier "new" is reviewed
  amount_review              lines                    auto-approval policy: order total above the threshold
  duplicate_external_ref     external_ref             the partner already sent this reference under another
                                                      Idempotency-Key (never for a replay of the same key);
                                                      found by the service when it claims the reference

Configuration (environment, read by IntakeConfig.from_env at start-up):

  ORDERDESK_INTAKE_BLOCKED_POLICY         hold | refuse          default hold
  ORDERDESK_INTAKE_PRICE_TOLERANCE        absolute amount        default 0 (exact price)
  ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS   true | false           default true
  ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT    order total            default 100000 (in the customer's currency)

Delivery dates are calendar days (no weekends or holidays yet); instants are UTC.

Master data records are orderdesk.masterdata.Customer, Product, CustomerPrice and
Warehouse, the same records the CSV import produces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from orderdesk.masterdata import Customer, CustomerPrice, Product, Warehouse

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
    urgent: bool = False                # the partner asks for expedited handling


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
class ProposalPart:
    sku: str
    quantity: int
    delivery_date: dt.date


@dataclass(frozen=True)
class Proposal:
    """What the desk can offer instead of an infeasible date: kind earliest_date or split."""

    kind: str
    delivery_date: dt.date | None = None     # earliest_date: the whole order on this date
    parts: tuple[ProposalPart, ...] = ()     # split: deliveries by date


@dataclass(frozen=True)
class Decision:
    """The order to create: what was asked, completed from master data, with its hold reasons."""

    lines: tuple[OrderLine, ...]
    ship_to: dict[str, str]
    payment_terms: str
    currency: str
    priority: int
    hold_reasons: tuple[Reason, ...]
    proposals: tuple[Proposal, ...] = ()
    urgent: bool = False

    @property
    def approved(self) -> bool:
        return not self.hold_reasons

    @property
    def amount(self) -> Decimal:
        return order_amount(self.lines)

    @property
    def counts_as_credit(self) -> bool:
        """Whether an approved order adds to the customer's open exposure (PREPAID ones do not)."""
        return self.payment_terms != PREPAID

    def held_also_for(self, reason: Reason) -> Decision:
        return replace(self, hold_reasons=(*self.hold_reasons, reason))


def order_amount(lines: Sequence[OrderLine]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal(0))


def new_order_id() -> str:
    return "ORD-" + uuid.uuid4().hex[:20].upper()


def metric_channel(channel: str) -> str:
    """Metric labels must stay bounded, even for a request refused for its channel."""
    return channel if channel in CHANNELS else "other"


# --- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoApprovalPolicy:
    """Which clean orders still go to a person: the rules of routine, as configuration."""

    review_new_customers: bool = True            # ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS
    review_above_amount: Decimal = Decimal(100000)  # ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT

    def reasons(self, customer: Customer, amount: Decimal) -> list[Reason]:
        reasons = []
        if self.review_new_customers and customer.tier == "new":
            reasons.append(Reason(
                "new_customer_review", f"customer {customer.customer_id} is new: its orders are reviewed",
                "customer_id"))
        if amount > self.review_above_amount:
            reasons.append(Reason(
                "amount_review",
                f"order total {amount} {customer.currency} is above {self.review_above_amount}, "
                "which is reviewed by a person", "lines"))
        return reasons


BLOCKED_POLICIES = ("hold", "refuse")


@dataclass(frozen=True)
class IntakeConfig:
    blocked_policy: str = "hold"                  # ORDERDESK_INTAKE_BLOCKED_POLICY
    price_tolerance: Decimal = Decimal(0)         # ORDERDESK_INTAKE_PRICE_TOLERANCE (absolute, per unit)
    auto_approval: AutoApprovalPolicy = field(default_factory=AutoApprovalPolicy)
    masterdata_ttl_seconds: float = 5.0           # ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS (see cache.py)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IntakeConfig:
        """Reads the ORDERDESK_INTAKE_* variables; a bad value fails start-up with a clear ValueError."""

        def get(name: str, default: str) -> str:
            return (environ.get(name) or "").strip() or default

        policy = get("ORDERDESK_INTAKE_BLOCKED_POLICY", "hold").lower()
        if policy not in BLOCKED_POLICIES:
            raise ValueError(f"ORDERDESK_INTAKE_BLOCKED_POLICY must be one of {', '.join(BLOCKED_POLICIES)}")
        review_new = get("ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS", "true").lower()
        if review_new not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS must be true or false")
        try:
            ttl = float(get("ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS", "5"))
        except ValueError:
            ttl = -1.0
        if not 0 <= ttl <= 3600:
            raise ValueError("ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS must be a number of seconds from 0 to 3600")
        return cls(
            blocked_policy=policy,
            masterdata_ttl_seconds=ttl,
            price_tolerance=_amount(get("ORDERDESK_INTAKE_PRICE_TOLERANCE", "0"), "ORDERDESK_INTAKE_PRICE_TOLERANCE"),
            auto_approval=AutoApprovalPolicy(
                review_new_customers=review_new in ("true", "1", "yes"),
                review_above_amount=_amount(get("ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT", "100000"),
                                            "ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT"),
            ),
        )


def _amount(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a non-negative decimal amount, not {text!r}")
    return value


# --- what the service looked up for one submission ------------------------------------------
@dataclass(frozen=True)
class Facts:
    """Everything beyond the customer and products that the rules read; gathered by the service."""

    now: dt.datetime                                           # UTC; the injectable clock's reading
    prices: Mapping[str, CustomerPrice] = field(default_factory=dict)  # this customer's prices by SKU
    warehouses: Mapping[str, Warehouse] = field(default_factory=dict)
    # sku -> warehouse -> available units; None when stock could not be read (or was not needed).
    stock: Mapping[str, Mapping[str, int]] | None = None
    open_exposure: Decimal = Decimal(0)                        # the customer's open, confirmed orders

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(dt.UTC).date()

# --- 1. structure: refuse the whole request --------------------------------------------
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
    if s.requested_delivery_date:
        requested = parse_date(s.requested_delivery_date)
        if requested is None:
            bad("requested_delivery_date", "a calendar date written YYYY-MM-DD")
        elif today is not None and requested < today:
            bad("requested_delivery_date", f"{requested} is in the past (today is {today} UTC)", "in_the_past")
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
def hold_reasons(
    s: Submission, customer: Customer, products: Mapping[str, Product], facts: Facts,
    config: IntakeConfig | None = None,
) -> tuple[list[Reason], list[Proposal]]:
    """Every business rule the (well-formed) order breaks, in the documented order, and any proposals."""
    config = config or IntakeConfig()
    address = ship_to(s.ship_to, customer)
    terms = payment_terms(s, customer)
    lines = order_lines(s)
    reasons: list[Reason] = []
    if customer.status == "blocked":
        reasons.append(Reason("customer_blocked", f"customer {customer.customer_id} is blocked", "customer_id"))
    reasons += contact_reasons(customer, address)
    reasons += address_reasons(address)
    reasons += payment_terms_reasons(terms, customer)
    reasons += line_reasons(s, customer, products, facts.prices, config.price_tolerance)
    proposals: list[Proposal] = []
    requested = parse_date(s.requested_delivery_date)
    if requested is not None:
        date_reasons, proposals = delivery_reasons(
            requested, lines, products, facts.stock, facts.warehouses, address.get("country", ""), facts.now)
        reasons += date_reasons
    reasons += credit_reasons(customer, terms, order_amount(lines), facts.open_exposure)
    reasons += config.auto_approval.reasons(customer, order_amount(lines))
    return reasons, proposals


# --- customer: contact and address ----------------------------------------------------------
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE_PUNCTUATION = re.compile(r"[\s\-./()]")


def plausible_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text.strip()))


def plausible_phone(text: str) -> bool:
    """An optional leading +, then 6 to 15 digits (E.164 allows 15) with spaces, dashes, dots, brackets."""
    digits = _PHONE_PUNCTUATION.sub("", text.strip())
    digits = digits[1:] if digits.startswith("+") else digits
    return digits.isdigit() and 6 <= len(digits) <= 15


def contact_reasons(customer: Customer, address: Mapping[str, str]) -> list[Reason]:
    """The desk must be able to reach the buyer (e-mail) and the carrier the consignee (phone)."""
    reasons = []
    if not plausible_email(customer.email):
        what = f"{customer.email!r} is not an e-mail address" if customer.email else "no e-mail address"
        reasons.append(Reason("contact_missing", f"customer {customer.customer_id} has {what}", "customer.email"))
    phone = address.get("phone") or customer.phone  # the customer's phone when the ship-to has none
    if not plausible_phone(phone):
        what = f"{phone!r} is not a phone number" if phone else "no phone number"
        reasons.append(Reason("contact_missing", f"the delivery has {what} for the carrier", "ship_to.phone"))
    return reasons


def address_reasons(address: Mapping[str, str]) -> list[Reason]:
    """Complete and plausible: the parts a carrier needs, a known country, its postal code format."""
    reasons = []
    country = address.get("country", "").strip().upper()
    for f in REQUIRED_ADDRESS_FIELDS:
        if not address.get(f, "").strip():
            reasons.append(Reason("ship_to_incomplete", f"the delivery address has no {f.replace('_', ' ')}",
                                  f"ship_to.{f}"))
    if country and country not in ISO_COUNTRIES:
        reasons.append(Reason("country_unknown", f"{country!r} is not an ISO 3166-1 country code", "ship_to.country"))
        return reasons  # the postal code cannot be judged without a country
    postal_code = address.get("postal_code", "").strip()
    if not postal_code:
        if country and country not in COUNTRIES_WITHOUT_POSTAL_CODES:
            reasons.append(Reason("ship_to_incomplete", f"deliveries to {country} need a postal code",
                                  "ship_to.postal_code"))
    elif country and not postal_code_valid(country, postal_code):
        reasons.append(Reason(
            "postal_code_invalid", f"{postal_code!r} is not a postal code of {country} ({POSTAL_CODE_HINTS[country]})",
            "ship_to.postal_code"))
    return reasons


def postal_code_valid(country: str, postal_code: str) -> bool:
    """The country's format where POSTAL_CODES knows it; elsewhere any non-empty code."""
    pattern = POSTAL_CODES.get(country.upper())
    code = postal_code.strip().upper()
    return bool(code) and (pattern is None or bool(pattern.fullmatch(code)))


# --- payment terms ---------------------------------------------------------------------------
PREPAID = "PREPAID"


def payment_terms(s: Submission, customer: Customer) -> str:
    return s.payment_terms.upper() or (customer.payment_terms[0] if customer.payment_terms else "")


def prepaid_only(customer: Customer) -> bool:
    return customer.payment_terms == (PREPAID,)


def payment_terms_reasons(terms: str, customer: Customer) -> list[Reason]:
    if prepaid_only(customer) and terms != PREPAID:
        # The explicit rule: a customer who pays in advance gets no credit terms (NET30, ...).
        return [Reason(
            "payment_terms_not_allowed",
            f"customer {customer.customer_id} pays in advance (PREPAID only); {terms} terms are not available",
            "payment_terms")]
    if terms and terms not in customer.payment_terms:
        allowed = ", ".join(customer.payment_terms) or "none"
        return [Reason(
            "payment_terms_not_allowed",
            f"payment terms {terms} are not agreed with customer {customer.customer_id} (allowed: {allowed})",
            "payment_terms")]
    return []


# --- lines -------------------------------------------------------------------------------------
def customer_price(sku: str, product: Product, prices: Mapping[str, CustomerPrice]) -> tuple[Decimal, str, str]:
    """(price, currency, which list) the customer pays for `sku`: its own price if it has one."""
    own = prices.get(sku)
    if own is not None:
        return own.unit_price, own.currency, "customer price"
    return product.unit_price, product.currency, "list price"


def line_reasons(
    s: Submission, customer: Customer, products: Mapping[str, Product], prices: Mapping[str, CustomerPrice],
    tolerance: Decimal,
) -> list[Reason]:
    reasons: list[Reason] = []
    first_line: dict[str, int] = {}
    for i, line in enumerate(s.lines):
        product = products[line.sku]
        at = f"lines[{i}]"
        if line.sku in first_line:
            reasons.append(Reason(
                "duplicate_line", f"{line.sku} is already ordered on lines[{first_line[line.sku]}]; "
                "put the whole quantity on one line", f"{at}.sku"))
        first_line.setdefault(line.sku, i)
        if product.status == "discontinued":
            reasons.append(Reason("sku_discontinued", f"{line.sku} is discontinued", f"{at}.sku"))
        expected, currency, source = customer_price(line.sku, product, prices)
        if currency != customer.currency:
            # The price is in another currency: there is nothing to compare the order's price with.
            reasons.append(Reason(
                "currency_mismatch",
                f"{line.sku} is priced in {currency}; customer {customer.customer_id} buys in {customer.currency}",
                f"{at}.sku",
            ))
        else:
            given = parse_price(line.unit_price)
            if given is None or abs(given - expected) > tolerance:  # Decimal: "12.5" equals "12.50"
                allowed = f" (tolerance {tolerance})" if tolerance else ""
                reasons.append(Reason(
                    "price_mismatch",
                    f"{line.sku}: {source} is {expected} {currency}, the order says {given}{allowed}",
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


# --- delivery date ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Arrival:
    """Part of one line arriving on a date: from a warehouse's stock, or made first (warehouse "")."""

    quantity: int
    date: dt.date
    warehouse: str


def ship_day(now: dt.datetime, cutoff_hour_utc: int) -> dt.date:
    """Orders in before the warehouse's cut-off leave today, later ones tomorrow."""
    now = now.astimezone(dt.UTC)
    return now.date() if now.hour < cutoff_hour_utc else now.date() + dt.timedelta(days=1)


def transit_days(warehouse: Warehouse, country: str) -> int:
    domestic = warehouse.country.upper() == country.upper()
    return warehouse.transit_days_domestic if domestic else warehouse.transit_days_international


def plan_arrivals(
    lines: Sequence[OrderLine], products: Mapping[str, Product], stock: Mapping[str, Mapping[str, int]],
    warehouses: Mapping[str, Warehouse], country: str, now: dt.datetime,
) -> list[list[Arrival]]:
    """When each line can arrive, part by part, at the earliest.

    Stocked products come from the warehouses that deliver soonest (several when
    one does not have enough; lines of one SKU share its stock, first line first).
    What stock does not cover, and make-to-order products always, is made first:
    today + production lead time + transit from the fastest warehouse. Stock in a
    warehouse intake has no master data for is not promised (unknown cut-off and transit).
    Needs at least one warehouse (the caller checks).
    """
    today = now.astimezone(dt.UTC).date()
    fastest_transit = min(transit_days(w, country) for w in warehouses.values())
    left = {sku: dict(levels) for sku, levels in stock.items()}
    plan = []
    for line in lines:
        product = products[line.sku]
        arrivals: list[Arrival] = []
        missing = line.quantity
        if not product.make_to_order:
            levels = left.get(line.sku, {})
            by_arrival = sorted(
                (ship_day(now, warehouses[w].cutoff_hour_utc) + dt.timedelta(days=transit_days(warehouses[w], country)),
                 w)
                for w, available in levels.items() if available > 0 and w in warehouses
            )
            for date, w in by_arrival:
                if not missing:
                    break
                taken = min(missing, levels[w])
                levels[w] -= taken
                missing -= taken
                arrivals.append(Arrival(taken, date, w))
        if missing:
            made = today + dt.timedelta(days=product.production_lead_time_days + fastest_transit)
            arrivals.append(Arrival(missing, made, ""))
        plan.append(arrivals)
    return plan


def delivery_reasons(
    requested: dt.date, lines: Sequence[OrderLine], products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]] | None, warehouses: Mapping[str, Warehouse], country: str,
    now: dt.datetime,
) -> tuple[list[Reason], list[Proposal]]:
    """Holds an order whose whole quantity cannot arrive by `requested`, proposing what can be done."""
    field_path = "requested_delivery_date"
    if not warehouses:
        return [Reason("delivery_date_unverified", "intake has no warehouse master data to plan deliveries with",
                       field_path)], []
    if stock is None:
        return [Reason("delivery_date_unverified", "stock could not be read from inventory; the desk should "
                       "check the date", field_path)], []
    plan = plan_arrivals(lines, products, stock, warehouses, country, now)
    earliest = max(a.date for arrivals in plan for a in arrivals)
    if earliest <= requested:
        return [], []
    proposals = [Proposal("earliest_date", delivery_date=earliest)]
    parts: dict[tuple[str, dt.date], int] = {}
    for line, arrivals in zip(lines, plan, strict=True):
        in_time = sum(a.quantity for a in arrivals if a.date <= requested)
        if in_time:
            parts[(line.sku, requested)] = parts.get((line.sku, requested), 0) + in_time
        if in_time < line.quantity:
            rest_date = max(a.date for a in arrivals)
            parts[(line.sku, rest_date)] = parts.get((line.sku, rest_date), 0) + line.quantity - in_time
    if any(date == requested for _, date in parts):  # a split helps only if something arrives in time
        proposals.append(Proposal("split", parts=tuple(
            ProposalPart(sku, quantity, date) for (sku, date), quantity in sorted(parts.items(), key=_by_date_then_line(lines))
        )))
    reason = Reason(
        "delivery_date_infeasible",
        f"the whole order cannot arrive by {requested}; the earliest date is {earliest}", field_path)
    return [reason], proposals


def _by_date_then_line(lines: Sequence[OrderLine]):
    position = {}
    for i, line in enumerate(lines):
        position.setdefault(line.sku, i)
    return lambda item: (item[0][1], position[item[0][0]])


# --- credit ------------------------------------------------------------------------------------
def credit_exempt(customer: Customer, terms: str) -> bool:
    """Prepaid orders use no credit: the customer pays before anything ships."""
    return terms == PREPAID or prepaid_only(customer)


def credit_reasons(customer: Customer, terms: str, amount: Decimal, open_exposure: Decimal) -> list[Reason]:
    if credit_exempt(customer, terms):
        return []
    total = open_exposure + amount
    if total <= customer.credit_limit:
        return []
    return [Reason(
        "credit_limit_exceeded",
        f"open orders {open_exposure} + this order {amount} = {total} {customer.currency} exceeds the credit "
        f"limit {customer.credit_limit} of customer {customer.customer_id} by {total - customer.credit_limit}",
        "customer_id")]


def credit_race(customer: Customer) -> Reason:
    """Other approvals used the credit between the check and the booking (their total is not known here)."""
    return Reason("credit_limit_exceeded",
                  f"orders approved at the same moment used the credit limit {customer.credit_limit} "
                  f"{customer.currency} of customer {customer.customer_id}", "customer_id")


# --- the desk's approval of a held order ----------------------------------------------------
# What can change while an order waits on hold: the stock its date depends on, and the credit
# other orders use. Approval runs those checks again on the order as it will be approved.
RECHECKED_ON_APPROVAL = ("delivery_date_infeasible", "delivery_date_unverified", "credit_limit_exceeded")


def deliveries_to_check(lines: Sequence[OrderLine], requested_delivery_date: str, accept_proposal: str,
                        proposals: Sequence[Proposal]) -> list[tuple[dt.date, list[OrderLine]]]:
    """The (date, lines) the approved order must meet: its own date; the accepted earliest date;
    or, for an accepted split, each delivery date with its parts."""
    by_kind = {p.kind: p for p in proposals}
    if accept_proposal == "earliest_date" and "earliest_date" in by_kind:
        return [(by_kind["earliest_date"].delivery_date, list(lines))]
    if accept_proposal == "split" and "split" in by_kind:
        prices = {line.sku: line.unit_price for line in lines}
        groups: dict[dt.date, list[OrderLine]] = {}
        for part in by_kind["split"].parts:
            groups.setdefault(part.delivery_date, []).append(OrderLine(part.sku, part.quantity,
                                                                       prices.get(part.sku, Decimal(0))))
        return sorted(groups.items())
    requested = parse_date(requested_delivery_date)
    return [(requested, list(lines))] if requested is not None else []


def approval_findings(held_for: Sequence[str], found: Sequence[Reason], acknowledged: Sequence[str]) -> list[Reason]:
    """What the re-check found that the order was not held for and the approver did not acknowledge:
    any of these refuses the approval (a person must see it first)."""
    known = set(held_for) | set(acknowledged)
    return [r for r in found if r.code not in known]


# What an order's status means for its customer's credit: open orders are exposure
# (confirmed, not yet completed); received and on_hold orders are not yet, and a later
# confirmed event opens them; completed, cancelled and rejected ones close it.
EXPOSURE_OPEN = frozenset({"confirmed", "scheduled", "allocated", "partially_shipped", "shipped"})
EXPOSURE_CLOSED = frozenset({"completed", "cancelled", "rejected"})


def exposure_state(status: str) -> str | None:
    """"open", "closed", or None for a status that changes nothing."""
    if status in EXPOSURE_OPEN:
        return "open"
    if status in EXPOSURE_CLOSED:
        return "closed"
    return None


def exposure_changes(event_type: str, status: str, previous_status: str) -> bool:
    """Whether an order event can change the customer's exposure: a move between open and
    closed (or into either), or a change of the order's lines. The consumer skips the rest
    (e.g. confirmed -> allocated) without opening a transaction."""
    if event_type == "order.changed":
        return True
    state = exposure_state(status)
    return state is not None and state != exposure_state(previous_status)


# --- 3. priority -------------------------------------------------------------------------
TIER_RANK = {"new": 0, "standard": 1, "key": 2, "strategic": 3}
URGENCY_HORIZON_DAYS = 90
URGENT_FLOOR = 91   # urgent orders use 91..99 of their tier's hundred


def priority(tier: str, requested_delivery_date: dt.date | None, today: dt.date, urgent: bool = False) -> int:
    """Higher is served first when stock is scarce: the customer's tier, then urgency, then the date.

    priority = 100 x tier rank (new 0, standard 1, key 2, strategic 3) + urgency, where
    urgency is 0..90: 90 for a date today or already past, one less per day further
    out, 0 from 90 days on or when no date is requested. An order flagged urgent
    ranks above every non-urgent order of its tier: 91..99, still sooner dates first
    (91 + urgency x 8 / 90, rounded down). Urgency never outweighs a tier: the tier
    is a commercial promise, the flag and the date order customers within a tier.
    """
    due = urgency(requested_delivery_date, today)
    within_tier = URGENT_FLOOR + due * 8 // URGENCY_HORIZON_DAYS if urgent else due
    return 100 * TIER_RANK.get(tier, 0) + within_tier


def urgency(requested_delivery_date: dt.date | None, today: dt.date) -> int:
    if requested_delivery_date is None:
        return 0
    days_left = max((requested_delivery_date - today).days, 0)
    return max(URGENCY_HORIZON_DAYS - days_left, 0)


# --- master data -------------------------------------------------------------------------
# What intake owns (customers, products, customer prices) and the copy of warehouses it
# plans delivery dates with; stock stays inventory's (read through GetStock).
MASTER_KINDS = ("customers", "products", "prices", "warehouses")
MAX_MASTER_KEY = 64
MAX_MASTER_INTEGER = 2**31 - 1
MAX_DAYS = 3650  # lead and transit times: ten years is a typo, and keeps date arithmetic in range
_MASTER_KEYS = {"customers": ("customer_id",), "products": ("sku",), "prices": ("customer_id", "sku"),
                "warehouses": ("warehouse",)}


def check_master_kind(kind: str) -> None:
    if kind not in MASTER_KINDS:
        raise InvalidArgument(
            f"intake imports {', '.join(MASTER_KINDS)}, not {kind!r}",
            [FieldViolation("kind", f"one of {', '.join(MASTER_KINDS)}")],
        )


def check_master_records(kind: str, records: Sequence[Customer | Product | CustomerPrice | Warehouse]) -> None:
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
            v.append(FieldViolation(f"row {number}.unit_price", "a plain decimal with at most 6 decimal places"))
    if v:
        raise InvalidArgument(f"{kind} CSV has {len(v)} problem(s); nothing was imported", v)


# --- all together ------------------------------------------------------------------------
def decide(
    s: Submission, customer: Customer | None, products: Mapping[str, Product], facts: Facts,
    config: IntakeConfig | None = None,
) -> Decision:
    """Checks the request (raising InvalidArgument) and returns the order to create.

    A blocked customer's order is refused (FailedPrecondition, rule customer_blocked)
    instead of held when the configured policy is "refuse".
    """
    config = config or IntakeConfig()
    check_structure(s, customer, products, facts.today)
    assert customer is not None  # check_structure refused an unknown customer
    if customer.status == "blocked" and config.blocked_policy == "refuse":
        raise FailedPrecondition(f"customer {customer.customer_id} is blocked; its orders are refused",
                                 rule="customer_blocked", subject=customer.customer_id)
    reasons, proposals = hold_reasons(s, customer, products, facts, config)
    return Decision(
        lines=order_lines(s),
        ship_to=ship_to(s.ship_to, customer),
        payment_terms=payment_terms(s, customer),
        currency=customer.currency,
        priority=priority(customer.tier, parse_date(s.requested_delivery_date), facts.today, s.urgent),
        hold_reasons=tuple(reasons),
        proposals=tuple(proposals),
        urgent=s.urgent,
    )


def order_lines(s: Submission) -> tuple[OrderLine, ...]:
    return tuple(OrderLine(line.sku, line.quantity, parse_price(line.unit_price)) for line in s.lines)


def ship_to(given: Mapping[str, str], customer: Customer) -> dict[str, str]:
    if any(given.get(f) for f in ADDRESS_FIELDS):
        address = {f: given.get(f, "") for f in ADDRESS_FIELDS}
        address["country"] = address["country"].upper()
        return address
    return {
        "name": customer.name, "line1": customer.ship_to_line1, "city": customer.ship_to_city,
        "postal_code": customer.ship_to_postal_code, "country": customer.ship_to_country, "phone": customer.phone,
    }


def duplicate_external_ref(external_ref: str, first_order_id: str) -> Reason:
    return Reason(
        "duplicate_external_ref",
        f"reference {external_ref!r} was already sent by this partner with another Idempotency-Key "
        f"(order {first_order_id})", "external_ref")


# --- reference data: countries and postal codes -------------------------------------------
ISO_COUNTRIES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS
MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW
TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split())  # ISO 3166-1 alpha-2, the 249 officially assigned codes

# Countries whose addresses carry no postal code: an empty one is complete there.
COUNTRIES_WITHOUT_POSTAL_CODES = frozenset(
    "AE AG AO AW BF BI BJ BO BS BW BZ CD CF CG CI CK CM CW DJ DM ER FJ GA GD GH GM GN GQ GY HK JM KI KM KN KP LY ML "
    "MO MR MW NR NU QA RW SB SC SL SR SS ST SY TD TG TK TL TO TT TV UG VU YE ZW".split()
)

_FORMATS = {  # country: (pattern over the upper-cased code, a hint for the message)
    "US": (r"\d{5}(-\d{4})?", "5 digits or ZIP+4, e.g. 73301 or 73301-0001"),
    "CA": (r"[A-Z]\d[A-Z] ?\d[A-Z]\d", "A1A 1A1"),
    "MX": (r"\d{5}", "5 digits"),
    "BR": (r"\d{5}-?\d{3}", "NNNNN-NNN"),
    "CN": (r"\d{6}", "6 digits"),
    "JP": (r"\d{3}-?\d{4}", "NNN-NNNN"),
    "KR": (r"\d{5}", "5 digits"),
    "TW": (r"\d{3}(\d{2,3})?", "3, 5 or 6 digits"),
    "IN": (r"\d{6}", "6 digits"),
    "SG": (r"\d{6}", "6 digits"),
    "RU": (r"\d{6}", "6 digits"),
    "AU": (r"\d{4}", "4 digits"),
    "NZ": (r"\d{4}", "4 digits"),
    "ZA": (r"\d{4}", "4 digits"),
    "DE": (r"\d{5}", "5 digits"),
    "FR": (r"\d{5}", "5 digits"),
    "IT": (r"\d{5}", "5 digits"),
    "ES": (r"\d{5}", "5 digits"),
    "FI": (r"\d{5}", "5 digits"),
    "EE": (r"\d{5}", "5 digits"),
    "HR": (r"\d{5}", "5 digits"),
    "TR": (r"\d{5}", "5 digits"),
    "NL": (r"\d{4}( ?[A-Z]{2})?", "4 digits and optionally 2 letters, e.g. 3011 AB"),
    "BE": (r"\d{4}", "4 digits"),
    "LU": (r"(L-)?\d{4}", "4 digits"),
    "AT": (r"\d{4}", "4 digits"),
    "CH": (r"\d{4}", "4 digits"),
    "DK": (r"\d{4}", "4 digits"),
    "NO": (r"\d{4}", "4 digits"),
    "HU": (r"\d{4}", "4 digits"),
    "SI": (r"\d{4}", "4 digits"),
    "BG": (r"\d{4}", "4 digits"),
    "SE": (r"\d{3} ?\d{2}", "NNN NN"),
    "CZ": (r"\d{3} ?\d{2}", "NNN NN"),
    "SK": (r"\d{3} ?\d{2}", "NNN NN"),
    "GR": (r"\d{3} ?\d{2}", "NNN NN"),
    "PL": (r"\d{2}-\d{3}", "NN-NNN"),
    "PT": (r"\d{4}-\d{3}", "NNNN-NNN"),
    "IE": (r"[A-Z]\d[\dW] ?[0-9AC-FHKNPRTV-Y]{4}", "an Eircode, e.g. D02 X285"),
    "GB": (r"([A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|GIR ?0AA)", "e.g. SW1A 1AA"),
}
POSTAL_CODES = {country: re.compile(pattern) for country, (pattern, _) in _FORMATS.items()}
POSTAL_CODE_HINTS = {country: hint for country, (_, hint) in _FORMATS.items()}


# --- idempotency -----------------------------------------------------------------------------
def request_hash(s: Submission) -> str:
    """sha256 of the request without its idempotency key, in a canonical JSON form.

    Values are hashed as sent (only missing address fields read as empty), so the
    same key with any change to the body, even "12.5" for "12.50", is a different request.
    `urgent` is hashed only when set, so keys stored before the flag existed still replay.
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
    if s.urgent:
        canonical["urgent"] = True
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_reused() -> InvalidArgument:
    """The same Idempotency-Key with a different body: refused, the first order stands."""
    return InvalidArgument(
        "this Idempotency-Key was already used for a different order; use a new key for a new order",
        [FieldViolation("Idempotency-Key", "already used with another request body", "idempotency_key_reused")],
        reason="idempotency_key_reused",
    )
