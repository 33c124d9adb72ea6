"""The money of an order as finance reports it: invoices, payments and credit notes (refunds), each with
its own document number, amount and currency; what an order has invoiced, paid, refunded and outstanding;
how much of the customer's credit it still uses; and what is overdue (past the invoice's terms).

A document is identified by (the order's partner, its kind, its number): the same document sent again
changes nothing, the number sent again with other content is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument

INVOICE, PAYMENT, CREDIT_NOTE = "invoice", "payment", "credit_note"
KINDS = (INVOICE, PAYMENT, CREDIT_NOTE)
MAX_DECIMALS = 6  # amounts are kept in millionths, as the order's prices
MAX_AMOUNT = Decimal(10) ** 12
NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/#-]{0,63}")
NET_TERMS = re.compile(r"NET(\d{1,3})")

# ISO 4217 active codes (funds and metals left out).
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL""".split()
)


@dataclass(frozen=True)
class Document:
    kind: str  # invoice | payment | credit_note
    number: str
    order_id: str
    amount: Decimal  # > 0, in currency
    currency: str
    issued_on: dt.date  # a payment: the day it was received
    due_on: dt.date | None = None  # invoices: issued_on + the order's terms unless given
    note: str = ""

    def same_as(self, other: Document) -> bool:
        """Whether `other` is this document sent again (its note aside)."""
        return (
            self.kind,
            self.number,
            self.order_id,
            self.amount,
            self.currency,
            self.issued_on,
            self.due_on,
        ) == (
            other.kind,
            other.number,
            other.order_id,
            other.amount,
            other.currency,
            other.issued_on,
            other.due_on,
        )


def net_days(terms: str) -> int:
    """Days an invoice on these terms may stay unpaid: NET30 -> 30; PREPAID and anything else -> 0."""
    found = NET_TERMS.fullmatch(terms.strip().upper())
    return int(found.group(1)) if found else 0


def check_document(
    *,
    kind: str,
    number: str,
    order_id: str,
    amount: str,
    currency: str,
    order_currency: str,
    payment_terms: str,
    issued_on: str,
    due_on: str,
    today: dt.date,
    note: str = "",
) -> Document:
    """The document as finance sent it, or InvalidArgument naming every bad field (nothing is stored)."""
    bad: list[FieldViolation] = []
    if kind not in KINDS:
        bad.append(FieldViolation("kind", f"must be one of {', '.join(KINDS)}", "document_kind_unknown"))
    if not NUMBER.fullmatch(number or ""):
        bad.append(
            FieldViolation(
                "number",
                "1 to 64 letters, digits and . _ / # - (starting with a letter or digit)",
                "document_number_invalid",
            )
        )
    value = _amount(amount, bad)
    code = (currency or "").strip().upper()
    if code not in CURRENCIES:
        bad.append(
            FieldViolation("currency", f"{currency!r} is not an ISO 4217 currency code", "currency_unknown")
        )
    elif order_currency and code != order_currency.upper():
        bad.append(
            FieldViolation(
                "currency",
                f"{code} differs from the order's currency {order_currency.upper()}",
                "currency_mismatch",
            )
        )
    issued = _date(issued_on, "issued_on", bad) if issued_on else today
    due = _date(due_on, "due_on", bad) if due_on else None
    if due_on and kind != INVOICE:
        bad.append(FieldViolation("due_on", "only an invoice has a due date", "due_date_not_allowed"))
    if issued is not None and due is not None and due < issued:
        bad.append(FieldViolation("due_on", f"{due} is before the issue date {issued}", "due_date_invalid"))
    if len(note) > 500:
        bad.append(FieldViolation("note", "at most 500 characters", "too_long"))
    if bad:
        raise InvalidArgument(
            f"the {kind.replace('_', ' ') or 'document'} cannot be recorded", violations=bad
        )
    assert value is not None and issued is not None
    if kind == INVOICE and due is None:
        due = issued + dt.timedelta(days=net_days(payment_terms))
    return Document(kind, number, order_id, value, code, issued, due, note)


def _amount(text: str, bad: list[FieldViolation]) -> Decimal | None:
    try:
        value = Decimal((text or "").strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        bad.append(FieldViolation("amount", f"{text!r} is not a decimal amount", "amount_invalid"))
        return None
    if value <= 0:
        bad.append(FieldViolation("amount", f"{value} must be greater than 0", "amount_not_positive"))
        return None
    if -value.as_tuple().exponent > MAX_DECIMALS:  # type: ignore[operator]
        bad.append(FieldViolation("amount", f"at most {MAX_DECIMALS} decimals", "amount_invalid"))
        return None
    if value >= MAX_AMOUNT:
        bad.append(FieldViolation("amount", f"must be below {MAX_AMOUNT}", "amount_invalid"))
        return None
    return value


def _date(text: str, field: str, bad: list[FieldViolation]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        bad.append(FieldViolation(field, f"{text!r} is not a date (YYYY-MM-DD)", "date_invalid"))
        return None


@dataclass(frozen=True)
class Account:
    """What an order's money stands at."""

    ordered: Decimal
    invoiced: Decimal
    paid: Decimal
    refunded: Decimal  # credit notes
    outstanding: Decimal  # invoiced - refunded - paid: what the customer still owes (negative: owed to it)
    overdue: Decimal  # of that, what is past its invoices' due dates
    uses_credit: Decimal  # what of the order is not yet paid: counts against the customer's credit


def totals(documents: Iterable[Document]) -> tuple[Decimal, Decimal, Decimal]:
    """(invoiced, paid, refunded)."""
    sums = {kind: Decimal(0) for kind in KINDS}
    for d in documents:
        sums[d.kind] += d.amount
    return sums[INVOICE], sums[PAYMENT], sums[CREDIT_NOTE]


def uses_credit(ordered: Decimal, invoiced: Decimal, settled: Decimal, is_open: bool) -> Decimal:
    """What an order uses of its customer's credit: while it is open (confirmed, not cancelled), what it
    costs (the order's amount, or what was invoiced if more) less what was paid or credited, never below 0."""
    if not is_open:
        return Decimal(0)
    return max(Decimal(0), max(ordered, invoiced) - settled)


def overdue(invoices: Iterable[tuple[Decimal, dt.date | None]], settled: Decimal, today: dt.date) -> Decimal:
    """What is past due: payments and credit notes settle the oldest invoices first, so what is overdue is
    the invoices due before today less everything settled, never below 0."""
    due_before = sum((amount for amount, due in invoices if due is not None and due < today), Decimal(0))
    return max(Decimal(0), due_before - settled)


def account(ordered: Decimal, documents: Iterable[Document], today: dt.date, *, is_open: bool) -> Account:
    documents = list(documents)
    invoiced, paid, refunded = totals(documents)
    settled = paid + refunded
    return Account(
        ordered=ordered,
        invoiced=invoiced,
        paid=paid,
        refunded=refunded,
        outstanding=invoiced - refunded - paid,
        overdue=overdue(((d.amount, d.due_on) for d in documents if d.kind == INVOICE), settled, today),
        uses_credit=uses_credit(ordered, invoiced, settled, is_open),
    )


def number_reused(first: Document) -> FailedPrecondition:
    """The document number is taken by a document with other content: refused, the first stands."""
    what = first.kind.replace("_", " ")
    return FailedPrecondition(
        f"{what} {first.number} was already recorded with other content (order {first.order_id}, "
        f"{first.amount} {first.currency}, {first.issued_on}); a corrected {what} needs a new number",
        rule="document_number_reused",
        subject=first.order_id,
        violations=[
            FieldViolation(
                "number", f"{what} {first.number} exists with other content", "document_number_reused"
            )
        ],
    )


def uses_credit_micros(ordered: int, invoiced: int, settled: int, is_open: bool) -> int:
    """uses_credit in millionths, as the exposure tables keep it."""
    return max(0, max(ordered, invoiced) - settled) if is_open else 0


def text(amount: Decimal) -> str:
    """An amount as a decimal string with at least 2 decimals ("1000.00", "0.125"), as finance wrote it."""
    amount = amount.normalize()
    exponent = amount.as_tuple().exponent
    return str(amount.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else amount)


# --- credit notes the returns service decides -------------------------------------------------------
# A return's (or a claim's) refund, and an exchange's credit for a cheaper replacement, are decided by the
# returns service and published as the RMA's events; intake turns each decision into one credit note in
# this ledger, numbered after the RMA so that a redelivered event, or finance posting the same number,
# finds the document there already.
RETURNS_RECORDER = "returns"  # recorded_by of the credit notes made from the returns service's decisions
DECIDED_STATUS = "refunded"  # an RMA (return or claim) whose money is decided


def credit_note_number(rma_id: str) -> str:
    """The credit note of an RMA's decided refund: CN-<RMA id> (one per RMA)."""
    return f"CN-{rma_id}"


@dataclass(frozen=True)
class DecidedCredit:
    """What the returns service decided to give back on one RMA: its refund and an exchange's credit."""

    rma_id: str
    order_id: str
    partner_id: str
    refund: Decimal
    exchange_credit: Decimal  # the replacement was worth less than the goods (to_credit)
    currency: str  # "" when the RMA does not say: the order's
    decided_on: dt.date

    @property
    def amount(self) -> Decimal:
        return self.refund + self.exchange_credit

    @property
    def number(self) -> str:
        return credit_note_number(self.rma_id)

    @property
    def note(self) -> str:
        parts = []
        if self.refund:
            parts.append(f"refund {text(self.refund)}")
        if self.exchange_credit:
            parts.append(f"exchange credit {text(self.exchange_credit)}")
        return f"{' and '.join(parts)} of return {self.rma_id}"


def decided_credit(
    *,
    rma_id: str,
    order_id: str,
    partner_id: str,
    status: str,
    refund_amount: str,
    to_credit: str = "",
    currency: str = "",
    decided_at: dt.datetime,
) -> DecidedCredit | None:
    """The credit an RMA's event decides, or None when it decides none (not refunded, or nothing to give
    back). Reads only what every RMA has (id, order, status, refund amount) and an exchange's to_credit
    when present, so a claim refunded like a return is credited like one. A malformed amount is refused
    (InvalidArgument): the event is not one to guess about."""
    if status != DECIDED_STATUS or not rma_id or not order_id:
        return None
    bad: list[FieldViolation] = []
    refund = _decided_amount(refund_amount, "refund_amount", bad)
    credit = _decided_amount(to_credit, "to_credit", bad)
    if bad:
        raise InvalidArgument(f"return {rma_id}: its decided refund cannot be read", violations=bad)
    if refund + credit <= 0:
        return None
    return DecidedCredit(
        rma_id=rma_id,
        order_id=order_id,
        partner_id=partner_id,
        refund=refund,
        exchange_credit=credit,
        currency=currency.strip().upper(),
        decided_on=decided_at.astimezone(dt.UTC).date(),
    )


def _decided_amount(value: str, field: str, bad: list[FieldViolation]) -> Decimal:
    try:
        amount = Decimal((value or "0").strip() or "0")
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0:
        bad.append(FieldViolation(field, f"{value!r} is not an amount of 0 or more", "amount_invalid"))
        return Decimal(0)
    return amount
