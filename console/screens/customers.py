"""Customers: find one by id or name (intake's SearchCustomers, paged by id), and one customer's page with its
terms, credit limit, open exposure and available credit (intake's GetCustomer), its orders on hold and its
most recent orders (the orders service's ListOrders narrowed to the customer).
"""

from __future__ import annotations

import asyncio

import grpc
from fastapi import APIRouter, Request

from console import web
from console.i18n import N_
from console.screens.search import Found
from console.screens.today import HeldOrder
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk.roles import Permission
from orderdesk.v1 import intake_pb2, orders_pb2

router = APIRouter()
NAV = NavEntry(N_("Customers"), "/customers", Permission.READ, order=40)
PAGE_SIZE = 50
HELD_SHOWN = 50  # orders on hold on a customer's page (the rest: the search, narrowed to them)
RECENT_SHOWN = 10

QUERY = N_("Use at most 100 letters, digits and signs.")
STALE_PAGE = N_("This page of results is no longer available. Search again.")


@router.get("/customers")
async def customers(request: Request, q: str = "", cursor: str = "", desk: Desk = requires(Permission.READ)):
    query = q.strip()
    found = FormErrors()
    items: list[intake_pb2.CustomerDetail] = []
    next_cursor = ""
    try:
        answer = await web.call(
            request,
            web.services(request).intake.SearchCustomers,
            intake_pb2.SearchCustomersRequest(query=query, limit=PAGE_SIZE, cursor=cursor),
        )
        items, next_cursor = list(answer.items), answer.next_cursor
    except web.ServiceRefusal as refusal:
        if refusal.failure.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        for name in refusal.field_errors():
            if name == "query":
                found.fields["q"] = QUERY
            else:
                found.general = STALE_PAGE
    return web.render(
        request,
        "customers/list.html",
        {
            "query": query,
            "errors": found,
            "customers": items,
            "first_page": not cursor,
            "next_cursor": next_cursor,
        },
        status=422 if found else 200,
    )


@router.get("/customers/{customer_id}")
async def customer(request: Request, customer_id: str, desk: Desk = requires(Permission.READ)):
    services = web.services(request)
    try:
        detail, held, recent = await asyncio.gather(
            web.call(
                request, services.intake.GetCustomer, intake_pb2.GetCustomerRequest(customer_id=customer_id)
            ),
            web.call(
                request,
                services.orders.ListOrders,
                orders_pb2.ListOrdersRequest(
                    customer_id=customer_id, status="on_hold", order_by="priority", limit=HELD_SHOWN
                ),
            ),
            web.call(
                request,
                services.orders.ListOrders,
                orders_pb2.ListOrdersRequest(customer_id=customer_id, limit=RECENT_SHOWN),
            ),
        )
    except web.ServiceRefusal as refusal:
        if refusal.failure.code == grpc.StatusCode.NOT_FOUND:
            raise web.NotFoundPage() from None
        raise
    return web.render(
        request,
        "customers/detail.html",
        {
            "customer": detail,
            "held": [HeldOrder.of(o) for o in held.items],
            "more_held": bool(held.next_cursor),
            "recent": [Found.of(o) for o in recent.items],
        },
    )
