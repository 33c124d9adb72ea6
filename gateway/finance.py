"""The money of an order in Partner API v1 (issue 14): finance records invoices, payments and credit notes
(refunds) on an order, each idempotent by its document number; an order's account shows what is invoiced,
paid, refunded and outstanding; finance's export lists the credit notes of a period as CSV.

A partner's key reaches its own orders only (404 for another's); the admin's reaches every order. Intake
keeps the ledger (services/intake/finance.py): it owns the customer's credit that the money decides."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import Money, Note, RequestBody
from gateway.routing import ADMIN, COMMON, ORDERS, OrderId, backends, problem_responses, scoped
from orderdesk.v1 import common_pb2, intake_pb2

router = APIRouter()

Number = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="finance's own document number: letters, digits and . _ / # -; the same number sent "
        "again with the same content records nothing (200, Idempotent-Replayed: true), with other content "
        "it is refused (409, rule document_number_reused)",
        examples=["INV-2026-0042"],
    ),
]
Amount = Annotated[
    str, Field(max_length=40, description='decimal string above 0, e.g. "120.50"', examples=["120.50"])
]
Currency = Annotated[str, Field(max_length=3, description="ISO 4217, the order's currency", examples=["USD"])]
Day = Annotated[str, Field(max_length=10, description="YYYY-MM-DD; default today", examples=["2026-12-04"])]


class InvoiceIn(RequestBody):
    number: Number
    amount: Amount
    currency: Currency
    issued_on: Day = ""
    due_on: Day = Field("", description="YYYY-MM-DD; default issued_on plus the order's NETnn days")
    note: Note = ""


class PaymentIn(RequestBody):
    number: Number
    amount: Amount
    currency: Currency
    received_on: Day = ""
    note: Note = ""


class CreditNoteIn(RequestBody):
    number: Number
    amount: Amount
    currency: Currency
    issued_on: Day = ""
    note: Note = Field("", description="why the money is credited (a refund, a price correction)")


class FinanceDocumentOut(BaseModel):
    kind: str = Field(description="invoice | payment | credit_note")
    number: str
    amount: Money
    currency: str
    issued_on: str = Field(description="YYYY-MM-DD (a payment: the day received)")
    due_on: str | None = Field(None, description="invoices: YYYY-MM-DD")
    note: str

    @classmethod
    def from_proto(cls, d: intake_pb2.FinanceDocument) -> FinanceDocumentOut:
        return cls(
            kind=d.kind,
            number=d.number,
            amount=d.amount,
            currency=d.currency,
            issued_on=d.issued_on,
            due_on=d.due_on or None,
            note=d.note,
        )


class OrderAccountOut(BaseModel):
    order_id: str
    customer_id: str
    currency: str
    ordered: Money
    invoiced: Money
    paid: Money
    refunded: Money = Field(description="credit notes")
    outstanding: Money = Field(description="invoiced - refunded - paid (negative: owed to the customer)")
    overdue: Money = Field(description="of what is outstanding, past the invoices' due dates")
    uses_credit: Money = Field(
        description="what of the open order is not yet paid: counts against the credit limit"
    )
    documents: list[FinanceDocumentOut]

    @classmethod
    def from_proto(cls, a: intake_pb2.OrderAccount) -> OrderAccountOut:
        return cls(
            order_id=a.order_id,
            customer_id=a.customer_id,
            currency=a.currency,
            ordered=a.ordered,
            invoiced=a.invoiced,
            paid=a.paid,
            refunded=a.refunded,
            outstanding=a.outstanding,
            overdue=a.overdue,
            uses_credit=a.uses_credit,
            documents=[FinanceDocumentOut.from_proto(d) for d in a.documents],
        )


async def _record(
    request: Request,
    response: Response,
    who: Principal,
    order_id: str,
    document: intake_pb2.FinanceDocument,
    aliases: dict[str, str] | None = None,
) -> OrderAccountOut:
    services = backends(request)
    answer = await services.call(
        services.intake.RecordFinanceDocument,
        intake_pb2.RecordFinanceDocumentRequest(
            order_id=order_id,
            partner_id=who.order_scope,
            document=document,
            actor=common_pb2.Actor(id=who.actor),
        ),
        field_aliases=aliases,
    )
    if answer.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return OrderAccountOut.from_proto(answer)


REPLAYED: dict = {
    200: {
        "model": OrderAccountOut,
        "description": "this document was recorded before (Idempotent-Replayed: true); nothing changed",
    }
}
RECORDED = (
    "; 201 with the order's account, or 200 with Idempotent-Replayed: true when this document was recorded "
    "before (your order, or admin)"
)


@router.post(
    "/v1/orders/{order_id}/invoices",
    status_code=201,
    response_model=OrderAccountOut,
    tags=["finance"],
    responses=REPLAYED | problem_responses(*COMMON, 404, 409),
    summary="Record an invoice of the order (idempotent by its number)" + RECORDED,
)
async def record_invoice(
    order_id: OrderId, body: InvoiceIn, request: Request, response: Response, who: Principal = scoped(ORDERS)
):
    return await _record(
        request,
        response,
        who,
        order_id,
        intake_pb2.FinanceDocument(
            kind="invoice",
            number=body.number,
            amount=body.amount,
            currency=body.currency,
            issued_on=body.issued_on,
            due_on=body.due_on,
            note=body.note,
        ),
    )


@router.post(
    "/v1/orders/{order_id}/payments",
    status_code=201,
    response_model=OrderAccountOut,
    tags=["finance"],
    responses=REPLAYED | problem_responses(*COMMON, 404, 409),
    summary="Record a payment received for the order (idempotent by its number)" + RECORDED,
)
async def record_payment(
    order_id: OrderId, body: PaymentIn, request: Request, response: Response, who: Principal = scoped(ORDERS)
):
    return await _record(
        request,
        response,
        who,
        order_id,
        intake_pb2.FinanceDocument(
            kind="payment",
            number=body.number,
            amount=body.amount,
            currency=body.currency,
            issued_on=body.received_on,
            note=body.note,
        ),
        aliases={"issued_on": "received_on"},
    )


@router.post(
    "/v1/orders/{order_id}/credit-notes",
    status_code=201,
    response_model=OrderAccountOut,
    tags=["finance"],
    responses=REPLAYED | problem_responses(*COMMON, 404, 409),
    summary="Record a credit note (a refund) of the order (idempotent by its number)" + RECORDED,
)
async def record_credit_note(
    order_id: OrderId,
    body: CreditNoteIn,
    request: Request,
    response: Response,
    who: Principal = scoped(ORDERS),
):
    return await _record(
        request,
        response,
        who,
        order_id,
        intake_pb2.FinanceDocument(
            kind="credit_note",
            number=body.number,
            amount=body.amount,
            currency=body.currency,
            issued_on=body.issued_on,
            note=body.note,
        ),
    )


@router.get(
    "/v1/orders/{order_id}/account",
    response_model=OrderAccountOut,
    tags=["finance"],
    responses=problem_responses(*COMMON, 404),
    summary="What the order has invoiced, paid, refunded and outstanding, with its documents (your order, "
    "or admin)",
)
async def order_account(order_id: OrderId, request: Request, who: Principal = scoped(ORDERS)):
    services = backends(request)
    answer = await services.call(
        services.intake.GetOrderAccount,
        intake_pb2.GetOrderAccountRequest(order_id=order_id, partner_id=who.order_scope),
    )
    return OrderAccountOut.from_proto(answer)


CREDIT_NOTE_COLUMNS = (
    "issued_on",
    "number",
    "order_id",
    "customer_id",
    "partner_id",
    "amount",
    "currency",
    "note",
    "recorded_by",
)


@router.get(
    "/v1/reports/credit-notes",
    tags=["finance"],
    responses={
        200: {
            "description": "one row per credit note, by date and number; columns: "
            + ", ".join(CREDIT_NOTE_COLUMNS),
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(*COMMON),
    },
    summary="Finance's export: the credit notes issued in a period, as CSV (your orders', or every "
    "partner's for admin)",
    response_class=Response,
)
async def credit_notes_csv(
    request: Request,
    from_: Annotated[str, Query(alias="from", max_length=10, description="YYYY-MM-DD, included")],
    to: Annotated[str, Query(max_length=10, description="YYYY-MM-DD, included")],
    who: Principal = scoped(ORDERS, ADMIN),
):
    services = backends(request)
    answer = await services.call(
        services.intake.ListCreditNotes,
        intake_pb2.ListCreditNotesRequest(issued_from=from_, issued_to=to, partner_id=who.order_scope),
        field_aliases={"issued_from": "from", "issued_to": "to"},
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CREDIT_NOTE_COLUMNS)
    for line in answer.items:
        d = line.document
        writer.writerow(
            [d.issued_on, d.number, d.order_id, line.customer_id, line.partner_id, d.amount, d.currency]
            + [_safe(d.note), line.recorded_by]
        )
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="credit-notes-{from_}-{to}.csv"'},
    )


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
