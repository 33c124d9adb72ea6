"""Inventory's domain values <-> protobuf messages (used by the API)."""

from __future__ import annotations

from orderdesk.events import timestamp
from orderdesk.v1 import inventory_pb2
from services.inventory.domain import RecordedReceipt, StockLevel
from services.inventory.service import Atp, ReserveResult, SupplyQuote
from services.inventory.supply import Run


def stock_level_to_proto(
    sku: str, levels: list[StockLevel], receipts: list[RecordedReceipt] = ()
) -> inventory_pb2.StockLevel:
    return inventory_pb2.StockLevel(
        sku=sku,
        warehouses=[
            inventory_pb2.WarehouseStock(
                warehouse=lv.warehouse, on_hand=lv.on_hand, reserved=lv.reserved, available=lv.available
            )
            for lv in levels
        ],
        recent_receipts=[
            inventory_pb2.StockReceipt(
                reference=r.reference,
                warehouse=r.warehouse,
                quantity=r.quantity,
                received_at=timestamp(r.received_at),
                received_by=r.received_by,
            )
            for r in receipts
        ],
    )


def reserve_response(result: ReserveResult) -> inventory_pb2.ReserveResponse:
    return inventory_pb2.ReserveResponse(
        reservations=[
            inventory_pb2.Reservation(sku=s, warehouse=w, quantity=q) for s, w, q in result.reservations
        ],
        backordered=[
            inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in sorted(result.backordered.items())
        ],
        expected_date=result.expected_date,
        expected_delivery_date=result.expected_delivery_date,
    )


def run_to_proto(run: Run, status: str) -> inventory_pb2.ProductionRun:
    return inventory_pb2.ProductionRun(
        production_id=run.production_id,
        sku=run.sku,
        warehouse=run.warehouse,
        quantity=run.quantity,
        expected_date=run.expected_date.isoformat(),
        status=status,
    )


def atp_to_proto(atp: Atp) -> inventory_pb2.AvailableToPromise:
    return inventory_pb2.AvailableToPromise(
        sku=atp.sku,
        available_now=atp.available_now,
        backordered=atp.backordered,
        in_production=atp.in_production,
        dates=[
            inventory_pb2.AtpDate(
                date=p.date.isoformat(),
                quantity=p.total,
                warehouses=[
                    inventory_pb2.AtpWarehouse(warehouse=w, quantity=q) for w, q in p.by_warehouse.items()
                ],
            )
            for p in atp.points
        ],
    )


def quotes_to_proto(quotes: list[SupplyQuote]) -> inventory_pb2.QuoteSupplyResponse:
    return inventory_pb2.QuoteSupplyResponse(
        quotes=[
            inventory_pb2.SupplyQuote(
                sku=q.sku,
                quantity=q.quantity,
                ready_date=q.ready_date.isoformat() if q.ready_date else "",
                warehouse=q.warehouse,
                delivery_date=q.delivery_date.isoformat() if q.delivery_date else "",
            )
            for q in quotes
        ]
    )
