"""ReserveMany on a real database (SQLite and PostgreSQL): many orders' Reserve in one call, in the
given (priority) order, each with its own result or error; never oversells, even from two replicas."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import pytest
from sqlalchemy import select

from orderdesk import errors
from orderdesk.db import Database
from orderdesk.v1 import inventory_pb2
from services.inventory.api import InventoryApi
from services.inventory.service import MAX_RESERVE_MANY, InventoryService, ReserveCall, ReserveResult
from services.inventory.store import backorders, order_states, stock
from tests.integration.inventory.test_stock import MIGRATIONS, WAREHOUSES, books_balance, by_wh, put_stock


async def reserve_all(service: InventoryService, calls: list[ReserveCall], batched: bool) -> list:
    """The calls' answers, in one ReserveMany (batched) or one Reserve each, in turn."""
    if batched:
        return await service.reserve_many(calls)
    return [
        await service.reserve(c.order_id, c.lines, c.priority, country=c.country, placed_at=c.placed_at)
        for c in calls
    ]


NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def inventory(make_database):
    service = InventoryService(await make_database(MIGRATIONS), clock=lambda: NOW)
    await service.import_csv("warehouses", WAREHOUSES)
    return service


def call(order_id: str, *lines: tuple[str, int], priority: int = 0, minutes_ago: int = 0) -> ReserveCall:
    return ReserveCall(order_id, list(lines), priority, "US", NOW - dt.timedelta(minutes=minutes_ago))


async def owed(service, order_id: str) -> dict[str, int]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(backorders.c.sku, backorders.c.quantity).where(backorders.c.order_id == order_id)
        )
        return {r.sku: r.quantity for r in rows}


async def test_scarce_stock_goes_to_the_orders_first_in_the_call(inventory):
    await put_stock(inventory, "S1", WH_CHI=2, WH_HAM=1)
    await put_stock(inventory, "S2", WH_CHI=10)
    # the allocator's order: highest priority first, first come within a priority
    calls = [call("O-LATE-LOW", ("S1", 1), ("S2", 1), priority=0, minutes_ago=50)]
    calls = [
        call("O-HIGH", ("S1", 2), priority=9, minutes_ago=1),
        call("O-MID", ("S1", 1), ("S2", 2), priority=5),
        call("O-LOW", ("S1", 1), priority=0, minutes_ago=60),
    ] + calls
    results = await inventory.reserve_many(calls)
    assert all(isinstance(r, ReserveResult) for r in results)
    high, mid, low, late = results
    assert (high.reservations, high.backordered) == ([("S1", "WH-CHI", 2)], {})  # one warehouse for the order
    assert (mid.reservations, mid.backordered) == ([("S1", "WH-HAM", 1), ("S2", "WH-CHI", 2)], {})
    assert (low.reservations, low.backordered) == ([], {"S1": 1})
    assert (late.reservations, late.backordered) == ([("S2", "WH-CHI", 1)], {"S1": 1})
    assert await by_wh(inventory, "S1") == {"WH-CHI": (2, 2), "WH-HAM": (1, 1)}
    assert await by_wh(inventory, "S2") == {"WH-CHI": (10, 3)}
    # backorders recorded with priority and placed_at: a receipt fills them by priority, then first come
    async with inventory.db.read() as conn:
        states = {r.order_id: (r.priority, r.placed_at) for r in await conn.execute(select(order_states))}
    assert states["O-LOW"] == (0, NOW - dt.timedelta(minutes=60))
    assert await owed(inventory, "O-LOW") == {"S1": 1} and await owed(inventory, "O-LATE-LOW") == {"S1": 1}
    await inventory.restock("S1", "WH-CHI", 1, "PO-1")
    assert await owed(inventory, "O-LOW") == {} and await owed(inventory, "O-LATE-LOW") == {"S1": 1}
    await books_balance(inventory)


async def test_a_released_or_invalid_order_is_refused_without_failing_the_others(inventory):
    await put_stock(inventory, "S1", WH_CHI=10)
    await inventory.reserve("O2", [("S1", 3)])
    async with inventory.db.transaction() as tx:  # cancelled after the allocator read it
        await inventory.release(tx, "O2")
    results = await inventory.reserve_many(
        [call("O1", ("S1", 2)), call("O2", ("S1", 3)), call("O3", ("S1", 0)), call("O4", ("S1", 4))]
    )
    assert results[0].reservations == [("S1", "WH-CHI", 2)]
    assert isinstance(results[1], errors.FailedPrecondition) and results[1].rule == "order_released"
    assert isinstance(results[2], errors.InvalidArgument)
    assert results[2].violations[0].field == "lines[0].quantity"
    assert results[3].reservations == [("S1", "WH-CHI", 4)]
    assert await by_wh(inventory, "S1") == {"WH-CHI": (10, 6)}  # nothing for the released order
    async with inventory.db.read() as conn:
        known = set((await conn.execute(select(order_states.c.order_id))).scalars())
    assert "O3" not in known  # the invalid request changed nothing
    await books_balance(inventory)


async def test_a_repeat_is_target_state_and_answers_like_reserve(inventory):
    await put_stock(inventory, "S1", WH_CHI=3, WH_HAM=4)
    calls = [call(f"O{n}", ("S1", 2), priority=1, minutes_ago=n) for n in range(5)]
    first = await inventory.reserve_many(calls)
    again = await inventory.reserve_many(calls)
    assert again == first
    assert [
        await inventory.reserve(c.order_id, c.lines, c.priority, country="US", placed_at=c.placed_at)
        for c in calls
    ] == first
    assert sum(q for r in first for _, _, q in r.reservations) == 7
    assert sum(sum(r.backordered.values()) for r in first) == 3
    assert await by_wh(inventory, "S1") == {"WH-CHI": (3, 3), "WH-HAM": (4, 4)}
    # fewer wanted now: the excess goes back, as Reserve does
    smaller = await inventory.reserve_many([call("O0", ("S1", 1))])
    assert sum(q for _, _, q in smaller[0].reservations) == 1
    await books_balance(inventory)


async def test_the_same_order_twice_or_too_many_orders_are_refused_whole(inventory):
    await put_stock(inventory, "S1", WH_CHI=3)
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.reserve_many([call("O1", ("S1", 1)), call("O1", ("S1", 1))])
    assert err.value.violations[0].field == "orders[1].order_id"
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.reserve_many([call(f"O{n}", ("S1", 1)) for n in range(MAX_RESERVE_MANY + 1)])
    assert err.value.violations[0].field == "orders"
    assert await by_wh(inventory, "S1") == {"WH-CHI": (3, 0)}


async def test_the_api_answers_each_order_with_its_response_or_error(inventory):
    await put_stock(inventory, "S1", WH_CHI=1)
    async with inventory.db.transaction() as tx:
        await inventory.release(tx, "O2")
    request = inventory_pb2.ReserveManyRequest(
        orders=[
            inventory_pb2.ReserveRequest(
                order_id=o,
                lines=[inventory_pb2.ReserveLine(sku="S1", quantity=1)],
                priority=p,
                ship_to_country="US",
            )
            for o, p in (("O1", 5), ("O2", 4), ("O3", 3))
        ]
    )
    answer = await InventoryApi(inventory).ReserveMany(request, None)
    assert [r.order_id for r in answer.results] == ["O1", "O2", "O3"]
    assert [(x.sku, x.warehouse, x.quantity) for x in answer.results[0].response.reservations] == [
        ("S1", "WH-CHI", 1)
    ]
    assert not answer.results[0].error_code
    assert (answer.results[1].error_code, answer.results[1].error_reason) == (
        "FAILED_PRECONDITION",
        "order_released",
    )
    assert not answer.results[1].HasField("response")
    assert [(b.sku, b.quantity) for b in answer.results[2].response.backordered] == [("S1", 1)]


async def test_concurrent_calls_and_single_reserves_never_oversell(inventory):
    """Each call runs in one transaction (on PostgreSQL beside the others and the single Reserves): the books hold."""
    await put_stock(inventory, "A", WH_CHI=9, WH_HAM=6)
    await put_stock(inventory, "B", WH_CHI=5, WH_SHA=5)
    wanted = {
        f"O{n:02d}": [("A", 1 + n % 3), ("B", n % 2)] if n % 2 else [("A", 1 + n % 3)] for n in range(40)
    }
    ids = list(wanted)
    batches = [
        inventory.reserve_many([call(o, *wanted[o]) for o in ids[i : i + 10]]) for i in range(0, 40, 10)
    ]
    singles = [inventory.reserve(o, wanted[o]) for o in ids[::3]]  # the desk re-reserving some of them
    done = await asyncio.gather(*batches, *singles)
    results = {
        o: r
        for i, batch in enumerate(done[:4])
        for o, r in zip(ids[i * 10 : i * 10 + 10], batch, strict=True)
    }
    assert sum(q for r in results.values() for s, _, q in r.reservations if s == "A") == 15
    for order_id, r in results.items():
        for sku, q in wanted[order_id]:
            if q:
                assert sum(x for s, _, x in r.reservations if s == sku) + r.backordered.get(sku, 0) == q
    await books_balance(inventory)


# --- two replicas on one PostgreSQL --------------------------------------------------------------------------
@pytest.fixture
async def two_replicas(inventory, backend):
    if backend != "postgresql":
        pytest.skip("replicas share one PostgreSQL database (SQLite is one file per process)")
    second = InventoryService(Database(inventory.db.url), clock=lambda: NOW)  # its own engine and pool
    yield inventory, second
    await second.db.close()


async def test_two_replicas_reserving_many_over_scarce_stock_oversell_nothing_and_do_not_deadlock(
    two_replicas,
):
    first, second = two_replicas
    on_hand = {
        ("A", "WH-CHI"): 30,
        ("A", "WH-HAM"): 20,
        ("A", "WH-SHA"): 10,
        ("B", "WH-CHI"): 15,
        ("B", "WH-HAM"): 15,
        ("B", "WH-SHA"): 5,
    }
    for (sku, wh), q in on_hand.items():
        await put_stock(first, sku, **{wh.replace("-", "_"): q})
    rng = random.Random(7)
    wanted = {
        f"O{n:03d}": [(s, q) for s, q in (("B", rng.randint(0, 2)), ("A", rng.randint(1, 3))) if q]
        for n in range(160)
    }
    ids = list(wanted)

    def calls(order_ids):
        return [call(o, *wanted[o], priority=n % 3, minutes_ago=n) for n, o in enumerate(order_ids)]

    # overlapping chunks, in opposite orders on the two replicas: the same orders are reserved concurrently
    chunks = [(first, calls(ids[i : i + 40])) for i in range(0, 160, 40)]
    chunks += [(second, calls(list(reversed(ids))[i : i + 40])) for i in range(0, 160, 40)]
    answers = await asyncio.wait_for(asyncio.gather(*[replica.reserve_many(c) for replica, c in chunks]), 120)
    assert all(isinstance(r, ReserveResult) for batch in answers for r in batch)
    async with first.db.read() as conn:
        rows = {(r.sku, r.warehouse): r for r in (await conn.execute(select(stock))).all()}
    for key, q in on_hand.items():
        assert rows[key].on_hand == q and 0 <= rows[key].reserved <= q
    for sku in ("A", "B"):
        total_wanted = sum(q for lines in wanted.values() for s, q in lines if s == sku)
        total_on_hand = sum(q for (s, _), q in on_hand.items() if s == sku)
        assert sum(r.reserved for (s, _), r in rows.items() if s == sku) == min(total_wanted, total_on_hand)
    # each order, as it now is: what it holds + what it misses is what it asked for (one more call reads it)
    final = await first.reserve_many(calls(ids[:80])) + await second.reserve_many(calls(ids[80:]))
    for order_id, r in zip(ids, final, strict=True):
        for sku, q in wanted[order_id]:
            assert sum(x for s, _, x in r.reservations if s == sku) + r.backordered.get(sku, 0) == q
        assert await owed(first, order_id) == r.backordered
    await books_balance(first)


async def test_a_batch_writes_once_and_leaves_what_reserves_one_by_one_leave(make_database):
    """A call's orders run in one transaction with their writes batched (the new orders' rows, the
    levels read once, the reservation rows and each stock row's summed change in one statement each); what
    it leaves is what the same Reserves one by one leave, also when one order gives back what a later one
    takes, and the guards still hold at the end."""
    books = []
    for batched in (False, True):
        service = InventoryService(await make_database(MIGRATIONS), clock=lambda: NOW)
        await service.import_csv("warehouses", WAREHOUSES)
        await put_stock(service, "S1", WH_CHI=5, WH_HAM=2)
        await put_stock(service, "S2", WH_CHI=3)
        await service.reserve("O-OLD", [("S1", 5)], country="US", placed_at=NOW)
        calls = [
            call("O-OLD", ("S1", 1), ("S2", 1)),  # gives 4 of S1 back ...
            call("O-A", ("S1", 3), minutes_ago=3),  # ... which this one takes
            call("O-B", ("S1", 2), ("S2", 1), minutes_ago=2),
            call("O-C", ("S1", 9), ("S2", 5), minutes_ago=1),  # more than there is: backordered
        ]
        results = await reserve_all(service, calls, batched)
        assert all(isinstance(r, ReserveResult) for r in results)
        async with service.db.read() as conn:
            levels = sorted(
                tuple(r)
                for r in await conn.execute(
                    select(stock.c.sku, stock.c.warehouse, stock.c.on_hand, stock.c.reserved)
                )
            )
        books.append((results, levels, [await owed(service, c.order_id) for c in calls]))
        await books_balance(service)
    assert books[0] == books[1]
    results, levels, owing = books[1]
    assert owing[3] == {"S1": 8, "S2": 4}
    assert sum(q for r in results for sku, _wh, q in r.reservations if sku == "S2") == 3


async def test_new_orders_in_stock_cost_four_statements_a_batch_on_sqlite_five_on_postgresql(inventory):
    """The allocator's common case: new orders whose lines are in stock. A call's orders cost the new
    orders' rows, one read of the levels, the reservation rows and the stock rows' changes: one statement
    each for the whole call (six per order of two lines before); PostgreSQL first locks the rows of the
    orders that exist (none here), and reads the levels FOR UPDATE."""
    from orderdesk import metrics

    await put_stock(inventory, "S1", WH_CHI=50, WH_HAM=50)
    await put_stock(inventory, "S2", WH_CHI=50)
    calls = [call(f"O{n}", ("S1", 1 + n % 3), ("S2", 1), minutes_ago=n) for n in range(10)]
    async with inventory.db.reading() as work:
        await inventory.book(work)  # the calendars, read once a while (not per call)
    statements = metrics.DB_STATEMENTS._value.get()
    results = await inventory.reserve_many(calls)
    spent = metrics.DB_STATEMENTS._value.get() - statements
    assert all(isinstance(r, ReserveResult) and not r.backordered for r in results)
    assert spent == (4 if inventory.db.dialect == "sqlite" else 5)
    assert await by_wh(inventory, "S1") == {"WH-CHI": (50, 19), "WH-HAM": (50, 0)}
    assert await by_wh(inventory, "S2") == {"WH-CHI": (50, 10)}
    await books_balance(inventory)


async def test_a_batch_that_loses_its_race_twice_runs_each_order_on_its_own(inventory, monkeypatch):
    """An order or a SKU counter another transaction created while a batch locked its rows is a Conflict:
    the batch is tried once more, then each order runs on its own, with the same answers."""
    from services.inventory.store import StockRepository

    await put_stock(inventory, "S1", WH_CHI=3, WH_HAM=1)
    tries = []

    async def lost(self, orders):
        tries.append(len(orders))
        raise errors.Conflict("an order of a batch of reserves was created meanwhile; retry")

    monkeypatch.setattr(StockRepository, "create_orders", lost)
    results = await inventory.reserve_many([call(f"O{n}", ("S1", 2), minutes_ago=n) for n in range(3)])
    assert tries == [3, 3]
    assert [(r.reservations, r.backordered) for r in results] == [
        ([("S1", "WH-CHI", 2)], {}),
        ([("S1", "WH-CHI", 1), ("S1", "WH-HAM", 1)], {}),
        ([], {"S1": 2}),
    ]
    await books_balance(inventory)
