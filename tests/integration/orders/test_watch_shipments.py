"""The promise watch's warehouse and transit risks on real databases (SQLite and PostgreSQL): shipping
computes a shipment's pick-by and deliver-by from the warehouse's calendar and the lane, its events carry
them, orders' consumer keeps them and the watch, on a clock the test moves, raises not_picked_by_cutoff
once the cut-off passed with the shipment still in the warehouse, transit_overdue once a parcel is on
its way past its deliver-by and carrier_silent once its carrier has said nothing for too long, and clears
them when it is picked and shipped, delivered, or the carrier speaks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orderdesk import events
from orderdesk.outbox import outbox_table
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2
from services.orders.consumers import subscriptions as orders_subscriptions
from services.orders.domain import Allocation
from services.orders.service import OrdersService
from services.orders.store import OrderRepository
from services.orders.watch import Watch
from services.shipping.consumers import subscriptions as shipping_subscriptions
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository
from services.shipping.tracking import Reported, TrackingEntry, TrackingStatus
from tests.integration.orders.test_store import MIGRATIONS as ORDERS
from tests.integration.orders.test_watch import Clock, events_of
from tests.integration.shipping.test_shipping_revisions import DEMO_WAREHOUSES
from tests.integration.shipping.test_shipping_revisions import MIGRATIONS as SHIPPING

ALLOCATED_AT = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)  # a Thursday
# Hamburg (cut-off 15:00 Europe/Berlin) to France: 3 working days, 2 with DHL.
LANES = "carrier,origin_country,destination_country,transit_days\n,DE,FR,3\nDHL,DE,FR,2\n"
ORDER_ID = "ORD-WG1"
SHIPMENT_ID = "SHP-WG1-WH-HAM"


def order_request() -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=ORDER_ID,
        partner_id="P-SHOP",
        customer_id="C0001",
        ship_to=common_pb2.Address(name="N", line1="L", city="Paris", postal_code="75001", country="FR"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        requested_delivery_date="2026-12-17",  # a Thursday
        priority=100,
        currency="EUR",
    )


class Desk:
    """Both services on their own databases, and the consumers between them, as the runtime runs them."""

    def __init__(self, orders: OrdersService, shipping: ShippingService, clock: Clock):
        self.orders, self.shipping, self.clock = orders, shipping, clock
        self.relayed = 0  # shipping's outbox rows handed to orders so far
        self.wakes = 0  # the watch woken by a shipment event (only when it has something to tell at once)
        handlers = orders_subscriptions(
            orders, wake_allocator=lambda **_: None, allocate_soon=lambda _: None, wake_watch=self._wake
        )
        self.on_shipment = {s.durable: s.handler for s in handlers}["orders-shipment-events"]

    def _wake(self) -> None:
        self.wakes += 1

    async def allocate(self) -> None:
        async with self.orders.db.transaction() as tx:
            repo = tx.repo(OrderRepository)
            order = await repo.get(ORDER_ID)
            order.apply_reservation(self.clock(), [Allocation("A", "WH-HAM", 2)], {})
            await repo.save(order)
        order = await self.orders.get(ORDER_ID, "")
        allocated = events.new_event(
            "order.allocated",
            aggregate_id=ORDER_ID,
            version=order.version,
            order_id=ORDER_ID,
            actor="system",
            at=self.clock(),
            order=events_pb2.OrderEvent(
                status="allocated",
                order=orders_pb2.Order(
                    order_id=ORDER_ID,
                    partner_id="P-SHOP",
                    status="allocated",
                    requested_delivery_date="2026-12-17",
                    ship_to=common_pb2.Address(country="FR"),
                    allocations=[orders_pb2.Allocation(sku="A", warehouse="WH-HAM", quantity=2)],
                ),
            ),
        )
        handler = {s.durable: s.handler for s in shipping_subscriptions(self.shipping)}[
            "shipping-order-allocated"
        ]
        async with self.shipping.db.transaction() as tx:
            await handler(tx, allocated)
        await self.relay()

    async def step(self, step: str, **more) -> None:
        await self.shipping.record_event(SHIPMENT_ID, step, occurred_at=self.clock(), actor="3pl", **more)
        await self.relay()

    async def relay(self) -> None:
        """shipping's new shipment events to orders' consumer, each in its own transaction."""
        async with self.shipping.db.read() as conn:
            rows = (
                await conn.execute(
                    select(outbox_table.c.payload)
                    .where(outbox_table.c.subject.like("orderdesk.shipment.%"))
                    .order_by(outbox_table.c.id)
                )
            ).all()
        for row in rows[self.relayed :]:
            async with self.orders.db.transaction() as tx:
                await self.on_shipment(tx, events_pb2.Event.FromString(row.payload))
        self.relayed = len(rows)


async def desk(make_database) -> tuple[Desk, Watch, Clock]:
    clock = Clock(ALLOCATED_AT)
    shipping = ShippingService(await make_database(SHIPPING), clock=clock)
    await shipping.import_master_data("warehouses", DEMO_WAREHOUSES)
    await shipping.import_master_data("lanes", LANES)
    orders = OrdersService(await make_database(ORDERS), clock)
    watch = Watch(orders.db, clock=clock)
    orders.db.repositories[OrderRepository] = watch.repository  # as the service wires it
    await orders.create(order_request())
    return Desk(orders, shipping, clock), watch, clock


async def risks(orders: OrdersService) -> list[tuple[str, str, int]]:
    order = await orders.get(ORDER_ID, "")
    return [(r.code.value, r.expected_date, r.slip_days) for r in order.risks]


async def test_shipping_schedules_and_orders_raise_not_picked_by_cutoff_after_it(make_database):
    office, watch, clock = await desk(make_database)
    await office.allocate()

    # Shipping: promised Thursday the 17th, 3 working days to France: it must leave Monday the 14th,
    # by 15:00 in Hamburg (14:00 UTC); it then arrives the 17th. Stored, and on its events.
    pick_by = dt.datetime(2026, 12, 14, 14, 0, tzinfo=dt.UTC)
    async with office.shipping.db.reading() as work:
        stored = await work.repo(ShipmentRepository).get(SHIPMENT_ID)
    assert (stored.pick_by, stored.deliver_by, stored.destination_country) == (pick_by, "2026-12-17", "FR")
    view = (await office.orders.get(ORDER_ID, "")).shipments[SHIPMENT_ID]
    assert (view.pick_by, view.deliver_by) == (pick_by.isoformat(), "2026-12-17")

    assert await watch.pass_once() == 1 and await risks(office.orders) == []
    clock.now = pick_by - dt.timedelta(minutes=1)
    await watch.pass_once()
    assert await risks(office.orders) == [] and await events_of(office.orders.db, ORDER_ID) == []

    # The cut-off passes with the shipment still pending: it leaves Tuesday at the earliest, a day late.
    clock.now = pick_by
    assert await watch.pass_once() == 1
    assert await risks(office.orders) == [("not_picked_by_cutoff", "2026-12-18", 1)]
    [raised] = await events_of(office.orders.db, ORDER_ID)
    assert raised.type == "order.at_risk" and raised.order.risk.shipment_id == SHIPMENT_ID
    assert "pending after the cut-off 2026-12-14T14:00" in raised.order.risk.evidence

    # Picked and shipped on Tuesday with DHL (2 days): due Thursday the 17th after all; the risk clears.
    clock.now = dt.datetime(2026, 12, 15, 10, 0, tzinfo=dt.UTC)
    await office.step("picked")
    assert await watch.pass_once() == 1
    assert [r[0] for r in await risks(office.orders)] == ["not_picked_by_cutoff"]  # picked is still inside
    woken = office.wakes
    await office.step("shipped", carrier="DHL", tracking_number="DHL-1")
    assert office.wakes == woken + 1  # a risk to clear: the watch is woken at once
    assert (await office.orders.get(ORDER_ID, "")).shipments[SHIPMENT_ID].deliver_by == "2026-12-17"
    assert await watch.pass_once() == 1
    assert await risks(office.orders) == []
    assert [e.type for e in await events_of(office.orders.db, ORDER_ID)] == [
        "order.at_risk",
        "order.back_on_track",
    ]

    # A carrier's delay that still meets the promise: nothing to tell, so the watch is neither woken nor
    # finds it due.
    clock.advance(minutes=1)
    await office.shipping.record_event(
        SHIPMENT_ID, "delayed", occurred_at=clock.now, cause="hub", expected_delivery_date="2026-12-17"
    )
    await office.relay()
    assert office.wakes == woken + 1 and await watch.pass_once() == 0
    assert await risks(office.orders) == []


async def test_orders_raise_transit_overdue_past_deliver_by_and_clear_it_on_delivery(make_database):
    office, watch, clock = await desk(make_database)
    await office.allocate()
    await office.step("picked")
    # Leaves Thursday the 10th, the generic lane (3 working days): due Tuesday the 15th.
    await office.step("shipped", carrier="ACME", tracking_number="AC-1")
    async with office.shipping.db.reading() as work:
        assert (await work.repo(ShipmentRepository).get(SHIPMENT_ID)).deliver_by == "2026-12-15"
    await watch.pass_once()
    assert await risks(office.orders) == []

    # Through its last day on the way, with the carrier heard from (no silence): on track.
    clock.now = dt.datetime(2026, 12, 15, 23, 0, tzinfo=dt.UTC)
    await office.shipping.record_event(
        SHIPMENT_ID, "delayed", occurred_at=clock.now, cause="hub", expected_delivery_date="2026-12-16"
    )
    await office.relay()
    await watch.pass_once()
    assert await risks(office.orders) == []  # the carrier's new date still meets the promise

    # Wednesday: a day past its deliver-by, still in transit.
    clock.now = dt.datetime(2026, 12, 16, 8, 0, tzinfo=dt.UTC)
    assert await watch.pass_once() == 1
    assert await risks(office.orders) == [("transit_overdue", "2026-12-17", 0)]
    [raised] = await events_of(office.orders.db, ORDER_ID)
    assert "due 2026-12-15" in raised.order.risk.evidence

    # Delivered: the order completes and its risks are settled (order.completed says so, no
    # back_on_track), and it is not looked at again.
    clock.advance(hours=3)
    await office.step("delivered")
    assert (await office.orders.get(ORDER_ID, "")).status.value == "completed"
    assert await watch.pass_once() == 0  # settled by its own save: nothing left for the watch
    assert await risks(office.orders) == []
    assert [e.type for e in await events_of(office.orders.db, ORDER_ID)] == ["order.at_risk"]
    clock.advance(days=10)
    assert await watch.pass_once() == 0


async def test_a_parcel_the_carrier_goes_quiet_about_is_carrier_silent_until_it_speaks(make_database):
    office, watch, clock = await desk(make_database)
    await office.allocate()
    await office.step("picked")
    await office.step("shipped", carrier="DHL", tracking_number="DHL-1")  # Thursday the 10th, 09:00
    await watch.pass_once()
    assert await risks(office.orders) == []

    # 48 hours without a word from the carrier (the default silence): a risk from that moment, not before.
    clock.now = ALLOCATED_AT + dt.timedelta(hours=48, minutes=-1)
    await watch.pass_once()
    assert await risks(office.orders) == []
    clock.now = ALLOCATED_AT + dt.timedelta(hours=48)
    assert await watch.pass_once() == 1
    assert [code for code, _, _ in await risks(office.orders)] == ["carrier_silent"]
    [raised] = await events_of(office.orders.db, ORDER_ID)
    assert raised.order.risk.shipment_id == SHIPMENT_ID
    assert "no carrier event for shipment" in raised.order.risk.evidence

    # The carrier speaks (its tracking event, through shipping's events): back on track.
    clock.advance(hours=1)
    heard = TrackingEntry("dhl", "E-1", TrackingStatus.IN_TRANSIT, clock.now, tracking_number="DHL-1")
    [(_, outcome, _)] = await office.shipping.record_carrier_events([Reported(heard)], actor="carrier:dhl")
    assert outcome.value == "applied"
    await office.relay()
    await watch.pass_once()
    assert await risks(office.orders) == []
    assert [e.type for e in await events_of(office.orders.db, ORDER_ID)] == [
        "order.at_risk",
        "order.back_on_track",
    ]
