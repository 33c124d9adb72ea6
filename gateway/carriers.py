"""Carriers and tracking aggregators: `POST /v1/carriers/{carrier}/tracking` (README "Carriers").

A request is a batch of one carrier's tracking events, signed like our own webhooks
(`Orderdesk-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, orderdesk.signatures)
with the carrier's shared secret (ORDERDESK_CARRIER_SECRETS). The API key comes first (scope
`fulfillment`; a key tied to a carrier posts only that carrier's events), then the signature: unsigned, a
bad signature or a timestamp beyond the tolerance is 401, the same signed request again is 409
(`replayed`); none of them reads the events. Shipping then records each event once per carrier and event
id, in the carrier's time order, and answers what became of each one.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import AwareDatetime, BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import Note, RequestBody, Text
from gateway.problems import Problem
from gateway.routing import COMMON, FULFILLMENT, backends, problem_responses, scoped
from orderdesk import metrics, signatures
from orderdesk.config import CarrierSettings
from orderdesk.v1 import shipping_pb2

SIGNATURE_HEADER = "Orderdesk-Signature"
VOCABULARY = (
    "label_created, picked_up, in_transit, delayed, out_for_delivery, available_for_pickup, "
    "delivery_attempted, delivered, exception, returning_to_sender, returned, cancelled, unknown"
)
CarrierCode = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", description="e.g. dhl")
]


class CarrierEventIn(RequestBody):
    event_id: str = Field(
        min_length=1, max_length=128, description="your own id of the event: a repeat changes nothing"
    )
    tracking_number: str = Field("", max_length=128, description="the parcel (or send shipment_id)")
    shipment_id: str = Field("", max_length=80, description="our shipment id, when you know it")
    status: str = Field(
        min_length=1,
        max_length=64,
        description=f"one of {VOCABULARY}; other carriers' words for them are understood "
        "(InTransit, AttemptFail …), anything else is kept as unknown",
    )
    carrier_status: str = Field("", max_length=128, description="your own status code, kept as sent")
    message: Note = ""
    location: Text = ""
    occurred_at: AwareDatetime = Field(description="when it happened, RFC 3339 (your time)")
    expected_delivery_date: dt.date | None = Field(None, description="delayed: the new date")
    carrier: str = Field("", max_length=64, description="an aggregator: the carrier moving the parcel")


class TrackingIn(RequestBody):
    events: list[CarrierEventIn] = Field(min_length=1, max_length=500)


class CarrierEventResultOut(BaseModel):
    event_id: str
    outcome: str = Field(
        description="applied (the newest word: the shipment follows it), recorded (kept in the timeline: "
        "older than the newest, or after delivery), duplicate (this event id was recorded before), "
        "unknown_shipment, ambiguous (several parcels have that number: send shipment_id)"
    )
    shipment_id: str
    status: str = Field(description="the shipment's status now")
    tracking_status: str = Field(description="the event's status in the vocabulary")


class TrackingResultOut(BaseModel):
    results: list[CarrierEventResultOut]


def _refused(carrier: str, reason: str, status: int, detail: str) -> Problem:
    metrics.CARRIER_REQUESTS_REFUSED.labels(carrier, reason).inc()
    slug = {401: "unauthenticated", 404: "http-404", 409: "replayed"}[status]
    titles = {401: "Unauthenticated", 404: "Not Found", 409: "Conflict"}
    return Problem(status, titles[status], detail, slug, rule=reason)


async def signed_by_carrier(carrier: CarrierCode, request: Request) -> str:
    """The carrier whose secret signed this request's raw body, remembered so a replay is refused."""
    settings: CarrierSettings = request.app.state.carriers
    code = carrier.lower()
    secrets = settings.secrets.get(code)
    if not secrets:
        raise _refused("other", "unknown_carrier", 404, f"no carrier {carrier!r} is configured here")
    checked = signatures.check(
        secrets,
        request.headers.get(SIGNATURE_HEADER, ""),
        await request.body(),
        time.time(),  # real time, as the sender's clock (orderdesk.clock: signatures keep real time)
        settings.tolerance_seconds,
    )
    if checked.verdict is signatures.Verdict.UNSIGNED:
        raise _refused(code, "unsigned", 401, f"sign the body: {SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex>")
    if checked.verdict is signatures.Verdict.STALE:
        raise _refused(
            code, "stale", 401, f"the signature's timestamp is more than {settings.tolerance_seconds} s away"
        )
    if checked.verdict is not signatures.Verdict.VALID:
        raise _refused(code, "bad_signature", 401, "the signature does not match the body")
    keep = dt.timedelta(seconds=2 * settings.tolerance_seconds)
    if not await request.app.state.store.first_sight(code, checked.signature, keep):
        raise _refused(
            code, "replayed", 409, "this signed request was received before; sign each request anew"
        )
    return code


router = APIRouter()


@router.post(
    "/v1/carriers/{carrier}/tracking",
    response_model=TrackingResultOut,
    tags=["carriers"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="A carrier's (or aggregator's) tracking events, signed with its shared secret",
    description=__doc__,
)
async def record_tracking(
    carrier: CarrierCode,
    body: TrackingIn,
    request: Request,
    who: Principal = scoped(FULFILLMENT),
    source: str = Depends(signed_by_carrier),
):
    if who.carrier and who.carrier != source:
        raise Problem(
            403, "Forbidden", f"this API key posts only {who.carrier}'s tracking events", "forbidden"
        )
    message = shipping_pb2.CarrierEventsRequest(source=source, actor=who.actor, warehouse=who.warehouse_scope)
    for e in body.events:
        event = message.events.add(
            event_id=e.event_id,
            tracking_number=e.tracking_number,
            shipment_id=e.shipment_id,
            status=e.status,
            carrier_status=e.carrier_status,
            message=e.message,
            location=e.location,
            expected_delivery_date=e.expected_delivery_date.isoformat() if e.expected_delivery_date else "",
            carrier=e.carrier,
        )
        event.occurred_at.FromDatetime(e.occurred_at)
    services = backends(request)
    answer = await services.call(services.shipping.RecordCarrierEvents, message)
    return TrackingResultOut(
        results=[
            CarrierEventResultOut(
                event_id=r.event_id,
                outcome=r.outcome,
                shipment_id=r.shipment_id,
                status=r.status,
                tracking_status=r.tracking_status,
            )
            for r in answer.results
        ]
    )
