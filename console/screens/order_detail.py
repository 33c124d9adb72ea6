"""Order detail (`/orders/{order_id}`): the order, its lines, allocations, shipments, returns and exceptions,
one timeline of all that happened to it, and the actions its state allows (console/orderview.py), each a
POST form with its permission. Also the Today page's bulk decision (`POST /orders/decide`).

Every change sends the version the page was rendered with: when someone else changed the order meanwhile,
nothing is overwritten and the page says what they changed. Bad input re-renders the page (422) with the
field's message beside the field; a refusal by the service is said above the forms.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from decimal import Decimal

from fastapi import APIRouter, Request

from console import orderview, web, words
from console.i18n import N_
from console.orderview import Action
from console.web import Desk, FormErrors, requires
from orderdesk import roles
from orderdesk.parsing import whole_number
from orderdesk.roles import Permission
from orderdesk.v1 import common_pb2, intake_pb2, notifier_pb2, orders_pb2, returns_pb2, shipping_pb2

router = APIRouter()
WEBHOOKS_SHOWN = 200  # the most ListOrderDeliveries answers

PERMISSIONS = {
    Action.APPROVE: Permission.DECIDE_HELD_ORDERS,
    Action.REJECT: Permission.DECIDE_HELD_ORDERS,
    Action.AMEND_ADDRESS: Permission.AMEND_ORDERS,
    Action.AMEND_LINES: Permission.AMEND_ORDERS,
    Action.CANCEL_ORDER: Permission.CANCEL_ORDERS,
    Action.CANCEL_LINES: Permission.CANCEL_ORDERS,
    Action.RAISE_EXCEPTION: Permission.RAISE_EXCEPTIONS,
    Action.AUTHORISE_RETURN: Permission.AUTHORISE_RETURNS,
}
ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country", "phone")
RESOLUTION_DETAILS = (
    "carrier",
    "tracking_number",
    "shipment_id",
    "substitute_sku",
    "customer_consent",
    "expected_date",
    "split_lines",
)

REASON_REQUIRED = N_("Enter a reason: the customer and the partner will read it.")
CAUSE_REQUIRED = N_("Say what happened.")
WHOLE_NUMBER = N_("Enter a whole number of units, 0 or more.")
NOTHING_TO_CANCEL = N_("Enter the units to cancel on at least one line.")
NOTHING_TO_RETURN = N_("Enter the units to return on at least one line.")
NOTHING_CHANGED = N_("Nothing was changed: the form is the same as the order.")
NOTE_REQUIRED = N_("Write the note.")
NOTE_TOO_LONG = N_("A note has at most 2,000 characters.")
NOTE_LIMIT = 2000
NONE_SELECTED = N_("Select at least one order.")
REFUSAL_REASON_REQUIRED = N_("Enter why the return is refused: the partner will read it.")
UNKNOWN_DECISION = N_("Choose to authorise or to refuse the return.")
RECHECK_FOUND = N_(
    "The order was not approved: checking stock and credit again found something new since it was held. "
    "Tick what you accept knowingly, then approve again."
)
STALE = N_(
    "Someone else changed this order after you opened it, so nothing was changed. Their change is shown below; check it, then send yours again if it still applies."
)
DONE = {
    "approved": N_("The order was approved."),
    "rejected": N_("The order was rejected."),
    "amended": N_("The order was changed."),
    "cancelled": N_("The order was cancelled."),
    "lines_cancelled": N_("The units were cancelled."),
    "exception": N_("The exception was recorded."),
    "resolved": N_("The exception was resolved."),
    "returned": N_("The return was authorised."),
    "return_held": N_("The return is held for an approver: it is outside the return policy."),
    "return_authorised": N_("The held return was authorised."),
    "return_refused": N_("The held return was refused."),
    "return_cancelled": N_("The return was cancelled."),
    "noted": N_("The note was added."),
}


# --- reading ----------------------------------------------------------------------------------------------------
async def load(request: Request, order_id: str) -> orders_pb2.Order:
    try:
        return await web.call(
            request, web.services(request).orders.GetOrder, orders_pb2.GetOrderRequest(order_id=order_id)
        )
    except web.ServiceRefusal as refusal:
        if refusal.status == 404:
            raise web.NotFoundPage() from None
        raise


async def returns_of(request: Request, order: orders_pb2.Order) -> list[returns_pb2.Return]:
    answer = await web.call(
        request,
        web.services(request).returns.ListReturns,
        returns_pb2.ListReturnsRequest(order_id=order.order_id),
    )
    return list(answer.items)


async def shipments_of(request: Request, order: orders_pb2.Order) -> list[shipping_pb2.Shipment]:
    """The order's shipments as shipping keeps them, each with its carrier's tracking timeline (none asked
    for an order with no shipment yet)."""
    if not order.shipments:
        return []
    answer = await web.call(
        request,
        web.services(request).shipping.ListShipments,
        shipping_pb2.ListShipmentsRequest(order_id=order.order_id),
    )
    return list(answer.items)


async def webhooks_of(request: Request, order: orders_pb2.Order) -> tuple[list, dict[str, str]]:
    """The webhooks sent about the order (the oldest WEBHOOKS_SHOWN), and the URL of each endpoint."""
    notifier = web.services(request).notifier
    sent = await web.call(
        request,
        notifier.ListOrderDeliveries,
        notifier_pb2.ListOrderDeliveriesRequest(order_id=order.order_id, limit=WEBHOOKS_SHOWN),
    )
    endpoints = await web.call(
        request, notifier.ListEndpoints, notifier_pb2.ListEndpointsRequest(partner_id=order.partner_id)
    )
    return list(sent.items), {e.endpoint_id: e.url for e in endpoints.items}


@dataclass
class Conflict:
    """Someone else's edit since the version the form was rendered with."""

    theirs: list[orderview.Entry]  # their accepted change requests, as timeline entries
    status: str  # the order's status now


async def show(
    request: Request,
    desk: Desk,
    order_id: str,
    *,
    order: orders_pb2.Order | None = None,
    errors: FormErrors | None = None,
    values: dict | None = None,
    conflict: Conflict | None = None,
    done: str = "",
    findings: list | None = None,
    status: int = 200,
):
    order = order if order is not None else await load(request, order_id)
    timeline_call = web.call(
        request, web.services(request).orders.GetOrderTimeline, orders_pb2.GetOrderRequest(order_id=order_id)
    )
    recorded, (deliveries, endpoints), returns, shipments = await asyncio.gather(
        timeline_call, webhooks_of(request, order), returns_of(request, order), shipments_of(request, order)
    )
    possible = orderview.actions(order)
    allowed = {a for a in possible if desk.may(PERMISSIONS[a])}
    needs = sorted({PERMISSIONS[a] for a in possible - allowed})
    return web.render(
        request,
        "order_detail/page.html",
        {
            "order": order,
            "allowed": allowed,
            "needs": [(p, roles.roles_with(p)) for p in needs],
            "returns": returns,
            "return_key": uuid.uuid4().hex,
            "beyond_limit": (
                roles.check_decision(
                    desk.role, desk.account.limits, order.currency, Decimal(order.total_amount)
                )
                if Action.APPROVE in allowed and order.total_amount
                else None
            ),
            "may_resolve": desk.may(Permission.RESOLVE_EXCEPTIONS),
            "may_write_notes": desk.may(Permission.WRITE_NOTES),
            # an approver decides held returns as held orders; a clerk cancels returns before receipt
            "may_decide_returns": desk.may(Permission.DECIDE_HELD_ORDERS),
            "may_cancel_returns": desk.may(Permission.AUTHORISE_RETURNS),
            "resolutions": {e.exception_id: orderview.resolutions(e) for e in order.exceptions},
            "returnable": orderview.returnable(order),
            "at_risk": orderview.at_risk(order),
            "timeline": orderview.timeline(order, recorded, deliveries=deliveries, shipments=shipments),
            "endpoints": endpoints,
            "errors": errors or FormErrors(),
            "values": values or {},
            "conflict": conflict,
            "findings": findings or [],
            "done": DONE.get(done, ""),
            "exception_types": orderview.EXCEPTION_TYPES,
            "Action": Action,
        },
        status=status,
    )


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str, done: str = "", desk: Desk = requires(Permission.READ)):
    return await show(request, desk, order_id, done=done)


# --- the forms' fields -------------------------------------------------------------------------------------------
def text(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def version_of(form) -> int:
    return whole_number(text(form, "version")) or 0


def units(form, name: str, found: FormErrors) -> int:
    raw = text(form, name)
    if not raw:
        return 0
    number = whole_number(raw)
    if number is None:
        found.fields[name] = WHOLE_NUMBER
        return 0
    return number


def line_units(form, order: orders_pb2.Order, prefix: str, found: FormErrors) -> dict[str, int]:
    """The units entered per line (fields `<prefix>-<n>`, n the line's place on the page); a blank field is
    left out."""
    return {
        line.sku: units(form, f"{prefix}-{n}", found)
        for n, line in enumerate(order.lines)
        if text(form, f"{prefix}-{n}")
    }


async def refused_or_conflict(
    request: Request,
    desk: Desk,
    order_id: str,
    refusal: web.ServiceRefusal,
    form,
    fields: dict[str, str] | None = None,
):
    """The page again after the service refused: someone else's change (stale version) shown in words with
    what they changed, or the service's field messages beside the fields (`fields`: service field -> form
    field), else its message above the forms. What the person typed stays in the form."""
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    order = await load(request, order_id)
    if refusal.failure.reason == "stale_version":
        conflict = Conflict(orderview.changes_since(order, version_of(form)), order.status)
        values.pop("version", None)  # the form now carries the version the person has seen
        return await show(
            request,
            desk,
            order_id,
            order=order,
            values=values,
            conflict=conflict,
            errors=FormErrors(general=STALE),
            status=409,
        )
    found = FormErrors()
    for field, message in refusal.field_errors().items():
        found.fields[(fields or {}).get(field, field)] = message
    if not found.fields or not set(found.fields) & set(values):
        found.fields = {}
        found.general = words.REFUSALS.get(refusal.failure.reason, refusal.message)
    return await show(
        request, desk, order_id, order=order, values=values, errors=found, status=refusal.status
    )


async def invalid(request: Request, desk: Desk, order_id: str, form, found: FormErrors):
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await show(request, desk, order_id, values=values, errors=found, status=422)


# --- approve and reject ------------------------------------------------------------------------------------------
async def decide(
    request: Request,
    desk: Desk,
    order: orders_pb2.Order,
    approve: bool,
    note: str,
    *,
    version: int = 0,
    proposal: str = "",
    acknowledge: list[str] | None = None,
):
    """Approves or rejects one held order within the person's approval limit (Forbidden beyond it). An
    approval goes through intake, which checks stock and credit again (as the partner API's does)."""
    desk.check_decision(order.currency, order.total_amount)
    services = web.services(request)
    if approve:
        message = intake_pb2.ApproveHeldOrderRequest(
            order_id=order.order_id, actor=desk.actor(note), accept_proposal=proposal, acknowledge=acknowledge
        )
        return await web.call(request, services.intake.ApproveHeldOrder, message)
    rejection = orders_pb2.OrderDecisionRequest(
        order_id=order.order_id, actor=desk.actor(note), expected_version=version
    )
    return await web.call(request, services.orders.RejectOrder, rejection)


@router.post("/orders/{order_id}/approve")
async def approve(request: Request, order_id: str, desk: Desk = requires(Permission.DECIDE_HELD_ORDERS)):
    form = await request.form()
    order = await load(request, order_id)
    acknowledge = [code for code in form.getlist("acknowledge") if isinstance(code, str)]
    try:
        await decide(
            request,
            desk,
            order,
            True,
            text(form, "approve_note"),
            proposal=text(form, "accept_proposal"),
            acknowledge=acknowledge,
        )
    except web.ServiceRefusal as refusal:
        if refusal.failure.reason == "approval_recheck_failed":
            values = {k: v for k, v in form.items() if isinstance(v, str)}
            return await show(
                request,
                desk,
                order_id,
                values=values,
                findings=refusal.failure.violations,
                errors=FormErrors(general=RECHECK_FOUND),
                status=409,
            )
        return await refused_or_conflict(request, desk, order_id, refusal, form)
    return web.see_other(f"/orders/{order_id}?done=approved")


@router.post("/orders/{order_id}/reject")
async def reject(request: Request, order_id: str, desk: Desk = requires(Permission.DECIDE_HELD_ORDERS)):
    form = await request.form()
    reason = text(form, "reject_reason")
    if not reason:
        return await invalid(request, desk, order_id, form, FormErrors({"reject_reason": REASON_REQUIRED}))
    order = await load(request, order_id)
    try:
        await decide(request, desk, order, False, reason, version=version_of(form))
    except web.ServiceRefusal as refusal:
        return await refused_or_conflict(request, desk, order_id, refusal, form)
    return web.see_other(f"/orders/{order_id}?done=rejected")


# --- change requests: address, lines, cancel -------------------------------------------------------------------------
async def change(
    request: Request,
    desk: Desk,
    order_id: str,
    form,
    message: orders_pb2.ChangeOrderRequest,
    fields: dict[str, str],
    done: str,
):
    try:
        await web.call(request, web.services(request).orders.ChangeOrder, message)
    except web.ServiceRefusal as refusal:
        return await refused_or_conflict(request, desk, order_id, refusal, form, fields)
    return web.see_other(f"/orders/{order_id}?done={done}")


@router.post("/orders/{order_id}/address")
async def amend_address(request: Request, order_id: str, desk: Desk = requires(Permission.AMEND_ORDERS)):
    form = await request.form()
    reason = text(form, "address_reason")
    address = common_pb2.Address(**{name: text(form, f"ship_to_{name}") for name in ADDRESS_FIELDS})
    message = orders_pb2.ChangeOrderRequest(
        order_id=order_id,
        expected_version=version_of(form),
        actor=desk.actor(reason),
        ship_to=address,
        change_ship_to=True,
    )
    fields = {f"ship_to.{name}": f"ship_to_{name}" for name in ADDRESS_FIELDS}
    return await change(request, desk, order_id, form, message, fields, "amended")


@router.post("/orders/{order_id}/lines")
async def amend_lines(request: Request, order_id: str, desk: Desk = requires(Permission.AMEND_ORDERS)):
    form = await request.form()
    order = await load(request, order_id)
    found = FormErrors()
    wanted = line_units(form, order, "quantity", found)
    add_sku, add_quantity = text(form, "add_sku"), units(form, "add_quantity", found)
    if found:
        return await invalid(request, desk, order_id, form, found)
    current = {line.sku: line.quantity for line in order.lines}
    lines = [orders_pb2.ChangeLine(sku=sku, quantity=q) for sku, q in wanted.items() if q != current[sku]]
    added = (
        [orders_pb2.ChangeLine(sku=add_sku, quantity=add_quantity, unit_price=text(form, "add_unit_price"))]
        if add_sku
        else []
    )
    if not lines and not added:
        return await invalid(request, desk, order_id, form, FormErrors(general=NOTHING_CHANGED))
    message = orders_pb2.ChangeOrderRequest(
        order_id=order_id,
        expected_version=version_of(form),
        actor=desk.actor(text(form, "lines_reason")),
        lines=lines,
        add_lines=added,
    )
    fields = {f"lines[{sku}].quantity": f"quantity-{n}" for n, sku in enumerate(current)}
    fields.update(
        {
            "add_lines[0].sku": "add_sku",
            "add_lines[0].quantity": "add_quantity",
            "add_lines[0].unit_price": "add_unit_price",
        }
    )
    return await change(request, desk, order_id, form, message, fields, "amended")


@router.post("/orders/{order_id}/cancel")
async def cancel_order(request: Request, order_id: str, desk: Desk = requires(Permission.CANCEL_ORDERS)):
    form = await request.form()
    reason = text(form, "cancel_reason")
    if not reason:
        return await invalid(request, desk, order_id, form, FormErrors({"cancel_reason": REASON_REQUIRED}))
    message = orders_pb2.OrderDecisionRequest(
        order_id=order_id, actor=desk.actor(reason), expected_version=version_of(form)
    )
    try:
        await web.call(request, web.services(request).orders.CancelOrder, message)
    except web.ServiceRefusal as refusal:
        return await refused_or_conflict(request, desk, order_id, refusal, form)
    return web.see_other(f"/orders/{order_id}?done=cancelled")


def units_with_reason(
    form, order, kind: str, reason_field: str, nothing: str
) -> tuple[dict[str, int], str, FormErrors]:
    """The units chosen per SKU (none left out as 0), the required reason and what is wrong with them:
    the one check of the forms that pick units off the order's lines (cancel lines, authorise a return)."""
    found = FormErrors()
    chosen = {sku: n for sku, n in line_units(form, order, kind, found).items() if n}
    reason = text(form, reason_field)
    if not reason:
        found.fields[reason_field] = REASON_REQUIRED
    if not chosen and not found.fields.keys() - {reason_field}:
        found.general = nothing
    return chosen, reason, found


@router.post("/orders/{order_id}/cancel-lines")
async def cancel_lines(request: Request, order_id: str, desk: Desk = requires(Permission.CANCEL_ORDERS)):
    form = await request.form()
    order = await load(request, order_id)
    cancel, reason, found = units_with_reason(form, order, "cancel", "cancel_lines_reason", NOTHING_TO_CANCEL)
    if found:
        return await invalid(request, desk, order_id, form, found)
    message = orders_pb2.ChangeOrderRequest(
        order_id=order_id,
        expected_version=version_of(form),
        actor=desk.actor(reason),
        cancel_lines=[orders_pb2.ChangeLine(sku=sku, quantity=n) for sku, n in cancel.items()],
    )
    fields = {f"cancel_lines[{sku}]": f"cancel-{n}" for n, sku in enumerate(line.sku for line in order.lines)}
    return await change(request, desk, order_id, form, message, fields, "lines_cancelled")


# --- exceptions ----------------------------------------------------------------------------------------------------
@router.post("/orders/{order_id}/exceptions")
async def raise_exception(
    request: Request, order_id: str, desk: Desk = requires(Permission.RAISE_EXCEPTIONS)
):
    form = await request.form()
    found = FormErrors()
    cause = text(form, "exception_cause")
    if not cause:
        found.fields["exception_cause"] = CAUSE_REQUIRED
    quantity = units(form, "exception_quantity", found)
    if found:
        return await invalid(request, desk, order_id, form, found)
    message = orders_pb2.RecordExceptionRequest(
        order_id=order_id,
        actor=desk.actor(cause),
        type=text(form, "exception_type"),
        cause=cause,
        expected_date=text(form, "exception_expected_date"),
        sku=text(form, "exception_sku"),
        warehouse=text(form, "exception_warehouse"),
        quantity=quantity,
        shipment_id=text(form, "exception_shipment_id"),
        source="desk",
    )
    try:
        await web.call(request, web.services(request).orders.RecordException, message)
    except web.ServiceRefusal as refusal:
        fields = {
            name: f"exception_{name}"
            for name in ("type", "cause", "expected_date", "sku", "warehouse", "quantity", "shipment_id")
        }
        return await refused_or_conflict(request, desk, order_id, refusal, form, fields)
    return web.see_other(f"/orders/{order_id}?done=exception")


@router.post("/orders/{order_id}/exceptions/{exception_id}/resolve")
async def resolve_exception(
    request: Request, order_id: str, exception_id: str, desk: Desk = requires(Permission.RESOLVE_EXCEPTIONS)
):
    form = await request.form()
    prefix = f"resolve-{exception_id}-"
    details = {name: text(form, prefix + name) for name in RESOLUTION_DETAILS if text(form, prefix + name)}
    message = orders_pb2.ResolveExceptionRequest(
        order_id=order_id,
        exception_id=exception_id,
        actor=desk.actor(text(form, prefix + "note")),
        action=text(form, prefix + "action"),
        note=text(form, prefix + "note"),
        details=details,
    )
    try:
        await web.call(request, web.services(request).orders.ResolveException, message)
    except web.ServiceRefusal as refusal:
        fields = {
            "action": prefix + "action",
            **{f"details.{name}": prefix + name for name in RESOLUTION_DETAILS},
        }
        return await refused_or_conflict(request, desk, order_id, refusal, form, fields)
    return web.see_other(f"/orders/{order_id}?done=resolved")


# --- returns -------------------------------------------------------------------------------------------------------
@router.post("/orders/{order_id}/returns")
async def authorise_return(
    request: Request, order_id: str, desk: Desk = requires(Permission.AUTHORISE_RETURNS)
):
    form = await request.form()
    order = await load(request, order_id)
    wanted, reason, found = units_with_reason(form, order, "return", "return_reason", NOTHING_TO_RETURN)
    if found:
        return await invalid(request, desk, order_id, form, found)
    message = returns_pb2.CreateReturnRequest(
        order_id=order_id,
        resolution="refund",
        idempotency_key=text(form, "return_key"),
        actor=desk.actor(reason).id,
        lines=[returns_pb2.ReturnLine(sku=sku, quantity=n, reason=reason) for sku, n in wanted.items()],
    )
    try:
        created = await web.call(request, web.services(request).returns.CreateReturn, message)
    except web.ServiceRefusal as refusal:
        place = {line.sku: n for n, line in enumerate(order.lines)}
        fields = {f"lines[{i}].quantity": f"return-{place[sku]}" for i, sku in enumerate(wanted)}
        return await refused_or_conflict(request, desk, order_id, refusal, form, fields)
    return web.see_other(
        f"/orders/{order_id}?done={'return_held' if created.status == 'held' else 'returned'}"
    )


@router.post("/orders/{order_id}/returns/{rma_id}/decide")
async def decide_return(
    request: Request, order_id: str, rma_id: str, desk: Desk = requires(Permission.DECIDE_HELD_ORDERS)
):
    """An approver authorises a held return (an optional note) or refuses it (a reason is required)."""
    form = await request.form()
    field = f"return_note-{rma_id}"  # one per held return on the page
    decision, note = text(form, "decision"), text(form, field)
    if decision not in ("authorise", "refuse"):
        return await invalid(request, desk, order_id, form, FormErrors(general=UNKNOWN_DECISION))
    if decision == "refuse" and not note:
        return await invalid(request, desk, order_id, form, FormErrors({field: REFUSAL_REASON_REQUIRED}))
    returns = web.services(request).returns
    call = returns.AuthoriseReturn if decision == "authorise" else returns.RefuseReturn
    done = "return_authorised" if decision == "authorise" else "return_refused"
    return await change_return(request, desk, order_id, rma_id, form, call, note, done)


@router.post("/orders/{order_id}/returns/{rma_id}/cancel")
async def cancel_return(
    request: Request, order_id: str, rma_id: str, desk: Desk = requires(Permission.AUTHORISE_RETURNS)
):
    """Cancels a return before its goods are received."""
    form = await request.form()
    call = web.services(request).returns.CancelReturn
    note = text(form, "return_note")
    return await change_return(request, desk, order_id, rma_id, form, call, note, "return_cancelled")


async def change_return(
    request: Request, desk: Desk, order_id: str, rma_id: str, form, call, note: str, done: str
):
    """One decision on a return (authorise, refuse, cancel), then the order page saying so."""
    message = returns_pb2.ReturnDecisionRequest(rma_id=rma_id, actor=desk.actor(note).id, reason=note)
    try:
        await web.call(request, call, message)
    except web.ServiceRefusal as refusal:
        return await refused_or_conflict(request, desk, order_id, refusal, form)
    return web.see_other(f"/orders/{order_id}?done={done}")


# --- the Today page's bulk decision ------------------------------------------------------------------------------------
BULK_NOTE_REQUIRED = N_("Enter a note: a rejection needs a reason.")
BULK_RESULTS = {
    "approved": N_("Approved"),
    "rejected": N_("Rejected"),
}


@dataclass(frozen=True)
class BulkResult:
    order_id: str
    done: bool
    message: str  # a message id (translated on the page), or the service's own words
    refusal: roles.Refusal | None = None


@router.post("/orders/decide")
async def decide_many(request: Request, desk: Desk = requires(Permission.DECIDE_HELD_ORDERS)):
    """Approves or rejects the selected held orders with one note; each order is decided on its own (its
    own limit check and version), and each result is reported."""
    form = await request.form()
    selected = list(dict.fromkeys(v for v in form.getlist("order_id") if isinstance(v, str) and v))
    approve = text(form, "decision") == "approve"
    note = text(form, "bulk_note")
    found = FormErrors()
    if not selected:
        found.general = NONE_SELECTED
    elif not approve and not note:
        found.fields["bulk_note"] = BULK_NOTE_REQUIRED
    if found:
        from console.screens import today

        return await today.page(request, desk, errors=found, values={"bulk_note": note}, status=422)
    results = []
    for order_id in selected:
        try:
            order = await load(request, order_id)
            await decide(request, desk, order, approve, note)
        except web.NotFoundPage:
            results.append(BulkResult(order_id, False, N_("No such order.")))
        except web.Forbidden as forbidden:
            results.append(BulkResult(order_id, False, "", forbidden.refusal))
        except web.ServiceRefusal as refusal:
            results.append(BulkResult(order_id, False, refusal.message))
        else:
            results.append(BulkResult(order_id, True, BULK_RESULTS["approved" if approve else "rejected"]))
    return web.render(
        request, "order_detail/bulk.html", {"results": results, "approve": approve, "note": note}
    )


# --- desk notes ----------------------------------------------------------------------------------------------------
@router.post("/orders/{order_id}/notes")
async def add_note(request: Request, order_id: str, desk: Desk = requires(Permission.WRITE_NOTES)):
    """An internal note (the desk only), or a message the customer's partner receives (order.message)."""
    form = await request.form()
    note = text(form, "note_text")
    visibility = "customer" if text(form, "note_visibility") == "customer" else "internal"
    if not note or len(note) > NOTE_LIMIT:
        found = FormErrors({"note_text": NOTE_REQUIRED if not note else NOTE_TOO_LONG})
        return await invalid(request, desk, order_id, form, found)
    message = orders_pb2.AddOrderNoteRequest(
        order_id=order_id, actor=desk.actor(), text=note, visibility=visibility
    )
    try:
        await web.call(request, web.services(request).orders.AddOrderNote, message)
    except web.ServiceRefusal as refusal:
        return await refused_or_conflict(request, desk, order_id, refusal, form, {"text": "note_text"})
    return web.see_other(f"/orders/{order_id}?done=noted")
