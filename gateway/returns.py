"""Return routes of Partner API v1: ask for a return of delivered units (authorised at once within the return
policy, else held for the desk, whose approver authorises or refuses it), read it, cancel it before receipt,
receive the goods and inspect them (restock, refurbish or scrap, which refunds the return by the policy).

A line may be exchanged instead of refunded (issue 14): once the goods are received and inspected, the
returns service enters one replacement order (channel exchange) and the RMA shows it (exchange_order_id).

A claim (issue 14) is an RMA of kind claim on delivered goods that were missing, wrong or damaged in transit,
usually without the goods coming back: decided by the caller as it is made, each line replaced (one
replacement order, like an exchange's) or refunded in full; GET /v1/returns/{rma_id} reads it too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import HoldReason, Money, Note, Quantity, RequestBody, Text
from gateway.routing import (
    ADMIN,
    COMMON,
    FULFILLMENT,
    ORDERS,
    RETURNS,
    OrderId,
    backends,
    problem_responses,
    scoped,
)
from orderdesk.v1 import returns_pb2

RmaId = Annotated[str, Path(max_length=64)]


# --- bodies ------------------------------------------------------------------------------
ReasonCode = Literal[
    "damaged", "defective", "wrong_item", "not_as_described", "no_longer_needed", "late_delivery", "other"
]
Outcome = Literal["restock", "refurbish", "scrap_our_fault", "scrap_customer_fault", "scrap"]


class ReturnLineIn(RequestBody):
    sku: Text
    quantity: Quantity
    reason: Note = Field("", description="in the customer's words")
    reason_code: ReasonCode | None = Field(
        None,
        description='decides who pays (README "Return policy"); left out: the reason when it is a code, '
        "else other",
    )
    resolution: Literal["refund", "exchange"] | None = Field(
        None, description="refund or exchange this line; left out: the return's resolution"
    )
    exchange_sku: Text = Field(
        "",
        description="exchanged lines: the replacement (another size, another product); left out: the same SKU",
    )
    exchange_quantity: Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)] | None = Field(
        None,
        description="exchanged lines: the replacement's units, 1 to the returned quantity; left out: all",
    )


class ReturnRequest(RequestBody):
    lines: list[ReturnLineIn]
    resolution: Literal["refund", "exchange"] = Field(
        "refund",
        description="exchange: each line (unless it says refund) is replaced once the goods are received and "
        "inspected, by a new order; the price difference is charged or credited",
    )
    exchange_mode: Literal["on_receipt", "advance"] | None = Field(
        None,
        description="when the replacement ships: on_receipt (once the goods are inspected) or advance (at once; "
        "the goods must then arrive in time, else they are charged; only for the customer tiers the return "
        "policy names); left out: the customer's by policy",
    )


ClaimReason = Literal["missing_items", "wrong_item", "damaged_in_transit"]


class ClaimLineIn(RequestBody):
    sku: Text = Field(description="the SKU ordered (and not received as it should have been)")
    quantity: Quantity = Field(description="at most the delivered units not already on returns or claims")
    resolution: Literal["replace", "refund"] = Field(
        description="replace: the same SKU again on one replacement order (nothing to pay); refund: what was "
        "paid for these units"
    )
    sent_sku: Text = Field("", description="wrong_item: the SKU that was sent instead (required)")
    note: Note = Field("", description="this line's note")


class ClaimRequest(RequestBody):
    reason: ClaimReason = Field(
        description="missing_items | wrong_item (corrects both SKUs' stock) | damaged_in_transit (opens a "
        "carrier claim on the shipment)"
    )
    lines: list[ClaimLineIn]
    evidence: Note = Field("", description="evidence notes: photos' references, the customer's account")
    goods_back: bool = Field(
        False,
        description="the goods come back first (received and inspected like a return); false: resolved at once",
    )


class InspectionLineIn(RequestBody):
    sku: Text
    quantity: Quantity
    outcome: Outcome = Field(
        description="restock and refurbish refund the price less the reason's restocking fee; "
        "scrap_our_fault (or scrap) the full price; scrap_customer_fault half of it"
    )


class InspectionRequest(RequestBody):
    lines: list[InspectionLineIn]


class AuthoriseReturnRequest(RequestBody):
    note: Note = Field("", description="why the desk lets the held return through; kept on the RMA")


class RefuseReturnRequest(RequestBody):
    reason: Note = Field(min_length=1, description="why the desk refuses the held return; kept on the RMA")


class CancelReturnRequest(RequestBody):
    reason: Note = ""


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    reason: str
    unit_price: Money
    warehouse: str
    restocked_quantity: int
    scrapped_quantity: int = Field(description="every scrapped unit, whoever's fault")
    reason_code: str
    restocking_fee: Money = Field(description="kept back if every unit is restocked")
    refurbished_quantity: int
    scrapped_customer_fault_quantity: int
    refund_amount: Money = Field(description="this line's refund once inspected (nothing when exchanged)")
    resolution: str = Field(description="refund | exchange")
    exchange_sku: str = Field(description="exchanged lines: the replacement SKU")
    exchange_quantity: int = Field(description="exchanged lines: the replacement's units")
    exchange_unit_price: Money | None = Field(
        description="exchanged lines: the replacement's price by the return policy (like for like: the price "
        "paid; another SKU: the customer's price)"
    )
    sent_sku: str | None = Field(None, description="a wrong-item claim's line: the SKU that was sent instead")


class ReturnOut(BaseModel):
    rma_id: str
    order_id: str
    status: str = Field(description="held | authorized | refused | cancelled | received | refunded")
    resolution: str
    lines: list[ReturnLineOut]
    refund_amount: Money
    version: int
    hold_reasons: list[HoldReason] = Field(
        description="why the desk decides: outside_window | above_value_threshold | not_returnable "
        "(kept after the decision)"
    )
    restocking_fee: Money = Field(description="what the policy keeps back if every unit is restocked")
    expected_refund: Money = Field(description="the refund if every unit is restocked")
    decision_note: str = Field(description="the approver's note, or why it was refused or cancelled")
    currency: str
    exchange_order_id: str | None = Field(
        description="the replacement order (GET /v1/orders/{order_id}), once the goods are inspected"
    )
    exchange_status: str | None = Field(
        description="exchanges: awaiting_receipt | due (inspected, the order is being entered) | created | "
        "cancelled"
    )
    to_charge: Money | None = Field(description="exchanges: the replacement is worth this much more")
    to_credit: Money | None = Field(description="exchanges: the replacement is worth this much less")
    exchange_mode: str | None = Field(description="exchanges: on_receipt | advance")
    return_due_on: str | None = Field(
        description="advance exchange: the returned goods must arrive by this day (YYYY-MM-DD), else charged"
    )
    return_due_at: str | None = Field(
        None,
        description="advance exchange: the deadline as a moment (RFC 3339, UTC): goods not received by then "
        "are charged",
    )
    unreturned_charge: Money | None = Field(
        description="advance exchange: charged because the goods did not arrive in time"
    )
    kind: str = Field("return", description="return | claim")
    claim_reason: str | None = Field(
        None, description="claims: missing_items | wrong_item | damaged_in_transit"
    )
    goods_back: bool | None = Field(None, description="claims: the goods come back before it resolves")
    evidence: str | None = Field(None, description="claims: the evidence notes")
    decided_by: str | None = Field(
        None, description="claims: who decided it (a desk person or an API key's name)"
    )

    @classmethod
    def from_proto(cls, r: returns_pb2.Return) -> ReturnOut:
        return cls(
            rma_id=r.rma_id,
            order_id=r.order_id,
            status=r.status,
            resolution=r.resolution,
            lines=[
                ReturnLineOut(
                    sku=x.sku,
                    quantity=x.quantity,
                    reason=x.reason,
                    unit_price=x.unit_price,
                    warehouse=x.warehouse,
                    restocked_quantity=x.restocked_quantity,
                    scrapped_quantity=x.scrapped_quantity,
                    reason_code=x.reason_code,
                    restocking_fee=x.restocking_fee,
                    refurbished_quantity=x.refurbished_quantity,
                    scrapped_customer_fault_quantity=x.scrapped_customer_fault_quantity,
                    refund_amount=x.refund_amount,
                    resolution=x.resolution,
                    exchange_sku=x.exchange_sku,
                    exchange_quantity=x.exchange_quantity,
                    exchange_unit_price=x.exchange_unit_price or None,
                    sent_sku=x.sent_sku or None,
                )
                for x in r.lines
            ],
            refund_amount=r.refund_amount,
            version=r.version,
            hold_reasons=[HoldReason.from_proto(x) for x in r.hold_reasons],
            restocking_fee=r.restocking_fee,
            expected_refund=r.expected_refund,
            decision_note=r.decision_note,
            currency=r.currency,
            exchange_order_id=r.exchange_order_id or None,
            exchange_status=r.exchange_status or None,
            to_charge=r.to_charge or None,
            to_credit=r.to_credit or None,
            exchange_mode=r.exchange_mode or None,
            return_due_on=r.return_due_on or None,
            return_due_at=r.return_due_at or None,
            unreturned_charge=r.unreturned_charge or None,
            kind=r.kind or "return",
            claim_reason=r.claim_reason or None,
            goods_back=r.goods_back if r.kind == "claim" else None,
            evidence=r.evidence or None,
            decided_by=r.decided_by or None,
        )


class ReturnList(BaseModel):
    items: list[ReturnOut]


ReturnStatus = Literal["held", "authorized", "refused", "cancelled", "received", "refunded"]

# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.get(
    "/v1/returns",
    response_model=ReturnList,
    tags=["returns"],
    responses=problem_responses(*COMMON),
    summary="Returns in one status, oldest first: the desk's held returns (admin: every partner's; "
    "others: their own)",
)
async def list_returns(
    request: Request,
    status: Annotated[ReturnStatus, Query(description="e.g. held")],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT),
):
    services = backends(request)
    found = await services.call(
        services.returns.ListReturns,
        returns_pb2.ListReturnsRequest(status=status, limit=limit, partner_id=who.fulfillment_scope),
    )
    return ReturnList(items=[ReturnOut.from_proto(r) for r in found.items])


@router.post(
    "/v1/orders/{order_id}/returns",
    status_code=201,
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Ask for a return of delivered units: authorized within the return policy, else held for the desk "
    "(422 when more than was delivered, or a line's exchange names an unknown or unsold SKU or too many units)",
)
async def create_return(
    order_id: OrderId,
    body: ReturnRequest,
    request: Request,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", description="optional: a retry creates nothing")
    ] = "",
    who: Principal = scoped(RETURNS),
):
    services = backends(request)
    ret = await services.call(
        services.returns.CreateReturn,
        returns_pb2.CreateReturnRequest(
            order_id=order_id,
            partner_id=who.fulfillment_scope,
            resolution=body.resolution,
            exchange_mode=body.exchange_mode or "",
            idempotency_key=idempotency_key,
            actor=who.actor,
            lines=[
                returns_pb2.ReturnLine(
                    sku=x.sku,
                    quantity=x.quantity,
                    reason=x.reason,
                    reason_code=x.reason_code or "",
                    resolution=x.resolution or "",
                    exchange_sku=x.exchange_sku,
                    exchange_quantity=x.exchange_quantity or 0,
                )
                for x in body.lines
            ],
        ),
    )
    return ReturnOut.from_proto(ret)


@router.post(
    "/v1/orders/{order_id}/claims",
    status_code=201,
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Claim for delivered goods missing, wrong or damaged in transit, decided by the caller: each line "
    "replaced (one replacement order) or refunded (422 naming the field when the order is not delivered, more "
    "is claimed than was delivered, or the reason is unknown)",
)
async def create_claim(
    order_id: OrderId,
    body: ClaimRequest,
    request: Request,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", description="optional: a retry creates nothing")
    ] = "",
    who: Principal = scoped(RETURNS, ADMIN),
):
    services = backends(request)
    ret = await services.call(
        services.returns.CreateClaim,
        returns_pb2.CreateClaimRequest(
            order_id=order_id,
            partner_id=who.fulfillment_scope,
            reason=body.reason,
            evidence=body.evidence,
            goods_back=body.goods_back,
            idempotency_key=idempotency_key,
            actor=who.actor,
            lines=[
                returns_pb2.ReturnLine(
                    sku=x.sku,
                    quantity=x.quantity,
                    reason=x.note,
                    resolution=x.resolution,
                    sent_sku=x.sent_sku,
                )
                for x in body.lines
            ],
        ),
    )
    return ReturnOut.from_proto(ret)


@router.get(
    "/v1/orders/{order_id}/claims",
    response_model=ReturnList,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404),
    summary="The order's claims, oldest first",
)
async def list_claims(
    order_id: OrderId, request: Request, who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT)
):
    services = backends(request)
    found = await services.call(
        services.returns.ListReturns,
        returns_pb2.ListReturnsRequest(order_id=order_id, partner_id=who.fulfillment_scope),
    )
    return ReturnList(items=[ReturnOut.from_proto(r) for r in found.items if r.kind == "claim"])


@router.get(
    "/v1/returns/{rma_id}",
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404),
)
async def get_return(rma_id: RmaId, request: Request, who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT)):
    services = backends(request)
    ret = await services.call(
        services.returns.GetReturn,
        returns_pb2.GetReturnRequest(rma_id=rma_id, partner_id=who.fulfillment_scope),
    )
    return ReturnOut.from_proto(ret)


@router.post(
    "/v1/returns/{rma_id}/receive",
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="The returned goods arrived (fulfillment)",
)
async def receive_return(rma_id: RmaId, request: Request, who: Principal = scoped(FULFILLMENT)):
    services = backends(request)
    ret = await services.call(
        services.returns.ReceiveReturn,
        returns_pb2.ReturnActionRequest(rma_id=rma_id, partner_id=who.fulfillment_scope, actor=who.actor),
    )
    return ReturnOut.from_proto(ret)


@router.post(
    "/v1/returns/{rma_id}/inspect",
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Inspect each line: restock (back to stock), refurbish or scrap (whose fault); refunds the return "
    "by the policy (fulfillment)",
)
async def inspect_return(
    rma_id: RmaId, body: InspectionRequest, request: Request, who: Principal = scoped(FULFILLMENT)
):
    services = backends(request)
    ret = await services.call(
        services.returns.InspectReturn,
        returns_pb2.InspectReturnRequest(
            rma_id=rma_id,
            partner_id=who.fulfillment_scope,
            actor=who.actor,
            lines=[
                returns_pb2.InspectionLine(sku=x.sku, quantity=x.quantity, outcome=x.outcome)
                for x in body.lines
            ],
        ),
    )
    return ReturnOut.from_proto(ret)


async def _decide(request: Request, rpc_name: str, rma_id: str, who: Principal, reason: str, scope: str):
    services = backends(request)
    ret = await services.call(
        getattr(services.returns, rpc_name),
        returns_pb2.ReturnDecisionRequest(rma_id=rma_id, partner_id=scope, actor=who.actor, reason=reason),
    )
    return ReturnOut.from_proto(ret)


@router.post(
    "/v1/returns/{rma_id}/authorise",
    response_model=ReturnOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Authorise a held return (admin: the desk's approver); 409 when it is not held",
)
async def authorise_return(
    rma_id: RmaId,
    request: Request,
    body: AuthoriseReturnRequest | None = None,
    who: Principal = scoped(ADMIN),
):
    return await _decide(request, "AuthoriseReturn", rma_id, who, body.note if body else "", "")


@router.post(
    "/v1/returns/{rma_id}/refuse",
    response_model=ReturnOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Refuse a held return with a reason (admin: the desk's approver); 409 when it is not held",
)
async def refuse_return(
    rma_id: RmaId, body: RefuseReturnRequest, request: Request, who: Principal = scoped(ADMIN)
):
    return await _decide(request, "RefuseReturn", rma_id, who, body.reason, "")


@router.post(
    "/v1/returns/{rma_id}/cancel",
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Cancel a return before the goods are received (409 once received)",
)
async def cancel_return(
    rma_id: RmaId,
    request: Request,
    body: CancelReturnRequest | None = None,
    who: Principal = scoped(RETURNS, ADMIN),
):
    return await _decide(
        request, "CancelReturn", rma_id, who, body.reason if body else "", who.fulfillment_scope
    )
