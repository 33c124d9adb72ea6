"""The desk's admin routes of Partner API v1: the stock of a SKU, and master-data imports from CSV (partners
go to the gateway's own key store through gateway.keys; everything else to the services that own it).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from gateway import keys
from gateway.auth import Principal
from gateway.routing import ADMIN, COMMON, backends, csv_text, problem_responses, scoped
from orderdesk import masterdata
from orderdesk.v1 import common_pb2, inventory_pb2

ImportKind = Literal[
    "customers", "products", "prices", "stock", "warehouses", "calendars", "lanes", "partners"
]


# --- bodies ------------------------------------------------------------------------------
class WarehouseStockOut(BaseModel):
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockReceiptOut(BaseModel):
    reference: str = Field(
        description="the receipt's reference: a delivery note, return:<RMA>:<line>, or a wrong-item claim's "
        "correction claim:<RMA>:<line>:kept (the SKU ordered never left) / :sent (the SKU sent did, negative)"
    )
    warehouse: str
    quantity: int
    received_by: str


class StockLevelOut(BaseModel):
    sku: str
    warehouses: list[WarehouseStockOut]
    recent_receipts: list[StockReceiptOut] = Field(
        default_factory=list, description="the SKU's last receipts and corrections, newest first"
    )

    @classmethod
    def from_proto(cls, s: inventory_pb2.StockLevel) -> StockLevelOut:
        return cls(
            sku=s.sku,
            warehouses=[
                WarehouseStockOut(
                    warehouse=w.warehouse, on_hand=w.on_hand, reserved=w.reserved, available=w.available
                )
                for w in s.warehouses
            ],
            recent_receipts=[
                StockReceiptOut(
                    reference=r.reference,
                    warehouse=r.warehouse,
                    quantity=r.quantity,
                    received_by=r.received_by,
                )
                for r in s.recent_receipts
            ],
        )


class ImportResult(BaseModel):
    kind: ImportKind  # the same kinds the route takes (prices were missing here: the answer was a 500)
    rows: int


# --- routes ------------------------------------------------------------------------------
router = APIRouter()


@router.get(
    "/v1/inventory/{sku}",
    response_model=StockLevelOut,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 404),
)
async def get_stock(
    sku: Annotated[str, Path(max_length=64)], request: Request, who: Principal = scoped(ADMIN)
):
    services = backends(request)
    return StockLevelOut.from_proto(
        await services.call(services.inventory.GetStock, inventory_pb2.GetStockRequest(sku=sku))
    )


@router.post(
    "/v1/admin/import/{kind}",
    response_model=ImportResult,
    tags=["order desk"],
    responses=problem_responses(*COMMON, 413, 415),
    summary="Import master data from CSV (all rows or none; every bad cell is reported)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_master_data(kind: ImportKind, request: Request, who: Principal = scoped(ADMIN)):
    services = backends(request)
    text = await csv_text(request)
    if kind == "partners":
        # Partners live in the gateway's own store; parse errors are domain errors (422 with row paths).
        rows = await keys.import_partners(request.app.state.store, text)
        request.app.state.authenticator.cache.clear()  # a changed key or scope counts at once here
        return ImportResult(kind=kind, rows=rows)
    document = common_pb2.ImportCsvRequest(kind=kind, csv=text)
    rows = 0
    for owner in masterdata.OWNERS[kind]:
        rows = (await services.call(getattr(services, owner).ImportMasterData, document)).rows
    return ImportResult(kind=kind, rows=rows)
