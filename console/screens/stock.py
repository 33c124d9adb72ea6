"""Stock: a SKU's stock per warehouse (on hand, reserved, available), available-to-promise by date, the
backorders waiting for it and its production runs; a clerk records a receipt (goods in at a warehouse).

Everything is read from inventory (GetStock, GetAvailableToPromise, ListProduction) and orders (the
backordered orders having a line of the SKU), over gRPC. A receipt is inventory's Restock, idempotent per
reference like the gateway's POST /v1/admin/receipts: a repeat of a reference adds nothing.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request

from console import i18n, web
from console.i18n import N_
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk import actors
from orderdesk.roles import Permission
from orderdesk.v1 import inventory_pb2, orders_pb2

router = APIRouter()
NAV = NavEntry(N_("Stock"), "/stock", Permission.READ, order=60)
BACKORDERS_SHOWN = 50
MAX_QUANTITY = 1_000_000_000  # as the gateway's receipt route

SKU_REQUIRED = N_("Enter a SKU, e.g. BRK-001.")
WAREHOUSE_REQUIRED = N_("Enter the warehouse the goods arrived at, e.g. WH-HAM.")
WAREHOUSE_UNKNOWN = N_("There is no warehouse with this code.")
QUANTITY_WHOLE = N_("Enter a whole number of units from 1 to 1,000,000,000.")
REFERENCE_REQUIRED = N_("Enter the receipt's reference (e.g. the delivery note number).")
TOO_LONG = N_("This is too long.")
DONE = {"received": N_("The receipt was recorded. A reference recorded before adds nothing.")}


def _field(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def check_receipt(values: dict[str, str]) -> tuple[int, FormErrors]:
    """The receipt form's values checked before anything is sent: (quantity, errors)."""
    found = FormErrors()
    if not values["warehouse"]:
        found.fields["warehouse"] = WAREHOUSE_REQUIRED
    elif len(values["warehouse"]) > 32:
        found.fields["warehouse"] = TOO_LONG
    quantity = 0
    text = values["quantity"].replace(",", "")
    if text.isdigit() and 0 < int(text) <= MAX_QUANTITY:
        quantity = int(text)
    else:
        found.fields["quantity"] = QUANTITY_WHOLE
    if not values["reference"]:
        found.fields["reference"] = REFERENCE_REQUIRED
    elif len(values["reference"]) > 200:
        found.fields["reference"] = TOO_LONG
    return quantity, found


@router.get("/stock")
async def stock_index(request: Request, sku: str = "", desk: Desk = requires(Permission.READ)):
    sku = sku.strip()
    if sku and len(sku) <= 64:
        return web.see_other(f"/stock/{quote(sku, safe='')}")
    found = (
        FormErrors({"sku": SKU_REQUIRED if not sku else TOO_LONG}) if "sku" in request.query_params else None
    )
    services = web.services(request)
    runs = await web.call(
        request, services.inventory.ListProduction, inventory_pb2.ListProductionRequest(status="open")
    )
    return web.render(
        request,
        "stock/index.html",
        {"errors": found or FormErrors(), "sku": sku, "runs": list(runs.runs)},
        status=422 if found else 200,
    )


async def _sku_page(
    request: Request,
    sku: str,
    *,
    values: dict | None = None,
    errors: FormErrors | None = None,
    done: str = "",
):
    services = web.services(request)
    if len(sku) > 64:
        raise web.NotFoundPage()
    try:
        atp = await web.call(
            request,
            services.inventory.GetAvailableToPromise,
            inventory_pb2.GetAvailableToPromiseRequest(sku=sku),
        )
    except web.ServiceRefusal as refused:
        if refused.status == 404:
            raise web.NotFoundPage() from None
        raise
    level = await web.call(request, services.inventory.GetStock, inventory_pb2.GetStockRequest(sku=sku))
    runs = await web.call(
        request, services.inventory.ListProduction, inventory_pb2.ListProductionRequest(sku=sku)
    )
    waiting = await web.call(
        request,
        services.orders.ListOrders,
        orders_pb2.ListOrdersRequest(
            status="scheduled", sku=sku, order_by="priority", limit=BACKORDERS_SHOWN
        ),
    )
    backorders = [
        {
            "order_id": o.order_id,
            "customer_id": o.customer_id,
            "priority": o.priority,
            "quantity": sum(line.quantity for line in o.lines if line.sku == sku),
            "expected_ship_date": o.expected_ship_date,
            "expected_delivery_date": o.expected_delivery_date,
        }
        for o in waiting.items
    ]
    return web.render(
        request,
        "stock/sku.html",
        {
            "sku": sku,
            "warehouses": list(level.warehouses),
            "atp": atp,
            "runs": list(runs.runs),
            "receipts": [
                {
                    "received_at": i18n.from_timestamp(r.received_at),
                    "warehouse": r.warehouse,
                    "quantity": r.quantity,
                    "reference": r.reference,
                    "received_by": r.received_by,
                    "who": actors.parse(r.received_by),
                }
                for r in level.recent_receipts
            ],
            "backorders": backorders,
            "more_backorders": bool(waiting.next_cursor),
            "values": values or {},
            "errors": errors or FormErrors(),
            "done": DONE.get(done, ""),
        },
        status=422 if errors else 200,
    )


@router.get("/stock/{sku}")
async def sku_stock(request: Request, sku: str, done: str = "", desk: Desk = requires(Permission.READ)):
    return await _sku_page(request, sku, done=done)


@router.post("/stock/{sku}/receipts")
async def record_receipt(request: Request, sku: str, desk: Desk = requires(Permission.RECORD_RECEIPTS)):
    form = await request.form()
    values = {name: _field(form, name) for name in ("warehouse", "quantity", "reference")}
    quantity, found = check_receipt(values)
    if not found:
        services = web.services(request)
        try:
            await web.call(
                request,
                services.inventory.Restock,
                inventory_pb2.RestockRequest(
                    sku=sku,
                    warehouse=values["warehouse"],
                    quantity=quantity,
                    reference=values["reference"],
                    actor=desk.actor(),
                ),
            )
            return web.see_other(f"/stock/{quote(sku, safe='')}?done=received")
        except web.ServiceRefusal as refused:
            if refused.status != 422:
                raise
            named = refused.field_errors()
            if "warehouse" in named:
                found.fields["warehouse"] = WAREHOUSE_UNKNOWN
            for name in ("quantity", "reference"):
                if name in named:
                    found.fields[name] = {"quantity": QUANTITY_WHOLE, "reference": REFERENCE_REQUIRED}[name]
            if not found:
                found.general = refused.message
    return await _sku_page(request, sku, values=values, errors=found)
