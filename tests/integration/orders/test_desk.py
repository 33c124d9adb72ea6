"""Change requests and exceptions on a real database (SQLite and PostgreSQL), with fake inventory/intake stubs."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderdesk import errors
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, intake_pb2, inventory_pb2, orders_pb2
from services.orders.desk import Desk
from services.orders.service import OrdersService

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


class FakeInventory:
    """Holds what Reserve asked for, up to `stock` per SKU at one warehouse; Reallocate moves to W2."""

    def __init__(self, stock: dict[str, int]):
        self.stock = stock
        self.calls: list = []

    async def Reserve(self, request, timeout=None, metadata=None):
        self.calls.append(request)
        held = [inventory_pb2.Reservation(sku=x.sku, warehouse="W1", quantity=min(x.quantity, self.stock.get(x.sku, 0)))
                for x in request.lines]
        short = [inventory_pb2.ReserveLine(sku=x.sku, quantity=x.quantity - self.stock.get(x.sku, 0))
                 for x in request.lines if x.quantity > self.stock.get(x.sku, 0)]
        return inventory_pb2.ReserveResponse(reservations=held, backordered=short)

    async def Reallocate(self, request, timeout=None, metadata=None):
        self.calls.append(request)
        return inventory_pb2.ReserveResponse(reservations=[
            inventory_pb2.Reservation(sku=request.sku, warehouse="W2", quantity=request.quantity)])


class FakeIntake:
    def __init__(self, reasons=()):
        self.reasons = list(reasons)
        self.requests = []

    async def ReviewChange(self, request, timeout=None, metadata=None):
        self.requests.append(request)
        return intake_pb2.ReviewChangeResponse(hold_reasons=self.reasons)


def create(order_id: str) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id, partner_id="P-SHOP", channel="api", external_ref="PO-1", customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="Lyon", postal_code="1", country="FR"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25"),
               orders_pb2.OrderLine(sku="B", quantity=1, unit_price="1.00")],
        priority=100, currency="USD",
    )


def change(order_id: str, version: int, **kw) -> orders_pb2.ChangeOrderRequest:
    return orders_pb2.ChangeOrderRequest(order_id=order_id, partner_id="P-SHOP", expected_version=version,
                                         actor=common_pb2.Actor(id="P-SHOP", reason="buyer asked"), **kw)


@pytest.fixture
async def orders(make_database):
    return OrdersService(await make_database(MIGRATIONS))


async def published(service) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = (await conn.execute(outbox_table.select().order_by(outbox_table.c.id))).all()
    return [events_pb2.Event.FromString(r.payload) for r in rows]


async def allocated(orders: OrdersService, order_id: str, inventory: FakeInventory):
    from services.orders.allocator import Allocator
    await orders.create(create(order_id))
    assert await Allocator(orders.db, inventory, 1.0, clock=orders.clock).allocate(order_id)
    return await orders.get(order_id, "")


async def test_change_is_saved_with_before_after_and_published(orders):
    intake = FakeIntake()
    desk = Desk(orders, FakeInventory({}), 1.0, intake=intake)
    order = await orders.create(create("ORD-C1"))
    changed = await desk.change(change("ORD-C1", order.version,
                                       lines=[orders_pb2.ChangeLine(sku="A", quantity=5)], remove_lines=["B"],
                                       add_lines=[orders_pb2.ChangeLine(sku="C", quantity=1, unit_price="2.00")]))
    loaded = await orders.get("ORD-C1", "P-SHOP")
    assert [(x.sku, x.quantity) for x in loaded.lines] == [("A", 5), ("C", 1)]
    assert loaded.version == changed.version == order.version + 1
    assert {(c.field, c.before, c.after) for c in loaded.change_log[0].changes} == {
        ("lines[A].quantity", "2", "5"), ("lines[B]", "1 x 1.00", ""), ("lines[C]", "", "1 x 2.00")}
    assert intake.requests and [(a.sku, a.quantity) for a in intake.requests[0].added] == [("A", 3), ("C", 1)]
    assert intake.requests[0].previous_total == "7.50"
    event = (await published(orders))[-1]
    assert event.type == "order.changed" and event.aggregate_version == loaded.version
    assert {c.field for c in event.order.changes} == {"lines[A].quantity", "lines[B]", "lines[C]"}
    assert event.order.order.lines[0].quantity == 5


async def test_stale_version_and_failed_review_change_nothing(orders):
    desk = Desk(orders, FakeInventory({}), 1.0,
                intake=FakeIntake([common_pb2.Reason(code="credit_limit_exceeded", message="too much")]))
    order = await orders.create(create("ORD-C2"))
    with pytest.raises(errors.FailedPrecondition) as stale:
        await desk.change(change("ORD-C2", order.version - 1, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)]))
    assert stale.value.rule == "stale_version"
    with pytest.raises(errors.FailedPrecondition) as refused:
        await desk.change(change("ORD-C2", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=9)]))
    assert refused.value.rule == "change_fails_check" and "credit_limit_exceeded" in refused.value.message
    loaded = await orders.get("ORD-C2", "")
    assert loaded.version == order.version and loaded.lines[0].quantity == 2 and not loaded.change_log
    # A decrease needs no review: accepted.
    await desk.change(change("ORD-C2", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)]))


async def test_allocated_order_re_reserves_or_refuses(orders):
    inventory = FakeInventory({"A": 4, "B": 1})
    desk = Desk(orders, inventory, 1.0)
    order = await allocated(orders, "ORD-C3", inventory)
    changed = await desk.change(change("ORD-C3", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=4)]))
    assert changed.lines[0].allocated == 4 and changed.status.value == "allocated"
    assert [r.quantity for r in inventory.calls[-1].lines] == [4, 1]
    with pytest.raises(errors.FailedPrecondition) as refused:
        await desk.change(change("ORD-C3", changed.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=6)]))
    assert refused.value.rule == "change_needs_stock"
    assert [r.quantity for r in inventory.calls[-1].lines] == [4, 1]  # the reservation is put back


async def test_cancel_every_line_cancels_the_order(orders):
    desk = Desk(orders, FakeInventory({}), 1.0)
    await orders.create(create("ORD-C4"))
    cancelled = await desk.change(change("ORD-C4", 0, cancel_lines=[orders_pb2.ChangeLine(sku="A", quantity=2),
                                                                     orders_pb2.ChangeLine(sku="B", quantity=1)]))
    assert cancelled.status.value == "cancelled"
    assert (await published(orders))[-1].type == "order.cancelled"


async def test_exception_lifecycle_and_reallocation(orders):
    inventory = FakeInventory({"A": 2, "B": 1})
    desk = Desk(orders, inventory, 1.0)
    await allocated(orders, "ORD-C5", inventory)
    order = await desk.record_exception(orders_pb2.RecordExceptionRequest(
        order_id="ORD-C5", actor=common_pb2.Actor(id="P-3PL"), type="stock_shortage_at_pick", cause="bin empty",
        sku="A", warehouse="W1", quantity=2, expected_date="2026-12-24", source="warehouse"))
    assert order.at_risk and order.exceptions[0].source == "warehouse"
    loaded = await orders.get("ORD-C5", "")
    assert loaded.at_risk and loaded.exceptions[0].expected_date == "2026-12-24"
    eid = loaded.exceptions[0].exception_id
    resolved = await desk.resolve_exception(orders_pb2.ResolveExceptionRequest(
        order_id="ORD-C5", exception_id=eid, actor=common_pb2.Actor(id="desk"), action="reallocate"))
    assert not resolved.at_risk
    assert {(a.sku, a.warehouse, a.quantity) for a in resolved.allocations} == {("A", "W2", 2)}
    types = [e.type for e in await published(orders)]
    assert types[-3:] == ["order.exception", "order.changed", "order.exception"]
    last = (await published(orders))[-1]
    assert last.order.exception.status == "resolved" and last.order.exception.resolution.action == "reallocate"
    with pytest.raises(errors.InvalidArgument):
        await desk.record_exception(orders_pb2.RecordExceptionRequest(order_id="ORD-C5", type="lost_parcel",
                                                                      cause="gone", shipment_id="SHP-NOPE"))


async def test_a_change_while_the_allocator_reserves_is_not_overwritten(orders):
    """The allocator asked inventory for the old quantities; the change lands before it saves: it saves
    nothing, and its next pass reserves the new quantities."""
    from services.orders.allocator import Allocator

    inventory = FakeInventory({"A": 10, "B": 10})
    desk = Desk(orders, inventory, 1.0)
    order = await orders.create(create("ORD-C6"))
    reserve = inventory.Reserve

    async def reserve_then_change(request, timeout=None, metadata=None):
        inventory.Reserve = reserve  # once
        answer = await reserve(request, timeout, metadata)
        await desk.change(change("ORD-C6", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)]))
        return answer

    inventory.Reserve = reserve_then_change
    allocator = Allocator(orders.db, inventory, 1.0, clock=orders.clock)
    assert not await allocator.allocate("ORD-C6")
    assert (await orders.get("ORD-C6", "")).status.value == "confirmed"
    assert await allocator.allocate("ORD-C6")
    allocated = await orders.get("ORD-C6", "")
    assert allocated.status.value == "allocated"
    assert {(a.sku, a.quantity) for a in allocated.allocations} == {("A", 1), ("B", 1)}


async def test_substitute_replaces_the_line_and_records_the_consent(orders):
    inventory = FakeInventory({"A": 2, "B": 1, "A2": 5})
    desk = Desk(orders, inventory, 1.0, intake=FakeIntake())
    await allocated(orders, "ORD-C7", inventory)
    order = await desk.record_exception(orders_pb2.RecordExceptionRequest(
        order_id="ORD-C7", type="quality_rework", cause="scratched", sku="A"))
    eid = order.exceptions[0].exception_id
    done = await desk.resolve_exception(orders_pb2.ResolveExceptionRequest(
        order_id="ORD-C7", exception_id=eid, action="substitute",
        details={"substitute_sku": "A2", "customer_consent": "phone call 10:00"}))
    assert [(x.sku, x.quantity, str(x.unit_price), x.allocated) for x in done.lines] == [("B", 1, "1.00", 1),
                                                                                      ("A2", 2, "3.25", 2)]
    assert not done.at_risk and done.exceptions[0].resolution.details["customer_consent"] == "phone call 10:00"
    assert [r.sku for r in inventory.calls[-1].lines] == ["A2", "B"]
    types = [e.type for e in await published(orders)]
    assert types[-2:] == ["order.changed", "order.exception"]


class FakeShipping:
    def __init__(self, status: str):
        self.status = status

    async def ListShipments(self, request, timeout=None, metadata=None):
        from orderdesk.v1 import shipping_pb2
        return shipping_pb2.ListShipmentsResponse(items=[shipping_pb2.Shipment(
            shipment_id="SHP-C8-W1", order_id=request.order_id, warehouse="W1", status=self.status,
            lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)])])


async def test_policy_uses_shippings_current_steps_not_a_lagging_copy(orders):
    """Orders' copy says pending; shipping has packed already: the address change is refused."""
    from services.orders.domain import ShipmentView

    inventory = FakeInventory({"A": 2, "B": 1})
    await allocated(orders, "ORD-C8", inventory)
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(tx, "ORD-C8", lambda o: o.record_shipment(
            o.created_at, ShipmentView("SHP-C8-W1", "W1", "pending", lines={"A": 2})))
    order = await orders.get("ORD-C8", "")
    new_address = common_pb2.Address(name="N", line1="2 Rue", city="Paris", postal_code="75001", country="FR")
    desk = Desk(orders, inventory, 1.0, shipping=FakeShipping("packed"))
    with pytest.raises(errors.FailedPrecondition) as refused:
        await desk.change(change("ORD-C8", order.version, ship_to=new_address, change_ship_to=True))
    assert refused.value.rule == "address_until_packed"
    assert (await orders.get("ORD-C8", "")).shipments["SHP-C8-W1"].status == "pending"  # the copy is untouched
    desk = Desk(orders, inventory, 1.0, shipping=FakeShipping("pending"))
    changed = await desk.change(change("ORD-C8", order.version, ship_to=new_address, change_ship_to=True))
    assert changed.ship_to["city"] == "Paris"


async def test_an_exception_recorded_again_with_its_key_is_recorded_once(orders):
    desk = Desk(orders, FakeInventory({}), 1.0)
    await orders.create(create("ORD-C9"))
    req = orders_pb2.RecordExceptionRequest(order_id="ORD-C9", type="production_delay", cause="late",
                                            expected_date="2027-01-01", idempotency_key="k-1")
    first = await desk.record_exception(req)
    again = await desk.record_exception(req)
    assert [e.exception_id for e in again.exceptions] == [e.exception_id for e in first.exceptions]
    assert again.version == first.version
    other = await desk.record_exception(orders_pb2.RecordExceptionRequest(
        order_id="ORD-C9", type="production_delay", cause="later", idempotency_key="k-2"))
    assert len(other.exceptions) == 2
