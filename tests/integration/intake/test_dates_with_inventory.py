"""Intake's delivery dates against a real inventory over real gRPC, each on its own database (SQLite and
PostgreSQL): the calendars and lanes imported and read back, a Friday before a holiday, and a production
queue that is full, where intake's promise must be the date inventory then schedules (QuoteSupply)."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from orderdesk import tls
from orderdesk.calendar import Holiday, Lane, is_working_day
from orderdesk.calendar_store import CalendarRepository
from orderdesk.runtime import ErrorsAndMetrics
from orderdesk.v1 import intake_pb2, inventory_pb2_grpc
from services.intake.service import IntakeService
from services.inventory.api import InventoryApi
from services.inventory.service import InventoryService
from tests.integration.intake.test_intake_service import MIGRATIONS as INTAKE_MIGRATIONS
from tests.integration.intake.test_intake_service import PRODUCTS_HEADER, ROOT
from tests.unit.intake.fakes import DEMO, FakeOrders
from tests.unit.intake.test_service import codes, request, submit

INVENTORY_MIGRATIONS = ROOT / "services" / "inventory" / "migrations"
# Friday 4 December 2026, 16:00 in Hamburg (past its 15:00 cut-off); Monday the 7th is its stocktake.
FRIDAY = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
MTO = PRODUCTS_HEADER + "MTO-X,Made to order,100.00,USD,true,{lead},1,1,active\n"


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
async def suite(make_database):
    """Inventory served over gRPC, intake calling it with its deadline; one clock the test sets."""
    clock = Clock(FRIDAY)
    inventory = InventoryService(await make_database(INVENTORY_MIGRATIONS), clock=clock)
    server = grpc.aio.server(interceptors=[ErrorsAndMetrics("inventory")])
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryApi(inventory), server)
    port = tls.add_port(server, "127.0.0.1:0", tls.TlsSettings())
    await server.start()
    channel = tls.aio_channel(f"127.0.0.1:{port}", tls.TlsSettings(), peer="inventory")
    intake = IntakeService(
        await make_database(INTAKE_MIGRATIONS),
        FakeOrders(),
        rpc_timeout=2.0,
        clock=clock,
        inventory=inventory_pb2_grpc.InventoryServiceStub(channel),
    )
    for kind in ("warehouses", "calendars", "lanes", "customers", "products", "stock"):
        text = (DEMO / f"{kind}.csv").read_text()
        if kind != "customers":
            await inventory.import_csv(kind, text)
        if kind != "stock":
            await intake.import_master_data(kind, text)
    yield intake, inventory, clock
    await channel.close()
    await server.stop(0)


def dated(date: dt.date, sku: str, quantity: int, price: str, **changes) -> intake_pb2.SubmitOrderRequest:
    return request(
        requested_delivery_date=date.isoformat(),
        lines=[intake_pb2.SubmitLine(sku=sku, quantity=quantity, unit_price=price)],
        **changes,
    )


async def test_calendars_and_lanes_import_and_read_back(suite):
    intake, inventory, _ = suite
    for service in (intake, inventory):
        async with service.db.reading() as work:
            holidays = await work.repo(CalendarRepository).holidays()
            lanes = await work.repo(CalendarRepository).lanes()
        assert Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7), "Stocktake (closed)") in holidays
        assert Holiday("country", "DE", dt.date(2026, 12, 25), "Christmas Day") in holidays
        assert Lane("DE", "FR", 2) in lanes and Lane("DE", "FR", 1, "DHL") in lanes


async def test_a_friday_order_before_a_closed_monday_is_promised_on_a_working_day(suite):
    intake, _, _ = suite
    # C0001 ships to FR; BRK-001 is in stock in Hamburg. Friday after the cut-off: Monday is the
    # stocktake, so it ships Tuesday the 8th; the DE -> FR lane takes 2 working days: Thursday the 10th.
    wednesday = await submit(intake, dated(dt.date(2026, 12, 9), "BRK-001", 10, "31.57"))
    assert codes(wednesday) == ["delivery_date_infeasible"]
    (earliest,) = [p for p in wednesday.order.proposals if p.kind == "earliest_date"]
    assert earliest.delivery_date == "2026-12-10"
    thursday = await submit(intake, dated(dt.date(2026, 12, 10), "BRK-001", 10, "31.57"))
    assert codes(thursday) == []


async def test_intake_promises_what_inventory_schedules_when_the_production_queue_is_full(suite):
    intake, inventory, clock = suite
    # The production line is booked: a made-to-order product whose lead time was 30 working days has a
    # run queued for an earlier order; then the lead time drops to 3. A new run cannot overtake the
    # queued one, so the naive "today + 3 + transit" would be a promise inventory cannot keep.
    for service in (intake.import_master_data, inventory.import_csv):
        await service("products", MTO.format(lead=30))
    queued = await inventory.reserve("ORD-QUEUED", [("MTO-X", 5)], priority=1, country="FR")
    assert queued.backordered == {"MTO-X": 5}
    for service in (intake.import_master_data, inventory.import_csv):
        await service("products", MTO.format(lead=3))
    naive = dt.date(2026, 12, 15)  # ~3 working days + 2 in transit
    held = await submit(intake, dated(naive, "MTO-X", 4, "100.00"))
    assert codes(held) == ["delivery_date_infeasible"]
    (earliest,) = [p for p in held.order.proposals if p.kind == "earliest_date"]
    promised = dt.date.fromisoformat(earliest.delivery_date)
    # what inventory schedules when the order comes in: the same date, a working day in France
    scheduled = await inventory.reserve("ORD-NEW", [("MTO-X", 4)], priority=1, country="FR")
    assert scheduled.expected_delivery_date == earliest.delivery_date
    assert promised >= dt.date.fromisoformat(queued.expected_delivery_date)
    async with intake.db.reading() as work:
        book = await intake.masterdata.book(work)
    assert is_working_day(promised, book.destination("FR"))
    accepted = await submit(intake, dated(promised, "MTO-X", 4, "100.00"))
    assert codes(accepted) == []

    # Units freed in an open run are promised from that run (available to promise), not from a new
    # one: the queued order is cancelled, its 5 units are free at the run's date, while a new run
    # would now take 60 working days.
    async with inventory.db.transaction() as tx:
        await inventory.release(tx, "ORD-QUEUED")
    for service in (intake.import_master_data, inventory.import_csv):
        await service("products", MTO.format(lead=60))
    clock.now = FRIDAY + dt.timedelta(minutes=1)
    quote = await submit(intake, dated(dt.date(2026, 12, 15), "MTO-X", 1, "100.00"))
    (sooner,) = [p for p in quote.order.proposals if p.kind == "earliest_date"]
    assert sooner.delivery_date == queued.expected_delivery_date
    again = await inventory.reserve("ORD-THIRD", [("MTO-X", 1)], priority=1, country="FR")
    assert again.expected_delivery_date == sooner.delivery_date


async def test_when_inventory_cannot_plan_the_date_is_left_to_the_desk(suite):
    intake, _, _ = suite
    # a product intake knows and inventory does not: no production can be planned for it
    await intake.import_master_data("products", MTO.format(lead=3).replace("MTO-X", "MTO-Y"))
    done = await submit(intake, dated(dt.date(2026, 12, 30), "MTO-Y", 1, "100.00"))
    assert codes(done) == ["delivery_date_unverified"]
