"""Inventory on a real database (SQLite and PostgreSQL): reservations never oversell."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from orderdesk import errors
from orderdesk.v1 import events_pb2, returns_pb2, shipping_pb2
from services.inventory.service import InventoryService

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "inventory" / "migrations"
WAREHOUSES = (ROOT / "demo" / "warehouses.csv").read_text()


@pytest.fixture
async def inventory(make_database):
    service = InventoryService(await make_database(MIGRATIONS))
    await service.import_csv("warehouses", WAREHOUSES)
    return service


async def put_stock(service, sku: str, **per_warehouse: int) -> None:
    rows = "".join(f"{sku},{wh.replace('_', '-')},{q}\n" for wh, q in per_warehouse.items())
    await service.import_csv("stock", "sku,warehouse,on_hand\n" + rows)


def by_wh(levels):
    return {lv.warehouse: (lv.on_hand, lv.reserved) for lv in levels}


async def test_demo_stock_imports_and_reads(inventory):
    assert await inventory.import_csv("stock", (ROOT / "demo" / "stock.csv").read_text()) == 600
    levels = by_wh(await inventory.levels("BRK-001"))
    assert levels == {"WH-SHA": (20, 0), "WH-HAM": (1000, 0), "WH-CHI": (120, 0)}
    with pytest.raises(errors.NotFound):
        await inventory.levels("NOPE")
    with pytest.raises(errors.InvalidArgument):
        await inventory.import_csv("customers", "x\n")


async def test_reserve_splits_backorders_and_repeats_harmlessly(inventory):
    await put_stock(inventory, "S1", WH_CHI=3, WH_HAM=4)
    held, backordered = await inventory.reserve("O1", [("S1", 9)])
    assert held == {("S1", "WH-HAM"): 4, ("S1", "WH-CHI"): 3}
    assert backordered == {"S1": 2}
    again = await inventory.reserve("O1", [("S1", 9)])
    assert again == (held, backordered)
    assert by_wh(await inventory.levels("S1")) == {"WH-CHI": (3, 3), "WH-HAM": (4, 4)}
    # Less wanted now: the excess goes back.
    held, backordered = await inventory.reserve("O1", [("S1", 5)])
    assert sum(held.values()) == 5 and backordered == {}
    assert sum(r for _, r in by_wh(await inventory.levels("S1")).values()) == 5


async def test_unknown_sku_is_all_backordered(inventory):
    held, backordered = await inventory.reserve("O1", [("NEVER-STOCKED", 2)])
    assert held == {} and backordered == {"NEVER-STOCKED": 2}


async def test_release_returns_stock_and_refuses_late_reserve(inventory):
    await put_stock(inventory, "S1", WH_CHI=5)
    await inventory.reserve("O1", [("S1", 5)])
    async with inventory.db.transaction() as tx:
        await inventory.release(tx, "O1")
    assert by_wh(await inventory.levels("S1")) == {"WH-CHI": (5, 0)}
    with pytest.raises(errors.FailedPrecondition):
        await inventory.reserve("O1", [("S1", 5)])
    # a cancellation that arrives before any reservation still blocks a late one
    async with inventory.db.transaction() as tx:
        await inventory.release(tx, "O2")
    with pytest.raises(errors.FailedPrecondition):
        await inventory.reserve("O2", [("S1", 1)])


async def test_shipment_consumes_and_return_restocks_once(inventory):
    await put_stock(inventory, "S1", WH_HAM=10)
    await inventory.reserve("O1", [("S1", 4)])
    shipment = shipping_pb2.Shipment(order_id="O1", warehouse="WH-HAM",
                                     lines=[shipping_pb2.ShipmentLine(sku="S1", quantity=4)])
    async with inventory.db.transaction() as tx:
        await inventory.consume_shipment(tx, shipment)
    assert by_wh(await inventory.levels("S1")) == {"WH-HAM": (6, 0)}
    with pytest.raises(RuntimeError):  # nothing left reserved to consume: never negative
        async with inventory.db.transaction() as tx:
            await inventory.consume_shipment(tx, shipment)
    ret = returns_pb2.Return(rma_id="RMA-1", order_id="O1", lines=[
        returns_pb2.ReturnLine(sku="S1", quantity=3, warehouse="WH-HAM", restocked_quantity=2, scrapped_quantity=1)])
    for _ in range(2):
        async with inventory.db.transaction() as tx:
            await inventory.restock_return(tx, ret)
    assert by_wh(await inventory.levels("S1")) == {"WH-HAM": (8, 0)}


async def test_restock_applies_once_per_reference_and_emits(inventory):
    from orderdesk.outbox import outbox_table

    await put_stock(inventory, "S1", WH_SHA=1)
    await inventory.restock("S1", "WH-SHA", 5, "PO-77")
    await inventory.restock("S1", "WH-SHA", 5, "PO-77")
    assert by_wh(await inventory.levels("S1")) == {"WH-SHA": (6, 0)}
    with pytest.raises(errors.InvalidArgument):
        await inventory.restock("S1", "WH-NOWHERE", 5, "PO-78")
    with pytest.raises(errors.InvalidArgument):
        await inventory.restock("S1", "WH-SHA", 0, "PO-79")
    async with inventory.db.read() as conn:
        rows = (await conn.execute(outbox_table.select())).all()
    restocked = [events_pb2.Event.FromString(r.payload) for r in rows]
    assert [e.stock.delta for e in restocked if e.type == "stock.restocked"] == [1, 5]


async def test_import_refuses_on_hand_below_reserved(inventory):
    await put_stock(inventory, "S1", WH_CHI=5)
    await inventory.reserve("O1", [("S1", 4)])
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.import_csv("stock", "sku,warehouse,on_hand\nS1,WH-CHI,3\n")
    assert err.value.violations[0].field == "row 2.on_hand"
    assert by_wh(await inventory.levels("S1")) == {"WH-CHI": (5, 4)}


async def test_concurrent_reservations_never_oversell(inventory):
    await put_stock(inventory, "SCARCE", WH_CHI=7, WH_HAM=5, WH_SHA=3)
    results = await asyncio.gather(*[inventory.reserve(f"O{n}", [("SCARCE", 1)]) for n in range(50)])
    assert sum(sum(held.values()) for held, _ in results) == 15
    assert sum(1 for _, back in results if back) == 35
    assert by_wh(await inventory.levels("SCARCE")) == {"WH-CHI": (7, 7), "WH-HAM": (5, 5), "WH-SHA": (3, 3)}
