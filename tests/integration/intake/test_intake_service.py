"""Intake on a real database (SQLite and PostgreSQL): master data import, idempotency keys, SubmitOrder.

The orders service is replaced by a small in-test double that behaves like the
real CreateOrder where intake relies on it: idempotent by order id. The real
chain (gateway -> intake -> orders) is covered by the e2e tests; the use cases'
decisions on a fake unit of work by tests/unit/intake/test_service.py. What stays
here is what needs the database: imports, claims, races and rolled-back attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from orderdesk import errors
from orderdesk.v1 import intake_pb2
from services.intake.domain import IntakeConfig
from services.intake.proto import submission_from_proto
from services.intake.service import IntakeService, Submitted
from services.intake.store import (
    ExposureRepository,
    IdempotencyRecord,
    IdempotencyRepository,
    MasterDataRepository,
    customers,
    idempotency_keys,
    products,
)
from tests.unit.intake.fakes import DEMO, NOON, FakeInventory, FakeOrders
from tests.unit.intake.test_service import request, submit

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "intake" / "migrations"
PRODUCTS_HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"


async def intake(
    make_database,
    orders: FakeOrders | None = None,
    *,
    demo: bool = True,
    inventory: FakeInventory | None = None,
    config: IntakeConfig | None = None,
):
    db = await make_database(MIGRATIONS)
    service = IntakeService(
        db,
        orders or FakeOrders(),
        rpc_timeout=2.0,
        clock=lambda: NOON,
        inventory=inventory or FakeInventory(),
        config=config,
    )
    if demo:
        assert await service.import_master_data("customers", (DEMO / "customers.csv").read_text()) == 60
        assert await service.import_master_data("products", (DEMO / "products.csv").read_text()) == 200
        assert await service.import_master_data("warehouses", (DEMO / "warehouses.csv").read_text()) == 3
    return service


async def count(db, table) -> int:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


# --- master data ----------------------------------------------------------------------------
async def test_demo_master_data_imports_and_reads_back(make_database):
    service = await intake(make_database)
    async with service.db.read() as conn:
        repo = MasterDataRepository(conn)
        blocked = await repo.customer("C0029")
        found = await repo.products({"BRK-001", "BRK-002", "NO-SUCH"})
        assert await repo.customer("C9999") is None
    assert (
        blocked.status == "blocked"
        and blocked.payment_terms == ("NET30",)
        and blocked.ship_to_country == "CN"
    )
    assert sorted(found) == ["BRK-001", "BRK-002"]
    assert str(found["BRK-001"].unit_price) == "31.57" and found["BRK-002"].min_order_qty == 10


async def test_importing_twice_is_harmless_and_a_second_import_updates(make_database):
    service = await intake(make_database)
    text = (DEMO / "products.csv").read_text()
    assert await service.import_master_data("products", text) == 200
    assert await count(service.db, products) == 200 and await count(service.db, customers) == 60
    await service.import_master_data(
        "products", PRODUCTS_HEADER + "BRK-001,Brake pad set v1,35.00,USD,false,7,1,1,discontinued\n"
    )
    async with service.db.read() as conn:
        brake = (await MasterDataRepository(conn).products({"BRK-001"}))["BRK-001"]
    assert (str(brake.unit_price), brake.status) == ("35.00", "discontinued")
    assert await count(service.db, products) == 200


async def test_intake_refuses_kinds_it_does_not_own(make_database):
    service = await intake(make_database, demo=False)
    with pytest.raises(errors.InvalidArgument) as err:
        await service.import_master_data("stock", "sku,warehouse,on_hand\nA,W,1\n")
    assert [v.field for v in err.value.violations] == ["kind"]


async def test_a_bad_csv_imports_nothing(make_database):
    service = await intake(make_database, demo=False)
    with pytest.raises(errors.InvalidArgument) as err:
        await service.import_master_data(
            "products",
            PRODUCTS_HEADER
            + "OK-1,Fine,1.00,USD,false,1,1,1,active\nBAD-1,Broken,cheap,USD,false,1,1,1,active\n",
        )
    assert [v.field for v in err.value.violations] == ["row 3.unit_price"]
    assert await count(service.db, products) == 0


# --- idempotency rows ---------------------------------------------------------------------------
def record(key: str, request_hash: str, order_id: str, partner: str = "P1") -> IdempotencyRecord:
    return IdempotencyRecord(partner, key, request_hash, order_id, f"request of {order_id}".encode())


async def test_the_first_claim_of_a_key_holds_it(make_database):
    db = await make_database(MIGRATIONS)
    first = record("k1", "a" * 64, "ORD-1")
    async with db.transaction() as tx:
        assert await IdempotencyRepository(tx.conn).claim(first) == first
    async with db.transaction() as tx:  # a later claim, even with another body, gets the first row back
        holder = await IdempotencyRepository(tx.conn).claim(record("k1", "b" * 64, "ORD-2"))
    assert holder == first
    async with db.transaction() as tx:  # keys are per partner
        other = record("k1", "b" * 64, "ORD-3", partner="P2")
        assert await IdempotencyRepository(tx.conn).claim(other) == other
    assert await count(db, idempotency_keys) == 2


async def test_concurrent_claims_of_one_key_leave_one_holder(make_database):
    db = await make_database(MIGRATIONS)

    async def claim(n: int) -> IdempotencyRecord:
        async with db.transaction() as tx:
            return await IdempotencyRepository(tx.conn).claim(record("race", f"{n:064d}", f"ORD-{n}"))

    holders = await asyncio.gather(*[claim(n) for n in range(8)])
    assert len({h.order_id for h in holders}) == 1
    assert await count(db, idempotency_keys) == 1


# --- SubmitOrder ------------------------------------------------------------------------------
async def test_simultaneous_submissions_with_one_key_create_one_order(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    answers = await asyncio.gather(*[submit(service, request(key="k-race")) for _ in range(10)])
    assert len({a.order.order_id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert len(orders.orders) == 1 and await count(service.db, idempotency_keys) == 1


# --- streams and batches: many orders at once ---------------------------------------------------
async def test_a_key_twice_in_one_chunk_falls_back_to_one_by_one(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    same = request("K-TWICE")
    changed = request("K-TWICE", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")])
    first, repeat, reused = await service.submit_many(
        [submission_from_proto(r) for r in (same, same, changed)]
    )
    assert not first.replayed and repeat.replayed and repeat.order.order_id == first.order.order_id
    assert isinstance(reused, errors.InvalidArgument)  # another body under the same key
    assert len(orders.orders) == 1
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).open_exposure("C0001") == Decimal("63.14")


async def test_a_retry_after_its_key_was_pruned_is_held_as_a_duplicate_reference(make_database):
    """README "Retention": keys go after ORDERDESK_RETENTION_IDEMPOTENCY_DAYS; the same request again after
    that is a new order, held for the desk because its reference was sent before."""
    import datetime as dt

    from orderdesk.retention import Pruner, RetentionSettings
    from services.intake.store import PRUNABLE

    orders = FakeOrders()
    service = await intake(make_database, orders)
    first = await submit(service, request(key="k-old"))
    assert first.order.status == "confirmed" and await count(service.db, idempotency_keys) == 1
    week = Pruner(service.db, "intake", RetentionSettings(idempotency_days=7), PRUNABLE)
    assert await week.prune(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8)) == {"idempotency_keys": 1}
    again = await submit(service, request(key="k-old"))
    assert not again.replayed and again.order.order_id != first.order.order_id
    assert again.order.status == "on_hold"
    (reason,) = [r for r in again.order.hold_reasons if r.code == "duplicate_external_ref"]
    assert first.order.order_id in reason.message and "longer ago than keys are kept" in reason.message


async def test_two_groups_that_share_customers_book_credit_without_a_deadlock(make_database, monkeypatch):
    """Two replicas' groups, one with C0001 then C0003, the other the other way round. Each group books its
    customers in one statement, in customer order, so the second waits for the first instead of each
    holding what the other needs (on PostgreSQL that circle is broken after a second by failing a group).
    The first group to book keeps its rows locked until the other has sent its booking too (at most half
    a second; on SQLite the other waits for its turn at the one connection)."""
    service = await intake(make_database)
    booked_in: list[list[str]] = []  # the customers of each booking statement, as sent
    other_booking = asyncio.Event()

    def spy(_conn, _cursor, statement, parameters, _context, _many):
        if statement.startswith("INSERT INTO customer_exposure"):
            values = parameters.values() if isinstance(parameters, dict) else parameters
            # PostgreSQL's one statement binds the customers as one array (orderdesk.db.RowsInsert)
            values = [v for value in values for v in (value if isinstance(value, list | tuple) else [value])]
            booked_in.append([v for v in values if isinstance(v, str) and v.startswith("C0")])
            if len(booked_in) == 2:
                other_booking.set()

    add_orders = ExposureRepository.add_orders

    async def holding(self, booked):
        if len(booked_in) == 1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(other_booking.wait(), 0.5)
        await add_orders(self, booked)

    monkeypatch.setattr(ExposureRepository, "add_orders", holding)
    event.listen(service.db.engine.sync_engine, "before_cursor_execute", spy)
    groups = [
        [request("G0-A", customer_id="C0001"), request("G0-B", customer_id="C0003")],
        [request("G1-A", customer_id="C0003"), request("G1-B", customer_id="C0001")],
    ]
    answers = await asyncio.wait_for(
        asyncio.gather(*(service.submit_many([submission_from_proto(r) for r in g]) for g in groups)), 10
    )
    assert all(isinstance(a, Submitted) and a.order.status == "confirmed" for group in answers for a in group)
    assert booked_in == [["C0001", "C0003"], ["C0001", "C0003"]]  # customer order, whatever was sent
    assert [a.order.customer_id for a in answers[1]] == ["C0003", "C0001"]  # answers in the order sent
    async with service.db.read() as conn:
        repo = ExposureRepository(conn)
        assert await repo.open_exposure("C0001") == await repo.open_exposure("C0003") == 2 * Decimal("63.14")
