"""Change requests and exceptions on a real database (SQLite and PostgreSQL), with fake inventory/intake stubs.

The use cases' own logic is tested without a database in tests/unit/orders/test_use_cases.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from orderdesk import errors
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, intake_pb2, inventory_pb2, orders_pb2
from services.orders.change_requests import ChangeRequests
from services.orders.exception_resolutions import ExceptionResolutions
from services.orders.service import OrdersService

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"


class FakeInventory:
    """Holds what Reserve asked for, up to `stock` per SKU at one warehouse; Reallocate moves to W2."""

    def __init__(self, stock: dict[str, int]):
        self.stock = stock
        self.calls: list = []

    async def Reserve(self, request, timeout=None, metadata=None):
        self.calls.append(request)
        held = [
            inventory_pb2.Reservation(
                sku=x.sku, warehouse="W1", quantity=min(x.quantity, self.stock.get(x.sku, 0))
            )
            for x in request.lines
        ]
        short = [
            inventory_pb2.ReserveLine(sku=x.sku, quantity=x.quantity - self.stock.get(x.sku, 0))
            for x in request.lines
            if x.quantity > self.stock.get(x.sku, 0)
        ]
        return inventory_pb2.ReserveResponse(reservations=held, backordered=short)

    async def Reallocate(self, request, timeout=None, metadata=None):
        self.calls.append(request)
        return inventory_pb2.ReserveResponse(
            reservations=[
                inventory_pb2.Reservation(sku=request.sku, warehouse="W2", quantity=request.quantity)
            ]
        )


class FakeIntake:
    def __init__(self, reasons=()):
        self.reasons = list(reasons)
        self.requests = []

    async def ReviewChange(self, request, timeout=None, metadata=None):
        self.requests.append(request)
        return intake_pb2.ReviewChangeResponse(hold_reasons=self.reasons)


def create(order_id: str) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        channel="api",
        external_ref="PO-1",
        customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="Lyon", postal_code="1", country="FR"),
        lines=[
            orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25"),
            orders_pb2.OrderLine(sku="B", quantity=1, unit_price="1.00"),
        ],
        priority=100,
        currency="USD",
    )


def change(order_id: str, version: int, **kw) -> orders_pb2.ChangeOrderRequest:
    return orders_pb2.ChangeOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        expected_version=version,
        actor=common_pb2.Actor(id="P-SHOP", reason="buyer asked"),
        **kw,
    )


def use_cases(orders: OrdersService, inventory, **clients) -> tuple[ChangeRequests, ExceptionResolutions]:
    """The change requests and exception resolutions of the orders service, as its __main__ wires them."""
    changes = ChangeRequests(orders, inventory, 1.0, **clients)
    return changes, ExceptionResolutions(orders, inventory, 1.0, change_requests=changes)


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


async def test_allocated_order_re_reserves_or_refuses(orders):
    inventory = FakeInventory({"A": 4, "B": 1})
    changes, resolutions = use_cases(orders, inventory)
    order = await allocated(orders, "ORD-C3", inventory)
    changed = await changes.change(
        change("ORD-C3", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=4)])
    )
    assert changed.lines[0].allocated == 4 and changed.status.value == "allocated"
    assert [r.quantity for r in inventory.calls[-1].lines] == [4, 1]
    with pytest.raises(errors.FailedPrecondition) as refused:
        await changes.change(
            change("ORD-C3", changed.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=6)])
        )
    assert refused.value.rule == "change_needs_stock"
    assert [r.quantity for r in inventory.calls[-1].lines] == [4, 1]  # the reservation is put back


async def test_cancel_every_line_cancels_the_order(orders):
    changes, resolutions = use_cases(orders, FakeInventory({}))
    await orders.create(create("ORD-C4"))
    cancelled = await changes.change(
        change(
            "ORD-C4",
            0,
            cancel_lines=[
                orders_pb2.ChangeLine(sku="A", quantity=2),
                orders_pb2.ChangeLine(sku="B", quantity=1),
            ],
        )
    )
    assert cancelled.status.value == "cancelled"
    assert (await published(orders))[-1].type == "order.cancelled"


async def test_a_change_while_the_allocator_reserves_is_not_overwritten(orders):
    """The allocator asked inventory for the old quantities; the change lands before it saves: it saves
    nothing, and its next pass reserves the new quantities."""
    from services.orders.allocator import Allocator

    inventory = FakeInventory({"A": 10, "B": 10})
    changes, resolutions = use_cases(orders, inventory)
    order = await orders.create(create("ORD-C6"))
    reserve = inventory.Reserve

    async def reserve_then_change(request, timeout=None, metadata=None):
        inventory.Reserve = reserve  # once
        answer = await reserve(request, timeout, metadata)
        await changes.change(
            change("ORD-C6", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)])
        )
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
    changes, resolutions = use_cases(orders, inventory, intake=FakeIntake())
    await allocated(orders, "ORD-C7", inventory)
    order = await resolutions.record(
        orders_pb2.RecordExceptionRequest(
            order_id="ORD-C7", type="quality_rework", cause="scratched", sku="A"
        )
    )
    eid = order.exceptions[0].exception_id
    done = await resolutions.resolve(
        orders_pb2.ResolveExceptionRequest(
            order_id="ORD-C7",
            exception_id=eid,
            action="substitute",
            details={"substitute_sku": "A2", "customer_consent": "phone call 10:00"},
        )
    )
    assert [(x.sku, x.quantity, str(x.unit_price), x.allocated) for x in done.lines] == [
        ("B", 1, "1.00", 1),
        ("A2", 2, "3.25", 2),
    ]
    assert (
        not done.at_risk and done.exceptions[0].resolution.details["customer_consent"] == "phone call 10:00"
    )
    assert [r.sku for r in inventory.calls[-1].lines] == ["A2", "B"]
    types = [e.type for e in await published(orders)]
    assert types[-2:] == ["order.changed", "order.exception"]


class FakeShipping:
    def __init__(self, status: str):
        self.status = status

    async def ListShipments(self, request, timeout=None, metadata=None):
        from orderdesk.v1 import shipping_pb2

        return shipping_pb2.ListShipmentsResponse(
            items=[
                shipping_pb2.Shipment(
                    shipment_id="SHP-C8-W1",
                    order_id=request.order_id,
                    warehouse="W1",
                    status=self.status,
                    lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
                )
            ]
        )


async def test_policy_uses_shippings_current_steps_not_a_lagging_copy(orders):
    """Orders' copy says pending; shipping has packed already: the address change is refused."""
    from services.orders.domain import ShipmentView

    inventory = FakeInventory({"A": 2, "B": 1})
    await allocated(orders, "ORD-C8", inventory)
    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx,
            "ORD-C8",
            lambda o: o.record_shipment(
                o.created_at, ShipmentView("SHP-C8-W1", "W1", "pending", lines={"A": 2})
            ),
        )
    order = await orders.get("ORD-C8", "")
    new_address = common_pb2.Address(name="N", line1="2 Rue", city="Paris", postal_code="75001", country="FR")
    changes, resolutions = use_cases(orders, inventory, shipping=FakeShipping("packed"))
    with pytest.raises(errors.FailedPrecondition) as refused:
        await changes.change(change("ORD-C8", order.version, ship_to=new_address, change_ship_to=True))
    assert refused.value.rule == "address_until_packed"
    assert (await orders.get("ORD-C8", "")).shipments[
        "SHP-C8-W1"
    ].status == "pending"  # the copy is untouched
    changes, resolutions = use_cases(orders, inventory, shipping=FakeShipping("pending"))
    changed = await changes.change(change("ORD-C8", order.version, ship_to=new_address, change_ship_to=True))
    assert changed.ship_to["city"] == "Paris"
