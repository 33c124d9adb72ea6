"""Credit: an order's amount on top of the customer's open exposure must stay within its credit
limit (hold reason credit_limit_exceeded; prepaid orders are exempt), and which order events
open or close that exposure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from orderdesk.masterdata import Customer
from services.intake.domain.submission import PREPAID, Reason
from services.intake.domain.terms import prepaid_only


def credit_exempt(customer: Customer, terms: str) -> bool:
    """Prepaid orders use no credit: the customer pays before anything ships."""
    return terms == PREPAID or prepaid_only(customer)


def credit_reasons(customer: Customer, terms: str, amount: Decimal, open_exposure: Decimal) -> list[Reason]:
    if credit_exempt(customer, terms):
        return []
    total = open_exposure + amount
    if total <= customer.credit_limit:
        return []
    return [
        Reason(
            "credit_limit_exceeded",
            f"open orders {open_exposure} + this order {amount} = {total} {customer.currency} exceeds the credit "
            f"limit {customer.credit_limit} of customer {customer.customer_id} by {total - customer.credit_limit}",
            "customer_id",
        )
    ]


def credit_race(customer: Customer) -> Reason:
    """Other approvals used the credit between the check and the booking (their total is not known here)."""
    return Reason(
        "credit_limit_exceeded",
        f"orders approved at the same moment used the credit limit {customer.credit_limit} "
        f"{customer.currency} of customer {customer.customer_id}",
        "customer_id",
    )


@dataclass(frozen=True)
class Booking:
    """One order's turn at its customer's credit: whether its amount was booked, and the customer's open
    total it met (millionths)."""

    booked: bool
    open_micros: int


def book_in_turn(open_micros: int, limit_micros: int, amounts: Sequence[int]) -> list[Booking]:
    """A customer's approved orders booked one after another on its open total (all in millionths), as
    they would be one by one: an order is booked while the total stays within the limit, and the total
    grows by it; one that would pass the limit is not (it is held for credit), and a later, smaller one
    may still fit."""
    bookings = []
    for micros in amounts:
        fits = micros <= limit_micros and open_micros + micros <= limit_micros
        bookings.append(Booking(fits, open_micros))
        if fits:
            open_micros += micros
    return bookings


def booked_micros(amounts: Sequence[int], bookings: Sequence[Booking]) -> int:
    """What `bookings` added to the customer's open total."""
    return sum(micros for micros, b in zip(amounts, bookings, strict=True) if b.booked)


def credit_refused(customer: Customer, terms: str, amount: Decimal, open_exposure: Decimal) -> list[Reason]:
    """Why an order whose booking was refused is held: the limit with the open total it met, or, when
    those figures fit after all (amounts are booked in millionths), that other approvals used it."""
    return credit_reasons(customer, terms, amount, open_exposure) or [credit_race(customer)]


# What an order's status means for its customer's credit: open orders are exposure
# (confirmed, not yet completed); received and on_hold orders are not yet, and a later
# confirmed event opens them; completed, cancelled and rejected ones close it. With the
# exposure kept until payment (IntakeConfig.exposure_until "payment"), a completed order stays
# open until finance reports it paid or credited (domain.money.uses_credit is then 0).
EXPOSURE_OPEN = frozenset({"confirmed", "scheduled", "allocated", "partially_shipped", "shipped"})
EXPOSURE_CLOSED = frozenset({"completed", "cancelled", "rejected"})
OPEN_UNTIL_PAID = frozenset({"completed"})


def exposure_state(status: str, until_paid: bool = False) -> str | None:
    """ "open", "closed", or None for a status that changes nothing."""
    if status in EXPOSURE_OPEN or (until_paid and status in OPEN_UNTIL_PAID):
        return "open"
    if status in EXPOSURE_CLOSED:
        return "closed"
    return None


def exposure_changes(event_type: str, status: str, previous_status: str, until_paid: bool = False) -> bool:
    """Whether an order event can change the customer's exposure: a move between open and
    closed (or into either), or a change of the order's lines. The consumer skips the rest
    (e.g. confirmed -> allocated) without opening a transaction."""
    if event_type == "order.changed":
        return True
    state = exposure_state(status, until_paid)
    return state is not None and state != exposure_state(previous_status, until_paid)


def overdue_reasons(customer: Customer, overdue: Decimal) -> list[Reason]:
    """Hold reason overdue_invoices: the customer has invoices past their terms not yet paid (when
    IntakeConfig.hold_overdue_invoices says so)."""
    if overdue <= 0:
        return []
    return [
        Reason(
            "overdue_invoices",
            f"customer {customer.customer_id} has {overdue} {customer.currency} of invoices past their due "
            "dates not yet paid",
            "customer_id",
        )
    ]
