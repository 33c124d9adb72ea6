"""The money of an order (services/intake/domain/money.py): documents checked field by field, what an order
has invoiced, paid, refunded and outstanding, what it uses of the credit and what is overdue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from orderdesk.masterdata import Customer
from services.intake import domain
from services.intake.domain import money
from services.intake.domain.config import IntakeConfig

TODAY = dt.date(2026, 12, 4)


def check(**changes) -> money.Document:
    fields = {
        "kind": "invoice",
        "number": "INV-1001",
        "order_id": "ORD-1",
        "amount": "120.50",
        "currency": "usd",
        "order_currency": "USD",
        "payment_terms": "NET30",
        "issued_on": "2026-11-01",
        "due_on": "",
        "today": TODAY,
    }
    return money.check_document(**(fields | changes))


def refused(**changes) -> list[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as exc:
        check(**changes)
    return [(v.field, v.reason) for v in exc.value.violations]


def test_an_invoice_is_due_after_the_orders_terms():
    invoice = check()
    assert (invoice.amount, invoice.currency, invoice.issued_on) == (
        Decimal("120.50"),
        "USD",
        dt.date(2026, 11, 1),
    )
    assert invoice.due_on == dt.date(2026, 12, 1)  # NET30
    assert check(due_on="2026-11-15").due_on == dt.date(2026, 11, 15)
    assert check(payment_terms="PREPAID").due_on == dt.date(2026, 11, 1)
    assert check(kind="payment", issued_on="").issued_on == TODAY and check(kind="payment").due_on is None


@pytest.mark.parametrize(
    ("changes", "violations"),
    [
        ({"amount": "-5"}, [("amount", "amount_not_positive")]),
        ({"amount": "0"}, [("amount", "amount_not_positive")]),
        ({"amount": "ten"}, [("amount", "amount_invalid")]),
        ({"amount": "1.0000001"}, [("amount", "amount_invalid")]),
        ({"amount": "NaN"}, [("amount", "amount_invalid")]),
        ({"currency": "XYZ"}, [("currency", "currency_unknown")]),
        ({"currency": "EUR"}, [("currency", "currency_mismatch")]),
        ({"kind": "receipt"}, [("kind", "document_kind_unknown")]),
        ({"number": ""}, [("number", "document_number_invalid")]),
        ({"number": "INV 1"}, [("number", "document_number_invalid")]),
        ({"issued_on": "01/11/2026"}, [("issued_on", "date_invalid")]),
        ({"due_on": "2026-10-01"}, [("due_on", "due_date_invalid")]),
        ({"kind": "payment", "due_on": "2026-12-30"}, [("due_on", "due_date_not_allowed")]),
        (
            {"amount": "-1", "currency": "EUR"},
            [("amount", "amount_not_positive"), ("currency", "currency_mismatch")],
        ),
    ],
)
def test_bad_input_names_the_field(changes, violations):
    assert refused(**changes) == violations


def test_the_same_document_again_is_the_same_and_other_content_is_refused():
    first = check()
    assert first.same_as(check(note="sent twice"))
    assert not first.same_as(check(amount="120.51"))
    assert not first.same_as(check(order_id="ORD-2"))
    error = money.number_reused(first)
    assert isinstance(error, FailedPrecondition) and error.rule == "document_number_reused"
    assert [(v.field, v.reason) for v in error.violations] == [("number", "document_number_reused")]


def doc(kind: str, amount: str, due: str | None = None) -> money.Document:
    return money.Document(
        kind,
        f"{kind}-{amount}",
        "ORD-1",
        Decimal(amount),
        "USD",
        TODAY,
        dt.date.fromisoformat(due) if due else None,
    )


def test_an_orders_account():
    documents = [
        doc("invoice", "100", "2026-11-30"),
        doc("invoice", "50", "2026-12-30"),
        doc("payment", "60"),
        doc("credit_note", "10"),
    ]
    found = money.account(Decimal("150"), documents, TODAY, is_open=True)
    assert (found.invoiced, found.paid, found.refunded, found.outstanding) == (150, 60, 10, 80)
    assert found.overdue == 30  # 100 due before today, 70 of it settled (oldest first)
    assert found.uses_credit == 80
    assert money.account(Decimal("150"), documents, TODAY, is_open=False).uses_credit == 0
    assert money.account(Decimal("150"), [], TODAY, is_open=True).uses_credit == 150  # ordered, not invoiced


def test_net_days():
    assert [money.net_days(t) for t in ("NET30", "net45", "PREPAID", "NET", "")] == [30, 45, 0, 0, 0]


amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@given(ordered=amounts, invoiced=amounts, settled=amounts, is_open=st.booleans())
def test_credit_used_is_never_negative_nor_more_than_the_order_costs(ordered, invoiced, settled, is_open):
    used = money.uses_credit(ordered, invoiced, settled, is_open)
    assert 0 <= used <= max(ordered, invoiced)
    assert used == 0 or is_open
    # In millionths, as the tables keep it, the same.
    micros = money.uses_credit_micros(*(int(v * 1_000_000) for v in (ordered, invoiced, settled)), is_open)
    assert micros == int(used * 1_000_000)


@given(
    invoices=st.lists(st.tuples(amounts, st.integers(min_value=-60, max_value=60)), max_size=6),
    settled=amounts,
    more=amounts,
)
def test_overdue_is_within_what_is_outstanding_and_paying_never_raises_it(invoices, settled, more):
    dated = [(amount, TODAY + dt.timedelta(days=days)) for amount, days in invoices]
    owed = sum((a for a, _ in dated), Decimal(0))
    late = money.overdue(dated, settled, TODAY)
    assert 0 <= late <= max(Decimal(0), owed - settled) or late == 0
    assert money.overdue(dated, settled + more, TODAY) <= late
    assert money.overdue(dated, settled, TODAY - dt.timedelta(days=61)) == 0  # nothing due yet


CUSTOMER = Customer(
    customer_id="C1",
    name="A",
    tier="standard",
    status="active",
    credit_limit=Decimal(1000),
    currency="USD",
    payment_terms=("NET30",),
    email="a@b.c",
    phone="1",
    ship_to_line1="x",
    ship_to_city="y",
    ship_to_postal_code="z",
    ship_to_country="US",
)


def test_overdue_invoices_hold_only_when_configured():
    assert [r.code for r in domain.overdue_reasons(CUSTOMER, Decimal("5"))] == ["overdue_invoices"]
    assert domain.overdue_reasons(CUSTOMER, Decimal(0)) == []
    assert not IntakeConfig().hold_overdue_invoices
    assert IntakeConfig.from_env({"ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES": "true"}).hold_overdue_invoices


def test_exposure_until_payment_keeps_a_completed_order_open():
    assert domain.exposure_state("completed") == "closed"
    assert domain.exposure_state("completed", until_paid=True) == "open"
    assert domain.exposure_state("cancelled", until_paid=True) == "closed"
    assert not domain.exposure_changes("order.completed", "completed", "shipped", until_paid=True)
    assert IntakeConfig.from_env({"ORDERDESK_INTAKE_EXPOSURE_UNTIL": "payment"}).exposure_until_paid
    with pytest.raises(ValueError, match="EXPOSURE_UNTIL"):
        IntakeConfig.from_env({"ORDERDESK_INTAKE_EXPOSURE_UNTIL": "never"})
