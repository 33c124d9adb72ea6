"""Inventory's domain values <-> protobuf messages (used by the API)."""

from __future__ import annotations

from orderdesk.v1 import inventory_pb2
from services.inventory.domain import StockLevel
from services.inventory.service import ReserveResult


def stock_level_to_proto(sku: str, levels: list[StockLevel]) -> inventory_pb2.StockLevel:
    return inventory_pb2.StockLevel(
        sku=sku,
        warehouses=[
            inventory_pb2.WarehouseStock(warehouse=lv.warehouse, on_hand=lv.on_hand, reserved=lv.reserved,
                                         available=lv.available)
            for lv in levels
        ],
    )


def reserve_response(result: ReserveResult) -> inventory_pb2.ReserveResponse:
    return inventory_pb2.ReserveResponse(
        reservations=[inventory_pb2.Reservation(sku=s, warehouse=w, quantity=q) for s, w, q in result.reservations],
        backordered=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in sorted(result.backordered.items())],
    )
