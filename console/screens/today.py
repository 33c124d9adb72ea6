"""Today: the landing page, the desk's work queues. Held orders first, highest priority first, with each
reason in words, the age in the queue, customer, value and proposals; paged by the orders service's cursor.
Then the returns held by the return policy, oldest first, each linked to its order (decided there)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from fastapi import APIRouter, Request

from console import i18n, web
from console.i18n import N_
from console.web import Desk, NavEntry, requires
from orderdesk.roles import Permission
from orderdesk.v1 import orders_pb2, returns_pb2

router = APIRouter()
NAV = NavEntry(N_("Today"), "/", Permission.READ, order=10)
PAGE_SIZE = 50


@dataclass(frozen=True)
class HeldOrder:
    order_id: str
    priority: int
    customer_id: str
    external_ref: str
    channel: str
    currency: str
    total: str
    reasons: list[str]  # codes
    proposals: list[str]  # kinds
    held_since: dt.datetime | None

    @classmethod
    def of(cls, order: orders_pb2.Order) -> HeldOrder:
        held = [h for h in order.history if h.status == "on_hold"]
        return cls(
            order_id=order.order_id,
            priority=order.priority,
            customer_id=order.customer_id,
            external_ref=order.external_ref,
            channel=order.channel,
            currency=order.currency,
            total=order.total_amount,
            reasons=list(dict.fromkeys(r.code for r in order.hold_reasons)),
            proposals=[p.kind for p in order.proposals],
            held_since=i18n.from_timestamp(held[-1].at) if held else None,
        )


@router.get("/")
async def today(request: Request, cursor: str = "", desk: Desk = requires(Permission.READ)):
    return await page(request, desk, cursor)


async def page(
    request: Request,
    desk: Desk,
    cursor: str = "",
    *,
    errors: web.FormErrors | None = None,
    values: dict | None = None,
    status: int = 200,
):
    """The page; with `errors` (and what was typed), after a bulk decision with bad input (order_detail)."""
    services = web.services(request)
    answer = await web.call(
        request,
        services.orders.ListOrders,
        orders_pb2.ListOrdersRequest(status="on_hold", order_by="priority", limit=PAGE_SIZE, cursor=cursor),
    )
    held_returns = await web.call(
        request, services.returns.ListReturns, returns_pb2.ListReturnsRequest(status="held", limit=PAGE_SIZE)
    )
    return web.render(
        request,
        "today/index.html",
        {
            "held": [HeldOrder.of(o) for o in answer.items],
            "held_returns": held_returns.items,
            "next_cursor": answer.next_cursor,
            "first_page": not cursor,
            "may_decide": desk.may(Permission.DECIDE_HELD_ORDERS),
            "errors": errors or web.FormErrors(),
            "values": values or {},
        },
        status=status,
    )
