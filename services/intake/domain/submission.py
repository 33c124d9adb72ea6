"""What a partner sends (Submission), what the service looked up for it (Facts) and what intake
decides (Decision with its Reasons and Proposals); the parsing of its text fields and the
request hash that ties an Idempotency-Key to one body."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import orjson

from orderdesk import idempotency, ids
from orderdesk.calendar import CalendarBook
from orderdesk.domain import address_dict
from orderdesk.masterdata import CustomerPrice

# phone, email: entered by the desk; exchange: a return's replacement, entered by the returns service
CHANNELS = ("api", "batch", "csv", "grpc", "phone", "email", "exchange")
DEFAULT_CHANNEL = "api"
PREPAID = "PREPAID"  # the payment term that uses no credit: the customer pays before anything ships

# Plain decimal notation only: no sign, exponent, NaN or spaces ("12.50", "3", "0.125").
_PRICE = re.compile(r"\d{1,15}(\.\d{1,6})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


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
    ship_to: Mapping[str, str]  # ADDRESS_FIELDS; all empty means "the customer's default"
    lines: tuple[SubmittedLine, ...]
    requested_delivery_date: str  # YYYY-MM-DD or empty
    payment_terms: str  # empty means "the customer's first allowed term"
    urgent: bool = False  # the partner asks for expedited handling
    # Who submits (orderdesk/actors.py); not part of the request hash: the same order sent again with
    # another key of the partner is the same request.
    actor: str = ""


# --- what the service looked up for one submission ------------------------------------------
@dataclass(frozen=True)
class Facts:
    """Everything beyond the customer and products that the rules read; gathered by the service."""

    now: dt.datetime  # UTC; the injectable clock's reading
    prices: Mapping[str, CustomerPrice] = field(default_factory=dict)  # this customer's prices by SKU
    # warehouses, holidays and lanes (orderdesk.calendar); None when no date is to be checked
    book: CalendarBook | None = None
    # sku -> warehouse -> available units; None when stock could not be read (or was not needed).
    stock: Mapping[str, Mapping[str, int]] | None = None
    # sku -> inventory's answer for the units stock does not cover (delivery.Supply); None when
    # inventory could not be asked
    supply: Mapping[str, Any] | None = None
    open_exposure: Decimal = Decimal(0)  # the customer's open, confirmed orders
    overdue: Decimal = Decimal(0)  # the customer's invoices past due, not yet paid (domain.money.overdue)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(dt.UTC).date()


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
    delivery_date: dt.date | None = None  # earliest_date: the whole order on this date
    parts: tuple[ProposalPart, ...] = ()  # split: deliveries by date


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


def order_lines(s: Submission) -> tuple[OrderLine, ...]:
    """The submitted lines with their prices parsed (the structure check has refused bad ones)."""
    return tuple(OrderLine(line.sku, line.quantity, _checked_price(line.unit_price)) for line in s.lines)


def order_amount(lines: Sequence[OrderLine]) -> Decimal:
    return sum((line.unit_price * line.quantity for line in lines), Decimal(0))


def new_order_id() -> str:
    """ORD- and 24 upper-case hex digits that sort by creation time (orderdesk.ids): 52 random bits."""
    return "ORD-" + ids.time_ordered_hex(13)


def metric_channel(channel: str) -> str:
    """Metric labels must stay bounded, even for a request refused for its channel."""
    return channel if channel in CHANNELS else "other"


# --- the text fields ------------------------------------------------------------------------
def parse_price(text: str) -> Decimal | None:
    return Decimal(text) if _PRICE.fullmatch(text) else None


def _checked_price(text: str) -> Decimal:
    price = parse_price(text)
    if price is None:
        raise ValueError(f"unit price {text!r} was not checked before use")
    return price


def parse_date(text: str) -> dt.date | None:
    # fromisoformat alone also accepts "20261201" and week dates: the API promises YYYY-MM-DD.
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


# --- idempotency -----------------------------------------------------------------------------
def canonical_request(s: Submission) -> dict[str, Any]:
    """The request without its idempotency key, as the hash sees it.

    Values as sent (only missing address fields read as empty), so the same key with any
    change to the body, even "12.5" for "12.50", is a different request. `urgent` appears
    only when set, so keys stored before the flag existed still replay. Changing this
    shape changes every stored key's hash: replays of those keys would then be refused.
    """
    canonical: dict[str, Any] = {
        "partner_id": s.partner_id,
        "channel": s.channel,
        "external_ref": s.external_ref,
        "customer_id": s.customer_id,
        "ship_to": address_dict(s.ship_to),
        "lines": [[line.sku, line.quantity, line.unit_price] for line in s.lines],
        "requested_delivery_date": s.requested_delivery_date,
        "payment_terms": s.payment_terms,
    }
    if s.urgent:
        canonical["urgent"] = True
    return canonical


def request_hash(s: Submission) -> str:
    """sha256 of the canonical request (orderdesk.idempotency): what an Idempotency-Key is stored with.

    The canonical request holds only strings, whole numbers, True and lists and dicts of them: orjson gives
    the very bytes idempotency.request_hash's json.dumps gives (sorted keys, no spaces, not ASCII-escaped)
    at a fraction of the CPU, a test compares them; what orjson refuses (a number past 64 bits, a lone
    surrogate) is hashed by idempotency.request_hash itself."""
    canonical = canonical_request(s)
    try:
        text = orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return idempotency.request_hash(canonical)
    return hashlib.sha256(text).hexdigest()
