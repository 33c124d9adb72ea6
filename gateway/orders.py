"""Order routes of Partner API v1: submit (one, a JSON batch, a CSV upload), list, read, cancel; the desk's
approve and reject of held orders. Change requests and exceptions: gateway.changes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from gateway import batches, csv_orders, fastpath, problems
from gateway.auth import Principal
from gateway.backends import Backends
from gateway.bodies import DeliveryProposal, HoldReason
from gateway.changes import cancel_lines, etag, guarded_call, parse_if_match
from gateway.order_models import (
    MAX_BATCH_ORDERS,
    ApproveRequest,
    BatchAnswer,
    BatchSubmission,
    CancelRequest,
    OrderAccepted,
    OrderOut,
    OrderPage,
    OrderSubmission,
    RejectRequest,
    RiskCodeName,
    StatusLink,
    StatusLinkRequest,
)
from gateway.routing import (
    ADMIN,
    COMMON,
    ORDER_ID_MAX_LENGTH,
    ORDERS,
    RETURNS,
    OrderId,
    backends,
    csv_text,
    problem_responses,
    scoped,
)
from orderdesk import statuslinks
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2

INTAKE_FIELDS = {"idempotency_key": "Idempotency-Key"}  # intake's field name -> what the partner sent
router = APIRouter(route_class=fastpath.FastPathRoute)


async def _submit_fast(request: Request) -> Response | None:
    """POST /v1/orders, well-formed (gateway.fastpath); None: the route's FastAPI handler answers."""
    who = fastpath.principal(request, (ORDERS,))
    key = request.headers.get("idempotency-key") if who is not None else None
    if not key:
        return None
    body = await fastpath.json_body(request, OrderSubmission)
    if body is None:
        return None
    return await _submit(request, body, key, who)


@router.post(
    "/v1/orders",
    status_code=201,
    response_model=OrderAccepted,
    tags=["orders"],
    responses=problem_responses(*COMMON, 413),
    summary="Submit an order (a replay of the same Idempotency-Key answers 201 with the same order)",
)
@fastpath.fast_path(_submit_fast)
async def submit_order(
    body: OrderSubmission,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            description="your unique id for this order; a retry with it creates nothing",
        ),
    ],
    request: Request,
    who: Principal = scoped(ORDERS),
):
    return await _submit(request, body, idempotency_key, who)


async def _submit(request: Request, body: OrderSubmission, idempotency_key: str, who: Principal) -> Response:
    answer = await backends(request).submit_order(
        body.to_proto(who.partner_id, idempotency_key, actor=who.actor), field_aliases=INTAKE_FIELDS
    )
    accepted = OrderAccepted(
        order_id=answer.order_id,
        status=answer.status,
        replayed=answer.replayed,
        priority=answer.priority,
        hold_reasons=[HoldReason.from_proto(r) for r in answer.hold_reasons],
        proposals=[DeliveryProposal.from_proto(p) for p in answer.proposals],
    )
    return fastpath.json_response(accepted, 201, [("idempotent-replayed", "true")] if answer.replayed else ())


@router.post(
    "/v1/orders/batch",
    response_model=BatchAnswer,
    tags=["orders"],
    responses=problem_responses(*COMMON, 413),
    summary=f"Submit up to {MAX_BATCH_ORDERS} orders, each with its idempotency_key "
    "(a bad order is refused on its own; 200 with a result per order)",
)
async def submit_batch(body: BatchSubmission, request: Request, who: Principal = scoped(ORDERS)):
    return await batches.submit(backends(request), batches.from_batch(who.partner_id, body.orders, who.actor))


@router.post(
    "/v1/orders/csv",
    response_model=BatchAnswer,
    tags=["orders"],
    responses=problem_responses(*COMMON, 413, 415),
    summary="Submit orders from CSV, one row per order line, grouped by external_ref "
    "(a bad row refuses its order only; the same file with the same Idempotency-Key creates nothing)",
    openapi_extra=csv_orders.OPENAPI_REQUEST_BODY,
)
async def submit_csv(
    request: Request,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=100,
            description='each order\'s key is "<this>:<external_ref>"',
        ),
    ],
    who: Principal = scoped(ORDERS),
):
    text = await csv_text(request)
    try:
        parsed = csv_orders.parse(text)
    except csv_orders.CsvTooLarge as exc:
        raise problems.too_large_document(csv_orders.field_errors(exc.errors)) from None
    except csv_orders.CsvDocumentError as exc:
        raise problems.validation(
            csv_orders.field_errors(exc.errors), "the CSV cannot be read; nothing was submitted"
        ) from None
    return await batches.submit(
        backends(request), batches.from_csv(who.partner_id, idempotency_key, parsed, who.actor)
    )


SearchTime = Annotated[
    str,
    Query(
        max_length=40,
        description="YYYY-MM-DD (whole UTC days; created_to includes its day) or RFC 3339 with offset "
        "(created_to excluded)",
    ),
]


@router.get(
    "/v1/orders",
    response_model=OrderPage,
    tags=["orders"],
    responses=problem_responses(*COMMON),
    summary="Your orders, newest first or by priority (admin: every partner's; "
    "?status=on_hold&order_by=priority is the desk's work queue); search by your reference (PO number), "
    "customer, SKU, channel and the time received, paged with next_cursor; ?at_risk=true&risk= is the "
    "promise watch's at-risk queue, most urgent first",
)
async def list_orders(
    request: Request,
    status: Annotated[str, Query(max_length=32, description="e.g. on_hold")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str, Query(max_length=64)] = "",
    hold_reason: Annotated[
        str, Query(max_length=64, description="only orders held for this reason code")
    ] = "",
    order_by: Annotated[
        Literal["newest", "priority"], Query(description="newest first, or highest priority first")
    ] = "newest",
    external_ref: Annotated[
        str, Query(max_length=128, description="your reference for the order (e.g. its PO number), exactly")
    ] = "",
    customer_id: Annotated[str, Query(max_length=128, description="the customer's id, exactly")] = "",
    sku: Annotated[str, Query(max_length=128, description="orders with a line of this SKU")] = "",
    channel: Annotated[str, Query(max_length=128, description="api, batch, csv, grpc, …")] = "",
    created_from: SearchTime = "",
    created_to: SearchTime = "",
    partner_id: Annotated[
        str, Query(max_length=64, description="admin: one partner's orders (a partner's key: its own only)")
    ] = "",
    at_risk: Annotated[
        bool,
        Query(
            description="true: only orders the promise watch sees at risk, most urgent first "
            "(soonest promised date, then the largest slip); order_by does not apply"
        ),
    ] = False,
    risk: Annotated[
        RiskCodeName | None, Query(description="with at_risk=true: only orders with this risk")
    ] = None,
    who: Principal = scoped(ORDERS, RETURNS),
):
    if risk and not at_risk:
        raise problems.validation(
            [problems.FieldError("risk", "only with at_risk=true")], "risk filters the at-risk listing"
        )
    scope = who.order_scope
    if scope and partner_id and partner_id != scope:
        return OrderPage(items=[], next_cursor=None)  # a partner's key searches its own orders only
    services = backends(request)
    page = await services.call(
        services.orders.ListOrders,
        orders_pb2.ListOrdersRequest(
            partner_id=scope or partner_id,
            status=status,
            limit=limit,
            cursor=cursor,
            hold_reason=hold_reason,
            order_by=order_by,
            external_ref=external_ref,
            customer_id=customer_id,
            sku=sku,
            channel=channel,
            created_from=created_from,
            created_to=created_to,
            at_risk=at_risk,
            risk=risk or "",
        ),
    )
    return OrderPage(items=[OrderOut.from_proto(o) for o in page.items], next_cursor=page.next_cursor or None)


async def _get_order_fast(request: Request) -> Response | None:
    """GET /v1/orders/{order_id}, well-formed (gateway.fastpath); None: the route's FastAPI handler answers."""
    who = fastpath.principal(request, (ORDERS, RETURNS))
    order_id = request.path_params.get("order_id")
    if who is None or not isinstance(order_id, str) or len(order_id) > ORDER_ID_MAX_LENGTH:
        return None
    return await _get_order(request, order_id, who)


@router.get(
    "/v1/orders/{order_id}",
    response_model=OrderOut,
    tags=["orders"],
    responses=problem_responses(*COMMON, 404),
)
@fastpath.fast_path(_get_order_fast)
async def get_order(order_id: OrderId, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    return await _get_order(request, order_id, who)


async def _get_order(request: Request, order_id: str, who: Principal) -> Response:
    services = backends(request)
    order = await services.call(
        services.orders.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id, partner_id=who.order_scope)
    )
    return fastpath.json_response(OrderOut.from_proto(order), headers=[("etag", etag(order.version))])


async def _decide(services: Backends, method, order_id: str, who: Principal, reason: str) -> OrderOut:
    order = await services.call(
        method,
        orders_pb2.OrderDecisionRequest(
            order_id=order_id,
            partner_id=who.order_scope,
            actor=common_pb2.Actor(id=who.actor, reason=reason),
        ),
    )
    return OrderOut.from_proto(order)


@router.post(
    "/v1/orders/{order_id}/cancel",
    response_model=OrderOut,
    tags=["orders"],
    responses=problem_responses(*COMMON, 404, 409, 412),
    summary="Cancel an order and release its stock (partially shipped: cancel what has not shipped, the "
    "order ends shipped; 409 once everything has shipped); with `lines`, cancel only those units",
)
async def cancel_order(
    order_id: OrderId,
    request: Request,
    response: Response,
    body: CancelRequest | None = None,
    if_match: Annotated[str | None, Header(alias="If-Match", max_length=40)] = None,
    who: Principal = scoped(ORDERS),
):
    if body is not None and body.lines:
        return await cancel_lines(order_id, body.lines, body.reason, request, response, if_match, who)
    # If-Match is honoured when sent: a cancel based on a stale read of the order is 412, nothing changes.
    return await guarded_call(
        request,
        response,
        backends(request).orders.CancelOrder,
        orders_pb2.OrderDecisionRequest(
            order_id=order_id,
            partner_id=who.order_scope,
            expected_version=parse_if_match(if_match, required=False),
            actor=common_pb2.Actor(id=who.actor, reason=body.reason if body else ""),
        ),
    )


@router.post(
    "/v1/orders/{order_id}/approve",
    response_model=OrderOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Release a held order (admin): stock and credit are checked again; optionally accept its "
    "earliest-date or split proposal",
)
async def approve_order(
    order_id: OrderId, request: Request, body: ApproveRequest | None = None, who: Principal = scoped(ADMIN)
):
    services = backends(request)
    body = body or ApproveRequest()
    # Intake re-checks stock and credit on the order as approved, then orders releases it.
    order = await services.call(
        services.intake.ApproveHeldOrder,
        intake_pb2.ApproveHeldOrderRequest(
            order_id=order_id,
            actor=common_pb2.Actor(id=who.actor, reason=body.note),
            accept_proposal=body.accept_proposal or "",
            acknowledge=body.acknowledge,
        ),
    )
    return OrderOut.from_proto(order)


@router.post(
    "/v1/orders/{order_id}/reject",
    response_model=OrderOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Reject a held order (admin)",
)
async def reject_order(
    order_id: OrderId, request: Request, body: RejectRequest | None = None, who: Principal = scoped(ADMIN)
):
    services = backends(request)
    return await _decide(services, services.orders.RejectOrder, order_id, who, body.reason if body else "")


@router.post(
    "/v1/orders/{order_id}/status-link",
    response_model=StatusLink,
    tags=["orders"],
    responses=problem_responses(*COMMON, 404),
    summary="A signed, expiring link to the order's status page for the end customer (your order, or admin): "
    "status, expected delivery date and parcels with tracking, nothing else",
)
async def create_status_link(
    order_id: OrderId,
    request: Request,
    body: StatusLinkRequest | None = None,
    who: Principal = scoped(ORDERS),
):
    services = backends(request)
    order = await services.call(  # another partner's order is 404, as everywhere
        services.orders.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id, partner_id=who.order_scope)
    )
    url, expires_at = statuslinks.link(
        order.order_id,
        body.expires_in_days if body else None,
        settings=request.app.state.status_links,
        now=dt.datetime.now(dt.UTC),
    )
    return StatusLink(url=url, expires_at=expires_at)
