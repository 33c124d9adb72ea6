"""order_warehouses and order_skus on a real database (SQLite and PostgreSQL): the rows the desk's warehouse
and SKU filters read (migration 0017) say what the orders say after every change that moves them (an
allocation, a backorder's date, a status, a re-allocation, a shipment, a change of lines, the archive and
back), each read back; and the migration fills them in for the orders already there."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alembic import command
from sqlalchemy import insert, select

from orderdesk import migrations
from orderdesk.config import ArchiveSettings
from orderdesk.db import Database
from services.orders.archive.job import Archiver
from services.orders.changes import ChangeRequest, NewLine
from services.orders.domain import Allocation
from services.orders.service import OrdersService
from services.orders.store import order_lines, order_skus, order_warehouses, orders
from tests.integration.orders.test_archive import DAY, HOUR, LATER, T1, Clock, refund, request, shipment
from tests.integration.orders.test_search import order

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


async def warehouse_rows(service: OrdersService, order_id: str) -> list[tuple[str, str, str]]:
    """(warehouse, status, expected ship key) of the order's order_warehouses rows, by warehouse."""
    w = order_warehouses
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(w.c.warehouse, w.c.status, w.c.expected_ship_key)
            .join(orders, orders.c.seq == w.c.seq)
            .where(orders.c.order_id == order_id)
            .order_by(w.c.warehouse)
        )
        return [tuple(r) for r in rows]


async def sku_rows(service: OrdersService, order_id: str) -> list[str]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(order_skus.c.sku)
            .join(orders, orders.c.seq == order_skus.c.seq)
            .where(orders.c.order_id == order_id)
            .order_by(order_skus.c.sku)
        )
        return [r.sku for r in rows]


async def listed(service: OrdersService, status: str = "", **listing) -> list[str]:
    found, _ = await service.list("", status, 50, "", **listing)
    return [o.order_id for o in found]


async def change(service: OrdersService, order_id: str, what) -> None:
    async with service.db.transaction() as tx:
        await service.apply_to_order(tx, order_id, what)


async def test_warehouse_rows_follow_allocations_dates_and_status(make_database):
    clock = Clock(T1)
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    await service.create(request("ORD-1", "PO-1"))
    await service.create(request("ORD-2", "PO-2"))
    assert await warehouse_rows(service, "ORD-1") == []
    # Backordered, partly allocated at W1, expected on the 20th.
    await change(
        service,
        "ORD-1",
        lambda o: o.apply_reservation(
            clock(), [Allocation("A", "W1", 1)], {"A": 1}, ("2026-11-20", "2026-11-22")
        ),
    )
    assert await warehouse_rows(service, "ORD-1") == [("W1", "scheduled", "2026-11-20")]
    assert await listed(service, "scheduled", order_by="expected", warehouse="W1") == ["ORD-1"]
    # A later answer moves the date (only the keys change), then inventory holds it at W1 and W2.
    await change(
        service,
        "ORD-1",
        lambda o: o.apply_reservation(clock(), [Allocation("A", "W1", 1)], {"A": 1}, ("2026-11-25", "")),
    )
    assert await warehouse_rows(service, "ORD-1") == [("W1", "scheduled", "2026-11-25")]
    await change(
        service,
        "ORD-1",
        lambda o: o.reallocate(
            [Allocation("A", "W1", 1), Allocation("A", "W2", 1)], at=clock(), actor="desk", reason="moved"
        ),
    )
    assert await warehouse_rows(service, "ORD-1") == [
        ("W1", "scheduled", "2026-11-25"),
        ("W2", "scheduled", "2026-11-25"),
    ]
    # Every unit there: allocated, the backorder's key gone; ORD-2 backordered with none allocated.
    await change(service, "ORD-1", lambda o: o.apply_reservation(clock(), [Allocation("A", "W2", 2)], {}))
    assert await warehouse_rows(service, "ORD-1") == [("W2", "allocated", "9999-12-31")]
    await change(service, "ORD-2", lambda o: o.apply_reservation(clock(), [], {"A": 2}))
    assert await warehouse_rows(service, "ORD-2") == []
    assert await listed(service, "scheduled", order_by="expected", warehouse="W2") == []
    assert await listed(service, "allocated", order_by="expected", warehouse="W2") == ["ORD-1"]
    assert await listed(service, order_by="priority", warehouse="W2") == ["ORD-1"]
    assert await listed(service, order_by="expected", warehouse="W1") == []
    # Shipped from W1 (the shipment's warehouse counts too), then delivered: the status follows.
    for status in ("shipped", "delivered"):
        clock.now += DAY
        async with service.db.transaction() as tx:
            await service.record_shipment(tx, shipment("ORD-1", status))
    status = (await service.get("ORD-1", "")).status.value
    assert status != "allocated"
    assert await warehouse_rows(service, "ORD-1") == [
        ("W1", status, "9999-12-31"),
        ("W2", status, "9999-12-31"),
    ]
    assert await listed(service, status, order_by="oldest", warehouse="W1") == ["ORD-1"]


async def test_sku_rows_follow_the_lines_and_the_archive(make_database):
    clock = Clock(T1)
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    await service.create(request("ORD-1", "PO-1", sku="A"))
    await service.create(request("ORD-2", "PO-2", sku="B"))
    assert await sku_rows(service, "ORD-1") == ["A"]
    # A change request adds a line of C and another of A: each SKU once.
    await change(
        service,
        "ORD-1",
        lambda o: o.change(ChangeRequest(add_lines=[NewLine("C", 1, "1.00")]), at=clock(), actor="P-SHOP"),
    )
    assert await sku_rows(service, "ORD-1") == ["A", "C"]
    assert await listed(service, sku="C") == ["ORD-1"]
    assert await listed(service, sku="C", customer_id="C0001") == ["ORD-1"]  # looked up per order found
    await change(
        service,
        "ORD-1",
        lambda o: o.change(ChangeRequest(quantities={"C": 0}), at=clock(), actor="P-SHOP"),
    )
    assert await sku_rows(service, "ORD-1") == ["A"]
    assert await listed(service, sku="C") == []

    # Completed and archived: its rows leave with it; a late return brings the order and its rows back.
    await change(service, "ORD-1", lambda o: o.apply_reservation(clock(), [Allocation("A", "W1", 2)], {}))
    for status in ("shipped", "delivered"):
        clock.now += DAY
        async with service.db.transaction() as tx:
            await service.record_shipment(tx, shipment("ORD-1", status))
    archiver = Archiver(service.db, ArchiveSettings(after_days=30, batch=10))
    assert (await archiver.run_pass(now=dt.datetime.now(dt.UTC) + LATER)).archived == 1
    assert await sku_rows(service, "ORD-1") == [] and await warehouse_rows(service, "ORD-1") == []
    assert await listed(service, sku="A") == ["ORD-1"]  # still found, in the archive
    assert await listed(service, sku="A", warehouse="W1") == ["ORD-1"]
    clock.now += HOUR
    async with service.db.transaction() as tx:
        await service.record_return(tx, refund("ORD-1"))
    assert (await service.get("ORD-1", "")).archived is False
    assert await sku_rows(service, "ORD-1") == ["A"]
    assert await warehouse_rows(service, "ORD-1") == [("W1", "completed", "9999-12-31")]
    assert await listed(service, sku="A", warehouse="W1") == ["ORD-1"]


async def _upgrade(db: Database, revision: str) -> None:
    cfg = migrations.alembic_config(MIGRATIONS, db.engine.url.render_as_string(hide_password=False))

    def run(connection):
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with db.begin() as conn:
        await conn.run_sync(run)


async def test_the_migration_fills_the_rows_in_for_the_orders_there_are(backend, tmp_path, request):
    """Orders saved at 0016 (their warehouses only in the " a b " column): 0017 makes their rows."""
    from devtools.localservers import create_postgres_database, drop_postgres_database

    admin, name = None, None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin_url")
        name = f"odt_m17_{tmp_path.name[-8:].replace('-', '_')}"
        url = await create_postgres_database(admin, name)
    db = Database(url)
    try:
        await _upgrade(db, "0016")
        at = T1
        row = {
            "partner_id": "P-SHOP", "channel": "api", "external_ref": "PO", "customer_id": "C1",
            "ship_to": {}, "requested_delivery_date": "", "payment_terms": "NET30", "currency": "USD",
            "priority": 100, "version": 3, "hold_reasons": [], "allocations": [], "shipments": [],
            "total_amount": "2.00", "proposals": [], "urgent": False, "change_log": [], "exceptions": [],
            "expected_ship_date": "", "expected_delivery_date": "", "split_from": "", "split_into": [],
            "notes": [], "risks": [], "risk_codes": "", "risk_slip": 0, "watch_at": None, "hold_codes": "",
            "exception_types": "", "risk_key": "",
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        given = [
            ("ORD-1", "scheduled", " W1 W2 ", "2026-11-20", ["A", "B", "A"]),
            ("ORD-2", "allocated", " W2 ", "9999-12-31", ["B"]),
            ("ORD-3", "confirmed", "", "9999-12-31", ["C"]),
        ]
        async with db.transaction() as tx:
            for order_id, status, warehouses, key, skus in given:
                await tx.execute(  # only the columns revision 0016 has
                    insert(orders).values(
                        order_id=order_id, status=status, warehouses=warehouses, expected_ship_key=key, **row
                    )
                )
                await tx.execute(
                    insert(order_lines),
                    [
                        {"order_id": order_id, "line_no": n, "sku": sku, "quantity": 1, "unit_price": "1.00",
                         "allocated": 0, "shipped": 0, "delivered": 0, "returned": 0}
                        for n, sku in enumerate(skus)
                    ],
                )  # fmt: skip
        await _upgrade(db, "0017")
        service = OrdersService(db)
        assert await warehouse_rows(service, "ORD-1") == [
            ("W1", "scheduled", "2026-11-20"),
            ("W2", "scheduled", "2026-11-20"),
        ]
        assert await warehouse_rows(service, "ORD-2") == [("W2", "allocated", "9999-12-31")]
        assert await warehouse_rows(service, "ORD-3") == []
        assert [await sku_rows(service, o) for o in ("ORD-1", "ORD-2", "ORD-3")] == [["A", "B"], ["B"], ["C"]]
        assert await listed(service, "scheduled", order_by="expected", warehouse="W2") == ["ORD-1"]
        assert await listed(service, sku="B") == ["ORD-2", "ORD-1"]
    finally:
        await db.close()
        if name:
            await drop_postgres_database(admin, name)


async def test_a_queue_narrowed_to_a_warehouse_keeps_each_sort_and_its_pages(make_database):
    """Backorders at W1 read from order_warehouses' indexes: soonest expected first, by priority, first
    come, newest first; pages of two follow each other; an order elsewhere never shows."""
    clock = Clock(T1)
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    given = [  # (id, priority, warehouse, expected ship date)
        ("ORD-1", 100, "W1", "2026-11-25"),
        ("ORD-2", 300, "W1", ""),
        ("ORD-3", 200, "W2", "2026-11-20"),
        ("ORD-4", 200, "W1", "2026-11-20"),
        ("ORD-5", 300, "W1", "2026-11-30"),
    ]
    for order_id, priority, warehouse, date in given:
        clock.now += HOUR
        await service.create(order(order_id, priority=priority, skus=("A", "B")))
        await change(
            service,
            order_id,
            lambda o, w=warehouse, d=date: o.apply_reservation(
                clock(), [Allocation("A", w, 1)], {"B": 1}, (d, d)
            ),
        )
    expected = {
        "expected": ["ORD-4", "ORD-1", "ORD-5", "ORD-2"],
        "priority": ["ORD-2", "ORD-5", "ORD-4", "ORD-1"],
        "oldest": ["ORD-1", "ORD-2", "ORD-4", "ORD-5"],
        "newest": ["ORD-5", "ORD-4", "ORD-2", "ORD-1"],
    }
    for sort, ids in expected.items():
        assert await listed(service, "scheduled", order_by=sort, warehouse="W1") == ids, sort
        first, cursor = await service.list("", "scheduled", 2, "", order_by=sort, warehouse="W1")
        rest, end = await service.list("", "scheduled", 2, cursor, order_by=sort, warehouse="W1")
        assert [o.order_id for o in first + rest] == ids and end == "", sort
    assert await listed(service, "scheduled", order_by="expected", warehouse="W2") == ["ORD-3"]
