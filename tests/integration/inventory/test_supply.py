"""Supply on a real database (SQLite and PostgreSQL): backorders filled by receipts, production
completion and cancellations in priority order; production runs and their dates; available to
promise; and two inventory replicas (two engines) on one PostgreSQL never overselling."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orderdesk import errors
from orderdesk.calendar import Calendar, add_working_days, parse_working_days
from orderdesk.db import Database
from orderdesk.outbox import outbox_table
from orderdesk.usecase import retrying
from orderdesk.v1 import events_pb2
from services.inventory.service import InventoryService, ReserveCall, ReserveResult
from services.inventory.store import (
    backorders,
    order_states,
    production_runs,
    reservations,
    sku_versions,
    stock,
)
from tests.integration.inventory.test_reserve_many import reserve_all

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "inventory" / "migrations"
WAREHOUSES = (ROOT / "demo" / "warehouses.csv").read_text()  # SHA (CN), HAM (DE), CHI (US)
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)  # a Thursday, the same date in every demo warehouse
TODAY = NOW.date()
CHICAGO = Calendar(working_days=parse_working_days("Mon-Sat"))  # the demo's working days (no holidays here)
HAMBURG = Calendar()  # Monday to Friday; deliveries arrive Monday to Friday too


def working_days(n: int, calendar: Calendar = HAMBURG, start: dt.date = TODAY) -> str:
    return add_working_days(start, n, calendar).isoformat()


PRODUCTS = (
    "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    "MTO-1,Made to order,10.00,USD,true,10,1,1,active\n"
    "STK-1,Stocked,5.00,USD,false,7,1,1,active\n"
)


def placed(minutes: int) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes)


@pytest.fixture
async def inventory(make_database):
    service = InventoryService(await make_database(MIGRATIONS), clock=lambda: NOW)
    await service.import_csv("warehouses", WAREHOUSES)
    await service.import_csv("products", PRODUCTS)
    return service


async def put_stock(service, sku: str, **per_warehouse: int) -> None:
    rows = "".join(f"{sku},{wh.replace('_', '-')},{q}\n" for wh, q in per_warehouse.items())
    await service.import_csv("stock", "sku,warehouse,on_hand\n" + rows)


async def held(service, order_id: str) -> dict[str, int]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(reservations.c.sku, func.sum(reservations.c.quantity).label("q"))
            .where(reservations.c.order_id == order_id)
            .group_by(reservations.c.sku)
        )
        return {r.sku: r.q for r in rows if r.q}


async def missing(service, order_id: str) -> dict[str, int]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(backorders.c.sku, backorders.c.quantity).where(backorders.c.order_id == order_id)
        )
        return {r.sku: r.quantity for r in rows}


async def runs(service, sku: str) -> list:
    async with service.db.read() as conn:
        return (
            await conn.execute(
                select(production_runs)
                .where(production_runs.c.sku == sku)
                .order_by(production_runs.c.expected_date, production_runs.c.created_at)
            )
        ).all()


async def books_balance(service) -> None:
    """Every stock row: 0 <= reserved <= on hand, and reserved is exactly the orders' reservations there."""
    async with service.db.read() as conn:
        rows = (await conn.execute(select(stock))).all()
        held_at = {
            (r.sku, r.warehouse): r.total
            for r in await conn.execute(
                select(
                    reservations.c.sku,
                    reservations.c.warehouse,
                    func.sum(reservations.c.quantity).label("total"),
                ).group_by(reservations.c.sku, reservations.c.warehouse)
            )
        }
    for r in rows:
        assert 0 <= r.reserved <= r.on_hand
        assert r.reserved == held_at.get((r.sku, r.warehouse), 0), (r.sku, r.warehouse)
    async with service.db.read() as conn:  # each SKU's running total of backordered units is the sum
        totals = {r.sku: r.backordered for r in await conn.execute(select(sku_versions))}
        owed = {
            r.sku: r.q
            for r in await conn.execute(
                select(backorders.c.sku, func.sum(backorders.c.quantity).label("q"))
                .join(order_states, order_states.c.order_id == backorders.c.order_id)
                .where(order_states.c.state != "released")
                .group_by(backorders.c.sku)
            )
        }
    for sku in set(totals) | set(owed):
        assert totals.get(sku, 0) == owed.get(sku, 0), sku


# --- strategy with real warehouses --------------------------------------------------------------------
async def test_the_whole_order_ships_from_one_warehouse_nearest_to_the_customer(inventory):
    await put_stock(inventory, "A", WH_CHI=10, WH_HAM=10, WH_SHA=10)
    await put_stock(inventory, "B", WH_CHI=1, WH_HAM=10, WH_SHA=10)
    us = await inventory.reserve(
        "O-US", [("A", 2), ("B", 2)], country="US"
    )  # CHI lacks B: one warehouse anyway
    assert {w for _, w, _ in us.reservations} == {"WH-HAM"}  # HAM 8 days to the US, SHA 9
    cn = await inventory.reserve("O-CN", [("A", 2), ("B", 2)], country="CN")
    assert {w for _, w, _ in cn.reservations} == {"WH-SHA"}
    de = await inventory.reserve("O-DE", [("A", 1)], country="DE")
    assert de.reservations == [("A", "WH-HAM", 1)]


# --- receipts fill backorders in priority order -----------------------------------------------------------
async def test_a_receipt_fills_backorders_highest_priority_first_then_first_come_and_once(inventory):
    await put_stock(inventory, "STK-1", WH_HAM=0)
    low = await inventory.reserve("O-LOW", [("STK-1", 3)], priority=1, placed_at=placed(30), country="DE")
    late = await inventory.reserve(
        "O-HIGH-LATE", [("STK-1", 3)], priority=5, placed_at=placed(5), country="DE"
    )
    early = await inventory.reserve(
        "O-HIGH-EARLY", [("STK-1", 3)], priority=5, placed_at=placed(10), country="DE"
    )
    assert low.backordered == late.backordered == early.backordered == {"STK-1": 3}

    await inventory.restock("STK-1", "WH-HAM", 7, "GRN-1")
    assert await held(inventory, "O-HIGH-EARLY") == {"STK-1": 3}
    assert await held(inventory, "O-HIGH-LATE") == {"STK-1": 3}
    assert await held(inventory, "O-LOW") == {"STK-1": 1}
    assert await missing(inventory, "O-LOW") == {"STK-1": 2}
    assert await missing(inventory, "O-HIGH-EARLY") == {} == await missing(inventory, "O-HIGH-LATE")

    async with inventory.db.read() as conn:  # the restocked event names the filled orders, in fill order
        payloads = [r.payload for r in await conn.execute(select(outbox_table).order_by(outbox_table.c.id))]
    restocked = [e for e in map(events_pb2.Event.FromString, payloads) if e.type == "stock.restocked"]
    assert list(restocked[-1].stock.filled_order_ids) == ["O-HIGH-EARLY", "O-HIGH-LATE", "O-LOW"]

    await inventory.restock("STK-1", "WH-HAM", 7, "GRN-1")  # the same receipt again: nothing
    assert await held(inventory, "O-LOW") == {"STK-1": 1}
    with pytest.raises(errors.InvalidArgument):
        await inventory.restock("STK-1", "WH-HAM", 8, "GRN-1")  # same reference, other contents
    levels = {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await inventory.levels("STK-1")}
    assert levels["WH-HAM"] == (7, 7)
    # the orders' own Reserve (target state) now reports what was filled, nothing more
    again = await inventory.reserve("O-HIGH-EARLY", [("STK-1", 3)], priority=5, country="DE")
    assert again.reservations == [("STK-1", "WH-HAM", 3)] and not again.backordered
    await books_balance(inventory)


async def test_a_cancellation_gives_its_units_to_the_next_backorder(inventory):
    await put_stock(inventory, "A", WH_CHI=4)
    await inventory.reserve("O1", [("A", 4)], priority=1, placed_at=placed(10))
    await inventory.reserve("O2", [("A", 2)], priority=1, placed_at=placed(5))
    await inventory.reserve("O3", [("A", 2)], priority=3, placed_at=placed(1))
    async with inventory.db.transaction() as tx:
        assert await inventory.release(tx, "O1") == 4
    assert await held(inventory, "O3") == {"A": 2} and await held(inventory, "O2") == {"A": 2}
    assert await missing(inventory, "O1") == {}
    await books_balance(inventory)


async def test_a_stock_count_that_rises_fills_backorders(inventory):
    await put_stock(inventory, "A", WH_CHI=0)
    await inventory.reserve("O1", [("A", 2)])
    await put_stock(inventory, "A", WH_CHI=5)
    assert await held(inventory, "O1") == {"A": 2}
    await books_balance(inventory)


# --- production ---------------------------------------------------------------------------------------------
async def test_make_to_order_lines_plan_a_run_with_the_lead_time_and_date_the_order(inventory):
    r1 = await inventory.reserve("O1", [("MTO-1", 4)], priority=2, placed_at=placed(10), country="US")
    (run1,) = await runs(inventory, "MTO-1")
    assert (run1.warehouse, run1.quantity, run1.status) == ("WH-CHI", 4, "open")  # nearest to the US
    # lead time 10 working days of Chicago (Monday to Saturday)
    assert run1.expected_date == working_days(10, CHICAGO) == "2026-12-08"
    assert r1.backordered == {"MTO-1": 4}
    assert r1.expected_date == run1.expected_date
    # CHI domestic: 3 working days
    assert r1.expected_delivery_date == working_days(3, start=dt.date(2026, 12, 8)) == "2026-12-11"

    again = await inventory.reserve(
        "O1", [("MTO-1", 4)], priority=2, country="US"
    )  # a repeat plans nothing new
    assert again.expected_date == r1.expected_date and len(await runs(inventory, "MTO-1")) == 1

    r2 = await inventory.reserve("O2", [("MTO-1", 2)], priority=1, placed_at=placed(5), country="DE")
    assert len(await runs(inventory, "MTO-1")) == 2
    # a new run never finishes before the open one: here later, Hamburg works Monday to Friday
    assert r2.expected_date == working_days(10, HAMBURG) == "2026-12-10"
    # the second run lands at HAM: 2 working days domestic
    assert r2.expected_delivery_date == working_days(2, start=dt.date(2026, 12, 10)) == "2026-12-14"

    # completion: the units arrive once and go to the backorders in priority order
    run, status = await inventory.complete_production(run1.production_id)
    assert status == "completed" and run.quantity == 4
    assert await held(inventory, "O1") == {"MTO-1": 4}  # priority 2 first
    assert await missing(inventory, "O2") == {"MTO-1": 2}
    assert (await inventory.complete_production(run1.production_id))[1] == "completed"  # a repeat: nothing
    assert {lv.warehouse: lv.on_hand for lv in await inventory.levels("MTO-1")} == {"WH-CHI": 4}
    with pytest.raises(errors.NotFound):
        await inventory.complete_production("PRD-nope")
    assert [s for _, s in await inventory.production(sku="MTO-1")] == ["completed", "open"]
    await books_balance(inventory)


async def test_a_priority_order_overtakes_a_lower_one_for_the_earliest_run(inventory):
    low = await inventory.reserve("O-LOW", [("MTO-1", 3)], priority=1, placed_at=placed(10), country="US")
    await inventory.import_csv("products", PRODUCTS.replace("true,10,", "true,20,"))  # the lead time grows
    high = await inventory.reserve("O-HIGH", [("MTO-1", 3)], priority=9, placed_at=placed(1), country="US")
    first, second = await runs(inventory, "MTO-1")
    assert first.expected_date == working_days(10, CHICAGO) == low.expected_date
    assert second.expected_date == working_days(20, CHICAGO)
    assert high.expected_date == first.expected_date  # the first units made go to priority 9
    again = await inventory.reserve("O-LOW", [("MTO-1", 3)], priority=1, country="US")
    assert again.expected_date == second.expected_date  # the lower order now waits for the later run


async def test_orders_of_one_day_share_one_run_per_warehouse(inventory):
    for n in range(5):
        await inventory.reserve(f"O{n}", [("MTO-1", 2)], priority=1, placed_at=placed(n), country="US")
    (run,) = await runs(inventory, "MTO-1")
    assert (run.quantity, run.warehouse) == (10, "WH-CHI")
    await inventory.reserve("O-DE", [("MTO-1", 1)], priority=1, country="DE")
    assert sorted((r.warehouse, r.quantity) for r in await runs(inventory, "MTO-1")) == [
        ("WH-CHI", 10),
        ("WH-HAM", 1),
    ]
    _, status = await inventory.complete_production(run.production_id)
    assert status == "completed"
    assert {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await inventory.levels("MTO-1")} == {
        "WH-CHI": (10, 10)
    }


async def test_orders_to_countries_in_turn_grow_one_run_per_warehouse_not_one_each(inventory):
    """Ship-to countries alternating between the nearest warehouses still make one run per day and warehouse
    (each order planned a new run when only the last run was looked at: every backorder then read them all)."""
    for n in range(12):
        country = ("US", "DE", "CN")[n % 3]
        await inventory.reserve(f"O{n}", [("MTO-1", 1)], placed_at=placed(n), country=country)
    planned = sorted((r.expected_date, r.warehouse, r.quantity) for r in await runs(inventory, "MTO-1"))
    # the first order's run is due sooner (Chicago works Saturdays); the line's queue moves the rest to one day
    assert planned == [
        (working_days(10, CHICAGO), "WH-CHI", 1),
        (working_days(10), "WH-CHI", 3),
        (working_days(10), "WH-HAM", 4),
        (working_days(10), "WH-SHA", 4),
    ]
    await books_balance(inventory)


async def test_a_product_inventory_has_no_record_of_is_backordered_without_a_date(inventory):
    result = await inventory.reserve("O1", [("UNKNOWN-SKU", 2)])
    assert (
        result.backordered == {"UNKNOWN-SKU": 2}
        and result.expected_date == "" == result.expected_delivery_date
    )
    assert await runs(inventory, "UNKNOWN-SKU") == []


# --- available to promise -------------------------------------------------------------------------------------
async def test_available_to_promise_nets_backorders_against_the_earliest_supply(inventory):
    await put_stock(inventory, "STK-1", WH_HAM=5, WH_CHI=2)
    await inventory.reserve("O1", [("STK-1", 10)], priority=1, country="DE")  # takes 7, misses 3 -> run of 3
    atp = await inventory.available_to_promise("STK-1")
    assert (atp.available_now, atp.backordered, atp.in_production) == (0, 3, 3)
    run_day = add_working_days(TODAY, 7, HAMBURG)  # into Hamburg, nearest to Germany: 7 working days
    assert [(p.date, p.total) for p in atp.points] == [(TODAY, 0), (run_day, 0)]
    await inventory.restock("STK-1", "WH-SHA", 10, "GRN-2")  # 3 of it fill O1, 7 are free now
    atp = await inventory.available_to_promise("STK-1")
    assert (atp.available_now, atp.backordered) == (7, 0)
    assert [(p.date, p.total, p.by_warehouse) for p in atp.points] == [
        (TODAY, 7, {"WH-SHA": 7}),
        (run_day, 10, {"WH-HAM": 3, "WH-SHA": 7}),
    ]
    with pytest.raises(errors.NotFound):
        await inventory.available_to_promise("NEVER-HEARD-OF")


# --- two replicas on one PostgreSQL --------------------------------------------------------------------------
@pytest.fixture
async def two_replicas(make_database, backend):
    if backend != "postgresql":
        pytest.skip("replicas share one PostgreSQL database (SQLite is one file per process)")
    first = InventoryService(await make_database(MIGRATIONS), clock=lambda: NOW)
    second = InventoryService(Database(first.db.url), clock=lambda: NOW)  # its own engine and pool
    await first.import_csv("warehouses", WAREHOUSES)
    await first.import_csv("products", PRODUCTS)
    yield first, second
    await second.db.close()


async def test_two_replicas_reserving_for_200_orders_over_scarce_stock_oversell_nothing(two_replicas):
    first, second = two_replicas
    on_hand = {
        ("A", "WH-CHI"): 40,
        ("A", "WH-HAM"): 30,
        ("A", "WH-SHA"): 20,
        ("B", "WH-CHI"): 25,
        ("B", "WH-HAM"): 25,
        ("B", "WH-SHA"): 10,
    }
    for (sku, wh), q in on_hand.items():
        await put_stock(first, sku, **{wh.replace("-", "_"): q})
    rng = random.Random(4)
    wanted = {f"O{n:03d}": {"A": rng.randint(1, 3), "B": rng.randint(0, 2)} for n in range(200)}
    countries = ["US", "DE", "CN", "FR"]

    async def one(n: int, order_id: str):
        replica = first if n % 2 else second
        lines = [(sku, q) for sku, q in wanted[order_id].items() if q]
        return await replica.reserve(
            order_id, lines, priority=rng.randint(0, 3), country=countries[n % 4], placed_at=placed(n)
        )

    results = dict(zip(wanted, await asyncio.gather(*[one(n, o) for n, o in enumerate(wanted)]), strict=True))
    # a third pass from the other replica changes nothing (target state)
    async with first.db.read() as conn:
        rows = {(r.sku, r.warehouse): r for r in (await conn.execute(select(stock))).all()}
    for key, q in on_hand.items():
        row = rows[key]
        assert row.on_hand == q  # nothing shipped, nothing invented
        assert 0 <= row.reserved <= row.on_hand  # never oversold
    for sku in ("A", "B"):
        total_on_hand = sum(q for (s, _), q in on_hand.items() if s == sku)
        total_wanted = sum(w[sku] for w in wanted.values())
        reserved = sum(r.reserved for (s, _), r in rows.items() if s == sku)
        assert reserved == min(total_on_hand, total_wanted)  # scarce: every unit went to some order
        held_total = sum(q for r in results.values() for s, _, q in r.reservations if s == sku)
        backordered_total = sum(r.backordered.get(sku, 0) for r in results.values())
        assert held_total == reserved and held_total + backordered_total == total_wanted
    for order_id, r in results.items():  # each order: what it holds + what it misses = what it asked for
        for sku, q in wanted[order_id].items():
            assert sum(x for s, _, x in r.reservations if s == sku) + r.backordered.get(sku, 0) == q
        assert await missing(first, order_id) == r.backordered
    await books_balance(first)
    # production planned for the shortfall exactly once per unit, whichever replica saw it
    async with first.db.read() as conn:
        planned = (
            await conn.execute(
                select(func.coalesce(func.sum(production_runs.c.quantity), 0)).where(
                    production_runs.c.sku == "STK-1"
                )
            )
        ).scalar_one()
    assert planned == 0  # A and B have no product record: no runs, backorders wait for receipts


async def test_two_replicas_plan_production_once_for_concurrent_shortfalls(two_replicas):
    first, second = two_replicas
    calls = [
        (first if n % 2 else second).reserve(
            f"O{n}", [("MTO-1", 2)], priority=n % 3, country="US", placed_at=placed(n)
        )
        for n in range(40)
    ]
    results = await asyncio.gather(*calls)
    async with first.db.read() as conn:
        planned = (
            await conn.execute(
                select(func.sum(production_runs.c.quantity)).where(production_runs.c.sku == "MTO-1")
            )
        ).scalar_one()
    assert planned == 80  # every missing unit covered once, no run twice
    assert all(r.expected_date for r in results)
    await books_balance(first)


async def test_a_plan_from_stale_levels_is_refused_by_the_guard_and_retried_locked(inventory, monkeypatch):
    """What another replica would cause: the unlocked read shows units that are gone. The guarded
    update refuses, nothing is oversold, and the locked retry reserves what is really there."""
    from orderdesk import metrics
    from services.inventory.store import StockRepository

    await put_stock(inventory, "A", WH_CHI=3)
    real = StockRepository.available

    async def stale(self, skus, *, lock):
        levels = await real(self, skus, lock=lock)
        return levels if lock else {sku: {wh: q + 5 for wh, q in per.items()} for sku, per in levels.items()}

    monkeypatch.setattr(StockRepository, "available", stale)
    retries = metrics.RESERVE_RETRIES._value.get()
    result = await inventory.reserve("O1", [("A", 6)])
    assert result.reservations == [("A", "WH-CHI", 3)] and result.backordered == {"A": 3}
    assert metrics.RESERVE_RETRIES._value.get() == retries + 2  # both optimistic attempts refused
    assert {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await inventory.levels("A")} == {
        "WH-CHI": (3, 3)
    }
    await books_balance(inventory)


async def test_the_demand_ahead_summed_in_sql_follows_the_fill_order(inventory):
    from services.inventory.store import StockRepository
    from services.inventory.supply import fill_order

    rng = random.Random(11)
    for n in range(30):  # ties in priority and in placement time, so every tie-break is exercised
        await inventory.reserve(
            f"O{n:02d}",
            [("NEVER-STOCKED", rng.randint(1, 5))],
            priority=rng.randint(0, 2),
            placed_at=placed(rng.randint(0, 4)),
        )
    async with inventory.db.read() as conn:
        repo = StockRepository(conn, inventory.db.dialect)
        ordered = fill_order(await repo.backorders_for(["NEVER-STOCKED"]))
        total = sum(b.quantity for b in ordered)
        through = 0
        for b in ordered:
            through += b.quantity
            assert await repo.backorder_demand("NEVER-STOCKED", b.order_id) == (through, total), b.order_id


async def test_a_run_that_grew_while_completing_is_received_at_its_new_size(inventory, monkeypatch):
    from services.inventory.store import StockRepository
    from services.inventory.supply import Run

    await inventory.reserve("O1", [("MTO-1", 4)], country="US")
    (run,) = await runs(inventory, "MTO-1")
    real, calls = StockRepository.run, []

    async def read_before_it_grew(self, production_id):
        found = await real(self, production_id)
        calls.append(production_id)
        if len(calls) == 1:  # what a completion read just before a planner added 1 unit to the run
            r, status = found
            return Run(r.production_id, r.sku, r.warehouse, r.quantity - 1, r.expected_date), status
        return found

    monkeypatch.setattr(StockRepository, "run", read_before_it_grew)
    done, status = await inventory.complete_production(run.production_id)
    assert status == "completed" and done.quantity == 4
    assert {lv.warehouse: lv.on_hand for lv in await inventory.levels("MTO-1")} == {"WH-CHI": 4}
    await books_balance(inventory)


async def rescheduled_events(service) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
    found = [events_pb2.Event.FromString(r.payload) for r in rows]
    return [e for e in found if e.type == "stock.rescheduled"]


async def test_a_rescheduled_run_redates_its_backorders_and_names_them_once(inventory):
    r1 = await inventory.reserve("O1", [("MTO-1", 4)], priority=2, placed_at=placed(10), country="US")
    r2 = await inventory.reserve("O2", [("MTO-1", 2)], priority=1, placed_at=placed(5), country="US")
    (run,) = await runs(inventory, "MTO-1")  # one run grew for both (same day, same warehouse)
    assert r1.expected_date == r2.expected_date == run.expected_date
    later = TODAY + dt.timedelta(days=30)

    moved, status = await inventory.reschedule_production(run.production_id, later.isoformat())
    assert (moved.expected_date, status) == (later, "open")
    (stored,) = await runs(inventory, "MTO-1")
    assert stored.expected_date == later.isoformat() and stored.quantity == 6
    [event] = await rescheduled_events(inventory)
    assert event.aggregate_id == "MTO-1" and event.stock.production_id == run.production_id
    assert list(event.stock.affected_order_ids) == ["O1", "O2"]  # fill order: priority first
    assert event.stock.expected_date == later.isoformat()
    # the backorders' next Reserve (target state: nothing new planned or reserved) gives the new dates
    again = await inventory.reserve("O1", [("MTO-1", 4)], priority=2, country="US")
    assert again.expected_date == later.isoformat()
    # delivered 3 working days on (Monday to Friday: the run's new date, 26 Dec, is a Saturday)
    assert again.expected_delivery_date == working_days(3, start=later) == "2026-12-30"
    assert len(await runs(inventory, "MTO-1")) == 1

    # the same date again: nothing changes, nothing is published
    await inventory.reschedule_production(run.production_id, later.isoformat())
    assert len(await rescheduled_events(inventory)) == 1
    # refused, changing nothing: the past, not a date, unknown, completed
    with pytest.raises(errors.InvalidArgument) as past:
        await inventory.reschedule_production(run.production_id, (TODAY - dt.timedelta(days=1)).isoformat())
    assert past.value.violations[0].field == "expected_date"
    with pytest.raises(errors.InvalidArgument):
        await inventory.reschedule_production(run.production_id, "soon")
    with pytest.raises(errors.NotFound):
        await inventory.reschedule_production("PRD-nope", later.isoformat())
    await inventory.complete_production(run.production_id)
    with pytest.raises(errors.FailedPrecondition) as done:
        await inventory.reschedule_production(run.production_id, TODAY.isoformat())
    assert done.value.rule == "production_completed"
    assert len(await rescheduled_events(inventory)) == 1
    await books_balance(inventory)


async def test_an_announced_inbound_receipt_redates_the_backorders_until_it_arrives(inventory):
    r1 = await inventory.reserve("O1", [("STK-1", 5)], priority=1, placed_at=placed(10), country="US")
    (run,) = await runs(inventory, "STK-1")  # nothing in stock: a run planned with the lead time
    assert r1.expected_date == run.expected_date == working_days(7, CHICAGO)
    soon = TODAY + dt.timedelta(days=3)  # a Sunday: Chicago receives on Monday to Saturday, no matter here

    announced = await inventory.announce_inbound("ASN-1", "STK-1", "WH-CHI", 5, soon.isoformat())
    assert (announced.expected_date, announced.status) == (soon, "open")
    [event] = await rescheduled_events(inventory)
    assert event.aggregate_id == "STK-1" and event.stock.inbound_reference == "ASN-1"
    assert list(event.stock.affected_order_ids) == ["O1"] and event.stock.expected_date == soon.isoformat()
    again = await inventory.reserve("O1", [("STK-1", 5)], priority=1, country="US")
    assert again.expected_date == soon.isoformat()  # the supplier's goods come before the run
    assert len(await runs(inventory, "STK-1")) == 1  # nothing new planned
    points = (await inventory.available_to_promise("STK-1")).points
    assert points[-1].total == 5  # the run is free again: the inbound receipt serves O1

    # idempotent by reference: the same again changes nothing; other goods under it are refused
    await inventory.announce_inbound("ASN-1", "STK-1", "WH-CHI", 5, soon.isoformat())
    assert len(await rescheduled_events(inventory)) == 1
    with pytest.raises(errors.InvalidArgument) as reused:
        await inventory.announce_inbound("ASN-1", "STK-1", "WH-CHI", 6, soon.isoformat())
    assert reused.value.violations[0].reason == "reference_reused"
    with pytest.raises(errors.InvalidArgument) as past:
        await inventory.announce_inbound(
            "ASN-2", "STK-1", "WH-CHI", 5, (TODAY - dt.timedelta(days=1)).isoformat()
        )
    assert past.value.violations[0].field == "expected_date"
    with pytest.raises(errors.InvalidArgument):
        await inventory.announce_inbound("ASN-2", "STK-1", "WH-NOPE", 5, soon.isoformat())

    # the supplier moves it: the backorder follows
    later = TODAY + dt.timedelta(days=5)
    await inventory.announce_inbound("ASN-1", "STK-1", "WH-CHI", 5, later.isoformat())
    assert len(await rescheduled_events(inventory)) == 2
    assert (
        await inventory.reserve("O1", [("STK-1", 5)], priority=1, country="US")
    ).expected_date == later.isoformat()

    # it arrives (the receipt of the same reference): no longer supply to come, and it fills the backorder
    await inventory.restock("STK-1", "WH-CHI", 5, "ASN-1")
    assert await held(inventory, "O1") == {"STK-1": 5}
    with pytest.raises(errors.FailedPrecondition) as arrived:
        await inventory.announce_inbound("ASN-1", "STK-1", "WH-CHI", 5, later.isoformat())
    assert arrived.value.rule == "inbound_received"
    await books_balance(inventory)


async def test_a_run_completed_in_part_receives_those_units_once_and_keeps_the_rest_open(inventory):
    await inventory.reserve("O1", [("MTO-1", 4)], priority=2, placed_at=placed(10), country="US")
    await inventory.reserve("O2", [("MTO-1", 2)], priority=1, placed_at=placed(5), country="US")
    (run,) = await runs(inventory, "MTO-1")
    assert run.quantity == 6
    with pytest.raises(errors.InvalidArgument) as unnamed:
        await inventory.complete_production(run.production_id, 4)
    assert unnamed.value.violations[0].field == "reference"

    rest, status = await inventory.complete_production(run.production_id, 4, "batch-1")
    assert (rest.quantity, status) == (2, "open")
    assert await held(inventory, "O1") == {"MTO-1": 4}  # priority first
    assert await missing(inventory, "O2") == {"MTO-1": 2}
    (still,) = await runs(inventory, "MTO-1")
    assert (still.quantity, still.status, still.expected_date) == (2, "open", run.expected_date)
    again, _ = await inventory.complete_production(run.production_id, 4, "batch-1")  # a retry: nothing more
    assert again.quantity == 2
    assert {lv.warehouse: lv.on_hand for lv in await inventory.levels("MTO-1")} == {"WH-CHI": 4}

    done, status = await inventory.complete_production(run.production_id)  # the rest
    assert (done.quantity, status) == (2, "completed")
    assert await held(inventory, "O2") == {"MTO-1": 2}
    assert {lv.warehouse: lv.on_hand for lv in await inventory.levels("MTO-1")} == {"WH-CHI": 6}
    await books_balance(inventory)


async def test_two_replicas_reserving_overlapping_batches_with_receipts_and_cancels_never_deadlock(
    two_replicas,
):
    """ReserveMany on PostgreSQL takes a whole call in one transaction, its locks up front in the store's order
    (orders, stock rows, then the SKUs' counters), whatever the order of its orders. Two replicas reserving
    overlapping calls in opposite orders, over a scarce SKU, SKUs with no stock row at all (only their
    counters: backorders and production runs) and a SKU out of stock, finish without a deadlock (PostgreSQL
    would fail one of the two after a second), oversell nothing and leave every order holding + owing what
    it asked for, also with receipts and cancels filling backorders on both replicas at the same time."""
    first, second = two_replicas
    await put_stock(first, "A", WH_CHI=12, WH_HAM=8)
    await put_stock(first, "Z", WH_CHI=0)  # a stock row with nothing available: backordered, no take
    rng = random.Random(11)
    skus = ["A", "MTO-1", "STK-1", "Z"]  # MTO-1, STK-1: never stocked (products with lead times)
    wanted = {
        f"O{n:03d}": [(s, rng.randint(1, 3)) for s in rng.sample(skus, rng.randint(1, 4))] for n in range(120)
    }
    ids = list(wanted)

    def calls(order_ids):
        return [
            ReserveCall(o, wanted[o], rng.randint(0, 3), rng.choice(["US", "DE", "CN"]), placed(n))
            for n, o in enumerate(order_ids)
        ]

    chunks = [(first, calls(ids[i : i + 30])) for i in range(0, 120, 30)]
    chunks += [(second, calls(list(reversed(ids))[i : i + 30])) for i in range(0, 120, 30)]
    cancelled = ids[5::17]

    async def cancel(replica, order_id):
        await retrying(replica.db, lambda tx: replica.release(tx, order_id))  # as the consumer, retried

    # meanwhile receipts fill backorders and cancels give units back, on both replicas at once
    work = [second.restock("A", "WH-HAM", 3, f"GRN-{n}") for n in range(4)]
    work += [first.restock("STK-1", "WH-SHA", 2, f"GRN-S{n}") for n in range(3)]
    work += [cancel(first if n % 2 else second, o) for n, o in enumerate(cancelled)]
    done = await asyncio.wait_for(
        asyncio.gather(*[replica.reserve_many(c) for replica, c in chunks], *work), 120
    )
    for (_, batch_calls), batch in zip(chunks, done[: len(chunks)], strict=True):
        for call, r in zip(batch_calls, batch, strict=True):
            if isinstance(r, errors.FailedPrecondition):  # cancelled before this call came
                assert call.order_id in cancelled and r.rule == "order_released"
            else:
                assert isinstance(r, ReserveResult), r
    await books_balance(first)
    # each order as it now is (one more call reads it): holds + owes what it asked for, nothing when cancelled
    final = await first.reserve_many(calls(ids[:60])) + await second.reserve_many(calls(ids[60:]))
    for order_id, r in zip(ids, final, strict=True):
        if order_id in cancelled:
            assert isinstance(r, errors.FailedPrecondition) and r.rule == "order_released"
            assert await missing(first, order_id) == {} and await held(first, order_id) == {}
            continue
        for sku, q in wanted[order_id]:
            assert sum(x for s, _, x in r.reservations if s == sku) + r.backordered.get(sku, 0) == q
        assert await missing(first, order_id) == r.backordered
    a_levels = await first.levels("A")
    assert sum(lv.on_hand for lv in a_levels) == 20 + 12
    held_a = sum(
        x
        for o, r in zip(ids, final, strict=True)
        if o not in cancelled
        for s, _, x in r.reservations
        if s == "A"
    )
    owed_a = sum(q for o in ids if o not in cancelled for s, q in wanted[o] if s == "A")
    assert (
        sum(lv.reserved for lv in a_levels) == held_a == min(owed_a, 32)
    )  # scarce: every unit went to an order
    await books_balance(first)


async def test_a_batch_promises_backorders_as_reserves_one_by_one_do_reading_supply_once(make_database):
    """ReserveMany reads a SKU's open runs, announced receipts, product and backordered total once per call
    and keeps them current as its orders back-order and plan runs: the answers (dates), the runs and the
    backorders are what the same Reserves one by one leave, in fewer statements."""
    from orderdesk import metrics

    outcomes = []
    for batched in (False, True):
        service = InventoryService(await make_database(MIGRATIONS), clock=lambda: NOW)
        await service.import_csv("warehouses", WAREHOUSES)
        await service.import_csv("products", PRODUCTS)
        await put_stock(service, "STK-1", WH_HAM=3)
        await service.announce_inbound("ASN-1", "STK-1", "WH-SHA", 4, working_days(3))
        await service.reserve("O-OLD", [("MTO-1", 2)], priority=1, country="US", placed_at=placed(99))
        calls = [
            ReserveCall(
                f"O{n}", [("MTO-1", 1 + n % 2), ("STK-1", 2)], n % 3, ("US", "DE", "CN")[n % 3], placed(n)
            )
            for n in range(9)
        ]
        async with service.db.reading() as work:
            await service.book(work)
        statements = metrics.DB_STATEMENTS._value.get()
        results = await reserve_all(service, calls, batched)
        spent = metrics.DB_STATEMENTS._value.get() - statements
        planned = sorted(
            (r.sku, r.warehouse, r.quantity, r.expected_date) for r in await runs(service, "MTO-1")
        )
        owed = [await missing(service, c.order_id) for c in calls]
        outcomes.append((results, planned, owed, spent))
        await books_balance(service)
    (one_by_one, planned, owed, spent_alone), (together, planned_together, owed_together, spent) = outcomes
    assert together == one_by_one and all(r.expected_date for r in together)
    assert (planned_together, owed_together) == (planned, owed)
    assert spent < spent_alone / 2  # 9 backordered orders: 216 one by one, 93 (SQLite) and 91 together


async def test_two_replicas_filling_backorders_while_reserving_change_only_orders_they_locked(
    two_replicas, monkeypatch
):
    """Receipts and cancels fill backorders while both replicas reserve the same scarce SKUs (in batches and
    one by one, new orders and again), and while they fill each other: a fill changes only orders it holds
    the locks of, so nothing is oversold, no transaction deadlocks, each SKU's backordered total is the sum
    of its backorders and every order holds + owes what it asked for (a cancelled one nothing)."""
    from services.inventory.store import StockRepository

    first, second = two_replicas
    replicas = (first, second)
    real = StockRepository.lock_levels

    async def slowly(self, sku):  # a busy replica: a fill's locks last a little longer than its first read
        levels = await real(self, sku)
        await asyncio.sleep(0.02)
        return levels

    monkeypatch.setattr(StockRepository, "lock_levels", slowly)
    await put_stock(first, "A", WH_CHI=4, WH_HAM=2)
    await put_stock(first, "B", WH_HAM=3)
    rng = random.Random(23)
    rounds, per_round = 6, 16
    wanted = {
        f"R{r}-O{n:02d}": [(s, rng.randint(1, 3)) for s in rng.sample(["A", "B"], rng.randint(1, 2))]
        for r in range(rounds)
        for n in range(per_round)
    }
    ids = list(wanted)
    calls = {
        o: ReserveCall(o, wanted[o], n % 4, ("US", "DE", "CN")[n % 3], placed(n)) for n, o in enumerate(ids)
    }
    received = {"A": 6, "B": 3}
    cancelled: set[str] = set()

    async def later(work, ms: int = 10):  # each call a few milliseconds on, so they interleave differently
        await asyncio.sleep(ms * rng.random() / 1000)
        return await work

    async def reserve_one(replica, c: ReserveCall):
        try:
            await replica.reserve(c.order_id, c.lines, c.priority, country=c.country, placed_at=c.placed_at)
        except errors.FailedPrecondition as refused:  # cancelled before it came
            assert c.order_id in cancelled and refused.rule == "order_released"

    async def cancel(replica, order_id: str):
        await retrying(replica.db, lambda tx: replica.release(tx, order_id))  # as the consumer, retried

    for r in range(rounds):
        new = ids[r * per_round : (r + 1) * per_round]
        again = rng.sample(new, 4) + rng.sample(ids[: r * per_round], min(r * per_round, 4))  # called again
        to_cancel = rng.sample(new, 3) + rng.sample(ids[: r * per_round], min(r * per_round, 2))
        cancelled.update(to_cancel)
        # receipts first (their fills' locks last a while), the new orders come meanwhile, then calls
        # again and cancels of orders that may just have begun to wait
        work = []
        for n, sku in enumerate(("A", "B", "B") * 2):
            warehouse = ("WH-CHI", "WH-HAM")[n // 2 % 2]
            work.append(replicas[n % 2].restock(sku, warehouse, 1, f"GRN-{r}-{n}"))
            received[sku] += 1
        work.append(later(first.reserve_many([calls[o] for o in new[:6]])))
        work.append(later(second.reserve_many([calls[o] for o in reversed(new[3:9])])))
        work += [later(reserve_one(replicas[n % 2], calls[o])) for n, o in enumerate(new[9:])]
        work += [later(reserve_one(replicas[n % 2], calls[o]), 30) for n, o in enumerate(again)]
        work += [later(cancel(replicas[n % 2], o), 30) for n, o in enumerate(to_cancel)]
        outcomes = await asyncio.wait_for(asyncio.gather(*work, return_exceptions=True), 60)
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert not failed, failed  # no deadlock, no lost race left unretried
        for result in outcomes[6] + outcomes[7]:
            if isinstance(result, errors.FailedPrecondition):
                assert result.rule == "order_released"
            else:
                assert isinstance(result, ReserveResult), result
        await books_balance(first)
    # each order as it now is (one more call reads it): holds + owes what it asked for, nothing when cancelled
    for order_id in ids:
        c = calls[order_id]
        if order_id in cancelled:
            with pytest.raises(errors.FailedPrecondition):
                await first.reserve(order_id, c.lines, c.priority, country=c.country)
            assert await missing(first, order_id) == {} and await held(first, order_id) == {}, order_id
            continue
        done = await first.reserve(order_id, c.lines, c.priority, country=c.country, placed_at=c.placed_at)
        for sku, q in wanted[order_id]:
            assert sum(x for s, _, x in done.reservations if s == sku) + done.backordered.get(sku, 0) == q
        assert await missing(first, order_id) == done.backordered
    for sku, total in received.items():
        levels = await first.levels(sku)
        assert sum(lv.on_hand for lv in levels) == total
        assert all(0 <= lv.reserved <= lv.on_hand for lv in levels)
    await books_balance(first)


async def test_a_fill_leaves_an_order_that_began_waiting_after_its_first_read_to_whoever_holds_it(
    two_replicas, monkeypatch
):
    """The race the test above provokes at random, step by step: while a receipt's fill holds its locks, the
    other replica backorders a new order X and commits; then, while the fill is at X, cancels X. The fill
    locks X before it changes it (so the cancel waits for it and gives back what it filled), never fills
    the cancelled X unlocked: the books balance and X holds nothing."""
    from services.inventory.store import StockRepository

    first, second = two_replicas
    await put_stock(first, "A", WH_CHI=0)
    await first.reserve("W", [("A", 1)], country="US", placed_at=placed(9))
    lock_levels, held_warehouses = StockRepository.lock_levels, StockRepository.held_warehouses
    cancelling: list[asyncio.Task] = []

    async def then_x_waits(self, sku):  # the fill has read who waits and locked them
        levels = await lock_levels(self, sku)
        if sku == "A" and not cancelling:
            x = await second.reserve("X", [("A", 2)], country="US", placed_at=placed(5))
            assert x.backordered == {"A": 2}
        return levels

    async def then_x_is_cancelled(self, order_id):  # the fill is at X's backorder
        if order_id == "X" and not cancelling:
            cancelling.append(asyncio.create_task(retrying(second.db, lambda tx: second.release(tx, "X"))))
            await asyncio.wait([cancelling[0]], timeout=0.3)  # done at once unless the fill holds X
        return await held_warehouses(self, order_id)

    monkeypatch.setattr(StockRepository, "lock_levels", then_x_waits)
    monkeypatch.setattr(StockRepository, "held_warehouses", then_x_is_cancelled)
    await first.restock("A", "WH-CHI", 5, "GRN-1")
    await asyncio.wait_for(cancelling[0], 10)
    assert await held(first, "W") == {"A": 1}
    assert await held(first, "X") == {} and await missing(first, "X") == {}
    assert {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await first.levels("A")} == {"WH-CHI": (5, 1)}
    await books_balance(first)
