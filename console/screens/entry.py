"""Order entry (the seed's 订单录入): an order that came by phone or e-mail, entered by the desk; and a customer's
sheet of orders (CSV or XLSX) uploaded, previewed with every bad cell marked, and submitted.

Every route requires ENTER_ORDERS (clerk, approver). The entry form finds the customer (their ship-to, terms
and open credit shown) and, on "Check", each line's product, the customer's price, the stock and the earliest
date (intake.QuoteLines); "Submit order" sends it through intake.SubmitOrder with the idempotency key made when
the form was first shown, so a second click creates nothing twice. Refusals stand beside their fields.
The rules without I/O: console/order_entry.py.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from console import i18n, order_entry, web
from console.i18n import N_, gettext
from console.order_entry import Line
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk import order_sheets
from orderdesk.roles import Permission
from orderdesk.v1 import intake_pb2, orders_pb2

router = APIRouter()
NAV = NavEntry(N_("New order"), "/orders/new", Permission.ENTER_ORDERS, order=30)
ENTER = Permission.ENTER_ORDERS
CUSTOMER_CHOICES = 10
KEY_USED = N_(
    "This form was submitted before with other contents, so nothing was created. Start a new order."
)
NO_FILE = N_("Choose a CSV or XLSX file.")


def _text(form, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default


def _context(values: dict, lines: list[Line], errors: FormErrors, **more) -> dict:
    return {
        "values": values,
        "lines": order_entry.shown_lines(lines),
        "errors": errors,
        "customer": None,
        "choices": [],
        "channels": order_entry.CHANNELS,
        **more,
    }


@router.get("/orders/new")
async def new_order(request: Request, desk: Desk = requires(ENTER)):
    values = {"idempotency_key": uuid.uuid4().hex, "channel": "phone"}
    return web.render(request, "entry/new.html", _context(values, [], FormErrors()))


async def _customer(request: Request, text: str, found: FormErrors) -> tuple:
    """The customer the text names (its id, or the one customer whose id or name it matches), and the
    choices when it matches several."""
    services = web.services(request)
    if not text:
        found.fields["customer"] = order_entry.CHOOSE_CUSTOMER
        return None, []
    try:
        return await web.call(
            request, services.intake.GetCustomer, intake_pb2.GetCustomerRequest(customer_id=text)
        ), []
    except web.ServiceRefusal as refused:
        if refused.status != 404:
            raise
    page = await web.call(
        request,
        services.intake.SearchCustomers,
        intake_pb2.SearchCustomersRequest(query=text[:100], limit=CUSTOMER_CHOICES),
    )
    if len(page.items) == 1:
        return await web.call(
            request,
            services.intake.GetCustomer,
            intake_pb2.GetCustomerRequest(customer_id=page.items[0].customer_id),
        ), []
    found.fields["customer"] = order_entry.SEVERAL_CUSTOMERS if page.items else order_entry.NO_CUSTOMER
    return None, list(page.items)


async def _quote(request: Request, customer, lines: list[Line], found: FormErrors) -> None:
    if not lines:
        return
    answer = await web.call(
        request,
        web.services(request).intake.QuoteLines,
        intake_pb2.QuoteLinesRequest(
            customer_id=customer.customer_id,
            lines=[
                intake_pb2.QuoteLineQuery(product=line.product, quantity=line.units() or 1) for line in lines
            ],
        ),
    )
    for i, (line, quote) in enumerate(zip(lines, answer.lines, strict=True)):
        order_entry.apply_quote(line, quote)
        if line.product and not quote.sku:
            found.fields[f"line-{i}-product"] = (
                order_entry.SEVERAL_PRODUCTS if quote.matches else order_entry.UNKNOWN_SKU
            )
        if line.quantity and line.units() is None:
            found.fields[f"line-{i}-quantity"] = order_entry.ENTER_QUANTITY


@router.post("/orders/new")
async def enter_order(request: Request, desk: Desk = requires(ENTER)):
    form = await request.form()
    values = {
        name: _text(form, name)
        for name in ("idempotency_key", "customer", "channel", "external_ref", "requested_date")
    }
    if picked := _text(form, "pick_customer"):
        values["customer"] = picked
    values["idempotency_key"] = values["idempotency_key"][:100] or uuid.uuid4().hex
    lines = order_entry.form_lines(form)
    found = FormErrors()
    if values["channel"] not in order_entry.CHANNELS:
        found.fields["channel"] = order_entry.CHOOSE_CHANNEL
    customer, choices = await _customer(request, values["customer"], found)
    if customer is not None:
        values["customer"] = customer.customer_id
        await _quote(request, customer, lines, found)
    submitting = _text(form, "action") == "submit" and not picked
    if submitting and not lines:
        found.fields["line-0-product"] = order_entry.ADD_A_LINE
    if submitting and not found and customer is not None:
        sent = [i for i, _ in enumerate(lines)]
        request_ = intake_pb2.SubmitOrderRequest(
            partner_id=order_entry.DESK_PARTNER_ID,
            idempotency_key=values["idempotency_key"],
            channel=values["channel"],
            external_ref=values["external_ref"],
            customer_id=customer.customer_id,
            lines=[
                intake_pb2.SubmitLine(
                    sku=line.sku or line.product,
                    quantity=line.units() or 0,
                    unit_price=line.unit_price or "0",
                )
                for line in lines
            ],
            requested_delivery_date=values["requested_date"],
            actor=desk.actor().id,
        )
        try:
            answer = await web.call(request, web.services(request).intake.SubmitOrder, request_)
            return web.see_other(f"/orders/new/{answer.order_id}")
        except web.ServiceRefusal as refused:
            if refused.status != 422:
                raise
            if refused.failure.reason == "idempotency_key_reused":
                found.general = KEY_USED
            else:
                reasons = refused.reasons()
                for path, message in refused.field_errors().items():
                    words = order_entry.refusal_words(path, reasons.get(path, ""))
                    found.fields[order_entry.form_field(path, sent)] = words or message
            if not found:
                found.general = refused.message
    return web.render(
        request,
        "entry/new.html",
        _context(values, lines, found, customer=customer, choices=choices),
        status=422 if found else 200,
    )


@router.get("/orders/quote")
async def quote_line(
    request: Request, customer: str = "", product: str = "", quantity: str = "", desk: Desk = requires(ENTER)
):
    """One line's product, customer's price, stock and earliest date, formatted for the person (static/entry.js
    shows them as the line is typed; the form's Check shows the same without JavaScript)."""
    line = Line(product.strip()[:200], quantity.strip()[:12])
    if not customer.strip() or not line.product:
        return JSONResponse({}, status_code=422)
    try:
        answer = await web.call(
            request,
            web.services(request).intake.QuoteLines,
            intake_pb2.QuoteLinesRequest(
                customer_id=customer.strip()[:100],
                lines=[intake_pb2.QuoteLineQuery(product=line.product, quantity=line.units() or 1)],
            ),
        )
    except web.ServiceRefusal as refused:
        return JSONResponse({}, status_code=refused.status)
    order_entry.apply_quote(line, answer.lines[0])
    if not line.sku:
        words = order_entry.SEVERAL_PRODUCTS if line.matches else order_entry.UNKNOWN_SKU
        return JSONResponse({"name": gettext(words)})
    return JSONResponse(
        {
            "sku": line.sku,
            "name": line.name,
            "price": i18n.format_money(line.unit_price, line.currency) if line.unit_price else "",
            "available": gettext("unknown") if line.available is None else i18n.format_number(line.available),
            "earliest": i18n.format_date(line.earliest) if line.earliest else gettext("unknown"),
        }
    )


@router.get("/orders/new/{order_id}")
async def entered(request: Request, order_id: str, desk: Desk = requires(ENTER)):
    order = await web.call(
        request,
        web.services(request).orders.GetOrder,
        orders_pb2.GetOrderRequest(order_id=order_id, partner_id=order_entry.DESK_PARTNER_ID),
    )
    entered_by = order.history[0].actor if order.history else ""
    return web.render(request, "entry/entered.html", {"order": order, "entered_by": entered_by})


# --- a customer's sheet of orders ------------------------------------------------------------------------------
@router.get("/orders/upload")
async def upload_form(request: Request, desk: Desk = requires(ENTER)):
    values = {"upload_key": uuid.uuid4().hex, "channel": "email"}
    return web.render(request, "entry/upload.html", {"values": values, "errors": FormErrors()})


def _preview(rows: list[list[str]]) -> dict:
    """The sheet's orders and every bad cell, by row and column."""
    try:
        orders = order_entry.parse_sheet(rows)
    except order_sheets.SheetDocumentError as exc:
        document = [order_entry.cell_problem(e) for e in exc.errors]
        return {"document": document, "orders": [], "bad": {}, "problems": []}
    problems = [order_entry.cell_problem(e) for order in orders for e in order.errors]
    bad: dict[tuple[int | None, str], list] = {}
    for problem in problems:
        bad.setdefault((problem.row, problem.column), []).append(problem)
    return {"document": [], "orders": orders, "bad": bad, "problems": problems}


@router.post("/orders/upload")
async def preview_upload(request: Request, desk: Desk = requires(ENTER)):
    form = await request.form(max_part_size=order_entry.MAX_SHEET_BYTES)
    values = {
        "upload_key": _text(form, "upload_key")[:64] or uuid.uuid4().hex,
        "channel": _text(form, "channel"),
    }
    found = FormErrors()
    if values["channel"] not in order_entry.CHANNELS:
        found.fields["channel"] = order_entry.CHOOSE_CHANNEL
    sheet = form.get("sheet")
    data = await sheet.read() if isinstance(sheet, UploadFile) else b""
    if not data:
        found.fields["sheet"] = NO_FILE
    if found:
        return web.render(request, "entry/upload.html", {"values": values, "errors": found}, status=422)
    try:
        rows = order_entry.sheet_rows(data)
    except order_sheets.SheetDocumentError as exc:
        found.fields["sheet"] = order_entry.cell_problem(exc.errors[0]).words
        return web.render(request, "entry/upload.html", {"values": values, "errors": found}, status=422)
    preview = _preview(rows)
    return web.render(
        request,
        "entry/preview.html",
        {"values": values, "rows": rows, "csv": order_entry.rows_as_csv(rows), **preview},
        status=422 if preview["document"] else 200,
    )


@router.post("/orders/upload/submit")
async def submit_upload(request: Request, desk: Desk = requires(ENTER)):
    form = await request.form(max_part_size=order_entry.MAX_SHEET_BYTES)
    upload_key, channel = _text(form, "upload_key")[:64], _text(form, "channel")
    if not upload_key or channel not in order_entry.CHANNELS:
        raise web.Forbidden(message=N_("This upload cannot be submitted; upload the file again."))
    raw = form.get("csv", "")
    rows = order_entry.sheet_rows((raw if isinstance(raw, str) else "").encode())
    preview = _preview(rows)
    results = []
    for order in preview["orders"]:
        if order.errors:
            results.append({"order": order, "answer": None, "problems": []})
            continue
        request_ = order_entry.submit_request(
            order.body,
            idempotency_key=order_entry.sheet_key(upload_key, order.external_ref),
            channel=channel,
            actor=desk.actor().id,
        )
        try:
            answer = await web.call(request, web.services(request).intake.SubmitOrder, request_)
            results.append({"order": order, "answer": answer, "problems": []})
        except web.ServiceRefusal as refused:
            if refused.status >= 500:
                raise
            reasons = refused.reasons()
            problems = [
                order_entry.intake_problem(order, path, reasons.get(path, ""), message)
                for path, message in refused.field_errors().items()
            ] or [order_entry.CellProblem(order.rows[0], "", refused.message)]
            results.append({"order": order, "answer": None, "problems": problems})
    return web.render(
        request,
        "entry/submitted.html",
        {
            "results": results,
            "accepted": sum(1 for r in results if r["answer"] is not None),
            **preview,
        },
    )
