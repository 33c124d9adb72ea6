"""The desk's work queues on a real database (SQLite and PostgreSQL): the held, exceptions and backorders
queues with their filters (exception type, warehouse, customer), orderings (oldest, expected) and keyset
cursors, and CountQueues' counts (per reason and type) read back after each change."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk import errors
from services.orders import exceptions as ex
from services.orders.domain import Allocation
from services.orders.service import OrdersService
from tests.integration.orders.test_search import DAY0, MIGRATIONS, Clock, order


@pytest.fixture
async def desk(make_database):
    clock = Clock()
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    for n, (order_id, given) in enumerate(
        [
            ("ORD-1", {"customer": "C0001"}),
            ("ORD-2", {"customer": "C0002", "hold": True}),
            ("ORD-3", {"customer": "C0001"}),
            ("ORD-4", {"customer": "C0002"}),
            ("ORD-5", {"customer": "C0001", "hold": True, "priority": 300}),
        ]
    ):
        clock.now = DAY0 + dt.timedelta(days=n)
        await service.create(order(order_id, **given))
    return service


async def change(service: OrdersService, order_id: str, what) -> None:
    async with service.db.transaction() as tx:
        await service.apply_to_order(tx, order_id, what)


def backordered(allocated: list[Allocation], missing: dict[str, int], expected: tuple[str, str]):
    """Inventory's answer to a confirmed order: some units short, expected then."""
    return lambda o: o.apply_reservation(DAY0, allocated, missing, expected)


def opened(exception_id: str, type: str):
    extra = {} if type == "production_delay" else {"shipment_id": "S1"}
    return lambda o: o.record_exception(
        ex.OrderException.create(exception_id=exception_id, type=type, cause="c", at=DAY0, actor="d", **extra)
    )


async def ids(service: OrdersService, status: str = "", **listing) -> list[str]:
    found, _ = await service.list("", status, 50, "", **listing)
    return [o.order_id for o in found]


async def counts(service: OrdersService) -> dict:
    c = await service.queue_counts()
    return {
        "held": (c.held, c.held_by_reason),
        "exceptions": (c.exceptions, c.exceptions_by_type),
        "backorders": c.backorders,
    }


async def test_the_queues_filter_order_and_count(desk):
    assert await counts(desk) == {"held": (2, {"price_mismatch": 2}), "exceptions": (0, {}), "backorders": 0}
    assert await ids(desk, "on_hold", order_by="oldest") == ["ORD-2", "ORD-5"]
    assert await ids(desk, "on_hold", order_by="priority") == ["ORD-5", "ORD-2"]
    # Exceptions: two on ORD-1, one on ORD-4; the queue narrows by type.
    await change(desk, "ORD-1", opened("X1", "production_delay"))
    await change(desk, "ORD-1", opened("X2", "lost_parcel"))
    await change(desk, "ORD-4", opened("X3", "lost_parcel"))
    assert await ids(desk, open_exception=True, order_by="oldest") == ["ORD-1", "ORD-4"]
    assert await ids(desk, open_exception=True, exception_type="production_delay") == ["ORD-1"]
    assert await ids(desk, open_exception=True, exception_type="lost_parcel", customer_id="C0002") == [
        "ORD-4"
    ]
    # Backorders: scheduled orders, the soonest expected ship date first, none expected last.
    await change(desk, "ORD-3", backordered([], {"A": 1}, ("2026-12-20", "2026-12-22")))
    await change(desk, "ORD-4", backordered([], {"A": 1}, ("", "")))
    await change(
        desk, "ORD-1", backordered([Allocation("A", "WH-LYON", 1)], {"B": 1}, ("2026-12-10", "2026-12-12"))
    )
    assert await ids(desk, "scheduled", order_by="expected") == ["ORD-1", "ORD-3", "ORD-4"]
    assert await ids(desk, "scheduled", warehouse="WH-LYON") == ["ORD-1"]
    assert await ids(desk, "scheduled", warehouse="WH") == []  # a whole warehouse id, not a part
    first, cursor = await desk.list("", "scheduled", 2, "", order_by="expected")
    rest, end = await desk.list("", "scheduled", 2, cursor, order_by="expected")
    assert [o.order_id for o in first + rest] == ["ORD-1", "ORD-3", "ORD-4"] and end == ""
    # Counted as listed; a resolved exception and an approved order leave the counts.
    await change(desk, "ORD-4", lambda o: o.resolve_exception("X3", "reship", at=DAY0, actor="d"))
    await desk.decide("ORD-2", "", "approve", "desk:test", "fine")
    assert await counts(desk) == {
        "held": (1, {"price_mismatch": 1}),
        "exceptions": (1, {"lost_parcel": 1, "production_delay": 1}),
        "backorders": 3,
    }


async def test_a_queue_filter_it_cannot_read_is_refused_naming_the_field(desk):
    with pytest.raises(errors.InvalidArgument) as refused:
        await desk.list("", "", 50, "", open_exception=True, exception_type="storm")
    assert [v.field for v in refused.value.violations] == ["exception_type"]
    with pytest.raises(errors.InvalidArgument) as refused:
        await desk.list("", "", 50, "e2026-01-01.1", order_by="oldest")
    assert [v.field for v in refused.value.violations] == ["cursor"]


# Each sparse queue's query (as the repository, the promise watch and the archive issue it) and the partial
# index (migration 0018) it must read: the statement text picks it out of those a call runs.
QUEUE_INDEXES = {
    "GROUP BY orders.hold_codes": "ix_orders_status_hold_codes",
    "GROUP BY orders.exception_types": "ix_orders_exception_types",
    "GROUP BY orders.risk_codes": "ix_orders_risk_codes",
    "ORDER BY orders.risk_key": "ix_orders_risk_key",
    "ORDER BY orders.seq + ": "ix_orders_exception_types",  # the exceptions queue's page
    "ORDER BY orders.watch_at": "ix_orders_watch_at",
    "ORDER BY orders.updated_at": "ix_orders_closed_updated",
}
# SQLite keeps no statistics and reads the archive's candidates by ix_orders_status_seq (as it did before).
NOT_ON_SQLITE = {"ORDER BY orders.updated_at"}


async def test_the_sparse_queues_read_partial_indexes_even_in_a_generic_plan(desk):
    """Most orders are in none of these queues, so their indexes hold only the orders in them (a status move
    costs PostgreSQL an entry in every other index): each queue's query still reads its index, also in the
    generic plan PostgreSQL may keep for a prepared statement, blind to the values bound."""
    from sqlalchemy import event

    from services.orders.archive.store import OrderArchive
    from services.orders.domain import Listing
    from services.orders.store import OrderRepository
    from services.orders.watch import _DUE

    db = desk.db
    await change(desk, "ORD-1", opened("X1", "production_delay"))
    seen: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, tuple(parameters or ())))

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.read() as conn:
            repo = OrderRepository(conn)
            await repo.queue_counts()
            await repo.list(partner_id="", status="", limit=10, listing=Listing(at_risk=True))
            await repo.list(partner_id="", status="", limit=10, listing=Listing(open_exception=True))
            await conn.execute(_DUE, {"now": DAY0, "n": 10})
            await OrderArchive(conn).candidates(DAY0, 10)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    queries = {key: (sql, params) for key in QUEUE_INDEXES for sql, params in seen if key in sql}
    assert queries.keys() == QUEUE_INDEXES.keys()

    async with db.read() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if db.dialect == "postgresql":
            # No sequential scan unless nothing else can answer; the generic plan, as after five runs.
            await raw.execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
            made = {r["indexname"]: r["indexdef"] for r in await raw.fetch("SELECT * FROM pg_indexes")}
        else:
            cursor = await raw.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
            made = dict(await cursor.fetchall())
        plans = {}
        for n, (key, (sql, params)) in enumerate(queries.items()):
            if db.dialect == "postgresql":
                await raw.execute(f"PREPARE q{n} AS {sql}")
                nulls = f"({', '.join('NULL' for _ in params)})" if params else ""
                plans[key] = "\n".join(r[0] for r in await raw.fetch(f"EXPLAIN EXECUTE q{n}{nulls}"))
            else:
                cursor = await raw.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                plans[key] = "\n".join(r[-1] for r in await cursor.fetchall())
        if db.dialect == "postgresql":
            await raw.execute("RESET enable_seqscan; RESET plan_cache_mode; DEALLOCATE ALL")
    for key, index in QUEUE_INDEXES.items():
        assert " WHERE " in made[index].upper(), (index, made[index])
        assert index in plans[key] or (db.dialect == "sqlite" and key in NOT_ON_SQLITE), (key, plans[key])
