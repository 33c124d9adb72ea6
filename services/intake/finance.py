"""Finance tells orderdesk what happened to an order's money (issue 14): intake records invoices, payments
and credit notes and answers what the order has invoiced, paid, refunded and outstanding.

Intake owns this ledger because it owns what the money decides: the customer's credit. A payment or a
credit note lowers what the order uses of the credit in the same transaction that records it
(ExposureRepository.settle), so the next order's credit check sees it; orders never reads it.

RecordFinanceDocument: read the order from orders (a partner's key: its own orders only, else NOT_FOUND),
check the document against it (domain.money.check_document: every bad field named, nothing stored), then
one transaction stores the document under (partner, kind, number) and settles the order's exposure. The
same document sent again answers replayed; its number with other content is refused.

record_decided_credit: the returns service's decided refunds (an RMA's return.refunded, a claim resolved
the same way) become credit notes here without finance posting them (consumers.py): one per RMA, numbered
CN-<RMA id>, stored and settled like finance's own in the consumer's transaction, so a redelivered event
finds its inbox row or the document and records nothing twice; finance posting that number later is the
same document (a replay, or refused if it says otherwise), never a second one.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import grpc

from orderdesk import errors, rpc
from orderdesk.v1 import intake_pb2, orders_pb2
from services.intake import domain
from services.intake.domain import money
from services.intake.store import ExposureRepository, FinanceRepository

log = logging.getLogger("orderdesk.intake.finance")


def _document_to_proto(d: money.Document) -> intake_pb2.FinanceDocument:
    return intake_pb2.FinanceDocument(
        kind=d.kind,
        number=d.number,
        order_id=d.order_id,
        amount=money.text(d.amount),
        currency=d.currency,
        issued_on=d.issued_on.isoformat(),
        due_on=d.due_on.isoformat() if d.due_on else "",
        note=d.note,
    )


def _ordered(order: orders_pb2.Order) -> Decimal:
    if order.total_amount:
        return Decimal(order.total_amount)
    return domain.order_amount(
        [domain.OrderLine(line.sku, line.quantity, Decimal(line.unit_price or "0")) for line in order.lines]
    )


async def record(service, request: intake_pb2.RecordFinanceDocumentRequest) -> intake_pb2.OrderAccount:
    errors.require(request.order_id, "order_id")
    order = await _order(service, request.order_id, request.partner_id)
    d = request.document
    today = service.clock().astimezone(dt.UTC).date()
    document = money.check_document(
        kind=d.kind,
        number=d.number,
        order_id=order.order_id,
        amount=d.amount,
        currency=d.currency,
        order_currency=order.currency,
        payment_terms=order.payment_terms,
        issued_on=d.issued_on,
        due_on=d.due_on,
        today=today,
        note=d.note,
    )
    async with service.db.transaction() as tx:
        held = await _book(tx, order, document, request.actor.id or "system")
        replayed = held is not document
        if replayed and not held.same_as(document):
            raise money.number_reused(held)
    account = await _account(service, order, today)
    account.replayed = replayed
    return account


async def _book(tx, order: orders_pb2.Order, document: money.Document, recorded_by: str) -> money.Document:
    """Stores the document unless its number is taken, and settles the order's exposure with it; returns
    the document that holds the number (this one when it was stored)."""
    held = await tx.repo(FinanceRepository).add(order.partner_id, order.customer_id, document, recorded_by)
    if held is document:
        await tx.repo(ExposureRepository).settle(
            order.order_id,
            order.customer_id,
            _ordered(order),
            invoiced=document.amount if document.kind == money.INVOICE else Decimal(0),
            settled=document.amount if document.kind != money.INVOICE else Decimal(0),
        )
    return held


async def record_decided_credit(service, tx, credit: money.DecidedCredit) -> money.Document | None:
    """The credit note of a refund the returns service decided, in the consumer's transaction `tx`; the
    document now holding its number, or None when one was there already (a repeat, or finance's own)."""
    finances = tx.repo(FinanceRepository)
    there = await finances.get(credit.partner_id, money.CREDIT_NOTE, credit.number)
    if there is not None:
        _differs(there, credit)
        return None
    order = await _order(service, credit.order_id, credit.partner_id)
    document = money.check_document(
        kind=money.CREDIT_NOTE,
        number=credit.number,
        order_id=order.order_id,
        amount=money.text(credit.amount),
        currency=credit.currency or order.currency,
        order_currency=order.currency,
        payment_terms=order.payment_terms,
        issued_on=credit.decided_on.isoformat(),
        due_on="",
        today=credit.decided_on,
        note=credit.note,
    )
    held = await _book(tx, order, document, money.RETURNS_RECORDER)
    if held is not document:
        _differs(held, credit)
        return None
    log.info(
        "credit note %s recorded for order %s: %s %s (%s)",
        document.number,
        document.order_id,
        money.text(document.amount),
        document.currency,
        document.note,
    )
    return document


def _differs(there: money.Document, credit: money.DecidedCredit) -> None:
    """Finance posted the RMA's number itself with another amount: it stands, and the difference is told."""
    if there.amount != credit.amount or there.order_id != credit.order_id:
        log.warning(
            "credit note %s exists already (order %s, %s %s); return %s decided %s on order %s: "
            "the recorded one stands",
            there.number,
            there.order_id,
            money.text(there.amount),
            there.currency,
            credit.rma_id,
            money.text(credit.amount),
            credit.order_id,
        )


async def get(service, request: intake_pb2.GetOrderAccountRequest) -> intake_pb2.OrderAccount:
    errors.require(request.order_id, "order_id")
    order = await _order(service, request.order_id, request.partner_id)
    return await _account(service, order, service.clock().astimezone(dt.UTC).date())


async def credit_notes(
    service, request: intake_pb2.ListCreditNotesRequest
) -> intake_pb2.ListCreditNotesResponse:
    bad = []
    dates = []
    for field in ("issued_from", "issued_to"):
        try:
            dates.append(dt.date.fromisoformat(getattr(request, field)))
        except ValueError:
            bad.append(errors.FieldViolation(field, "a date (YYYY-MM-DD)", "date_invalid"))
    if not bad and dates[1] < dates[0]:
        bad.append(errors.FieldViolation("issued_to", "before issued_from", "date_invalid"))
    if bad:
        raise errors.InvalidArgument("the period of the credit notes is not valid", violations=bad)
    async with service.db.reading() as work:
        rows = await work.repo(FinanceRepository).credit_notes(dates[0], dates[1], request.partner_id)
    return intake_pb2.ListCreditNotesResponse(
        items=[
            intake_pb2.CreditNoteLine(
                document=_document_to_proto(r.document),
                partner_id=r.partner_id,
                customer_id=r.customer_id,
                recorded_by=r.recorded_by,
            )
            for r in rows
        ]
    )


async def _account(service, order: orders_pb2.Order, today: dt.date) -> intake_pb2.OrderAccount:
    async with service.db.reading() as work:
        documents = await work.repo(FinanceRepository).for_order(order.order_id)
    is_open = domain.exposure_state(order.status, service.config.exposure_until_paid) == "open" and (
        order.payment_terms.upper() != domain.PREPAID
    )
    found = money.account(_ordered(order), documents, today, is_open=is_open)
    return intake_pb2.OrderAccount(
        order_id=order.order_id,
        customer_id=order.customer_id,
        currency=order.currency,
        ordered=money.text(found.ordered),
        invoiced=money.text(found.invoiced),
        paid=money.text(found.paid),
        refunded=money.text(found.refunded),
        outstanding=money.text(found.outstanding),
        overdue=money.text(found.overdue),
        uses_credit=money.text(found.uses_credit),
        documents=[_document_to_proto(d) for d in documents],
    )


async def _order(service, order_id: str, partner_id: str) -> orders_pb2.Order:
    try:
        return await service.orders.GetOrder(
            orders_pb2.GetOrderRequest(order_id=order_id, partner_id=partner_id),
            timeout=service.rpc_timeout,
            metadata=rpc.metadata(),
        )
    except grpc.RpcError as exc:
        raise rpc.passed_on(exc) from exc
