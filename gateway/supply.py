"""Supply routes of Partner API v1: receipts, production runs, available-to-promise.

Same shape as the other route modules: authorise, one gRPC call to inventory, shape the answer.
Receipts and production are the desk's (admin); ATP is readable by any partner that
may place orders (it says nothing about other partners' orders, only stock and dates).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.admin import StockLevelOut
from gateway.auth import Principal
from gateway.bodies import ProtoNamedOut, RequestBody
from gateway.routing import ADMIN, COMMON, ORDERS, backends, problem_responses, scoped
from orderdesk.v1 import common_pb2, inventory_pb2

router = APIRouter()


class ReceiptIn(RequestBody):
    warehouse: str = Field(min_length=1, max_length=32)
    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(gt=0, le=1_000_000_000)
    reference: str = Field(
        min_length=1,
        max_length=200,
        description="the receipt's unique reference (e.g. the delivery note); a repeat adds nothing",
    )


class InboundIn(ReceiptIn):
    expected_date: dt.date = Field(
        description="when the supplier's goods are expected, YYYY-MM-DD, today or later"
    )
    reference: str = Field(
        min_length=1,
        max_length=200,
        description="the supplier's reference (delivery note, ASN): the receipt that arrives later carries the same; "
        "the same announcement again changes nothing, the same reference with a new date moves it",
    )


class InboundOut(ProtoNamedOut):
    reference: str
    sku: str
    warehouse: str
    quantity: int
    expected_date: str = Field(description="YYYY-MM-DD")
    status: Literal["open", "received"]


class ProductionRunOut(ProtoNamedOut):
    production_id: str
    sku: str
    warehouse: str
    quantity: int
    expected_date: str = Field(description="YYYY-MM-DD")
    status: Literal["open", "completed"]


class PartialCompletionIn(RequestBody):
    quantity: int | None = Field(
        None,
        gt=0,
        le=1_000_000_000,
        description="a partial completion: the units done now (the rest stays open)",
    )
    reference: str = Field(
        "", max_length=200, description="required with quantity: the same reference again receives nothing"
    )


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expected_date: dt.date = Field(description="the run's new date, YYYY-MM-DD, today or later")


class ProductionList(BaseModel):
    items: list[ProductionRunOut]


class AtpWarehouseOut(BaseModel):
    warehouse: str
    quantity: int


class AtpDateOut(BaseModel):
    date: str = Field(description="YYYY-MM-DD")
    quantity: int = Field(
        description="what a new order can be promised by this date, all warehouses (cumulative)"
    )
    warehouses: list[AtpWarehouseOut]


class AvailableToPromiseOut(BaseModel):
    sku: str
    available_now: int = Field(description="on hand minus reserved, all warehouses")
    backordered: int = Field(description="units owed to open backorders (served before anything new)")
    in_production: int = Field(description="units of open production runs")
    dates: list[AtpDateOut]

    @classmethod
    def from_proto(cls, a: inventory_pb2.AvailableToPromise) -> AvailableToPromiseOut:
        return cls(
            sku=a.sku,
            available_now=a.available_now,
            backordered=a.backordered,
            in_production=a.in_production,
            dates=[
                AtpDateOut(
                    date=d.date,
                    quantity=d.quantity,
                    warehouses=[
                        AtpWarehouseOut(warehouse=w.warehouse, quantity=w.quantity) for w in d.warehouses
                    ],
                )
                for d in a.dates
            ],
        )


Sku = Annotated[str, Path(max_length=64)]
ProductionId = Annotated[str, Path(max_length=40)]


@router.post(
    "/v1/admin/receipts",
    response_model=StockLevelOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON),
    summary="Goods received at a warehouse: stock rises once per reference and fills backorders by priority",
)
async def post_receipt(body: ReceiptIn, request: Request, who: Principal = scoped(ADMIN)):
    services = backends(request)
    return StockLevelOut.from_proto(
        await services.call(
            services.inventory.Restock,
            inventory_pb2.RestockRequest(
                sku=body.sku,
                warehouse=body.warehouse,
                quantity=body.quantity,
                reference=body.reference,
                actor=common_pb2.Actor(id=who.actor),
            ),
        )
    )


@router.post(
    "/v1/admin/inbound",
    response_model=InboundOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 409),
    summary="A supplier's receipt announced with its expected date: the backorders waiting for it are re-promised",
)
async def announce_inbound(body: InboundIn, request: Request, who: Principal = scoped(ADMIN)):
    services = backends(request)
    return InboundOut.from_proto(
        await services.call(
            services.inventory.AnnounceInbound,
            inventory_pb2.AnnounceInboundRequest(
                reference=body.reference,
                sku=body.sku,
                warehouse=body.warehouse,
                quantity=body.quantity,
                expected_date=body.expected_date.isoformat(),
            ),
        )
    )


@router.get(
    "/v1/admin/production",
    response_model=ProductionList,
    tags=["order desk"],
    responses=problem_responses(*COMMON),
    summary="Production runs planned for backorders",
)
async def list_production(
    request: Request,
    sku: Annotated[str, Query(max_length=64)] = "",
    status: Literal["", "open", "completed"] = "",
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    answer = await services.call(
        services.inventory.ListProduction, inventory_pb2.ListProductionRequest(sku=sku, status=status)
    )
    return ProductionList(items=[ProductionRunOut.from_proto(r) for r in answer.runs])


@router.post(
    "/v1/admin/production/{production_id}/complete",
    response_model=ProductionRunOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404),
    summary="A production run is finished: its units are received once and fill backorders by priority",
)
async def complete_production(
    production_id: ProductionId,
    request: Request,
    body: PartialCompletionIn | None = None,
    who: Principal = scoped(ADMIN),
):
    services = backends(request)
    partial = body or PartialCompletionIn()
    return ProductionRunOut.from_proto(
        await services.call(
            services.inventory.CompleteProduction,
            inventory_pb2.CompleteProductionRequest(
                production_id=production_id, quantity=partial.quantity or 0, reference=partial.reference
            ),
        )
    )


@router.post(
    "/v1/admin/production/{production_id}/reschedule",
    response_model=ProductionRunOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404, 409),
    summary="A production run moves to another date: the backorders it serves are re-promised",
)
async def reschedule_production(
    production_id: ProductionId, body: RescheduleIn, request: Request, who: Principal = scoped(ADMIN)
):
    services = backends(request)
    return ProductionRunOut.from_proto(
        await services.call(
            services.inventory.RescheduleProduction,
            inventory_pb2.RescheduleProductionRequest(
                production_id=production_id, expected_date=body.expected_date.isoformat()
            ),
        )
    )


@router.get(
    "/v1/inventory/{sku}/atp",
    response_model=AvailableToPromiseOut,
    tags=["orders"],
    responses=problem_responses(*COMMON, 404),
    summary="Available to promise: what quantity of a SKU can be promised by which date",
)
async def available_to_promise(sku: Sku, request: Request, who: Principal = scoped(ORDERS)):
    services = backends(request)
    return AvailableToPromiseOut.from_proto(
        await services.call(
            services.inventory.GetAvailableToPromise, inventory_pb2.GetAvailableToPromiseRequest(sku=sku)
        )
    )
