"""Inventory on a real database (SQLite and PostgreSQL): reservations never oversell,
every movement is guarded, and each receipt is applied once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orderdesk import actors, errors, events
from orderdesk.outbox import outbox_table
from orderdesk.v1 import events_pb2, orders_pb2, returns_pb2, shipping_pb2
from services.inventory import consumers
from services.inventory.domain import StockBookError, StockLevel
from services.inventory.service import InventoryService
from services.inventory.store import StockRepository, order_states, reservations, stock

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "inventory" / "migrations"
WAREHOUSES = (ROOT / "demo" / "warehouses.csv").read_text()


@pytest.fixture
async def inventory(make_database):
    service = InventoryService(await make_database(MIGRATIONS))
    assert await service.import_csv("warehouses", WAREHOUSES) == 3
    return service


async def put_stock(service, sku: str, **per_warehouse: int) -> None:
    rows = "".join(f"{sku},{wh.replace('_', '-')},{q}\n" for wh, q in per_warehouse.items())
    await service.import_csv("stock", "sku,warehouse,on_hand\n" + rows)


async def by_wh(service, sku: str) -> dict[str, tuple[int, int]]:
    return {lv.warehouse: (lv.on_hand, lv.reserved) for lv in await service.levels(sku)}


async def restocked_events(service) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
    return [e for e in (events_pb2.Event.FromString(r.payload) for r in rows) if e.type == "stock.restocked"]


async def order_state(service, order_id: str) -> str | None:
    async with service.db.read() as conn:
        return (
            await conn.execute(select(order_states.c.state).where(order_states.c.order_id == order_id))
        ).scalar_one_or_none()


async def books_balance(service) -> None:
    """reserved on every stock row equals the sum of the orders' reservations there."""
    async with service.db.read() as conn:
        rows = (await conn.execute(select(stock))).all()
        held = {
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
        assert r.reserved == held.get((r.sku, r.warehouse), 0), (r.sku, r.warehouse)


# --- master data -------------------------------------------------------------------------------------
async def test_demo_stock_imports_and_reads(inventory):
    assert await inventory.import_csv("stock", (ROOT / "demo" / "stock.csv").read_text()) == 600
    assert await by_wh(inventory, "BRK-001") == {"WH-SHA": (20, 0), "WH-HAM": (1000, 0), "WH-CHI": (120, 0)}
    level = (await inventory.levels("BRK-001"))[0]
    assert level.available == level.on_hand - level.reserved
    with pytest.raises(errors.NotFound):
        await inventory.levels("NOPE")
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.import_csv("customers", "x\n")
    assert err.value.violations[0].field == "kind"
    # importing the same file again is an upsert: nothing changes, nothing is published twice
    before = len(await restocked_events(inventory))
    await inventory.import_csv("stock", (ROOT / "demo" / "stock.csv").read_text())
    assert len(await restocked_events(inventory)) == before


async def test_stock_import_refuses_unknown_warehouses_and_on_hand_below_reserved(inventory):
    await put_stock(inventory, "S1", WH_CHI=5, WH_HAM=2)
    await inventory.reserve("O1", [("S1", 4)])
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.import_csv(
            "stock", "sku,warehouse,on_hand\nS1,WH-HAM,9\nS1,WH-NOWHERE,1\nS1,WH-CHI,3\n"
        )
    assert [v.field for v in err.value.violations] == ["row 3.warehouse", "row 4.on_hand"]
    assert "4 units reserved" in err.value.violations[1].description
    # all or nothing: the good row was not applied either
    assert await by_wh(inventory, "S1") == {"WH-CHI": (5, 4), "WH-HAM": (2, 0)}
    await inventory.import_csv("stock", "sku,warehouse,on_hand\nS1,WH-CHI,4\n")  # down to reserved is fine
    assert await by_wh(inventory, "S1") == {"WH-CHI": (4, 4), "WH-HAM": (2, 0)}
    # values wider than the columns are the file's mistake on every backend, not a database error
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.import_csv("warehouses", WAREHOUSES.replace(",DE,", ",DEU,"))
    assert [v.field for v in err.value.violations] == ["row 3.country"]


# --- reserve -----------------------------------------------------------------------------------------
async def test_reserve_splits_backorders_and_repeats_harmlessly(inventory):
    await put_stock(inventory, "S1", WH_CHI=3, WH_HAM=4)
    await put_stock(inventory, "S2", WH_SHA=10, WH_CHI=10)
    first = await inventory.reserve("O1", [("S1", 9), ("S2", 6)], priority=2)
    assert first.reservations == [("S1", "WH-CHI", 3), ("S1", "WH-HAM", 4), ("S2", "WH-CHI", 6)]
    assert first.backordered == {"S1": 2}
    assert await inventory.reserve("O1", [("S1", 9), ("S2", 6)], priority=2) == first
    assert await by_wh(inventory, "S1") == {"WH-CHI": (3, 3), "WH-HAM": (4, 4)}
    assert await by_wh(inventory, "S2") == {"WH-CHI": (10, 6), "WH-SHA": (10, 0)}
    # less wanted now, and S2 dropped: the excess goes back
    smaller = await inventory.reserve("O1", [("S1", 5)])
    assert sum(q for _, _, q in smaller.reservations) == 5 and smaller.backordered == {}
    assert await by_wh(inventory, "S2") == {"WH-CHI": (10, 0), "WH-SHA": (10, 0)}
    await books_balance(inventory)


async def test_backorder_fills_after_restock(inventory):
    await put_stock(inventory, "S1", WH_CHI=2)
    assert (await inventory.reserve("O1", [("S1", 5)])).backordered == {"S1": 3}
    await inventory.restock("S1", "WH-HAM", 10, "PO-1")
    again = await inventory.reserve("O1", [("S1", 5)])
    assert again.backordered == {}
    assert again.reservations == [("S1", "WH-CHI", 2), ("S1", "WH-HAM", 3)]


async def test_never_stocked_sku_is_backordered_not_refused(inventory):
    await put_stock(inventory, "S1", WH_CHI=5)
    result = await inventory.reserve("O1", [("S1", 2), ("NEVER-STOCKED", 2)])
    assert result.backordered == {"NEVER-STOCKED": 2}
    assert result.reservations == [("S1", "WH-CHI", 2)]
    with pytest.raises(errors.InvalidArgument):
        await inventory.reserve("O1", [("S1", 0)])


# --- release, consume, restock -------------------------------------------------------------------------
async def test_release_returns_stock_and_refuses_late_reserve(inventory):
    await put_stock(inventory, "S1", WH_CHI=5)
    await inventory.reserve("O1", [("S1", 5)])
    async with inventory.db.transaction() as tx:
        assert await inventory.release(tx, "O1") == 5
    assert await by_wh(inventory, "S1") == {"WH-CHI": (5, 0)}
    assert await order_state(inventory, "O1") == "released"
    with pytest.raises(errors.FailedPrecondition) as err:
        await inventory.reserve("O1", [("S1", 5)])
    assert err.value.rule == "order_released"
    async with inventory.db.transaction() as tx:  # a second cancel changes nothing
        assert await inventory.release(tx, "O1") == 0
    # a cancellation that arrives before any reservation still blocks a late one
    async with inventory.db.transaction() as tx:
        await inventory.release(tx, "O2")
    with pytest.raises(errors.FailedPrecondition):
        await inventory.reserve("O2", [("S1", 1)])
    await books_balance(inventory)


async def test_shipment_consumes_once_and_never_goes_negative(inventory):
    await put_stock(inventory, "S1", WH_HAM=10, WH_CHI=1)
    await inventory.reserve("O1", [("S1", 6)])
    shipment = shipping_pb2.Shipment(
        order_id="O1", warehouse="WH-HAM", lines=[shipping_pb2.ShipmentLine(sku="S1", quantity=6)]
    )
    async with inventory.db.transaction() as tx:
        await inventory.consume_shipment(tx, shipment)
    assert await by_wh(inventory, "S1") == {"WH-CHI": (1, 0), "WH-HAM": (4, 0)}
    assert await order_state(inventory, "O1") == "consumed"
    with pytest.raises(StockBookError):  # nothing left reserved to consume: refused, rolled back
        async with inventory.db.transaction() as tx:
            await inventory.consume_shipment(tx, shipment)
    assert await by_wh(inventory, "S1") == {"WH-CHI": (1, 0), "WH-HAM": (4, 0)}
    # a late Reserve with the same lines reserves nothing again: shipped units count
    late = await inventory.reserve("O1", [("S1", 6)])
    assert late.reservations == [] and late.backordered == {}
    with pytest.raises(StockBookError):  # a shipment for an order that holds nothing there
        async with inventory.db.transaction() as tx:
            await inventory.consume_shipment(
                tx,
                shipping_pb2.Shipment(
                    order_id="O-UNKNOWN",
                    warehouse="WH-CHI",
                    lines=[shipping_pb2.ShipmentLine(sku="S1", quantity=1)],
                ),
            )
    assert await by_wh(inventory, "S1") == {"WH-CHI": (1, 0), "WH-HAM": (4, 0)}
    await books_balance(inventory)


async def test_restock_applies_once_per_reference_and_publishes(inventory):
    await put_stock(inventory, "S1", WH_SHA=1)
    clerk = actors.desk("ana@desk.example", "clerk")
    levels = await inventory.restock("S1", "WH-SHA", 5, "PO-77", clerk)
    assert [(lv.warehouse, lv.on_hand) for lv in levels] == [("WH-SHA", 6)]
    await inventory.restock("S1", "WH-SHA", 5, "PO-77", actors.api_key("erp", "P-1"))  # a retry by another
    assert await by_wh(inventory, "S1") == {"WH-SHA": (6, 0)}
    await inventory.restock("S1", "WH-CHI", 2, "PO-78")  # a new warehouse for the SKU starts at zero
    assert await by_wh(inventory, "S1") == {"WH-CHI": (2, 0), "WH-SHA": (6, 0)}
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.restock("S1", "WH-SHA", 9, "PO-77")  # the same reference, other contents
    assert err.value.violations[0].field == "reference"
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.restock("S1", "WH-NOWHERE", 5, "PO-79")
    assert err.value.violations[0].field == "warehouse"
    with pytest.raises(errors.InvalidArgument) as err:
        await inventory.restock("S1", "WH-SHA", 0, "PO-80")
    assert err.value.violations[0].field == "quantity"
    restocked = await restocked_events(inventory)
    assert [(e.stock.warehouse, e.stock.delta, e.stock.on_hand) for e in restocked] == [
        ("WH-SHA", 1, 1),
        ("WH-SHA", 5, 6),
        ("WH-CHI", 2, 2),
    ]
    # one version counter per SKU, whichever warehouse: it only goes up
    assert [e.aggregate_version for e in restocked] == [1, 2, 3]
    assert {events.subject(e) for e in restocked} == {"orderdesk.stock.S1.restocked"}
    # Who recorded each receipt stays with it (the first recording, not a retry) and on its event.
    assert [e.actor for e in restocked] == [actors.SYSTEM, clerk, actors.SYSTEM]
    recent = await inventory.recent_receipts("S1")
    assert [(r.reference, r.warehouse, r.quantity, r.received_by) for r in recent] == [
        ("PO-78", "WH-CHI", 2, actors.SYSTEM),
        ("PO-77", "WH-SHA", 5, clerk),
    ]


# --- the consumers, with the events other services publish ---------------------------------------------
async def test_consumers_release_consume_and_restock(inventory):
    handlers = {s.filter_subject: s.handler for s in consumers.subscriptions(inventory)}
    await put_stock(inventory, "S1", WH_HAM=10)
    await inventory.reserve("O1", [("S1", 4)])
    await inventory.reserve("O2", [("S1", 3)])

    shipped = events.new_event(
        "shipment.shipped",
        aggregate_id="SHP-1-WH-HAM",
        version=3,
        order_id="O1",
        shipment=events_pb2.ShipmentEvent(
            shipment=shipping_pb2.Shipment(
                shipment_id="SHP-1-WH-HAM",
                order_id="O1",
                warehouse="WH-HAM",
                status="shipped",
                lines=[shipping_pb2.ShipmentLine(sku="S1", quantity=4)],
            )
        ),
    )
    cancelled = events.new_event(
        "order.cancelled",
        aggregate_id="O2",
        version=4,
        order_id="O2",
        order=events_pb2.OrderEvent(status="cancelled", order=orders_pb2.Order(order_id="O2")),
    )
    refunded = events.new_event(
        "return.refunded",
        aggregate_id="RMA-1",
        version=3,
        order_id="O1",
        return_=events_pb2.ReturnEvent(
            **{
                "return": returns_pb2.Return(
                    rma_id="RMA-1",
                    order_id="O1",
                    lines=[
                        returns_pb2.ReturnLine(
                            sku="S1",
                            quantity=3,
                            warehouse="WH-HAM",
                            restocked_quantity=2,
                            scrapped_quantity=1,
                        ),
                        returns_pb2.ReturnLine(sku="S1", quantity=1, warehouse="WH-HAM", scrapped_quantity=1),
                    ],
                )
            }
        ),
    )
    for subject, event in (
        ("orderdesk.shipment.*.shipped", shipped),
        ("orderdesk.order.*.cancelled", cancelled),
        ("orderdesk.return.*.refunded", refunded),
    ):
        async with inventory.db.transaction() as tx:
            await handlers[subject](tx, event)
    assert await by_wh(inventory, "S1") == {"WH-HAM": (8, 0)}  # 10 - 4 shipped + 2 restocked; O2's 3 released
    # a refund delivered again under a new event id still restocks once (receipt reference per line)
    again = events_pb2.Event()
    again.CopyFrom(refunded)
    again.event_id = "another-id"
    async with inventory.db.transaction() as tx:
        await handlers["orderdesk.return.*.refunded"](tx, again)
    assert await by_wh(inventory, "S1") == {"WH-HAM": (8, 0)}
    assert [e.stock.delta for e in await restocked_events(inventory)][-1] == 2


# --- concurrency --------------------------------------------------------------------------------------------
async def test_fifty_concurrent_reservations_take_exactly_what_is_on_hand(inventory):
    await put_stock(inventory, "SCARCE", WH_CHI=7, WH_HAM=5, WH_SHA=3)
    results = await asyncio.gather(*[inventory.reserve(f"O{n}", [("SCARCE", 1)]) for n in range(50)])
    assert sum(q for r in results for _, _, q in r.reservations) == 15
    assert sum(1 for r in results if r.backordered) == 35
    assert await by_wh(inventory, "SCARCE") == {"WH-CHI": (7, 7), "WH-HAM": (5, 5), "WH-SHA": (3, 3)}
    await books_balance(inventory)


async def test_concurrent_split_multi_sku_reservations_never_oversell_or_deadlock(inventory):
    await put_stock(inventory, "A", WH_CHI=7, WH_HAM=5, WH_SHA=3)
    await put_stock(inventory, "B", WH_CHI=4, WH_HAM=4, WH_SHA=4)
    # lines in both orders and quantities that force splits across warehouses
    calls = [
        inventory.reserve(f"O{n}", [("A", 4), ("B", 3)] if n % 2 else [("B", 3), ("A", 4)]) for n in range(50)
    ]
    results = await asyncio.gather(*calls)
    for sku, on_hand in (("A", 15), ("B", 12)):
        assert sum(q for r in results for s, _, q in r.reservations if s == sku) == on_hand
        assert all(reserved == held for held, reserved in (await by_wh(inventory, sku)).values())
    for r in results:  # what each order holds plus what it misses is what it asked for
        for sku, wanted in (("A", 4), ("B", 3)):
            assert sum(q for s, _, q in r.reservations if s == sku) + r.backordered.get(sku, 0) == wanted
    await books_balance(inventory)


async def test_concurrent_repeats_for_one_order_reserve_once(inventory):
    await put_stock(inventory, "S1", WH_CHI=100)
    results = await asyncio.gather(*[inventory.reserve("O1", [("S1", 6)]) for _ in range(20)])
    assert all(r.reservations == [("S1", "WH-CHI", 6)] for r in results)
    assert await by_wh(inventory, "S1") == {"WH-CHI": (100, 6)}


async def test_concurrent_cancel_and_reserve_leave_nothing_reserved_for_a_released_order(inventory):
    await put_stock(inventory, "S1", WH_CHI=10)

    async def cancel(order_id: str) -> None:
        async with inventory.db.transaction() as tx:
            await inventory.release(tx, order_id)

    async def reserve(order_id: str) -> None:
        try:
            await inventory.reserve(order_id, [("S1", 1)])
        except errors.FailedPrecondition:
            pass

    calls = []
    for n in range(10):
        calls += [reserve(f"O{n}"), cancel(f"O{n}"), reserve(f"O{n}")]
    await asyncio.gather(*calls)
    assert await by_wh(inventory, "S1") == {"WH-CHI": (10, 0)}
    await books_balance(inventory)


async def test_the_store_guards_refuse_exactly_what_the_stock_rules_refuse(make_database):
    """The domain's rules (StockLevel) and the store's guarded updates, which take their WHERE
    clauses from the same rules, agree on every small row: same refusals, same levels after."""
    db = await make_database(MIGRATIONS)

    async def counted(repo: StockRepository, q: int) -> None:
        if (await repo.count("G", "WH", q))[1] is None:
            raise StockBookError("count refused")

    moves = {
        "reserve": (StockLevel.reserve, lambda repo, q: repo.take_stock("G", "WH", q), range(1, 4)),
        "release": (StockLevel.unreserve, lambda repo, q: repo.return_stock("G", "WH", q), range(1, 4)),
        "ship": (StockLevel.consume, lambda repo, q: repo.consume("O", "G", "WH", q), range(1, 4)),
        "count": (StockLevel.count, counted, range(0, 4)),
    }
    refusals = 0
    for name, (rule, guarded, quantities) in moves.items():
        for on_hand in range(3):
            for reserved in range(on_hand + 1):
                for q in quantities:
                    try:
                        expected: StockLevel | None = rule(StockLevel("WH", on_hand, reserved), q)
                    except StockBookError:
                        expected, refusals = None, refusals + 1
                    try:
                        async with db.transaction() as tx:
                            await tx.execute(
                                stock.insert().values(
                                    sku="G", warehouse="WH", on_hand=on_hand, reserved=reserved, version=0
                                )
                            )
                            await tx.execute(
                                reservations.insert().values(
                                    order_id="O", sku="G", warehouse="WH", quantity=reserved, shipped=0
                                )
                            )
                            await guarded(tx.repo(StockRepository), q)
                            got: StockLevel | None = await tx.repo(StockRepository).level("G", "WH")
                            raise _RolledBack(got)
                    except _RolledBack as done:
                        got = done.level
                    except (errors.Conflict, StockBookError):
                        got = None
                    assert got == expected, (name, on_hand, reserved, q)
    assert refusals > 10  # the grid reaches the refusals, not only the moves that go through


class _RolledBack(Exception):
    """Carries a level out of a transaction that is then rolled back (the next case starts clean)."""

    def __init__(self, level: StockLevel):
        self.level = level


async def test_a_stock_count_that_loses_a_fill_race_is_counted_again_not_refused(inventory, monkeypatch):
    """A count's fill can lose a race to an order changing meanwhile (Conflict): the import runs again from a
    fresh read, as a receipt does; the count and the filled backorder are there once."""
    await inventory.reserve("O-WAIT", [("SKU-R", 2)], priority=1)
    real, lost = InventoryService._fill, []

    async def loses_once(self, tx, skus, locked):
        if not lost:
            lost.append(skus)
            raise errors.Conflict("order O-WAIT is changing while a fill locks; retry")
        return await real(self, tx, skus, locked)

    monkeypatch.setattr(InventoryService, "_fill", loses_once)
    await put_stock(inventory, "SKU-R", WH_HAM=5)
    assert lost == [["SKU-R"]]
    assert await by_wh(inventory, "SKU-R") == {"WH-HAM": (5, 2)}
    assert len([e for e in await restocked_events(inventory) if e.stock.sku == "SKU-R"]) == 1
    await books_balance(inventory)
