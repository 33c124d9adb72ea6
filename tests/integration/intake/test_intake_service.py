"""Intake on a real database (SQLite and PostgreSQL): master data import, idempotency keys, SubmitOrder.

The orders service is replaced by a small in-test double that behaves like the
real CreateOrder where intake relies on it: idempotent by order id. The real
chain (gateway -> intake -> orders) is covered by the e2e tests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from orderdesk import errors, masterdata
from orderdesk.v1 import common_pb2, intake_pb2, inventory_pb2, orders_pb2
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

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = ROOT / "services" / "intake" / "migrations"
DEMO = ROOT / "demo"
NOON = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
PRODUCTS_HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"


class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection refused"


class NotFound(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.NOT_FOUND

    def details(self):
        return "no stock records"


class FakeOrders:
    """CreateOrder as orders implements it: a repeat of an order id returns the stored order."""

    def __init__(self, fail_first: int = 0):
        self.orders: dict[str, orders_pb2.Order] = {}
        self.calls: list[bytes] = []
        self.fail_first = fail_first

    async def CreateOrder(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        assert timeout, "every outgoing call has a deadline"
        self.calls.append(request.SerializeToString())
        if self.fail_first:
            self.fail_first -= 1
            raise Unavailable()
        await asyncio.sleep(0)  # let concurrent submissions interleave
        if request.order_id not in self.orders:
            self.orders[request.order_id] = orders_pb2.Order(
                order_id=request.order_id, partner_id=request.partner_id, customer_id=request.customer_id,
                status="on_hold" if request.hold_reasons else "confirmed", hold_reasons=request.hold_reasons,
                priority=request.priority, currency=request.currency, proposals=request.proposals,
                urgent=request.urgent, external_ref=request.external_ref, payment_terms=request.payment_terms,
                lines=request.lines,
            )
        return self.orders[request.order_id]

    async def CreateOrders(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        self.batches = getattr(self, "batches", 0) + 1
        return orders_pb2.CreateOrdersResponse(
            orders=[await self.CreateOrder(one, timeout=timeout) for one in request.orders])


class FakeInventory:
    """GetStock as inventory answers it, from the demo stock: NOT_FOUND for a SKU without records."""

    def __init__(self, stock: dict[str, dict[str, int]] | None = None, fail: bool = False):
        if stock is None:
            stock = {}
            for row in masterdata.parse("stock", (DEMO / "stock.csv").read_text()):
                stock.setdefault(row.sku, {})[row.warehouse] = row.on_hand
        self.stock = stock
        self.fail = fail
        self.asked: list[str] = []

    async def GetStock(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        assert timeout, "every outgoing call has a deadline"
        self.asked.append(request.sku)
        if self.fail:
            raise Unavailable()
        if request.sku not in self.stock:
            raise NotFound()
        return inventory_pb2.StockLevel(sku=request.sku, warehouses=[
            inventory_pb2.WarehouseStock(warehouse=w, on_hand=q, available=q) for w, q in self.stock[request.sku].items()
        ])


async def intake(make_database, orders: FakeOrders | None = None, *, demo: bool = True,
                 inventory: FakeInventory | None = None, config: IntakeConfig | None = None):
    db = await make_database(MIGRATIONS)
    service = IntakeService(db, orders or FakeOrders(), rpc_timeout=2.0, clock=lambda: NOON,
                            inventory=inventory or FakeInventory(), config=config)
    if demo:
        assert await service.import_master_data("customers", (DEMO / "customers.csv").read_text()) == 60
        assert await service.import_master_data("products", (DEMO / "products.csv").read_text()) == 200
        assert await service.import_master_data("warehouses", (DEMO / "warehouses.csv").read_text()) == 3
    return service


def request(key: str | None = None, partner: str = "P-SHOP", **changes) -> intake_pb2.SubmitOrderRequest:
    key = key or uuid.uuid4().hex
    fields = dict(  # one reference per key: a second key for one reference is held as a duplicate
        partner_id=partner, idempotency_key=key, channel="api", external_ref=f"PO-{key}"[:128],
        customer_id="C0001", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=2, unit_price="31.57")],
        payment_terms="NET30",
    )
    fields.update(changes)
    return intake_pb2.SubmitOrderRequest(**fields)


async def submit(service: IntakeService, req: intake_pb2.SubmitOrderRequest):
    return await service.submit(submission_from_proto(req))


def received(outcome: str, channel: str = "api") -> float:
    value = REGISTRY.get_sample_value("orderdesk_orders_received_total", {"channel": channel, "outcome": outcome})
    return value or 0.0


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
    assert blocked.status == "blocked" and blocked.payment_terms == ("NET30",) and blocked.ship_to_country == "CN"
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
            "products", PRODUCTS_HEADER + "OK-1,Fine,1.00,USD,false,1,1,1,active\nBAD-1,Broken,cheap,USD,false,1,1,1,active\n"
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
async def test_a_clean_order_is_approved_and_entered_with_the_customers_defaults(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    before = received("approved")
    done = await submit(service, request(payment_terms="", requested_delivery_date="2026-06-11"))
    assert done.order.status == "confirmed" and not done.replayed and list(done.order.hold_reasons) == []
    assert received("approved") == before + 1
    sent = orders_pb2.CreateOrderRequest.FromString(orders.calls[0])
    assert sent.order_id == done.order.order_id and sent.order_id.startswith("ORD-")
    assert (sent.currency, sent.payment_terms, sent.priority) == ("USD", "NET30", 180)  # standard, due in 10 days
    assert sent.ship_to == common_pb2.Address(
        name="Customer 0001 Ltd", line1="33 Harbour Road", city="Lyon", postal_code="69001", country="FR",
        phone="+1-555-1001",
    )


async def test_a_blocked_customers_order_is_held_with_its_reason(make_database):
    service = await intake(make_database)
    before = received("held")
    done = await submit(service, request(customer_id="C0029"))
    assert done.order.status == "on_hold"
    assert [(r.code, r.field) for r in done.order.hold_reasons] == [("customer_blocked", "customer_id")]
    assert received("held") == before + 1


async def test_an_invalid_order_stores_nothing_and_calls_nobody(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    before = received("invalid")
    bad = request(customer_id="C9999", lines=[
        intake_pb2.SubmitLine(sku="BRK-001", quantity=1, unit_price="31.57"),
        intake_pb2.SubmitLine(sku="NO-SUCH-SKU", quantity=0, unit_price="ten"),
    ])
    with pytest.raises(errors.InvalidArgument) as err:
        await submit(service, bad)
    assert [v.field for v in err.value.violations] == [
        "customer_id", "lines[1].sku", "lines[1].quantity", "lines[1].unit_price",
    ]
    assert received("invalid") == before + 1
    assert orders.calls == [] and await count(service.db, idempotency_keys) == 0


async def test_the_same_key_and_body_replays_the_first_order(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    first = await submit(service, request(key="k-replay"))
    before = received("replayed")
    again = await submit(service, request(key="k-replay"))
    assert again.replayed and again.order.order_id == first.order.order_id
    assert orders.calls[0] == orders.calls[1]  # the stored request bytes, not a recomputed one
    assert len(orders.orders) == 1 and received("replayed") == before + 1


async def test_the_same_key_with_another_body_is_refused(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    await submit(service, request(key="k-reuse"))
    changed = request(key="k-reuse", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")])
    with pytest.raises(errors.InvalidArgument) as err:
        await submit(service, changed)
    assert err.value.reason == "idempotency_key_reused"
    assert [v.field for v in err.value.violations] == ["Idempotency-Key"]
    assert len(orders.orders) == 1 and len(orders.calls) == 1


async def test_the_same_key_from_two_partners_is_two_orders(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    a = await submit(service, request(key="shared", partner="P-A"))
    b = await submit(service, request(key="shared", partner="P-B"))
    assert a.order.order_id != b.order.order_id and not b.replayed


async def test_simultaneous_submissions_with_one_key_create_one_order(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    answers = await asyncio.gather(*[submit(service, request(key="k-race")) for _ in range(10)])
    assert len({a.order.order_id for a in answers}) == 1
    assert sum(not a.replayed for a in answers) == 1
    assert len(orders.orders) == 1 and await count(service.db, idempotency_keys) == 1


async def test_a_retry_after_orders_failed_completes_the_claimed_order(make_database):
    orders = FakeOrders(fail_first=1)
    service = await intake(make_database, orders)
    with pytest.raises(errors.Unavailable):
        await submit(service, request(key="k-crash"))
    assert orders.orders == {}  # the key is claimed, the order not yet entered
    done = await submit(service, request(key="k-crash"))
    assert done.replayed and done.order.status == "confirmed"
    assert orders.calls[0] == orders.calls[1] and list(orders.orders) == [done.order.order_id]


# --- streams and batches: many orders at once ---------------------------------------------------
async def test_many_orders_at_once_commit_together_and_keep_each_order_s_rules(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    replayed = await submit(service, request("K-SEEN"))
    subs = [submission_from_proto(r) for r in [
        request("K-1"),
        request("K-SEEN"),                                                  # a key seen before: replayed
        request("K-2", customer_id="C9999"),                                # refused: unknown customer
        request("K-3", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=2, unit_price="1.00")]),  # held
        request("K-4"),
    ]]
    batches_before = getattr(orders, "batches", 0)
    answers = await service.submit_many(subs)
    assert orders.batches == batches_before + 1                             # one CreateOrders for the plain ones
    assert isinstance(answers[0], Submitted) and answers[0].order.status == "confirmed"
    assert answers[1].replayed and answers[1].order.order_id == replayed.order.order_id
    assert isinstance(answers[2], errors.InvalidArgument)
    assert [r.code for r in answers[3].order.hold_reasons] == ["price_mismatch"]
    assert answers[4].order.status == "confirmed" and not answers[4].replayed
    assert await count(service.db, idempotency_keys) == 4                  # K-SEEN, K-1, K-3, K-4
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).open_exposure("C0001") == 3 * Decimal("63.14")
    # The same chunk again: every order is a replay of its first answer, nothing new is made.
    again = await service.submit_many(subs)
    assert [a.order.order_id for a in again if isinstance(a, Submitted)] == [
        a.order.order_id for a in answers if isinstance(a, Submitted)]
    assert all(a.replayed for a in again if isinstance(a, Submitted))
    assert len(orders.orders) == 4


async def test_a_key_twice_in_one_chunk_falls_back_to_one_by_one(make_database):
    orders = FakeOrders()
    service = await intake(make_database, orders)
    same = request("K-TWICE")
    changed = request("K-TWICE", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")])
    first, repeat, reused = await service.submit_many([submission_from_proto(r) for r in (same, same, changed)])
    assert not first.replayed and repeat.replayed and repeat.order.order_id == first.order.order_id
    assert isinstance(reused, errors.InvalidArgument)                        # another body under the same key
    assert len(orders.orders) == 1
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).open_exposure("C0001") == Decimal("63.14")


async def test_a_chunk_counts_each_order_as_its_claims_decided(make_database):
    service = await intake(make_database)
    approved, held = received("approved"), received("held")
    first, second = await service.submit_many([submission_from_proto(r) for r in (
        request("K-REF-1"), request("K-REF-2", external_ref="PO-K-REF-1"))])  # the same reference again
    assert [r.code for r in second.order.hold_reasons] == ["duplicate_external_ref"]
    assert not first.order.hold_reasons
    assert (received("approved") - approved, received("held") - held) == (1, 1)
