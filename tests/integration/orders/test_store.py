"""Orders on a real database (SQLite and PostgreSQL): creation, versions, history, outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from devtools.localservers import PLANNER_SETTINGS
from orderdesk import errors
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2, shipping_pb2
from services.orders.service import OrdersService
from services.orders.store import OrderRepository, _awaiting_stock
from services.orders.store import orders as order_rows
from tests.integration.plans import plan_nodes

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


def request(order_id: str, partner: str = "P-SHOP", hold: bool = False) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id=partner,
        channel="api",
        external_ref="PO-1",
        customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="C", postal_code="1", country="US"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="m", field="lines[0].unit_price")]
        if hold
        else [],
        priority=100,
        currency="USD",
    )


@pytest.fixture
async def orders(make_database):
    return OrdersService(await make_database(MIGRATIONS))


async def published(service) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
    return [events_pb2.Event.FromString(r.payload) for r in rows]


async def test_create_is_idempotent_and_writes_history_and_events(orders):
    first = await orders.create(request("ORD-1"))
    again = await orders.create(request("ORD-1"))
    assert first.order_id == again.order_id and again.version == first.version
    loaded = await orders.get("ORD-1", "P-SHOP")
    assert [h.status.value for h in loaded.history] == ["received", "confirmed"]
    assert str(loaded.total_amount) == "6.50" and loaded.ship_to["country"] == "US"
    assert [e.type for e in await published(orders)] == ["order.received", "order.confirmed"]


async def test_many_orders_in_one_call_and_a_retry_of_them_makes_nothing_new(orders):
    created = await orders.create_many([request("ORD-M1"), request("ORD-M2", hold=True), request("ORD-M3")])
    assert [(o.order_id, o.status.value) for o in created] == [
        ("ORD-M1", "confirmed"),
        ("ORD-M2", "on_hold"),
        ("ORD-M3", "confirmed"),
    ]
    # A retry with one new order among them: the known ones come back as stored, the new one is made.
    again = await orders.create_many([request("ORD-M1"), request("ORD-M4"), request("ORD-M3")])
    assert [o.order_id for o in again] == ["ORD-M1", "ORD-M4", "ORD-M3"]
    listed, _ = await orders.list("", "", 50, "")
    assert sorted(o.order_id for o in listed) == ["ORD-M1", "ORD-M2", "ORD-M3", "ORD-M4"]
    loaded = await orders.get("ORD-M2", "")
    assert [h.status.value for h in loaded.history] == ["received", "on_hold"] and len(loaded.lines) == 1
    # Each order's events in its own order, none twice.
    types = [(e.order_id, e.type) for e in await published(orders)]
    assert len(types) == len(set(types)) == 8
    assert types.index(("ORD-M1", "order.received")) < types.index(("ORD-M1", "order.confirmed"))
    with pytest.raises(errors.InvalidArgument):
        await orders.create_many([request("ORD-X"), request("ORD-X")])


async def test_concurrent_creates_of_one_id_make_one_order(orders):
    results = await asyncio.gather(*[orders.create(request("ORD-RACE")) for _ in range(8)])
    assert {r.order_id for r in results} == {"ORD-RACE"}
    listed, _ = await orders.list("", "", 50, "")
    assert len(listed) == 1


async def test_partner_scope_and_listing_with_cursor(orders):
    for n in range(5):
        await orders.create(request(f"ORD-{n}"))
    await orders.create(request("ORD-EDI", partner="P-EDI"))
    with pytest.raises(errors.NotFound):
        await orders.get("ORD-EDI", "P-SHOP")
    page, cursor = await orders.list("P-SHOP", "", 3, "")
    rest, end = await orders.list("P-SHOP", "", 3, cursor)
    assert [o.order_id for o in page + rest] == ["ORD-4", "ORD-3", "ORD-2", "ORD-1", "ORD-0"]
    assert end == ""
    held, _ = await orders.list("", "on_hold", 10, "")
    assert held == []
    with pytest.raises(errors.InvalidArgument):
        await orders.list("", "nonsense", 10, "")


async def test_decisions_are_versioned_and_published(orders):
    await orders.create(request("ORD-H", hold=True))
    with pytest.raises(errors.NotFound):
        await orders.decide("ORD-H", "P-EDI", "cancel", "P-EDI", "not mine")
    order = await orders.decide("ORD-H", "", "approve", "desk", "checked")
    assert order.status.value == "confirmed"
    with pytest.raises(errors.FailedPrecondition):
        await orders.decide("ORD-H", "", "approve", "desk", "twice")
    types = [e.type for e in await published(orders)]
    assert types == ["order.received", "order.on_hold", "order.confirmed"]


async def test_stale_save_is_refused(orders):
    await orders.create(request("ORD-V"))
    async with orders.db.read() as conn:
        a = await OrderRepository(conn).get("ORD-V")
        b = await OrderRepository(conn).get("ORD-V")
    a.cancel(a.created_at, "x", "first")
    b.cancel(b.created_at, "y", "second")
    async with orders.db.transaction() as tx:
        await OrderRepository(tx.conn).save(a)
    with pytest.raises(errors.Conflict):
        async with orders.db.transaction() as tx:
            await OrderRepository(tx.conn).save(b)


async def test_shipment_events_move_the_order(orders):
    from services.orders.domain import Allocation

    await orders.create(request("ORD-S"))
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx, "ORD-S", lambda o: o.apply_reservation(o.created_at, [Allocation("A", "W1", 2)], {})
        )
    for status in ("created", "shipped", "delivered"):
        shipment = shipping_pb2.Shipment(
            shipment_id="SHP-1",
            order_id="ORD-S",
            warehouse="W1",
            status=status,
            lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
            on_time=True,
        )
        async with orders.db.transaction() as tx:
            await orders.record_shipment(tx, shipment)
    order = await orders.get("ORD-S", "")
    assert order.status.value == "completed" and order.lines[0].delivered == 2
    assert [e.type for e in await published(orders)][-3:] == [
        "order.allocated",
        "order.shipped",
        "order.completed",
    ]


async def test_proposals_and_the_urgent_flag_are_stored_and_published(orders):
    req = request("ORD-P", hold=True)
    req.urgent = True
    req.proposals.add(kind="earliest_date", delivery_date="2026-06-20")
    req.proposals.add(
        kind="split",
        parts=[
            common_pb2.ProposalPart(sku="A", quantity=1, delivery_date="2026-06-10"),
            common_pb2.ProposalPart(sku="A", quantity=1, delivery_date="2026-06-20"),
        ],
    )
    await orders.create(req)
    loaded = await orders.get("ORD-P", "")
    assert loaded.urgent is True
    assert loaded.proposals == [
        {"kind": "earliest_date", "delivery_date": "2026-06-20", "parts": []},
        {
            "kind": "split",
            "delivery_date": "",
            "parts": [
                {"sku": "A", "quantity": 1, "delivery_date": "2026-06-10"},
                {"sku": "A", "quantity": 1, "delivery_date": "2026-06-20"},
            ],
        },
    ]
    snapshot = (await published(orders))[-1].order.order
    assert snapshot.urgent and list(snapshot.proposals) == list(req.proposals)
    plain = await orders.create(request("ORD-PLAIN"))
    assert plain.proposals == [] and plain.urgent is False


def held(order_id: str, code: str, priority: int) -> orders_pb2.CreateOrderRequest:
    req = request(order_id, hold=True)
    req.hold_reasons[0].code = code
    req.priority = priority
    return req


async def test_the_desks_queue_by_priority_and_reason_with_cursors(orders):
    await orders.create(held("ORD-A", "price_mismatch", 100))
    await orders.create(held("ORD-B", "customer_blocked", 300))
    await orders.create(held("ORD-C", "price_mismatch", 300))
    await orders.create(held("ORD-D", "pricexmismatch", 200))  # '_' must not act as a LIKE wildcard
    await orders.create(request("ORD-E"))  # confirmed, not in the queue
    page, cursor = await orders.list("", "on_hold", 2, "", order_by="priority")
    rest, end = await orders.list("", "on_hold", 2, cursor, order_by="priority")
    assert [o.order_id for o in page + rest] == ["ORD-B", "ORD-C", "ORD-D", "ORD-A"] and end == ""
    mismatched, _ = await orders.list(
        "", "on_hold", 10, "", order_by="priority", hold_reason="price_mismatch"
    )
    assert [o.order_id for o in mismatched] == ["ORD-C", "ORD-A"]
    with pytest.raises(errors.InvalidArgument) as err:
        await orders.list("", "", 10, cursor, order_by="newest")  # a priority cursor in the other ordering
    assert err.value.violations[0].field == "cursor"
    with pytest.raises(errors.InvalidArgument):
        await orders.list("", "", 10, "", order_by="cheapest")
    with pytest.raises(errors.InvalidArgument):
        await orders.list("", "", 10, "", hold_reason="x%")


async def test_new_orders_come_before_retries_of_backorders(orders):
    """The allocator's work list: confirmed orders first (by priority, then first come), then scheduled
    (backordered) ones; so a new order never waits behind a batch-full of hopeless backorders."""
    for n, priority in enumerate((400, 390, 380)):
        req = request(f"ORD-BACK{n}")
        req.priority = priority
        await orders.create(req)
        async with orders.db.transaction() as tx:
            repo = OrderRepository(tx.conn)
            order = await repo.get(f"ORD-BACK{n}")
            order.apply_reservation(orders.clock(), [], {"A": 2}, ("2027-01-10", "2027-01-12"))
            await repo.save(order)
    for order_id, priority in (("ORD-NEW-LOW", 100), ("ORD-NEW-HIGH", 300)):
        req = request(order_id)
        req.priority = priority
        await orders.create(req)
    async with orders.db.read() as conn:
        repo = OrderRepository(conn)
        assert await repo.awaiting_stock(limit=3, include_scheduled=True) == [
            "ORD-NEW-HIGH",
            "ORD-NEW-LOW",
            "ORD-BACK0",
        ]
        assert await repo.awaiting_stock(limit=10, include_scheduled=False) == ["ORD-NEW-HIGH", "ORD-NEW-LOW"]
        whole = await repo.awaiting_stock_orders(limit=3, include_scheduled=True)  # the same, in one read
        assert [(o.order_id, len(o.lines), o.history[-1].status.value) for o in whole] == [
            ("ORD-NEW-HIGH", 1, "confirmed"),
            ("ORD-NEW-LOW", 1, "confirmed"),
            ("ORD-BACK0", 1, "scheduled"),
        ]


async def _many_awaiting(orders, count: int) -> None:
    """`count` confirmed and `count` scheduled orders: copies of one created order's row."""
    await orders.create(request("ORD-SEED"))
    async with orders.db.transaction() as tx:
        seed = (await tx.conn.execute(select(order_rows).where(order_rows.c.order_id == "ORD-SEED"))).one()
        copies = [
            {**seed._asdict(), "order_id": f"ORD-{status}-{n:05}", "status": status, "priority": n % 500}
            for status in ("confirmed", "scheduled")
            for n in range(count)
        ]
        await tx.conn.execute(
            order_rows.insert(), [{k: v for k, v in c.items() if k != "seq"} for c in copies]
        )


@pytest.mark.parametrize("include_scheduled", [False, True], ids=["confirmed", "with scheduled"])
async def test_the_allocators_read_stops_after_its_batch(orders, backend, include_scheduled):
    """The allocator's pass (awaiting_stock) reads each status from ix_orders_status_priority in its
    order and stops at the batch: with 2,000 orders waiting it reads about the batch, not all of them."""
    await _many_awaiting(orders, 2000)
    query = _awaiting_stock(True, include_scheduled).params(n=10)
    async with orders.db.transaction() as tx:
        sql = str(query.compile(dialect=tx.conn.dialect, compile_kwargs={"literal_binds": True}))
        if backend == "postgresql":
            for name, value in PLANNER_SETTINGS.items():  # as a deployment's cluster plans
                await tx.conn.exec_driver_sql(f"SET LOCAL {name} = {value}")
            await tx.conn.exec_driver_sql("ANALYZE orders")
            plan = (await tx.conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar_one()
            read = [n for n in plan_nodes(plan) if n.get("Relation Name") == "orders"]
            assert read and all(n["Node Type"] == "Index Scan" for n in read), read
            assert sum(n["Actual Rows"] for n in read) <= 10 * len(read), read
        else:  # SQLite keeps no actual counts: no sort of the orders read, only of the two parts' rows
            plan = (await tx.conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
            searches = [r for r in plan if "orders USING INDEX ix_orders_status_priority" in r[3]]
            sorts = [r for r in plan if "TEMP B-TREE" in r[3]]
            assert len(searches) == (2 if include_scheduled else 1), plan
            if include_scheduled:  # each part read inside its own subquery, the sort over them outside
                assert all(r[1] != 0 for r in searches) and all(r[1] == 0 for r in sorts), plan
            else:
                assert not sorts, plan
    async with orders.db.read() as conn:  # and what it reads is the batch, in the allocator's order
        found = await OrderRepository(conn).awaiting_stock(limit=3, include_scheduled=include_scheduled)
    assert found == ["ORD-confirmed-00499", "ORD-confirmed-00999", "ORD-confirmed-01499"]


async def test_created_orders_are_answered_with_the_order_their_events_carry(orders):
    """CreateOrder(s) answers with the proto its events' snapshot built (proto.as_published): the same as the
    order built from the stored one, and as the order its last event carries; a retry's known order (read
    back, never published by this call) is built as before."""
    from services.orders.api import OrdersApi
    from services.orders.proto import order_to_proto

    api = OrdersApi(orders, None, None)  # type: ignore[arg-type]  # CreateOrder(s) use the service only
    first = await api.CreateOrders(
        orders_pb2.CreateOrdersRequest(orders=[request("ORD-A1"), request("ORD-A2", hold=True)]), None
    )
    again = await api.CreateOrders(
        orders_pb2.CreateOrdersRequest(orders=[request("ORD-A1"), request("ORD-A3")]), None
    )  # ORD-A1 exists: the batch rolls back, each is created or read on its own
    one = await api.CreateOrder(request("ORD-A4"), None)
    answered = [*first.orders, *again.orders, one]
    assert [o.order_id for o in answered] == ["ORD-A1", "ORD-A2", "ORD-A1", "ORD-A3", "ORD-A4"]
    carried = {e.order_id: e.order.order for e in await published(orders)}  # each order's last event
    for order in answered:
        assert order == order_to_proto(await orders.get(order.order_id, "")) == carried[order.order_id]
