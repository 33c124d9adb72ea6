"""The end customer's status page: /status/<token>, no sign-in (issue 16, 为客户提供准确的订单查询服务).

A partner or the desk makes a signed, expiring link for one order (gateway: POST /v1/orders/{id}/status-link,
orderdesk/statuslinks.py). Whoever holds it sees that order's status, the delivery date to expect and its
parcels with carrier and tracking number (OrdersService.GetOrderStatus answers nothing more), in their
browser's language; no prices, no other orders, no notes. A tampered, expired or unknown link gets the same
plain "not valid" page (404), which tells nothing about why. The page never reads the desk's session and
takes no POST (only GET is routed).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from console import web
from orderdesk import statuslinks
from orderdesk.v1 import orders_pb2

router = APIRouter()
# The orders service names a shipment by its last event: a pending one's is "created" (shipping's event).
PARCEL_STATUS = {"created": "pending"}


@dataclass(frozen=True)
class Parcel:
    status: str  # shipping's status (console/words.py SHIPMENT_STATUSES)
    carrier: str
    tracking_number: str

    @classmethod
    def of(cls, parcel: orders_pb2.ParcelStatus) -> Parcel:
        return cls(PARCEL_STATUS.get(parcel.status, parcel.status), parcel.carrier, parcel.tracking_number)


def _not_valid(request: Request) -> HTMLResponse:
    return web.render_public(request, "status/not_valid.html", status=404)


@router.get("/status/{token}")
async def status_page(request: Request, token: str) -> HTMLResponse:
    order_id = statuslinks.verify(token, secret=request.app.state.status_links.secret)
    if order_id is None:
        return _not_valid(request)
    try:
        status = await web.call(
            request,
            web.services(request).orders.GetOrderStatus,
            orders_pb2.GetOrderStatusRequest(order_id=order_id),
        )
    except web.ServiceRefusal as refusal:
        if refusal.failure.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return _not_valid(request)
        return web.render_public(request, "status/unavailable.html", status=503)
    return web.render_public(
        request, "status/order.html", {"order": status, "parcels": [Parcel.of(p) for p in status.shipments]}
    )
