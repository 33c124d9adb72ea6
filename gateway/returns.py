"""Return routes of Partner API v1: authorise a return of delivered units, read it, receive the goods and
inspect them (restock or scrap, which refunds the return).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import Money, Note, Quantity, RequestBody, Text
from gateway.routing import COMMON, FULFILLMENT, ORDERS, RETURNS, OrderId, backends, problem_responses, scoped
from orderdesk.v1 import returns_pb2

RmaId = Annotated[str, Path(max_length=64)]


# --- bodies ------------------------------------------------------------------------------
class ReturnLineIn(RequestBody):
    sku: Text
    quantity: Quantity
    reason: Note = ""


class ReturnRequest(RequestBody):
    lines: list[ReturnLineIn]
    resolution: Literal["refund"] = "refund"


class InspectionLineIn(RequestBody):
    sku: Text
    quantity: Quantity
    outcome: Literal["restock", "scrap"]


class InspectionRequest(RequestBody):
    lines: list[InspectionLineIn]


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    reason: str
    unit_price: Money
    warehouse: str
    restocked_quantity: int
    scrapped_quantity: int


class ReturnOut(BaseModel):
    rma_id: str
    order_id: str
    status: str = Field(description="authorized | received | refunded")
    resolution: str
    lines: list[ReturnLineOut]
    refund_amount: Money
    version: int

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
                )
                for x in r.lines
            ],
            refund_amount=r.refund_amount,
            version=r.version,
        )


# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.post(
    "/v1/orders/{order_id}/returns",
    status_code=201,
    response_model=ReturnOut,
    tags=["returns"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Authorise a return of delivered units (422 when more than was delivered)",
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
            idempotency_key=idempotency_key,
            actor=who.actor,
            lines=[
                returns_pb2.ReturnLine(sku=x.sku, quantity=x.quantity, reason=x.reason) for x in body.lines
            ],
        ),
    )
    return ReturnOut.from_proto(ret)


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
    summary="Inspect each line: restock (back to stock) or scrap; refunds the return (fulfillment)",
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
