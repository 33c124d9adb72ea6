"""Partner API: webhook endpoints, their deliveries, and the ordered event feed (long poll or Server-Sent Events).

Every route is scoped to the caller's partner: another partner's endpoint is 404, and the feed holds only
events about the caller's own orders. The secret is in the answer of create and rotate-secret only.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import RequestBody
from gateway.routing import COMMON, ORDERS, RETURNS, backends, problem_responses, scoped
from orderdesk.parsing import whole_number
from orderdesk.v1 import notifier_pb2

router = APIRouter(tags=["webhooks and events"])
EndpointId = Annotated[str, Path(max_length=40)]
DeliveryId = Annotated[str, Path(max_length=40)]
SSE_WAIT_SECONDS = 15.0
MAX_WAIT_SECONDS = 30.0
EVENT_TYPES_HELP = (
    '"order.confirmed", "shipment.shipped", "order.*" (every order event), or "*" (everything); '
    "see the README for the types"
)


# --- models --------------------------------------------------------------------------------------
class WebhookIn(RequestBody):
    url: str = Field(max_length=2000, description="https://... on a public address; we POST each event here")
    event_types: list[Annotated[str, Field(max_length=64)]] = Field(
        max_length=50, description=EVENT_TYPES_HELP
    )
    secret: str | None = Field(
        None,
        max_length=200,
        description="your signing secret (16+ characters); generated and shown once when absent",
    )


def _time(ts) -> dt.datetime | None:
    return ts.ToDatetime(dt.UTC) if ts.seconds or ts.nanos else None


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    status: Literal["active", "paused", "disabled"] | str
    disabled_reason: str | None = None
    cursor_sequence: int = Field(description="the last feed sequence this endpoint has taken on")
    parked_deliveries: int
    created_at: dt.datetime | None
    updated_at: dt.datetime | None

    @classmethod
    def from_proto(cls, e: notifier_pb2.Endpoint) -> WebhookOut:
        return cls(
            id=e.endpoint_id,
            url=e.url,
            event_types=list(e.event_types),
            status=e.status,
            disabled_reason=e.disabled_reason or None,
            cursor_sequence=e.cursor_sequence,
            parked_deliveries=e.parked_deliveries,
            created_at=_time(e.created_at),
            updated_at=_time(e.updated_at),
        )


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="shown only now: keep it to verify the Orderdesk-Signature header")

    @classmethod
    def from_answer(cls, answer: notifier_pb2.EndpointWithSecret) -> WebhookWithSecret:
        return cls(**WebhookOut.from_proto(answer.endpoint).model_dump(), secret=answer.secret)


class WebhookList(BaseModel):
    items: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    at: dt.datetime | None
    status_code: int | None = Field(description="the receiver's HTTP status; null when it did not answer")
    latency_ms: float
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: str
    sequence: int
    event_id: str
    event_type: str
    order_id: str
    status: Literal["pending", "delivered", "failed", "parked"] | str
    attempts: int = Field(description="attempts in the current round (a replay starts a new round)")
    next_attempt_at: dt.datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: dt.datetime | None
    delivered_at: dt.datetime | None
    attempt_log: list[AttemptOut]

    @classmethod
    def from_proto(cls, d: notifier_pb2.Delivery) -> DeliveryOut:
        return cls(
            id=d.delivery_id,
            sequence=d.sequence,
            event_id=d.event_id,
            event_type=d.event_type,
            order_id=d.order_id,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=_time(d.next_attempt_at),
            last_status_code=d.last_status_code or None,
            last_error=d.last_error or None,
            created_at=_time(d.created_at),
            delivered_at=_time(d.delivered_at),
            attempt_log=[
                AttemptOut(
                    attempt=a.attempt,
                    at=_time(a.at),
                    status_code=a.status_code or None,
                    latency_ms=round(a.latency_ms, 2),
                    error=a.error or None,
                    response_excerpt=a.response_excerpt or None,
                )
                for a in d.attempt_log
            ],
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class ReplayRangeIn(RequestBody):
    from_sequence: int = Field(ge=1, strict=True)
    to_sequence: int = Field(ge=1, strict=True)


class ReplayRangeOut(BaseModel):
    replayed: int = Field(
        description="deliveries queued again (only events this endpoint wants, up to its cursor)"
    )


class EventPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="the same JSON documents webhooks POST, oldest first")
    last_sequence: int = Field(description="your newest sequence")
    next_after: int = Field(description="pass as ?after= to continue")


# --- endpoints -----------------------------------------------------------------------------------
def _ref(endpoint_id: str, who: Principal) -> notifier_pb2.EndpointRequest:
    return notifier_pb2.EndpointRequest(endpoint_id=endpoint_id, partner_id=who.partner_id)


@router.post(
    "/v1/webhooks",
    status_code=201,
    response_model=WebhookWithSecret,
    responses=problem_responses(*COMMON),
    summary="Register a webhook endpoint (the answer carries the signing secret, shown only this once)",
)
async def create_webhook(body: WebhookIn, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    answer = await services.call(
        services.notifier.CreateEndpoint,
        notifier_pb2.CreateEndpointRequest(
            partner_id=who.partner_id, url=body.url, event_types=body.event_types, secret=body.secret or ""
        ),
    )
    return WebhookWithSecret.from_answer(answer)


@router.get(
    "/v1/webhooks",
    response_model=WebhookList,
    responses=problem_responses(*COMMON),
    summary="Your webhook endpoints",
)
async def list_webhooks(request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    answer = await services.call(
        services.notifier.ListEndpoints, notifier_pb2.ListEndpointsRequest(partner_id=who.partner_id)
    )
    return WebhookList(items=[WebhookOut.from_proto(e) for e in answer.items])


@router.get(
    "/v1/webhooks/{endpoint_id}", response_model=WebhookOut, responses=problem_responses(*COMMON, 404)
)
async def get_webhook(endpoint_id: EndpointId, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    return WebhookOut.from_proto(await services.call(services.notifier.GetEndpoint, _ref(endpoint_id, who)))


@router.delete(
    "/v1/webhooks/{endpoint_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses(*COMMON, 404),
    summary="Delete an endpoint and its delivery log",
)
async def delete_webhook(endpoint_id: EndpointId, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    await services.call(services.notifier.DeleteEndpoint, _ref(endpoint_id, who))
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{endpoint_id}/pause",
    response_model=WebhookOut,
    responses=problem_responses(*COMMON, 404),
    summary="Stop deliveries; events keep collecting in your feed and follow on resume",
)
async def pause_webhook(endpoint_id: EndpointId, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    return WebhookOut.from_proto(await services.call(services.notifier.PauseEndpoint, _ref(endpoint_id, who)))


@router.post(
    "/v1/webhooks/{endpoint_id}/resume",
    response_model=WebhookOut,
    responses=problem_responses(*COMMON, 404),
    summary="Deliver again (also after a 410 Gone disabled the endpoint), from where it stopped",
)
async def resume_webhook(endpoint_id: EndpointId, request: Request, who: Principal = scoped(ORDERS, RETURNS)):
    services = backends(request)
    return WebhookOut.from_proto(
        await services.call(services.notifier.ResumeEndpoint, _ref(endpoint_id, who))
    )


@router.post(
    "/v1/webhooks/{endpoint_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=problem_responses(*COMMON, 404),
    summary="A new signing secret, shown only in this answer; the old one signs beside it for a day",
)
async def rotate_webhook_secret(
    endpoint_id: EndpointId, request: Request, who: Principal = scoped(ORDERS, RETURNS)
):
    services = backends(request)
    return WebhookWithSecret.from_answer(
        await services.call(services.notifier.RotateSecret, _ref(endpoint_id, who))
    )


# --- deliveries ----------------------------------------------------------------------------------
@router.get(
    "/v1/webhooks/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(*COMMON, 404),
    summary="The delivery log, newest first, with every attempt (status, latency, response excerpt)",
)
async def list_deliveries(
    endpoint_id: EndpointId,
    request: Request,
    status: Annotated[Literal["pending", "delivered", "failed", "parked"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str, Query(max_length=20)] = "",
    who: Principal = scoped(ORDERS, RETURNS),
):
    services = backends(request)
    page = await services.call(
        services.notifier.ListDeliveries,
        notifier_pb2.ListDeliveriesRequest(
            endpoint_id=endpoint_id,
            partner_id=who.partner_id,
            status=status or "",
            limit=limit,
            cursor=cursor,
        ),
    )
    return DeliveryPage(
        items=[DeliveryOut.from_proto(d) for d in page.items], next_cursor=page.next_cursor or None
    )


@router.post(
    "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses=problem_responses(*COMMON, 404),
    summary="Send one delivery again (a new round of retries)",
)
async def replay_delivery(
    endpoint_id: EndpointId,
    delivery_id: DeliveryId,
    request: Request,
    who: Principal = scoped(ORDERS, RETURNS),
):
    services = backends(request)
    return DeliveryOut.from_proto(
        await services.call(
            services.notifier.ReplayDelivery,
            notifier_pb2.ReplayDeliveryRequest(
                endpoint_id=endpoint_id, partner_id=who.partner_id, delivery_id=delivery_id
            ),
        )
    )


@router.post(
    "/v1/webhooks/{endpoint_id}/replay",
    response_model=ReplayRangeOut,
    responses=problem_responses(*COMMON, 404, 409),
    summary="Send every event of a sequence range again (those this endpoint wants)",
)
async def replay_range(
    endpoint_id: EndpointId, body: ReplayRangeIn, request: Request, who: Principal = scoped(ORDERS, RETURNS)
):
    services = backends(request)
    answer = await services.call(
        services.notifier.ReplayRange,
        notifier_pb2.ReplayRangeRequest(
            endpoint_id=endpoint_id,
            partner_id=who.partner_id,
            from_sequence=body.from_sequence,
            to_sequence=body.to_sequence,
        ),
    )
    return ReplayRangeOut(replayed=answer.replayed)


# --- the event feed ------------------------------------------------------------------------------
@router.get(
    "/v1/events",
    response_model=EventPage,
    responses={
        **problem_responses(*COMMON),
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "JSON page, or with `Accept: text/event-stream` a stream of `id: <sequence>` events",
        },
    },
    summary="Your ordered event feed after a sequence: a long poll (?wait=) or Server-Sent Events "
    "(resumable with Last-Event-ID)",
)
async def read_events(
    request: Request,
    after: Annotated[int, Query(ge=0, description="the last sequence you have seen (0: from the start)")] = 0,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait when nothing is new")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    accept: Annotated[str, Header()] = "",
    last_event_id: Annotated[str, Header(alias="Last-Event-ID", max_length=20)] = "",
    who: Principal = scoped(ORDERS, RETURNS),
):
    services = backends(request)
    if "text/event-stream" in accept:
        resumed = whole_number(last_event_id)  # an unreadable id resumes from `after`, as no id does
        start = after if resumed is None else resumed
        return StreamingResponse(
            _sse(request, who.partner_id, start, limit),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    answer = await _read(services, who.partner_id, after, limit, wait)
    events = [json.loads(e.body) for e in answer.entries]
    return EventPage(
        events=events,
        last_sequence=answer.last_sequence,
        next_after=answer.entries[-1].sequence if answer.entries else after,
    )


async def _read(
    services, partner_id: str, after: int, limit: int, wait: float
) -> notifier_pb2.ReadFeedResponse:
    return await services.call(
        services.notifier.ReadFeed,
        notifier_pb2.ReadFeedRequest(
            partner_id=partner_id, after_sequence=after, limit=limit, wait_seconds=wait
        ),
        timeout=services.timeout + wait,
    )


async def _sse(request: Request, partner_id: str, after: int, limit: int):
    services = backends(request)
    yield b"retry: 2000\n\n"
    while not await request.is_disconnected():
        answer = await _read(services, partner_id, after, limit, SSE_WAIT_SECONDS)
        if not answer.entries:
            yield b": keep-alive\n\n"
        for entry in answer.entries:
            yield f"id: {entry.sequence}\nevent: {entry.type}\ndata: {entry.body}\n\n".encode()
            after = entry.sequence
