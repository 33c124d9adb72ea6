"""Change requests and exceptions of Partner API v1: their routes and request bodies.

    PATCH /v1/orders/{id}                         change ship-to, quantities, add/remove lines (If-Match required)
    POST  /v1/orders/{id}/cancel  {"lines": ...}  cancel given units (gateway.orders' route calls cancel_lines)
    POST  /v1/orders/{id}/exceptions              record an exception (the desk, warehouse operators)
    POST  /v1/orders/{id}/exceptions/{eid}/resolve  the desk's resolution

The order answer carries `ETag: "<version>"`; `If-Match` with another version is 412, a PATCH
without it is 428. A change the order's status forbids is 409 with the refusing `rule`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import Field

from gateway import problems
from gateway.auth import Principal
from gateway.bodies import Address, ChangeQuantity, Note, ProblemDocument, RequestBody, Text
from gateway.order_models import CancelLineIn, OrderOut
from gateway.routing import ADMIN, COMMON, FULFILLMENT, ORDERS, OrderId, backends, problem_responses, scoped
from orderdesk.parsing import whole_number
from orderdesk.v1 import common_pb2, orders_pb2


# --- bodies ------------------------------------------------------------------------------
class AddressIn(Address):  # the same fields; its own name in the OpenAPI document
    pass


class LineQuantity(RequestBody):
    sku: Text
    quantity: ChangeQuantity = Field(description="the line's new quantity; 0 removes the line")


class NewLineIn(RequestBody):
    sku: Text
    quantity: ChangeQuantity
    unit_price: Annotated[str, Field(max_length=32, description='decimal string, e.g. "12.50"')]


class OrderPatch(RequestBody):
    """A change request. Send `If-Match` with the order's version (its ETag)."""

    ship_to: AddressIn | None = Field(None, description="the whole new ship-to address")
    lines: list[LineQuantity] = Field(
        [], max_length=500, description="new quantities of existing lines (by SKU)"
    )
    add_lines: list[NewLineIn] = Field([], max_length=500)
    remove_lines: list[Text] = Field([], max_length=500, description="SKUs of lines to remove")
    reason: Note = ""


class ExceptionIn(RequestBody):
    type: Literal[
        "production_delay",
        "stock_shortage_at_pick",
        "carrier_delay",
        "lost_parcel",
        "quality_rework",
        "delivery_failed",
        "carrier_exception",
        "returning_to_sender",
    ]
    cause: Note
    expected_date: str = Field("", max_length=10, description="the new expected delivery date, YYYY-MM-DD")
    sku: Text = ""
    warehouse: Text = Field("", description="stock_shortage_at_pick: where the units are missing")
    quantity: ChangeQuantity = Field(0, description="stock_shortage_at_pick: units missing")
    shipment_id: Text = Field("", description="carrier_delay, lost_parcel: the shipment concerned")


class ResolutionIn(RequestBody):
    action: Literal["reallocate", "change_carrier", "reship", "substitute", "split_delivery", "accept_delay"]
    note: Note = ""
    details: dict[Annotated[str, Field(max_length=40)], Text] = Field(
        {},
        max_length=20,
        description="change_carrier: carrier, tracking_number (shipment_id); substitute: substitute_sku, "
        "customer_consent (how the customer agreed); split_delivery: split_lines, the units to deliver "
        "later as SKU=quantity;SKU=quantity (only units not yet shipped; without it, what is not reserved)",
    )


# --- routes ------------------------------------------------------------------------------
router = APIRouter()
IF_MATCH = Header(alias="If-Match", max_length=40, description='the order\'s version as its ETag, e.g. "7"')
CHANGE_RESPONSES = {
    **problem_responses(*COMMON, 404, 409),
    412: {"model": ProblemDocument, "description": "If-Match names an older version"},
    428: {"model": ProblemDocument, "description": "send If-Match with the order's ETag"},
}


def etag(version: int) -> str:
    return f'"{version}"'


def order_answer(response: Response, order: orders_pb2.Order) -> OrderOut:
    """An order as answered to a partner, its version in the ETag header (sent back as If-Match to change it)."""
    response.headers["ETag"] = etag(order.version)
    return OrderOut.from_proto(order)


def parse_if_match(value: str | None, *, required: bool) -> int:
    """'"7"', 'W/"7"' or '7' -> 7; absent -> 0 (no check) unless required (428)."""
    if not value:
        if required:
            raise problems.Problem(
                428,
                "Precondition Required",
                "send If-Match with the order's ETag (GET /v1/orders/{order_id})",
                "precondition-required",
            )
        return 0
    text = value.strip().removeprefix("W/").strip('"')
    version = whole_number(text)
    if version is None or version <= 0:
        raise problems.validation([problems.FieldError("If-Match", 'the order\'s ETag, e.g. "7"')])
    return version


async def guarded_call(request: Request, response: Response, method, message) -> OrderOut:
    """A call guarded by the order's version (If-Match): a stale one is 412; the answer carries the new ETag."""
    services = backends(request)
    try:
        order = await services.call(method, message)
    except problems.Problem as problem:
        if problem.rule == "stale_version":
            problem.status, problem.title, problem.slug = 412, "Precondition Failed", "stale-version"
        raise
    return order_answer(response, order)


async def change_call(
    request: Request, response: Response, change: orders_pb2.ChangeOrderRequest
) -> OrderOut:
    return await guarded_call(request, response, backends(request).orders.ChangeOrder, change)


@router.patch(
    "/v1/orders/{order_id}",
    response_model=OrderOut,
    tags=["orders"],
    responses=CHANGE_RESPONSES,
    summary="Change an order: ship-to, line quantities, add or remove lines (If-Match: its ETag). "
    "What each status allows: README 'Change requests'",
)
async def change_order(
    order_id: OrderId,
    body: OrderPatch,
    request: Request,
    response: Response,
    if_match: Annotated[str | None, IF_MATCH] = None,
    who: Principal = scoped(ORDERS),
):
    version = parse_if_match(if_match, required=True)
    change = orders_pb2.ChangeOrderRequest(
        order_id=order_id,
        partner_id=who.order_scope,
        expected_version=version,
        actor=common_pb2.Actor(id=who.actor, reason=body.reason),
        lines=[orders_pb2.ChangeLine(sku=x.sku, quantity=x.quantity) for x in body.lines],
        add_lines=[
            orders_pb2.ChangeLine(sku=x.sku, quantity=x.quantity, unit_price=x.unit_price)
            for x in body.add_lines
        ],
        remove_lines=body.remove_lines,
    )
    if body.ship_to is not None:
        change.change_ship_to = True
        change.ship_to.CopyFrom(common_pb2.Address(**body.ship_to.model_dump()))
    return await change_call(request, response, change)


async def cancel_lines(
    order_id: str,
    lines: list[CancelLineIn],
    reason: str,
    request: Request,
    response: Response,
    if_match: str | None,
    who: Principal,
) -> OrderOut:
    """POST /v1/orders/{id}/cancel with lines: cancels those units (If-Match honoured when sent)."""
    return await change_call(
        request,
        response,
        orders_pb2.ChangeOrderRequest(
            order_id=order_id,
            partner_id=who.order_scope,
            expected_version=parse_if_match(if_match, required=False),
            actor=common_pb2.Actor(id=who.actor, reason=reason),
            cancel_lines=[orders_pb2.ChangeLine(sku=x.sku, quantity=x.quantity) for x in lines],
        ),
    )


@router.post(
    "/v1/orders/{order_id}/exceptions",
    status_code=201,
    response_model=OrderOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404),
    summary="Record an exception on an order (the desk, or a warehouse operator reporting a picking "
    "shortage); the order is at risk until it is resolved",
)
async def record_exception(
    order_id: OrderId,
    body: ExceptionIn,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="optional: a retry with it records nothing new",
        ),
    ] = "",
    who: Principal = scoped(FULFILLMENT),
):
    services = backends(request)
    order = await services.call(
        services.orders.RecordException,
        orders_pb2.RecordExceptionRequest(
            order_id=order_id,
            partner_id=who.fulfillment_scope,
            actor=common_pb2.Actor(id=who.actor),
            type=body.type,
            cause=body.cause,
            expected_date=body.expected_date,
            sku=body.sku,
            warehouse=body.warehouse,
            quantity=body.quantity,
            shipment_id=body.shipment_id,
            idempotency_key=idempotency_key,
            source="desk" if ADMIN in who.scopes else "warehouse",
        ),
    )
    return order_answer(response, order)


@router.post(
    "/v1/orders/{order_id}/exceptions/{exception_id}/resolve",
    response_model=OrderOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Resolve an exception (admin): reallocate, change_carrier, reship, substitute (with the "
    "customer's consent), split_delivery or accept_delay",
)
async def resolve_exception(
    order_id: OrderId,
    exception_id: Annotated[str, Path(max_length=40)],
    body: ResolutionIn,
    request: Request,
    response: Response,
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    order = await services.call(
        services.orders.ResolveException,
        orders_pb2.ResolveExceptionRequest(
            order_id=order_id,
            partner_id=who.order_scope,
            exception_id=exception_id,
            actor=common_pb2.Actor(id=who.actor),
            action=body.action,
            note=body.note,
            details=body.details,
        ),
    )
    return order_answer(response, order)
