"""Re-allocation after a picking shortage on a real database (SQLite and PostgreSQL): the short units are
released and written off, the order holds the same quantity elsewhere, a retry changes nothing, and a
re-allocation that other warehouses cannot cover changes nothing at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderdesk import errors
from services.inventory.reallocation import reallocate
from services.inventory.service import InventoryService

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "inventory" / "migrations"
WAREHOUSES = (ROOT / "demo" / "warehouses.csv").read_text()


@pytest.fixture
async def inventory(make_database):
    service = InventoryService(await make_database(MIGRATIONS))
    assert await service.import_csv("warehouses", WAREHOUSES) == 3
    await service.import_csv("stock", "sku,warehouse,on_hand\nR-1,WH-HAM,4\nR-1,WH-CHI,5\nR-1,WH-SHA,1\n")
    return service


async def levels(service) -> dict[str, tuple[int, int]]:
    return {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await service.levels("R-1")}


async def test_short_units_move_to_another_warehouse_once(inventory):
    held = (await inventory.reserve("ORD-1", [("R-1", 4)])).reservations
    [(_, short, _)] = held
    other = {"WH-HAM": "WH-CHI", "WH-CHI": "WH-HAM"}[short]
    before = await levels(inventory)
    now = await reallocate(inventory.db, "ORD-1", "R-1", short, 3, "EX-1")
    assert sorted(now) == sorted([("R-1", short, 1), ("R-1", other, 3)])
    after = await levels(inventory)
    assert after[short] == (before[short][0] - 3, before[short][1] - 3)  # released and written off
    assert after[other] == (before[other][0], before[other][1] + 3)
    assert await reallocate(inventory.db, "ORD-1", "R-1", short, 3, "EX-1") == now  # a retry
    assert await levels(inventory) == after
    # the order's target still holds: Reserve for the same quantity changes nothing
    assert sorted((await inventory.reserve("ORD-1", [("R-1", 4)])).reservations) == sorted(now)


async def test_refused_when_the_others_cannot_cover_it(inventory):
    await inventory.reserve("ORD-2", [("R-1", 5)])  # WH-CHI: the one warehouse with 5
    await inventory.reserve("ORD-3", [("R-1", 4)])  # WH-HAM
    before = await levels(inventory)
    with pytest.raises(errors.FailedPrecondition) as refused:
        await reallocate(inventory.db, "ORD-2", "R-1", "WH-CHI", 2, "EX-2")  # only WH-SHA's 1 is free
    assert refused.value.rule == "no_stock_elsewhere"
    assert await levels(inventory) == before
    with pytest.raises(errors.FailedPrecondition) as refused:
        await reallocate(inventory.db, "ORD-2", "R-1", "WH-HAM", 1, "EX-3")
    assert refused.value.rule == "not_held_at_warehouse"
    with pytest.raises(errors.InvalidArgument) as bad:
        await reallocate(inventory.db, "ORD-2", "R-1", "", 0, "")
    assert {v.field for v in bad.value.violations} == {"warehouse", "quantity", "reference"}


async def test_a_split_delivery_writes_the_short_units_off_and_reserves_nothing_elsewhere(inventory):
    held = (await inventory.reserve("ORD-4", [("R-1", 4)])).reservations
    [(_, short, _)] = held
    before = await levels(inventory)
    now = await reallocate(inventory.db, "ORD-4", "R-1", short, 3, "EX-4", write_off_only=True)
    assert now == [("R-1", short, 1)]  # the order holds less: the 3 go to a linked order
    after = await levels(inventory)
    assert after[short] == (before[short][0] - 3, before[short][1] - 3)
    assert {wh: lv for wh, lv in after.items() if wh != short} == {
        wh: lv for wh, lv in before.items() if wh != short
    }
    assert (
        await reallocate(inventory.db, "ORD-4", "R-1", short, 3, "EX-4", write_off_only=True) == now
    )  # a retry
    assert await levels(inventory) == after
