"""The desk's customer routes of Partner API v1: erasing a customer's personal data (GDPR art. 17).

`POST /v1/admin/customers/{customer_id}/erasure` asks orders first (it decides which orders may lose their
personal data under the legal retention, and refuses scope "all" with 409 `personal_data_retained` while any
must keep it), then intake and the notifier with the orders it named. Every part is idempotent: after a 503,
ask again (with the same Idempotency-Key, each service answers what it already did).
README "Personal data".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, Field

from gateway.auth import Principal
from gateway.bodies import RequestBody, instant
from gateway.routing import ADMIN, COMMON, backends, problem_responses, scoped
from orderdesk import actors
from orderdesk.v1 import common_pb2

router = APIRouter()

CustomerId = Annotated[str, Path(max_length=64)]


class ErasureIn(RequestBody):
    scope: Literal["all", "expired"] = Field(
        "all",
        description='"all": every order of the customer, refused (409) while any must keep its data; '
        '"expired": what has passed the retention, reporting what stays',
    )


class KeptOrderOut(BaseModel):
    order_id: str
    status: str
    reason: Literal["open", "within_retention"]
    until: dt.datetime | None = Field(None, description="within_retention: when its personal data may go")


class ServiceErasureOut(BaseModel):
    service: str
    at: dt.datetime
    erased: dict[str, int] = Field(description="rows whose personal data this request erased, by table")


class ErasureOut(BaseModel):
    request_id: str
    customer_id: str
    scope: str
    actor: str
    erased_orders: list[str] = Field(description="orders whose personal data is erased (now or before)")
    kept: list[KeptOrderOut] = Field(description="orders whose personal data stays, and why")
    whole_customer: bool = Field(description="nothing stays: the customer's master record is erased too")
    services: list[ServiceErasureOut]


def _service(report: common_pb2.ErasureReport) -> ServiceErasureOut:
    return ServiceErasureOut(
        service=report.service,
        at=instant(report.at) or dt.datetime.now(dt.UTC),
        erased={e.what: e.rows for e in report.erased},
    )


def request_id(who: Principal, idempotency_key: str) -> str:
    if not idempotency_key:
        return f"ER-{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{who.partner_id}\n{idempotency_key}".encode()).hexdigest()[:32]
    return f"ER-{digest}"


@router.post(
    "/v1/admin/customers/{customer_id}/erasure",
    response_model=ErasureOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="Erase (pseudonymise) a customer's personal data past its legal retention",
)
async def erase_customer(
    customer_id: CustomerId,
    request: Request,
    body: ErasureIn | None = None,
    idempotency_key: Annotated[
        str, Header(alias="Idempotency-Key", max_length=200, description="optional: a retry answers the same")
    ] = "",
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    scope = body.scope if body else "all"
    ask = common_pb2.EraseCustomerRequest(
        customer_id=customer_id,
        scope=scope,
        request_id=request_id(who, idempotency_key),
        actor=common_pb2.Actor(id=actors.api_key(who.key_name, who.partner_id)),
    )
    decided = await services.call(services.orders.EraseCustomer, ask)
    ask.order_ids.extend(decided.order_ids)
    ask.whole_customer = decided.whole_customer
    reports = [decided]
    for service in (services.intake, services.notifier):
        reports.append(await services.call(service.EraseCustomer, ask))
    return ErasureOut(
        request_id=ask.request_id,
        customer_id=customer_id,
        scope=scope,
        actor=ask.actor.id,
        erased_orders=list(decided.order_ids),
        kept=[
            KeptOrderOut(order_id=k.order_id, status=k.status, reason=k.reason, until=instant(k.until))
            for k in decided.kept
        ],
        whole_customer=decided.whole_customer,
        services=[_service(r) for r in reports],
    )
