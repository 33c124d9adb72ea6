"""The orders service's new rows (orders, order_lines, order_history, the order_facts ledger) and its saved
order rows are written as tuples in one executemany each (orderdesk.db.RowsInsert, RowsUpdate); on SQLite and PostgreSQL they are stored exactly
as SQLAlchemy's executemany of dicts stored them: JSON, datetimes (given in another zone), prices, enums'
values, booleans, NULLs. A batch with a row that fails writes none of them; a repeated ledger row is
ignored."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from orderdesk.db import Database, RowsInsert
from orderdesk.errors import Conflict
from orderdesk.v1 import common_pb2, orders_pb2
from services.orders import store
from services.orders.changes import ChangeRequest, NewLine
from services.orders.domain import Allocation, Line, Order, Status
from services.orders.kpi import store as kpi_store
from services.orders.kpi.rules import Fact
from services.orders.service import OrdersService, publish_many, publish_transitions
from services.orders.store import OrderRepository
from tests.integration.orders.test_store import MIGRATIONS

PLUS_2 = dt.timezone(dt.timedelta(hours=2))
AT = dt.datetime(2026, 12, 2, 9, 30, 15, 123456, tzinfo=PLUS_2)
TABLES = {  # each table's rows, in key order
    "orders": "order_id",
    "order_lines": "order_id, line_no",
    "order_history": "order_id, version",
    "order_facts": "order_id, kind, ref, line_no",
    "order_skus": "seq, sku",
    "order_warehouses": "seq, warehouse",
}


class ByDicts:
    """A RowsInsert's rows written as before: SQLAlchemy's executemany of dicts."""

    def __init__(self, rows_insert: RowsInsert):
        self.rows_insert = rows_insert

    async def execute(self, conn, rows: list[tuple], **constants):
        if rows:
            columns = self.rows_insert.columns
            return await conn.execute(
                self.rows_insert.template,
                [{**dict(zip(columns, row, strict=True)), **constants} for row in rows],
            )

    async def returned(self, conn, rows: list[tuple], **constants):
        return list((await self.execute(conn, rows, **constants)).all()) if rows else []


def request(
    order_id: str, *, hold: bool = False, skus: tuple[str, ...] = ("A",)
) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        external_ref=f"PO-{order_id}",
        customer_id="C0001",
        ship_to=common_pb2.Address(
            name='Zoë "Ω" Ørsted \U0001d538',
            line1="Hauptstraße 1",
            city="Köln",
            postal_code="1",
            country="DE",
        ),
        lines=[orders_pb2.OrderLine(sku=sku, quantity=3, unit_price="19.990") for sku in skus],
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="prix €", field="lines[0]")]
        if hold
        else [],
        priority=250,
        currency="EUR",
        requested_delivery_date="2026-12-20",
    )


async def story(db: Database) -> None:
    """New orders in a batch and alone, a batch of reservations (history and ledger rows), a change of lines."""
    service = OrdersService(db, clock=lambda: AT)
    await service.create_many(
        [request("ORD-1", skus=("A", "B")), request("ORD-2", hold=True), request("ORD-3")]
    )
    await service.create(request("ORD-4"))
    async with db.transaction() as tx:
        chunk = await tx.repo(OrderRepository).get_many(["ORD-1", "ORD-3", "ORD-4"])
        one, three, four = chunk
        one.apply_reservation(
            AT, [Allocation("A", "WH-1", 3), Allocation("B", "WH-2", 1)], {"B": 2}, ("2026-12-9", "")
        )
        three.apply_reservation(AT.astimezone(dt.UTC), [Allocation("A", "WH-1", 3)], {})
        four.apply_reservation(AT, [], {"A": 3})
        await tx.repo(OrderRepository).save_many(chunk)
        await publish_many(tx, chunk)
    async with db.transaction() as tx:
        three = await tx.repo(OrderRepository).get("ORD-3")
        three.change(ChangeRequest(add_lines=[NewLine("C", 1, "0.50")]), at=AT, actor="desk:zoë")
        await tx.repo(OrderRepository).save(three)
        await publish_transitions(tx, three)


async def stored(db: Database) -> dict[str, list[tuple]]:
    """Every table's rows as the driver returns them (SQLite: the text stored), not as SQLAlchemy's types
    parse them."""
    async with db.reading() as work:
        return {
            table: [
                tuple(r) for r in await work.conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {key}")
            ]
            for table, key in TABLES.items()
        }


@pytest.fixture
def same_updated_at(monkeypatch):
    monkeypatch.setattr(store, "utcnow", lambda: AT)


async def test_rows_are_stored_as_sqlalchemys_executemany_of_dicts_stored_them(
    make_database, monkeypatch, same_updated_at
):
    by_rows, by_dicts = await make_database(MIGRATIONS), await make_database(MIGRATIONS)
    await story(by_rows)
    with monkeypatch.context() as m:
        for name in (
            *("_INSERT_ORDERS", "_INSERT_LINES", "_INSERT_HISTORY", "_NEW_SKU_ROWS"),
            *("_SAVE_LINES", "_WAREHOUSE_ROWS", "_WAREHOUSE_KEYS"),
        ):
            m.setattr(store, name, ByDicts(getattr(store, name)))
        save_orders = store._save_orders
        m.setattr(store, "_save_orders", lambda columns: ByDicts(save_orders(columns)))
        ledger = kpi_store._insert_rows
        m.setattr(kpi_store, "_insert_rows", lambda dialect: ByDicts(ledger(dialect)))
        await story(by_dicts)
    written = await stored(by_rows)
    assert written == await stored(by_dicts)
    assert {table: len(rows) for table, rows in written.items()} == {
        "orders": 4,
        "order_lines": 6,
        "order_history": 11,
        "order_facts": 5,
        "order_skus": 6,
        "order_warehouses": 3,
    }
    async with by_rows.reading() as work:  # and read back as they were given
        one = await work.repo(OrderRepository).get("ORD-1")
    assert one.ship_to["name"] == 'Zoë "Ω" Ørsted \U0001d538'
    assert one.created_at == AT and one.created_at.tzinfo is dt.UTC
    assert one.lines[0].unit_price == Decimal("19.990") and one.status is Status.SCHEDULED
    assert [h.at for h in one.history] == [AT] * len(one.history)


async def test_a_save_sets_the_changed_columns_to_the_same_row_as_a_whole_save(
    make_database, monkeypatch, same_updated_at
):
    """Each save sets only the columns whose value moved since the read (and those the watch writes alone):
    the stored rows are those a save of every column stores."""
    by_changes, whole = await make_database(MIGRATIONS), await make_database(MIGRATIONS)
    updates = store._order_updates
    sets: list[tuple[str, ...]] = []

    def recorded(saved, rows):
        found = updates(saved, rows)
        sets.extend(found)
        return found

    with monkeypatch.context() as m:
        m.setattr(store, "_order_updates", recorded)
        await story(by_changes)
    assert sets and all(len(columns) < len(store._ROW_COLUMNS) for columns in sets)
    assert all({"version", "updated_at", "watch_at", "priority"} <= set(columns) for columns in sets)

    def read_whole(saved, rows):  # and their seqs unknown: read again for their order_warehouses rows
        for order in saved:
            del order._loaded_row
            del order._seq
        return updates(saved, rows)

    with monkeypatch.context() as m:
        m.setattr(store, "_order_updates", read_whole)
        await story(whole)
    assert await stored(by_changes) == await stored(whole)


def test_a_saved_row_sets_every_field_the_order_row_has():
    order = Order.receive(at=AT, actor="a", hold_reasons=[], order_id="ORD-9", partner_id="P", channel="api",
        external_ref="", customer_id="", ship_to={}, lines=[Line("A", 3, Decimal("1.00"))],
        requested_delivery_date="", payment_terms="", currency="EUR", priority=1, proposals=[], urgent=False)  # fmt: skip
    assert store._ROW_COLUMNS == tuple(store._order_row(order, None))


async def test_a_save_guarded_by_a_stale_version_conflicts(make_database):
    db = await make_database(MIGRATIONS)
    service = OrdersService(db, clock=lambda: AT)
    await service.create_many([request("ORD-1"), request("ORD-2")])
    async with db.transaction() as tx:
        stale = await tx.repo(OrderRepository).get_many(["ORD-1", "ORD-2"])
    async with db.transaction() as tx:
        fresh = await tx.repo(OrderRepository).get("ORD-2")
        fresh.apply_reservation(AT, [Allocation("A", "WH-1", 3)], {})
        await tx.repo(OrderRepository).save(fresh)
    for order in stale:
        order.apply_reservation(AT, [Allocation("A", "WH-1", 3)], {})
    for save in (lambda repo: repo.save_many(stale), lambda repo: repo.save(stale[1])):
        with pytest.raises(Conflict):
            async with db.transaction() as tx:
                await save(tx.repo(OrderRepository))
    async with db.reading() as work:
        assert [o.version for o in await work.repo(OrderRepository).get_many(["ORD-1", "ORD-2"])] == [
            stale[0].loaded_version,
            fresh.version,
        ]


async def test_a_batch_with_a_failing_row_writes_none(make_database):
    db = await make_database(MIGRATIONS)
    service = OrdersService(db, clock=lambda: AT)
    await service.create(request("ORD-1"))
    new = [service._receive(request(i)) for i in ("ORD-2", "ORD-1", "ORD-3")]  # ORD-1 exists
    with pytest.raises(IntegrityError):
        async with db.transaction() as tx:
            await tx.repo(OrderRepository).add_many(new)
    written = await stored(db)
    assert [r[1] for r in written["orders"]] == ["ORD-1"]  # (seq, order_id, …)
    assert {r[0] for r in written["order_history"]} == {"ORD-1"}
    lines = [Line("A", 3, Decimal("1.00"))]
    broken = Order.receive(at=dt.datetime(2026, 12, 2), actor="a", hold_reasons=[], order_id="ORD-9",
        partner_id="P", channel="api", external_ref="", customer_id="", ship_to={}, lines=lines,
        requested_delivery_date="", payment_terms="", currency="EUR", priority=1, proposals=[], urgent=False)  # fmt: skip
    with pytest.raises(ValueError, match="naive datetime"):  # the column types' checks still apply
        async with db.transaction() as tx:
            await tx.repo(OrderRepository).add_many([broken])
    assert len((await stored(db))["orders"]) == 1


async def test_a_repeated_ledger_row_is_ignored(make_database):
    db = await make_database(MIGRATIONS)
    await OrdersService(db, clock=lambda: AT).create(request("ORD-1"))
    fact = Fact("held", AT, 0, "", 0, 0, "price_mismatch", "prix €", "")
    for _ in range(2):
        async with db.transaction() as tx:
            await tx.repo(kpi_store.KpiLedger).record_many([("ORD-1", [fact, fact])])
            assert await tx.repo(kpi_store.KpiLedger).record("ORD-1", [fact], count_new=True) == 0
    assert len((await stored(db))["order_facts"]) == 1
