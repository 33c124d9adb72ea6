"""Finance's documents on a real database (SQLite and PostgreSQL): recorded once by number, refused with
the field named, and what is paid taken off the customer's exposure in the same transaction."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import grpc
import pytest

from orderdesk import errors
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake import finance
from services.intake.domain import IntakeConfig
from tests.integration.intake.test_checks_service import deliver, exposure, order_event
from tests.integration.intake.test_intake_service import intake
from tests.unit.intake.fakes import FakeOrders


class NotFound(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.NOT_FOUND

    def details(self):
        return "no such order"

    def trailing_metadata(self):
        return ()


class Ledger(FakeOrders):
    """Orders' GetOrder for two orders of partner P1."""

    def __init__(self, status: str = "completed"):
        super().__init__()
        self.known = {
            oid: orders_pb2.Order(
                order_id=oid,
                partner_id="P1",
                customer_id="C0001",
                status=status,
                currency="USD",
                total_amount="1000.00",
                payment_terms="NET30",
            )
            for oid in ("ORD-A", "ORD-B")
        }

    async def GetOrder(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the stub's signature)
        found = self.known.get(request.order_id)
        if found is None or (request.partner_id and request.partner_id != found.partner_id):
            raise NotFound()
        return found


def document(
    kind: str, number: str, amount: str, currency: str = "USD", **extra
) -> intake_pb2.FinanceDocument:
    return intake_pb2.FinanceDocument(kind=kind, number=number, amount=amount, currency=currency, **extra)


async def record(service, order_id: str, doc, partner: str = "P1") -> intake_pb2.OrderAccount:
    return await finance.record(
        service,
        intake_pb2.RecordFinanceDocumentRequest(
            order_id=order_id, partner_id=partner, document=doc, actor=common_pb2.Actor(id="key:finance@P1")
        ),
    )


async def test_payments_and_credit_notes_close_the_exposure_until_paid(make_database):
    service = await intake(make_database, Ledger(), config=IntakeConfig(exposure_until="payment"))
    await deliver(
        service,
        order_event("ORD-A", "confirmed", 2, "1000.00"),
        order_event("ORD-A", "completed", 7, "1000.00"),
    )
    assert await exposure(service) == Decimal("1000.00")  # completed, not paid: still uses the credit
    account = await record(service, "ORD-A", document("invoice", "INV-1", "1000.00", issued_on="2026-11-01"))
    assert (account.invoiced, account.outstanding, account.documents[0].due_on) == (
        "1000.00",
        "1000.00",
        "2026-12-01",
    )
    account = await record(service, "ORD-A", document("payment", "PAY-1", "600.00"))
    assert (account.paid, account.outstanding, account.uses_credit) == ("600.00", "400.00", "400.00")
    assert await exposure(service) == Decimal("400.00")
    account = await record(service, "ORD-A", document("credit_note", "CN-1", "400.00"))
    assert (account.refunded, account.outstanding, account.uses_credit) == ("400.00", "0.00", "0.00")
    assert await exposure(service) == 0


async def test_the_same_document_twice_is_recorded_once_and_a_reused_number_is_refused(make_database):
    service = await intake(make_database, Ledger("allocated"))
    await deliver(service, order_event("ORD-A", "confirmed", 2, "1000.00"))
    answers = await asyncio.gather(
        *[record(service, "ORD-A", document("payment", "PAY-7", "250.00")) for _ in range(4)]
    )
    assert sorted(a.replayed for a in answers) == [False, True, True, True]
    assert answers[0].paid == "250.00" and await exposure(service) == Decimal("750.00")
    with pytest.raises(errors.FailedPrecondition) as reused:
        await record(service, "ORD-A", document("payment", "PAY-7", "250.01"))
    assert reused.value.rule == "document_number_reused"
    with pytest.raises(errors.FailedPrecondition):
        await record(service, "ORD-B", document("payment", "PAY-7", "250.00"))  # another order's number
    assert await exposure(service) == Decimal("750.00")


async def test_bad_documents_change_nothing(make_database):
    service = await intake(make_database, Ledger("allocated"))
    await deliver(service, order_event("ORD-A", "confirmed", 2, "1000.00"))
    for doc, field, reason in [
        (document("payment", "PAY-1", "-5.00"), "amount", "amount_not_positive"),
        (document("payment", "PAY-1", "5.00", currency="EUR"), "currency", "currency_mismatch"),
        (document("payment", "PAY-1", "5.00", currency="ABC"), "currency", "currency_unknown"),
    ]:
        with pytest.raises(errors.InvalidArgument) as bad:
            await record(service, "ORD-A", doc)
        assert [(v.field, v.reason) for v in bad.value.violations] == [(field, reason)]
    with pytest.raises(errors.NotFound):
        await record(service, "ORD-A", document("payment", "PAY-1", "5.00"), partner="P2")  # not its order
    assert await exposure(service) == Decimal("1000.00")
    account = await finance.get(service, intake_pb2.GetOrderAccountRequest(order_id="ORD-A"))
    assert list(account.documents) == [] and account.paid == "0.00"


async def test_paid_before_confirmed_counts_once_confirmed(make_database):
    service = await intake(make_database, Ledger("on_hold"))
    await record(service, "ORD-B", document("payment", "PAY-2", "300.00"))  # prepayment of a held order
    assert await exposure(service) == 0
    await deliver(service, order_event("ORD-B", "confirmed", 3, "1000.00"))
    assert await exposure(service) == Decimal("700.00")
    notes = await finance.credit_notes(
        service, intake_pb2.ListCreditNotesRequest(issued_from="2000-01-01", issued_to="2100-01-01")
    )
    assert list(notes.items) == []
