"""Today: the landing page, the desk's work queues, each its own address (`/?queue=…`):

    held        held orders (highest priority first), each reason in words, the age in the queue, customer,
                value, proposals; several are approved or rejected together with one note
    exceptions  open orders with an open exception (oldest first): each exception's type and age
    at_risk     orders the promise watch sees at risk (most urgent first): each risk in words, the slip
    backorders  scheduled orders waiting for stock (the soonest expected ship date first) and the dates

Each narrows by reason (the queue's own: hold reason, exception type, risk), customer, channel and warehouse
(a plain GET form, so a queue can be bookmarked), sorts by what the queue offers, and pages by the orders
service's cursor (keyset: a page stays put while orders arrive). Every queue's count (and per reason) comes
from one CountQueues call, on the page and at /today/counts (JSON) where console/static/console.js reads
them every few seconds to keep the counts current without reloading; without JavaScript the page shows the
counts of its loading. Below the queue: the returns held by the return policy, oldest first, each linked to its
order (decided there)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from console import i18n, web, words
from console.i18n import N_
from console.screens.search import TEXT, refused_listing
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk.roles import Permission
from orderdesk.v1 import orders_pb2, returns_pb2

router = APIRouter()
NAV = NavEntry(N_("Today"), "/", Permission.READ, order=10)
PAGE_SIZE = 50
COUNTS_EVERY_SECONDS = 10  # how often console.js asks /today/counts
COUNTS_FRESH_SECONDS = 2.0  # how long one CountQueues answer serves every desk of this console

CHOOSE = N_("Choose from the list.")
NO_QUEUE = N_("There is no such work queue. Choose one of the tabs.")

SORTS = {
    "priority": N_("Highest priority first"),
    "oldest": N_("Oldest first"),
    "newest": N_("Newest first"),
    "expected": N_("Soonest expected date first"),
    "urgency": N_("Most urgent first"),
}


@dataclass(frozen=True)
class Queue:
    """One work queue: its name, what its reason filter means (codes in words), the sorts it offers (the
    first is the default) and the ListOrders request that lists it."""

    key: str
    title: str
    reason_label: str
    reasons: Mapping[str, str]
    sorts: tuple[str, ...]
    caption: str

    def request(self, asked: Asked, cursor: str) -> orders_pb2.ListOrdersRequest:
        common = {
            "customer_id": asked.customer,
            "channel": asked.channel,
            "warehouse": asked.warehouse,
            "limit": PAGE_SIZE,
            "cursor": cursor,
        }
        sort = asked.sort or self.sorts[0]
        if self.key == "held":
            return orders_pb2.ListOrdersRequest(
                status="on_hold", hold_reason=asked.reason, order_by=sort, **common
            )
        if self.key == "exceptions":
            return orders_pb2.ListOrdersRequest(
                open_exception=True, exception_type=asked.reason, order_by=sort, **common
            )
        if self.key == "at_risk":
            return orders_pb2.ListOrdersRequest(at_risk=True, risk=asked.reason, **common)
        return orders_pb2.ListOrdersRequest(status="scheduled", order_by=sort, **common)


QUEUES = {
    q.key: q
    for q in (
        Queue(
            "held",
            N_("Held orders"),
            N_("Hold reason"),
            words.HOLD_REASONS,
            ("priority", "oldest", "newest"),
            N_("Held orders"),
        ),
        Queue(
            "exceptions",
            N_("Open exceptions"),
            N_("Exception type"),
            words.EXCEPTION_TYPES,
            ("oldest", "newest", "priority"),
            N_("Orders with an open exception"),
        ),
        Queue(
            "at_risk",
            N_("Orders at risk"),
            N_("Risk"),
            words.RISKS,
            ("urgency",),
            N_("Orders at risk of missing their promised date"),
        ),
        Queue(
            "backorders",
            N_("Backorders"),
            "",
            {},
            ("expected", "priority", "oldest"),
            N_("Orders waiting for stock"),
        ),
    )
}


@dataclass(frozen=True)
class Asked(web.QueryForm):
    """The queue and its filters as the address carries them (each a trimmed string)."""

    queue: str = "held"
    reason: str = ""
    customer: str = ""
    channel: str = ""
    warehouse: str = ""
    sort: str = ""

    @classmethod
    def of(cls, query) -> Asked:
        asked = super().of(query)
        return replace(asked, queue=asked.queue or "held")

    def filtered(self) -> bool:
        return any(getattr(self, name) for name in ("reason", "customer", "channel", "warehouse"))

    def check(self) -> FormErrors:
        """What the console can tell is wrong before asking (the service checks the rest)."""
        found = FormErrors()
        queue = QUEUES.get(self.queue)
        if queue is None:  # no field shows the queue (the tabs do): said above the form
            found.general = NO_QUEUE
            return found
        if self.reason and self.reason not in queue.reasons:
            found.fields["reason"] = CHOOSE
        if self.sort and self.sort not in queue.sorts:
            found.fields["sort"] = CHOOSE
        if self.channel and self.channel not in words.CHANNELS:
            found.fields["channel"] = CHOOSE
        return found


# The service's field -> the form's field.
FORM_FIELD = {
    "customer_id": "customer",
    "hold_reason": "reason",
    "exception_type": "reason",
    "risk": "reason",
    "order_by": "sort",
}


def form_errors(refusal: web.ServiceRefusal) -> FormErrors:
    return refused_listing(
        refusal, Asked, FORM_FIELD, lambda v, name: CHOOSE if name in ("reason", "sort", "channel") else TEXT
    )


@dataclass(frozen=True)
class Row:
    """One order in a queue, with what the queues show of it."""

    order_id: str
    priority: int
    customer_id: str
    external_ref: str
    channel: str
    status: str
    currency: str
    total: str
    reasons: list[str]  # hold reason codes
    proposals: list[str]  # kinds
    held_since: dt.datetime | None
    exceptions: list[tuple[str, dt.datetime | None]]  # open ones: (type, opened at)
    risks: list[tuple[str, int]]  # (code, days late)
    promised: str
    expected_ship_date: str
    expected_delivery_date: str
    scheduled_since: dt.datetime | None

    @classmethod
    def of(cls, order: orders_pb2.Order) -> Row:
        return cls(
            order_id=order.order_id,
            priority=order.priority,
            customer_id=order.customer_id,
            external_ref=order.external_ref,
            channel=order.channel,
            status=order.status,
            currency=order.currency,
            total=order.total_amount,
            reasons=list(dict.fromkeys(r.code for r in order.hold_reasons)),
            proposals=[p.kind for p in order.proposals],
            held_since=_since(order, "on_hold"),
            exceptions=[
                (e.type, i18n.from_timestamp(e.opened_at)) for e in order.exceptions if e.status == "open"
            ],
            risks=[(r.code, r.slip_days) for r in order.risks],
            promised=order.requested_delivery_date,
            expected_ship_date=order.expected_ship_date,
            expected_delivery_date=order.expected_delivery_date,
            scheduled_since=_since(order, "scheduled"),
        )


# A held order as the customer page lists it: a row of the held queue.
HeldOrder = Row


def _since(order: orders_pb2.Order, status: str) -> dt.datetime | None:
    """When the order last entered `status` (its time in the queue), None when it never did."""
    entered = [h for h in order.history if h.status == status]
    return i18n.from_timestamp(entered[-1].at) if entered else None


class FreshCounts:
    """CountQueues asked at most once per COUNTS_FRESH_SECONDS however many desks load Today or poll its
    counts at once (each answer is several COUNTs over every open order): concurrent askers share one call.
    Forgotten whenever this console changes something (ConsoleMiddleware, before the answer to the POST
    leaves), so a person's own approval or hold shows in the counts of the very next page."""

    def __init__(self, fresh_seconds: float = COUNTS_FRESH_SECONDS):
        self.fresh_seconds = fresh_seconds
        self._answer: orders_pb2.QueueCounts | None = None
        self._asked_at = 0.0
        self._asking: asyncio.Future | None = None
        self._generation = 0  # moved on by forget(): an answer asked before it is not kept

    async def get(self, ask: Callable[[], Awaitable[orders_pb2.QueueCounts]]) -> orders_pb2.QueueCounts:
        if self._answer is not None and time.monotonic() - self._asked_at < self.fresh_seconds:
            return self._answer
        if self._asking is None:
            self._asking = asyncio.ensure_future(self._ask(ask, self._generation))
        # shield: one asker giving up (its browser went away) does not cancel the others' answer
        return await asyncio.shield(self._asking)

    async def _ask(self, ask, generation: int) -> orders_pb2.QueueCounts:
        asked_at = time.monotonic()
        try:
            answer = await ask()
        finally:
            if generation == self._generation:
                self._asking = None
        if generation == self._generation:
            self._answer, self._asked_at = answer, asked_at
        return answer

    def forget(self) -> None:
        """Something changed here: the next asker asks again."""
        self._generation += 1
        self._answer, self._asking = None, None


async def queue_counts(request: Request) -> orders_pb2.QueueCounts:
    def ask():
        return web.call(request, web.services(request).orders.CountQueues, orders_pb2.CountQueuesRequest())

    return await request.app.state.queue_counts.get(ask)


def counted(counts: orders_pb2.QueueCounts) -> dict[str, int]:
    """Every count by the key the page marks it with: "<queue>" and "<queue>.<code>"."""
    found = {
        "held": counts.held,
        "exceptions": counts.exceptions,
        "at_risk": counts.at_risk,
        "backorders": counts.backorders,
    }
    for queue, per_code in (
        ("held", counts.held_by_reason),
        ("exceptions", counts.exceptions_by_type),
        ("at_risk", counts.at_risk_by_risk),
    ):
        found.update({f"{queue}.{c.code}": c.count for c in per_code})
    return found


@router.get("/")
async def today(request: Request, cursor: str = "", desk: Desk = requires(Permission.READ)):
    return await page(request, desk, cursor)


@router.get("/today/counts")
async def counts(request: Request, desk: Desk = requires(Permission.READ)):
    """Every queue's count (and per reason), as numbers and as the page shows them (in the person's
    language): {"counts": {"held": 12, "held.price_mismatch": 5, …}, "shown": {"held": "12", …}}."""
    found = counted(await queue_counts(request))
    return JSONResponse(
        {"counts": found, "shown": {key: i18n.format_number(n) for key, n in found.items()}},
        headers={"Cache-Control": "no-store"},
    )


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
    asked = Asked.of(request.query_params) if request.method == "GET" else Asked()
    queue = QUEUES.get(asked.queue, QUEUES["held"])

    async def listed() -> tuple[list[Row], str, FormErrors]:
        refused = asked.check()
        if refused:
            return [], "", refused
        try:
            answer = await web.call(
                request, web.services(request).orders.ListOrders, queue.request(asked, cursor)
            )
        except web.ServiceRefusal as refusal:
            if refusal.failure.code != grpc.StatusCode.INVALID_ARGUMENT:
                raise
            return [], "", form_errors(refusal)
        return [Row.of(o) for o in answer.items], answer.next_cursor, FormErrors()

    # The page's orders, every queue's count and the held returns at once: three calls, one wait.
    (rows, next_cursor, refused), answered, held_returns = await asyncio.gather(
        listed(),
        queue_counts(request),
        web.call(
            request,
            web.services(request).returns.ListReturns,
            returns_pb2.ListReturnsRequest(status="held", limit=PAGE_SIZE),
        ),
    )
    found = counted(answered)
    return web.render(
        request,
        "today/index.html",
        {
            "asked": asked,
            "queue": queue,
            "queues": [
                (q, "/" + (f"?{urlencode({'queue': q.key})}" if q.key != "held" else ""))
                for q in QUEUES.values()
            ],
            "rows": rows,
            "counts": found,
            "held_returns": held_returns.items,
            "counts_every": COUNTS_EVERY_SECONDS,
            "reason_options": [
                (code, words.label(queue.reasons, code), found.get(f"{queue.key}.{code}", 0))
                for code in queue.reasons
            ],
            "channel_options": [(code, words.label(words.CHANNELS, code)) for code in words.CHANNELS],
            "sort_options": [(key, i18n.gettext(SORTS[key])) for key in queue.sorts],
            "sort_label": i18n.gettext(SORTS[asked.sort if asked.sort in queue.sorts else queue.sorts[0]]),
            "query": asked.given(),
            "next_cursor": next_cursor,
            "first_page": not cursor,
            "may_decide": desk.may(Permission.DECIDE_HELD_ORDERS) and queue.key == "held",
            "errors": errors or refused,
            "values": values or {},
        },
        status=status if not refused else 422,
    )
