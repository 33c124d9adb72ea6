"""Order search: by order id, the partner's reference (PO number), customer, SKU, status, channel, partner and
the date received; a GET form (the search is in the address: bookmark it, send it, reload it), results paged
by the orders service's cursor (keyset: a page stays the same while orders arrive). The at-risk queue is a
search too (`/search?risk=any`, or one risk's code): the orders the promise watch sees at risk, most urgent
first (the orders service's order), each with its risks.

The orders service checks the search (ListOrders: the one rule); what it refuses is shown beside the field,
in the person's language. An order id looks that one order up (the other fields are not used then). A
customer is given by id or name: a name that matches one customer (intake's SearchCustomers) searches their
orders, one that matches several offers them to choose from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Request

from console import web, words
from console.i18n import N_
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk.roles import Permission
from orderdesk.v1 import intake_pb2, orders_pb2

router = APIRouter()
NAV = NavEntry(N_("Search"), "/search", Permission.READ, order=20)
PAGE_SIZE = 50
CUSTOMER_CHOICES = 20  # customers offered when a name matches several

DATE = N_("Enter a date as YYYY-MM-DD, for example 2026-11-01.")
EMPTY_PERIOD = N_("The end date cannot be before the start date.")
TEXT = N_("Use at most 128 letters, digits and signs.")
STATUS = N_("Choose a status from the list.")
RISK = N_("Choose a risk from the list.")
ANY_RISK = "any"  # the at-risk queue, whatever the risk
ORDER_ID = N_("This is not an order id.")
STALE_PAGE = N_("This page of results is no longer available. Search again.")
NOT_FOUND = N_("No order has the id %(order_id)s.")

# The service's field -> the form's field; a violation of another field is shown above the form.
FORM_FIELD = {"customer_id": "customer", "partner_id": "partner"}
MESSAGES = {
    ("created_from", ""): DATE,
    ("created_to", ""): DATE,
    ("created_to", "empty_period"): EMPTY_PERIOD,
    ("status", ""): STATUS,
    ("risk", ""): RISK,
    ("order_id", ""): ORDER_ID,
}


@dataclass(frozen=True)
class Search(web.QueryForm):
    """What the person asked for, as the form and the address carry it (every value a trimmed string)."""

    order_id: str = ""
    external_ref: str = ""
    customer: str = ""
    sku: str = ""
    status: str = ""
    channel: str = ""
    partner: str = ""
    created_from: str = ""
    created_to: str = ""
    risk: str = ""  # "any": the at-risk queue; a risk's code: only that risk

    def narrowed(self) -> bool:
        return bool(self.given())

    def address(self, cursor: str = "") -> str:
        """This search's page: the first, or the one after `cursor`."""
        query = {**self.given(), **({"cursor": cursor} if cursor else {})}
        return "/search" + (f"?{urlencode(query)}" if query else "")

    def request(self, cursor: str, customer_id: str) -> orders_pb2.ListOrdersRequest:
        return orders_pb2.ListOrdersRequest(
            partner_id=self.partner,
            status=self.status,
            external_ref=self.external_ref,
            customer_id=customer_id,
            sku=self.sku,
            channel=self.channel,
            created_from=self.created_from,
            created_to=self.created_to,
            limit=PAGE_SIZE,
            cursor=cursor,
            at_risk=bool(self.risk),
            risk="" if self.risk == ANY_RISK else self.risk,
        )


def form_errors(refusal: web.ServiceRefusal) -> FormErrors:
    """The service's refusal of a search, each field's message beside the form's field."""
    return refused_listing(
        refusal,
        Search,
        FORM_FIELD,
        lambda v, name: MESSAGES.get((v.field, v.reason)) or MESSAGES.get((v.field, "")) or TEXT,
    )


def refused_listing(
    refusal: web.ServiceRefusal, form: type, form_field: Mapping[str, str], message: Callable[..., str]
) -> FormErrors:
    """A refused ListOrders as a GET form's errors: each violation beside the form's field (the service's
    field named by `form_field`, the message by `message(violation, form field)`), a stale cursor above the
    form, anything else the service's own message."""
    found = FormErrors()
    for violation in refusal.failure.violations:
        name = form_field.get(violation.field, violation.field)
        if violation.field == "cursor":
            found.general = STALE_PAGE
        elif name in form.__dataclass_fields__:
            found.fields.setdefault(name, message(violation, name))
        else:
            found.general = refusal.message
    if not found:
        found.general = refusal.message
    return found


@dataclass(frozen=True)
class Found:
    """One order in the results."""

    order_id: str
    external_ref: str
    customer_id: str
    partner_id: str
    channel: str
    status: str
    archived: bool
    currency: str
    total: str
    received_at: dt.datetime | None
    risks: tuple[str, ...] = ()  # the promise watch's risk codes

    @classmethod
    def of(cls, order: orders_pb2.Order) -> Found:
        return cls(
            order_id=order.order_id,
            external_ref=order.external_ref,
            customer_id=order.customer_id,
            partner_id=order.partner_id,
            channel=order.channel,
            status=order.status,
            archived=order.archived,
            currency=order.currency,
            total=order.total_amount,
            received_at=order.history[0].at.ToDatetime(tzinfo=dt.UTC) if order.history else None,
            risks=tuple(r.code for r in order.risks),
        )


async def _one_order(request: Request, search: Search, found: FormErrors) -> list[Found]:
    try:
        order = await web.call(
            request,
            web.services(request).orders.GetOrder,
            orders_pb2.GetOrderRequest(order_id=search.order_id),
        )
    except web.ServiceRefusal as refusal:
        if refusal.failure.code == grpc.StatusCode.NOT_FOUND:
            return []
        if refusal.failure.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        found.fields["order_id"] = ORDER_ID
        return []
    return [Found.of(order)]


async def _customer(
    request: Request, text: str, found: FormErrors
) -> tuple[str, list[intake_pb2.CustomerDetail]]:
    """Whose orders the search means: (their id, []) when `text` is a customer's id or matches one customer;
    ("", the choices) when it matches several; (text, []) when none (an id: orders of a customer that is no
    longer in the master data are still found)."""
    services = web.services(request)
    try:
        await web.call(request, services.intake.GetCustomer, intake_pb2.GetCustomerRequest(customer_id=text))
        return text, []
    except web.ServiceRefusal as refusal:
        if refusal.failure.code != grpc.StatusCode.NOT_FOUND:
            raise
    try:
        answer = await web.call(
            request,
            services.intake.SearchCustomers,
            intake_pb2.SearchCustomersRequest(query=text, limit=CUSTOMER_CHOICES),
        )
    except web.ServiceRefusal as refusal:
        if refusal.failure.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        found.fields["customer"] = TEXT
        return "", []
    if len(answer.items) == 1:
        return answer.items[0].customer_id, []
    if answer.items:
        return "", list(answer.items)
    return text, []


@router.get("/search")
async def search(request: Request, cursor: str = "", desk: Desk = requires(Permission.READ)):
    asked = Search.of(request.query_params)
    found = FormErrors()
    results: list[Found] = []
    choices: list[intake_pb2.CustomerDetail] = []
    next_cursor = ""
    if asked.order_id:
        results = await _one_order(request, asked, found)
    else:
        customer_id = ""
        if asked.customer:
            customer_id, choices = await _customer(request, asked.customer, found)
        if not choices and not found:
            try:
                answer = await web.call(
                    request, web.services(request).orders.ListOrders, asked.request(cursor, customer_id)
                )
                results, next_cursor = [Found.of(o) for o in answer.items], answer.next_cursor
            except web.ServiceRefusal as refusal:
                if refusal.failure.code != grpc.StatusCode.INVALID_ARGUMENT:
                    raise
                found = form_errors(refusal)
    return web.render(
        request,
        "search/index.html",
        {
            "asked": asked,
            "errors": found,
            "results": results,
            "choices": [
                (c, Search(**{**asked.given(), "customer": c.customer_id}).address()) for c in choices
            ],
            "first_page": not cursor,
            "first_address": asked.address(),
            "next_address": asked.address(next_cursor) if next_cursor else "",
            "status_options": [(code, words.label(words.STATUSES, code)) for code in words.STATUSES],
            "channel_options": [(code, words.label(words.CHANNELS, code)) for code in words.CHANNELS],
            "risk_options": [(code, words.label(words.RISKS, code)) for code in words.RISKS],
            "any_risk": ANY_RISK,
            "not_found": NOT_FOUND if asked.order_id and not results and not found else "",
        },
        status=422 if found else 200,
    )
