"""The routes of Partner API v1. Each handler: authorise, build the request, one gRPC call, shape the answer."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from gateway import batches, csv_orders, models, problems
from gateway.auth import Principal
from gateway.backends import Backends
from orderdesk import masterdata
from orderdesk.v1 import common_pb2, intake_pb2, inventory_pb2, orders_pb2, returns_pb2, shipping_pb2

ORDERS, RETURNS, FULFILLMENT, ADMIN = "orders", "returns", "fulfillment", "admin"
CSV_MEDIA_TYPES = ("text/csv", "text/plain", "application/csv")
INTAKE_FIELDS = {"idempotency_key": "Idempotency-Key"}  # intake's field name -> what the partner sent

def _problem_responses(*codes: int) -> dict:
    described = {401: "missing or unknown API key", 403: "the key lacks the scope", 404: "not found (or not yours)",
                 409: "the state forbids it (see `rule`)", 413: "body too large", 415: "send text/csv",
                 422: "invalid input; `errors` names each field", 503: "a service did not answer; retry"}
    return {c: {"model": models.ProblemDocument, "description": described[c],
                "content": {problems.PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}}}
            for c in codes}


COMMON = (401, 403, 422, 503)


def scoped(*needed: str):
    """Dependency: the caller's Principal, refused with 401 (no/unknown key) or 403 (no scope).

    Deliberately one flat dependency: in FastAPI every nested dependency costs a
    resolution pass per request, measurable on the hot path (the bearer scheme is
    documented in the OpenAPI document by gateway.app instead).
    """

    async def principal(request: Request) -> Principal:
        who = await request.app.state.authenticator.authenticate(request.headers.get("authorization"))
        who.require(needed)
        return who

    return Depends(principal)


def backends(request: Request) -> Backends:
    return request.app.state.backends


OrderId = Annotated[str, Path(max_length=64)]
router = APIRouter()


# --- orders ------------------------------------------------------------------------------
@router.post("/v1/orders", status_code=201, response_model=models.OrderAccepted, tags=["orders"],
             responses=_problem_responses(*COMMON, 413),
             summary="Submit an order (a replay of the same Idempotency-Key answers 201 with the same order)")
async def submit_order(
    body: models.OrderSubmission,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1,
                                           description="your unique id for this order; a retry with it creates nothing")],
    response: Response,
    request: Request,
    who: Principal = scoped(ORDERS),
):
    services = backends(request)
    answer = await services.call(services.intake.SubmitOrder, body.to_proto(who.partner_id, idempotency_key),
                                 field_aliases=INTAKE_FIELDS)
    if answer.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return models.OrderAccepted(
        order_id=answer.order_id, status=answer.status, replayed=answer.replayed, priority=answer.priority,
        hold_reasons=[models.HoldReason.from_proto(r) for r in answer.hold_reasons],
        proposals=[models.DeliveryProposal.from_proto(p) for p in answer.proposals])


@router.post("/v1/orders/batch", response_model=models.BatchAnswer, tags=["orders"],
             responses=_problem_responses(*COMMON, 413),
             summary=f"Submit up to {models.MAX_BATCH_ORDERS} orders, each with its idempotency_key "
                     "(a bad order is refused on its own; 200 with a result per order)")
async def submit_batch(body: models.BatchSubmission, request: Request, who: Principal = scoped(ORDERS)):
    return await batches.submit(backends(request), batches.from_batch(who.partner_id, body.orders))


@router.post(
    "/v1/orders/csv", response_model=models.BatchAnswer, tags=["orders"],
    responses=_problem_responses(*COMMON, 413, 415),
    summary="Submit orders from CSV, one row per order line, grouped by external_ref "
            "(a bad row refuses its order only; the same file with the same Idempotency-Key creates nothing)",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def submit_csv(
    request: Request,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=100,
                                           description='each order\'s key is "<this>:<external_ref>"')],
    who: Principal = scoped(ORDERS),
):
    text = await _csv_text(request)
    try:
        parsed = csv_orders.parse(text)
    except csv_orders.CsvDocumentError as exc:
        raise problems.validation(exc.errors, "the CSV cannot be read; nothing was submitted") from None
    return await batches.submit(backends(request), batches.from_csv(who.partner_id, idempotency_key, parsed))


async def _csv_text(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise problems.http_status(415, "send the CSV document as the body with 'Content-Type: text/csv'")
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise problems.validation([problems.FieldError("body", "the CSV must be UTF-8 text")]) from None


@router.get("/v1/orders", response_model=models.OrderPage, tags=["orders"], responses=_problem_responses(*COMMON),
            summary="Your orders, newest first or by priority (admin: every partner's; "
                    "?status=on_hold&order_by=priority is the desk's work queue)")
async def list_orders(
    request: Request,
    status: Annotated[str, Query(max_length=32, description="e.g. on_hold")] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str, Query(max_length=64)] = "",
    hold_reason: Annotated[str, Query(max_length=64, description="only orders held for this reason code")] = "",
    order_by: Annotated[Literal["newest", "priority"], Query(description="newest first, or highest priority first")
                        ] = "newest",
    who: Principal = scoped(ORDERS, RETURNS),
):
    services = backends(request)
    page = await services.call(services.orders.ListOrders, orders_pb2.ListOrdersRequest(
        partner_id=who.order_scope, status=status, limit=limit, cursor=cursor, hold_reason=hold_reason,
        order_by=order_by))
    return models.OrderPage(items=[models.OrderOut.from_proto(o) for o in page.items],
                            next_cursor=page.next_cursor or None)


@router.get("/v1/orders/{order_id}", response_model=models.OrderOut, tags=["orders"],
            responses=_problem_responses(*COMMON, 404))
async def get_order(order_id: OrderId, request: Request, response: Response,
                    who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    order = await services.call(services.orders.GetOrder,
                                orders_pb2.GetOrderRequest(order_id=order_id, partner_id=who.order_scope))
    response.headers["ETag"] = f'"{order.version}"'  # send it back as If-Match to change the order
    return models.OrderOut.from_proto(order)


async def _decide(services: Backends, method, order_id: str, who: Principal, reason: str) -> models.OrderOut:
    order = await services.call(method, orders_pb2.OrderDecisionRequest(
        order_id=order_id, partner_id=who.order_scope, actor=common_pb2.Actor(id=who.partner_id, reason=reason)))
    return models.OrderOut.from_proto(order)


@router.post("/v1/orders/{order_id}/cancel", response_model=models.OrderOut, tags=["orders"],
             responses=_problem_responses(*COMMON, 404, 409),
             summary="Cancel an order and release its stock (409 once anything has shipped); with `lines`, "
                     "cancel only those units")
async def cancel_order(order_id: OrderId, request: Request, response: Response,
                       body: models.CancelRequest | None = None,
                       if_match: Annotated[str | None, Header(alias="If-Match", max_length=40)] = None,
                       who: Principal = scoped(ORDERS)):
    services = backends(request)
    if body is not None and body.lines:
        from gateway.changes import cancel_lines  # gateway.changes builds on this module
        return await cancel_lines(order_id, body.lines, body.reason, request, response, if_match, who)
    return await _decide(services, services.orders.CancelOrder, order_id, who, body.reason if body else "")


@router.post("/v1/orders/{order_id}/approve", response_model=models.OrderOut, tags=["order desk"],
             responses=_problem_responses(*COMMON, 404, 409),
             summary="Release a held order (admin): stock and credit are checked again; optionally accept its "
                     "earliest-date or split proposal")
async def approve_order(order_id: OrderId, request: Request, body: models.ApproveRequest | None = None,
                        who: Principal = scoped(ADMIN)):
    services = backends(request)
    body = body or models.ApproveRequest()
    # Intake re-checks stock and credit on the order as approved, then orders releases it.
    order = await services.call(services.intake.ApproveHeldOrder, intake_pb2.ApproveHeldOrderRequest(
        order_id=order_id, actor=common_pb2.Actor(id=who.partner_id, reason=body.note),
        accept_proposal=body.accept_proposal or "", acknowledge=body.acknowledge))
    return models.OrderOut.from_proto(order)


@router.post("/v1/orders/{order_id}/reject", response_model=models.OrderOut, tags=["order desk"],
             responses=_problem_responses(*COMMON, 404, 409), summary="Reject a held order (admin)")
async def reject_order(order_id: OrderId, request: Request, body: models.RejectRequest | None = None,
                       who: Principal = scoped(ADMIN)):
    services = backends(request)
    return await _decide(services, services.orders.RejectOrder, order_id, who, body.reason if body else "")


# --- shipments ---------------------------------------------------------------------------
@router.get("/v1/shipments", response_model=models.ShipmentList, tags=["shipments"],
            responses=_problem_responses(*COMMON))
async def list_shipments(order_id: Annotated[str, Query(min_length=1, max_length=64)], request: Request,
                         who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT)):
    services = backends(request)
    answer = await services.call(services.shipping.ListShipments, shipping_pb2.ListShipmentsRequest(
        order_id=order_id, partner_id=who.fulfillment_scope))
    return models.ShipmentList(items=[models.ShipmentOut.from_proto(s) for s in answer.items])


@router.post("/v1/shipments/{shipment_id}/events", response_model=models.ShipmentOut, tags=["shipments"],
             responses=_problem_responses(*COMMON, 404, 409),
             summary="Record picked, packed, shipped (with carrier and tracking number) or delivered")
async def record_shipment_event(shipment_id: Annotated[str, Path(max_length=80)], body: models.ShipmentEventIn,
                                request: Request, who: Principal = scoped(FULFILLMENT)):
    services = backends(request)
    request = shipping_pb2.ShipmentEventRequest(shipment_id=shipment_id, type=body.type, carrier=body.carrier,
                                                tracking_number=body.tracking_number, actor=who.partner_id,
                                                cause=body.cause, expected_delivery_date=body.expected_delivery_date)
    if body.occurred_at is not None:
        request.occurred_at.FromDatetime(body.occurred_at)
    return models.ShipmentOut.from_proto(await services.call(services.shipping.RecordShipmentEvent, request))


# --- returns -----------------------------------------------------------------------------
@router.post("/v1/orders/{order_id}/returns", status_code=201, response_model=models.ReturnOut, tags=["returns"],
             responses=_problem_responses(*COMMON, 404, 409),
             summary="Authorise a return of delivered units (422 when more than was delivered)")
async def create_return(
    order_id: OrderId, body: models.ReturnRequest, request: Request,
    idempotency_key: Annotated[str, Header(alias="Idempotency-Key", description="optional: a retry creates nothing")] = "",
    who: Principal = scoped(RETURNS),
):
    services = backends(request)
    ret = await services.call(services.returns.CreateReturn, returns_pb2.CreateReturnRequest(
        order_id=order_id, partner_id=who.fulfillment_scope, resolution=body.resolution,
        idempotency_key=idempotency_key,
        lines=[returns_pb2.ReturnLine(sku=x.sku, quantity=x.quantity, reason=x.reason) for x in body.lines]))
    return models.ReturnOut.from_proto(ret)


RmaId = Annotated[str, Path(max_length=64)]


@router.get("/v1/returns/{rma_id}", response_model=models.ReturnOut, tags=["returns"],
            responses=_problem_responses(*COMMON, 404))
async def get_return(rma_id: RmaId, request: Request, who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT)):
    services = backends(request)
    ret = await services.call(services.returns.GetReturn,
                              returns_pb2.GetReturnRequest(rma_id=rma_id, partner_id=who.fulfillment_scope))
    return models.ReturnOut.from_proto(ret)


@router.post("/v1/returns/{rma_id}/receive", response_model=models.ReturnOut, tags=["returns"],
             responses=_problem_responses(*COMMON, 404, 409), summary="The returned goods arrived (fulfillment)")
async def receive_return(rma_id: RmaId, request: Request, who: Principal = scoped(FULFILLMENT)):
    services = backends(request)
    ret = await services.call(services.returns.ReceiveReturn, returns_pb2.ReturnActionRequest(
        rma_id=rma_id, partner_id=who.fulfillment_scope, actor=who.partner_id))
    return models.ReturnOut.from_proto(ret)


@router.post("/v1/returns/{rma_id}/inspect", response_model=models.ReturnOut, tags=["returns"],
             responses=_problem_responses(*COMMON, 404, 409),
             summary="Inspect each line: restock (back to stock) or scrap; refunds the return (fulfillment)")
async def inspect_return(rma_id: RmaId, body: models.InspectionRequest, request: Request,
                         who: Principal = scoped(FULFILLMENT)):
    services = backends(request)
    ret = await services.call(services.returns.InspectReturn, returns_pb2.InspectReturnRequest(
        rma_id=rma_id, partner_id=who.fulfillment_scope, actor=who.partner_id,
        lines=[returns_pb2.InspectionLine(sku=x.sku, quantity=x.quantity, outcome=x.outcome) for x in body.lines]))
    return models.ReturnOut.from_proto(ret)


# --- inventory and master data (admin) ---------------------------------------------------------
@router.get("/v1/inventory/{sku}", response_model=models.StockLevelOut, tags=["order desk"],
            responses=_problem_responses(*COMMON, 404))
async def get_stock(sku: Annotated[str, Path(max_length=64)], request: Request, who: Principal = scoped(ADMIN)):
    services = backends(request)
    return models.StockLevelOut.from_proto(
        await services.call(services.inventory.GetStock, inventory_pb2.GetStockRequest(sku=sku)))


ImportKind = Literal["customers", "products", "prices", "stock", "warehouses", "partners"]


@router.post(
    "/v1/admin/import/{kind}", response_model=models.ImportResult, tags=["order desk"],
    responses=_problem_responses(*COMMON, 413, 415),
    summary="Import master data from CSV (all rows or none; every bad cell is reported)",
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_master_data(kind: ImportKind, request: Request, who: Principal = scoped(ADMIN)):
    services = backends(request)
    text = await _csv_text(request)
    if kind == "partners":
        # Partners live in the gateway's own store; parse errors are domain errors (422 with row paths).
        rows = await request.app.state.store.import_partners(masterdata.parse(kind, text))
        request.app.state.authenticator.cache.clear()  # a changed key or scope counts at once here
        return models.ImportResult(kind=kind, rows=rows)
    document = common_pb2.ImportCsvRequest(kind=kind, csv=text)
    rows = 0
    for owner in masterdata.OWNERS[kind]:
        rows = (await services.call(getattr(services, owner).ImportMasterData, document)).rows
    return models.ImportResult(kind=kind, rows=rows)


# --- the desk's numbers (admin) ---------------------------------------------------------------
@router.get("/v1/reports/kpis", response_model=models.KpiReportOut, tags=["order desk"],
            responses=_problem_responses(*COMMON),
            summary="The desk's numbers for a period: volume, value, fill, on-time, cancellations, holds, cycle "
                    "times, sellers, returns (admin; formulas in the README)")
async def kpi_report(
    request: Request,
    from_: Annotated[str, Query(alias="from", max_length=40,
                                description="YYYY-MM-DD or RFC 3339 (included); default: 30 days before `to`")] = "",
    to: Annotated[str, Query(max_length=40, description="YYYY-MM-DD (that day included) or RFC 3339 (excluded); "
                                                        "default: now")] = "",
    group_by: Annotated[str, Query(max_length=16, description="day | week | month | customer | channel")] = "",
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    report = await services.call(services.orders.GetKpiReport,
                                 orders_pb2.KpiReportRequest(**{"from": from_}, to=to, group_by=group_by))
    return models.KpiReportOut.from_proto(report)


# --- operations --------------------------------------------------------------------------
@router.get("/healthz", response_model=models.Health, tags=["operations"], openapi_extra={"security": []},
            responses={503: {"model": models.Health, "description": "some backend is not serving"}})
async def healthz(request: Request, response: Response):
    checks = await request.app.state.backends.health()
    try:
        await request.app.state.store.ping()
        checks["store"] = "SERVING"
    except Exception:
        checks["store"] = "UNREACHABLE"
    healthy = all(v == "SERVING" for v in checks.values())
    response.status_code = 200 if healthy else 503
    return models.Health(status="ok" if healthy else "degraded", services=checks)


@router.get("/livez", tags=["operations"], openapi_extra={"security": []}, response_model=models.Live,
            summary="This process answers (liveness: no backend is asked)")
async def livez() -> models.Live:
    return models.Live()
