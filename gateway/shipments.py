"""Shipment routes of Partner API v1: a partner's shipments of an order, and the warehouse's and carrier's
events on a shipment.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import Note, RequestBody, Text, instant
from gateway.routing import COMMON, FULFILLMENT, ORDERS, RETURNS, backends, problem_responses, scoped
from orderdesk.v1 import shipping_pb2


# --- bodies ------------------------------------------------------------------------------
class ShipmentEventIn(RequestBody):
    type: Literal["picked", "packed", "shipped", "delivered", "delayed", "lost"] = Field(
        description="a step, or a carrier's tracking event on a shipped parcel (delayed, lost: the order gets an "
        "exception and is at risk)"
    )
    carrier: Text = Field("", description="required when type is shipped")
    tracking_number: Text = Field("", description="required when type is shipped")
    cause: Note = Field("", description="delayed, lost: what the carrier reported")
    expected_delivery_date: str = Field("", max_length=10, description="delayed: the new date, YYYY-MM-DD")
    occurred_at: AwareDatetime | None = Field(None, description="RFC 3339; default: now")


class ShipmentLineOut(BaseModel):
    sku: str
    quantity: int


class TrackingEntryOut(BaseModel):
    event_id: str
    source: str = Field(description="the carrier or aggregator that sent it")
    carrier: str
    status: str = Field(description='the normalised vocabulary (README "Carriers")')
    carrier_status: str = Field(description="the carrier's own code")
    message: str
    location: str
    occurred_at: dt.datetime | None = Field(description="the carrier's time")
    expected_delivery_date: str

    @classmethod
    def from_proto(cls, e: shipping_pb2.TrackingEntry) -> TrackingEntryOut:
        return cls(
            event_id=e.event_id,
            source=e.source,
            carrier=e.carrier,
            status=e.status,
            carrier_status=e.carrier_status,
            message=e.message,
            location=e.location,
            occurred_at=instant(e.occurred_at),
            expected_delivery_date=e.expected_delivery_date,
        )


class CarrierClaimOut(BaseModel):
    claim_id: str
    rma_id: str = Field(description="the customer's damaged_in_transit claim (GET /v1/returns/{rma_id})")
    carrier: str
    tracking_number: str
    status: str = Field(description="open")
    lines: list[ShipmentLineOut] = Field(description="the damaged units this shipment carried")
    reason: str = Field(description="the claim's evidence notes")
    opened_by: str
    opened_at: dt.datetime | None

    @classmethod
    def from_proto(cls, c: shipping_pb2.CarrierClaim) -> CarrierClaimOut:
        return cls(
            claim_id=c.claim_id,
            rma_id=c.rma_id,
            carrier=c.carrier,
            tracking_number=c.tracking_number,
            status=c.status,
            lines=[ShipmentLineOut(sku=x.sku, quantity=x.quantity) for x in c.lines],
            reason=c.reason,
            opened_by=c.opened_by,
            opened_at=instant(c.opened_at),
        )


class ShipmentOut(BaseModel):
    shipment_id: str
    order_id: str
    warehouse: str
    status: str = Field(description="pending | picked | packed | shipped | delivered | cancelled")
    carrier: str
    tracking_number: str
    lines: list[ShipmentLineOut]
    promised_delivery_date: str
    delivered_on: str
    on_time: bool | None = Field(description="null until delivered")
    version: int
    created_at: dt.datetime | None
    expected_delivery_date: str = Field("", description="the carrier's revised date after a delay")
    tracking_status: str = Field("", description="the carrier's last word (the newest of its events)")
    tracked_at: dt.datetime | None = Field(None, description="its time")
    tracking: list[TrackingEntryOut] = Field(
        [], description="the carrier's events, in the carrier's time order"
    )
    carrier_claims: list[CarrierClaimOut] = Field(
        [], description="claims against the carrier for goods damaged in transit, oldest first"
    )

    @classmethod
    def from_proto(cls, s: shipping_pb2.Shipment) -> ShipmentOut:
        return cls(
            shipment_id=s.shipment_id,
            order_id=s.order_id,
            warehouse=s.warehouse,
            status=s.status,
            carrier=s.carrier,
            tracking_number=s.tracking_number,
            lines=[ShipmentLineOut(sku=x.sku, quantity=x.quantity) for x in s.lines],
            promised_delivery_date=s.promised_delivery_date,
            delivered_on=s.delivered_on,
            on_time=s.on_time if s.status == "delivered" else None,
            version=s.version,
            created_at=instant(s.created_at),
            expected_delivery_date=s.expected_delivery_date,
            tracking_status=s.tracking_status,
            tracked_at=instant(s.tracked_at),
            tracking=[TrackingEntryOut.from_proto(e) for e in s.tracking],
            carrier_claims=[CarrierClaimOut.from_proto(c) for c in s.carrier_claims],
        )


class ShipmentList(BaseModel):
    items: list[ShipmentOut]


# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.get(
    "/v1/shipments", response_model=ShipmentList, tags=["shipments"], responses=problem_responses(*COMMON)
)
async def list_shipments(
    order_id: Annotated[str, Query(min_length=1, max_length=64)],
    request: Request,
    who: Principal = scoped(ORDERS, RETURNS, FULFILLMENT),
):
    services = backends(request)
    answer = await services.call(
        services.shipping.ListShipments,
        shipping_pb2.ListShipmentsRequest(
            order_id=order_id, partner_id=who.fulfillment_scope, warehouse=who.warehouse_scope
        ),
    )
    return ShipmentList(items=[ShipmentOut.from_proto(s) for s in answer.items])


@router.post(
    "/v1/shipments/{shipment_id}/events",
    response_model=ShipmentOut,
    tags=["shipments"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Record picked, packed, shipped (with carrier and tracking number) or delivered",
)
async def record_shipment_event(
    shipment_id: Annotated[str, Path(max_length=80)],
    body: ShipmentEventIn,
    request: Request,
    who: Principal = scoped(FULFILLMENT),
):
    services = backends(request)
    request = shipping_pb2.ShipmentEventRequest(
        shipment_id=shipment_id,
        type=body.type,
        carrier=body.carrier,
        tracking_number=body.tracking_number,
        actor=who.actor,
        cause=body.cause,
        expected_delivery_date=body.expected_delivery_date,
        warehouse=who.warehouse_scope,
    )
    if body.occurred_at is not None:
        request.occurred_at.FromDatetime(body.occurred_at)
    return ShipmentOut.from_proto(await services.call(services.shipping.RecordShipmentEvent, request))
