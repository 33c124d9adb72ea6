"""The return policy: windows, value thresholds, returnable products, reasons, fees and who pays.

Plain Python, no I/O (README "Return policy" documents the figures).

A return request is checked line by line against the policy. Nothing is refused outright for the
policy: a request outside its window, worth more than the value threshold, or for a product that is
not returnable is *held* for the desk, whose approver authorises or refuses it with a reason.

Windows: the product's own window (master data `return_window_days`) when it has one, else the
customer tier's (ORDERDESK_RETURN_TIER_WINDOWS), else the default (ORDERDESK_RETURN_WINDOW_DAYS,
30). They count from the delivery date: in working days when a calendar is given, in calendar days
otherwise (working days: Monday to Friday less the holidays of the country the order was delivered to,
when that country's calendar was imported). The last day of the window still counts as inside.

Reasons decide who pays:

    reason              fault      restocking fee
    damaged             ours       0 %
    defective           ours       0 %
    wrong_item          ours       0 %
    not_as_described    ours       0 %
    late_delivery       ours       0 %
    no_longer_needed    customer   15 %
    other               customer   0 %   (the desk looks at the note)

Inspection outcomes and the refund per unit:

    restock               the price less the reason's restocking fee (the goods go back to stock)
    refurbish             the price less the reason's restocking fee (not back to stock yet)
    scrap_our_fault       the full price ("scrap", the outcome before the policy, means this)
    scrap_customer_fault  half the price (CUSTOMER_DAMAGE_REFUND): the customer damaged the goods
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from orderdesk.calendar import COUNTRY, Calendar, Holiday, add_working_days
from orderdesk.domain import RETURN_REASONS

CENTS = Decimal("0.01")

REASONS = RETURN_REASONS
OUR_FAULT = frozenset({"damaged", "defective", "wrong_item", "not_as_described", "late_delivery"})
RESTOCKING_FEE: Mapping[str, Decimal] = {
    **{reason: Decimal("0") for reason in REASONS},
    "no_longer_needed": Decimal("0.15"),
}

RESTOCK, REFURBISH, SCRAP_OURS, SCRAP_CUSTOMERS = (
    "restock",
    "refurbish",
    "scrap_our_fault",
    "scrap_customer_fault",
)
OUTCOMES = (RESTOCK, REFURBISH, SCRAP_OURS, SCRAP_CUSTOMERS)
OUTCOME_ALIASES = {"scrap": SCRAP_OURS}  # before the policy, scrapped goods were refunded in full
CUSTOMER_DAMAGE_REFUND = Decimal("0.5")

DEFAULT_WINDOW_DAYS = 30
DEFAULT_ADVANCE_EXCHANGE_DAYS = 14.0
DEFAULT_DEADLINE_CHECK_SECONDS = 300.0  # ORDERDESK_RETURN_DEADLINE_CHECK_SECONDS: the deadline job's interval
# The value of one RMA above which the desk decides, per currency (ORDERDESK_RETURN_HOLD_ABOVE).
DEFAULT_VALUE_THRESHOLDS: Mapping[str, Decimal] = {
    "USD": Decimal("5000"),
    "EUR": Decimal("5000"),
    "GBP": Decimal("4000"),
    "CNY": Decimal("35000"),
}

# Hold reason codes (Return.hold_reasons[].code)
OUTSIDE_WINDOW, ABOVE_VALUE_THRESHOLD, NOT_RETURNABLE = (
    "outside_window",
    "above_value_threshold",
    "not_returnable",
)


def fault(reason_code: str) -> str:
    """Who pays for a return with this reason: "ours" or "customer"."""
    return "ours" if reason_code in OUR_FAULT else "customer"


def reason_code(code: str, note: str) -> str:
    """The vocabulary code of a request line: the code given, else the note when it is one, else other."""
    if code:
        return code
    word = note.strip().lower().replace(" ", "_")
    return word if word in REASONS else "other"


def outcome(name: str) -> str:
    return OUTCOME_ALIASES.get(name, name)


# --- settings ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProductPolicy:
    """A product's return attributes from master data (products CSV, optional columns)."""

    returnable: bool = True
    window_days: int | None = None  # None: the tier's or the default window


@dataclass(frozen=True)
class PolicySettings:
    default_window_days: int = DEFAULT_WINDOW_DAYS
    tier_window_days: Mapping[str, int] = field(default_factory=dict)
    value_thresholds: Mapping[str, Decimal] = field(default_factory=lambda: dict(DEFAULT_VALUE_THRESHOLDS))
    # Exchanges: the customer tiers whose replacements ship at once (advance exchange), and the days their
    # returned goods have from then before they are charged (fractions allowed: return_due_at).
    advance_exchange_tiers: frozenset[str] = frozenset()
    advance_exchange_days: float = DEFAULT_ADVANCE_EXCHANGE_DAYS

    def window_days(self, product: ProductPolicy, tier: str) -> int:
        if product.window_days is not None:
            return product.window_days
        return self.tier_window_days.get(tier, self.default_window_days)

    def threshold(self, currency: str) -> Decimal | None:
        """None: no threshold for this currency (nothing is held for its value)."""
        return self.value_thresholds.get(currency.upper())


def _pairs(text: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in text.replace(",", " ").split():
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"{what}: {item!r} is not NAME=VALUE")
        pairs[key] = value
    return pairs


def positive_number(environ: Mapping[str, str], name: str, default: float) -> float:
    """A setting that is a number above 0 (decimals allowed: "14", "0.5", "2.3e-05"); unset or empty: the
    default. Anything else is a ValueError naming the variable, which stops the process at start-up."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: must be a number above 0") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"{name}={text!r}: must be a finite number above 0")
    return value


def deadline_check_seconds(environ: Mapping[str, str]) -> float:
    """ORDERDESK_RETURN_DEADLINE_CHECK_SECONDS (300): how often the advance exchanges' deadline job looks."""
    return positive_number(environ, "ORDERDESK_RETURN_DEADLINE_CHECK_SECONDS", DEFAULT_DEADLINE_CHECK_SECONDS)


def settings_from_env(environ: Mapping[str, str]) -> PolicySettings:
    """ORDERDESK_RETURN_WINDOW_DAYS (30), ORDERDESK_RETURN_TIER_WINDOWS ("strategic=60 key=45"),
    ORDERDESK_RETURN_HOLD_ABOVE ("USD=5000 EUR=5000"; replaces the defaults when set),
    ORDERDESK_RETURN_ADVANCE_EXCHANGE_TIERS ("strategic key"; none by default),
    ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS (14; a fraction of a day allowed, above 0)."""
    default = int(environ.get("ORDERDESK_RETURN_WINDOW_DAYS", "").strip() or DEFAULT_WINDOW_DAYS)
    tiers = {
        tier: int(days)
        for tier, days in _pairs(environ.get("ORDERDESK_RETURN_TIER_WINDOWS", ""), "tier windows").items()
    }
    above = environ.get("ORDERDESK_RETURN_HOLD_ABOVE", "").strip()
    thresholds = (
        {cur.upper(): Decimal(v) for cur, v in _pairs(above, "hold thresholds").items()}
        if above
        else dict(DEFAULT_VALUE_THRESHOLDS)
    )
    advance_tiers = frozenset(
        environ.get("ORDERDESK_RETURN_ADVANCE_EXCHANGE_TIERS", "").replace(",", " ").split()
    )
    advance_days = positive_number(
        environ, "ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS", DEFAULT_ADVANCE_EXCHANGE_DAYS
    )
    if default < 0 or any(d < 0 for d in tiers.values()) or any(v < 0 for v in thresholds.values()):
        raise ValueError("return windows, thresholds and days must not be negative")
    return PolicySettings(default, tiers, thresholds, advance_tiers, advance_days)


# --- the window ------------------------------------------------------------------------------------
def country_calendar(holidays: Iterable[Holiday], country: str) -> Calendar | None:
    """The working days of the country the goods were delivered to (Monday to Friday less its
    holidays) when its calendar was imported; None: the window counts calendar days."""
    days = frozenset(h.date for h in holidays if h.scope == COUNTRY and h.code.upper() == country.upper())
    return Calendar(holidays=days) if days else None


def window_end(delivered_on: dt.date, days: int, calendar: Calendar | None = None) -> dt.date:
    """The last day a return may be asked for without the desk."""
    if calendar is None:
        return delivered_on + dt.timedelta(days=days)
    return add_working_days(delivered_on, days, calendar)


# --- the checks ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyLine:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class HoldReason:
    code: str
    message: str
    field: str = ""


def hold_reasons(
    lines: list[PolicyLine],
    *,
    settings: PolicySettings,
    products: Mapping[str, ProductPolicy],
    tier: str,
    currency: str,
    delivered_on: dt.date | None,
    today: dt.date,
    calendar: Calendar | None = None,
) -> list[HoldReason]:
    """Why the desk must decide this request; empty: it goes straight through.

    `delivered_on` None: the order is not completely delivered yet, and the window has not begun.
    """
    reasons: list[HoldReason] = []
    for i, line in enumerate(lines):
        product = products.get(line.sku, ProductPolicy())
        if not product.returnable:
            reasons.append(HoldReason(NOT_RETURNABLE, f"{line.sku} is not returnable", f"lines[{i}].sku"))
        if delivered_on is not None:
            days = settings.window_days(product, tier)
            end = window_end(delivered_on, days, calendar)
            if today > end:
                unit = "working days" if calendar is not None else "days"
                reasons.append(
                    HoldReason(
                        OUTSIDE_WINDOW,
                        f"{line.sku}: the return window of {days} {unit} from delivery on "
                        f"{delivered_on.isoformat()} ended on {end.isoformat()}",
                        f"lines[{i}].sku",
                    )
                )
    threshold = settings.threshold(currency)
    value = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    if threshold is not None and value > threshold:
        reasons.append(
            HoldReason(
                ABOVE_VALUE_THRESHOLD,
                f"the return is worth {value.quantize(CENTS)} {currency.upper()}, above the "
                f"{threshold.quantize(CENTS)} {currency.upper()} the desk must approve",
            )
        )
    return reasons


# --- money -----------------------------------------------------------------------------------------
def restocking_fee(reason: str, unit_price: Decimal, units: int) -> Decimal:
    """The fee kept back on `units` restocked or refurbished units of a line with this reason."""
    return (unit_price * units * RESTOCKING_FEE.get(reason, Decimal("0"))).quantize(
        CENTS, rounding=ROUND_HALF_UP
    )


def line_refund(reason: str, unit_price: Decimal, counts: Mapping[str, int]) -> Decimal:
    """The refund for one line's inspected units, {outcome: units}."""
    kept_back = counts.get(RESTOCK, 0) + counts.get(REFURBISH, 0)
    full = unit_price * (kept_back + counts.get(SCRAP_OURS, 0))
    partial = unit_price * counts.get(SCRAP_CUSTOMERS, 0) * CUSTOMER_DAMAGE_REFUND
    refund = (full + partial).quantize(CENTS, rounding=ROUND_HALF_UP)
    return refund - restocking_fee(reason, unit_price, kept_back)


# --- exchanges (issue 14) ------------------------------------------------------------------------------
# A returned line may be exchanged instead of refunded: the same SKU (another unit) or another one (another
# size). The replacement is priced by the policy; the refund of an exchanged line is nothing, and the
# difference between what the replacement is worth and what the returned goods were bought for is charged
# (positive) or credited (negative).
EXCHANGE_CHANNEL = "exchange"  # the replacement order's channel at intake
# When the replacement is entered: once the returned goods are received and inspected, or at once (advance
# exchange: the customer has advance_exchange_days to send the goods back, else they are charged).
ON_RECEIPT, ADVANCE = "on_receipt", "advance"
EXCHANGE_MODES = (ON_RECEIPT, ADVANCE)


def exchange_mode(asked: str, tier: str, settings: PolicySettings) -> str | None:
    """The mode of an exchange for a customer of `tier`: what was asked, else the tier's (advance for the
    tiers the policy names, on receipt otherwise); None when advance is asked for a tier without it."""
    allowed = tier in settings.advance_exchange_tiers
    if asked == ADVANCE:
        return ADVANCE if allowed else None
    if asked == ON_RECEIPT:
        return ON_RECEIPT
    return ADVANCE if allowed else ON_RECEIPT


def return_due_at(replaced_at: dt.datetime, settings: PolicySettings) -> dt.datetime:
    """Advance exchange: the moment after which returned goods not yet received are charged.

    Whole days are calendar days and the last one counts as inside: the deadline is the end of that day
    (UTC). A fraction of a day (a test or a demo: 2 seconds are `2 / 86400`) is exactly that long after the
    replacement."""
    days = settings.advance_exchange_days
    due = replaced_at.astimezone(dt.UTC) + dt.timedelta(days=days)
    if days == int(days):
        return dt.datetime.combine(due.date(), dt.time.max, tzinfo=dt.UTC)
    return due


def unreturned_charge(lines: Iterable[ExchangeLine]) -> Decimal:
    """What the customer is charged for exchanged goods never sent back: what they were bought for."""
    return sum((x.returned_unit_price * x.returned_quantity for x in lines), Decimal("0")).quantize(
        CENTS, rounding=ROUND_HALF_UP
    )


def exchange_unit_price(returned_sku: str, paid: Decimal, replacement_sku: str, quoted: Decimal) -> Decimal:
    """The replacement's unit price: like for like (the same SKU) at the price paid, so a swap of one unit
    for another costs nothing; another SKU at the customer's price today (`quoted`, intake's price)."""
    return paid if replacement_sku == returned_sku else quoted


@dataclass(frozen=True)
class ExchangeLine:
    returned_quantity: int
    returned_unit_price: Decimal  # what the order paid
    replacement_quantity: int
    replacement_unit_price: Decimal  # exchange_unit_price


def exchange_difference(lines: Iterable[ExchangeLine]) -> Decimal:
    """Replacement value − returned value at the original prices, in cents: above 0 the customer is charged
    the difference, below 0 credited it."""
    total = sum(
        (
            x.replacement_unit_price * x.replacement_quantity - x.returned_unit_price * x.returned_quantity
            for x in lines
        ),
        Decimal("0"),
    )
    return total.quantize(CENTS, rounding=ROUND_HALF_UP)
