"""A refund the returns service decides becomes one credit note (services/intake/domain/money.py
decided_credit, services/intake/consumers.py decided_credit): which RMA events decide one, for how much,
under which number."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from orderdesk.errors import InvalidArgument
from orderdesk.v1 import events_pb2, returns_pb2
from services.intake import consumers
from services.intake.domain import money

AT = dt.datetime(2026, 12, 4, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))  # 5 Dec in UTC


def event(event_type: str = "return.refunded", **fields) -> events_pb2.Event:
    ret = {
        "rma_id": "RMA-0A1B2C",
        "order_id": "ORD-1",
        "partner_id": "P1",
        "status": "refunded",
        "refund_amount": "42.50",
        "currency": "USD",
        **fields,
    }
    at = Timestamp()
    at.FromDatetime(AT.astimezone(dt.UTC))
    message = events_pb2.Event(
        event_id="e-1",
        type=event_type,
        aggregate_type="return",
        aggregate_id=ret["rma_id"],
        aggregate_version=4,
        order_id=ret["order_id"],
        occurred_at=at,
    )
    getattr(getattr(message, "return"), "return").CopyFrom(returns_pb2.Return(**ret))
    return message


def test_a_refunded_return_decides_a_credit_note_named_after_the_rma():
    credit = consumers.decided_credit(event())
    assert credit is not None
    assert credit.number == "CN-RMA-0A1B2C" == money.credit_note_number("RMA-0A1B2C")
    assert (credit.order_id, credit.partner_id, credit.currency) == ("ORD-1", "P1", "USD")
    assert credit.amount == Decimal("42.50") and credit.exchange_credit == 0
    assert credit.decided_on == dt.date(2026, 12, 5)  # the decision's day in UTC, the same on every delivery
    assert credit.note == "refund 42.50 of return RMA-0A1B2C"
    assert money.NUMBER.fullmatch(credit.number)


def test_an_exchange_credit_is_added_to_the_refund():
    credit = consumers.decided_credit(event(refund_amount="10.00", to_credit="5.25", to_charge=""))
    assert credit is not None and credit.amount == Decimal("15.25")
    assert credit.note == "refund 10.00 and exchange credit 5.25 of return RMA-0A1B2C"
    only_exchange = consumers.decided_credit(event(refund_amount="0.00", to_credit="3.00"))
    assert only_exchange is not None and only_exchange.amount == Decimal("3.00")
    assert only_exchange.note == "exchange credit 3.00 of return RMA-0A1B2C"


@pytest.mark.parametrize(
    "event_type, fields",
    [
        ("return.authorized", {"status": "authorized"}),
        ("return.received", {"status": "received"}),
        ("return.cancelled", {"status": "cancelled"}),
        ("return.refunded", {"refund_amount": "0.00"}),  # an exchange like for like: nothing to give back
        ("return.refunded", {"refund_amount": "0.00", "to_charge": "12.00", "to_credit": "0.00"}),
        ("return.unreturned_charged", {"status": "authorized", "unreturned_charge": "80.00"}),
    ],
)
def test_events_that_decide_no_credit(event_type, fields):
    message = event(event_type, **fields)
    assert consumers.decided_credit(message) is None
    assert not consumers.decides_credit(message)


def test_a_claim_refunded_under_another_type_is_credited_the_same_way():
    """Claims (another RMA kind) publish their refund with the same RMA payload: read from it alone."""
    claim = consumers.decided_credit(
        event("return.claim_resolved", rma_id="RMA-CLAIM1", refund_amount="99.99")
    )
    assert claim is not None and claim.number == "CN-RMA-CLAIM1" and claim.amount == Decimal("99.99")


def test_later_events_of_a_refunded_rma_name_the_same_credit_note():
    """return.exchange_created comes after return.refunded with the RMA still refunded: same number, so the
    ledger finds it and records nothing more."""
    first = consumers.decided_credit(event())
    later = consumers.decided_credit(event("return.exchange_created", exchange_order_id="ORD-2"))
    assert first is not None and later is not None and first.number == later.number


def test_an_event_without_a_return_payload_decides_nothing():
    assert consumers.decided_credit(events_pb2.Event(type="order.confirmed")) is None


def test_an_unreadable_amount_is_refused_not_dropped():
    broken = event(refund_amount="lots")
    with pytest.raises(InvalidArgument) as refused:
        consumers.decided_credit(broken)
    assert [v.field for v in refused.value.violations] == ["refund_amount"]
    assert consumers.decides_credit(broken)  # the handler refuses it: retried, then dead-lettered
    with pytest.raises(InvalidArgument):
        consumers.decided_credit(event(to_credit="-1"))


def test_the_credit_note_a_decision_makes_passes_the_ledger_checks():
    credit = consumers.decided_credit(event(refund_amount="1234.5678"))
    assert credit is not None
    document = money.check_document(
        kind=money.CREDIT_NOTE,
        number=credit.number,
        order_id=credit.order_id,
        amount=money.text(credit.amount),
        currency=credit.currency,
        order_currency="USD",
        payment_terms="NET30",
        issued_on=credit.decided_on.isoformat(),
        due_on="",
        today=credit.decided_on,
        note=credit.note,
    )
    assert document.amount == Decimal("1234.5678") and document.issued_on == dt.date(2026, 12, 5)
