"""Shipping's use cases against a fake unit of work: steps and tracking events recorded, published,
counted after commit and retried after a lost race, without a database (the storage itself is
tested in tests/integration/shipping)."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from prometheus_client import REGISTRY

from orderdesk import errors
from orderdesk.calendar_store import CalendarRepository
from services.shipping.domain import Shipment, Status
from services.shipping.service import ShippingService
from services.shipping.store import ShipmentRepository, WarehouseRepository
from tests.unit.fakes import FakeCalendars, FakeDatabase

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)


class FakeShipments:
    """ShipmentRepository in memory: stores copies, guards saves by the version read as the table does."""

    def __init__(self, *shipments: Shipment):
        self.rows = {s.shipment_id: self._stored(s) for s in shipments}
        self.reads = 0
        self.lose_next_saves = 0  # how many saves find another writer was first

    @staticmethod
    def _stored(shipment: Shipment) -> Shipment:
        stored = copy.deepcopy(shipment)
        stored.changes = []
        return stored

    async def get(self, shipment_id: str, partner_id: str = "", warehouse: str = "") -> Shipment | None:
        self.reads += 1
        found = self.rows.get(shipment_id)
        if found is None or (partner_id and found.partner_id != partner_id):
            return None
        if warehouse and found.warehouse != warehouse:
            return None
        loaded = copy.deepcopy(found)
        loaded.loaded_version = loaded.version  # as the row was read
        return loaded

    async def save(self, shipment: Shipment) -> None:
        if self.lose_next_saves:
            self.lose_next_saves -= 1
            self.rows[shipment.shipment_id].version += 1  # someone else's change
        if self.rows[shipment.shipment_id].version != shipment.loaded_version:
            raise errors.Conflict(f"shipment {shipment.shipment_id} was changed concurrently; retry")
        self.rows[shipment.shipment_id] = self._stored(shipment)


class NoWarehouses:
    async def all(self):
        return []


def shipment_in(*steps: str) -> Shipment:
    shipment = Shipment.create(
        at=T0,
        shipment_id="SHP-1-WH-HAM",
        order_id="ORD-1",
        partner_id="P1",
        warehouse="WH-HAM",
        lines={"A": 2},
        promised_delivery_date="2026-12-05",
    )
    for step in steps:
        shipment.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    return shipment


def setup(*steps: str) -> tuple[ShippingService, FakeDatabase, FakeShipments]:
    shipments = FakeShipments(shipment_in(*steps))
    db = FakeDatabase(
        {
            ShipmentRepository: shipments,
            WarehouseRepository: NoWarehouses(),
            CalendarRepository: FakeCalendars(),
        }
    )
    return ShippingService(db, clock=lambda: LATER), db, shipments


def counted(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_step_is_saved_published_with_the_shipment_and_counted_after_commit():
    service, db, shipments = setup()
    before = counted("orderdesk_shipment_events_total", {"type": "picked"})

    returned = await service.record_event("SHP-1-WH-HAM", "picked", actor="3pl")

    stored = shipments.rows["SHP-1-WH-HAM"]
    assert stored.status is Status.PICKED and stored.version == 2 and returned.version == 2
    [event] = db.events
    assert (event.type, event.aggregate_id, event.aggregate_version, event.order_id, event.actor) == (
        "shipment.picked",
        "SHP-1-WH-HAM",
        2,
        "ORD-1",
        "3pl",
    )
    assert (event.shipment.shipment.status, event.shipment.shipment.version) == ("picked", 2)
    assert event.occurred_at.ToDatetime(tzinfo=dt.UTC) == LATER  # the service's clock
    assert db.committed == 1
    assert counted("orderdesk_shipment_events_total", {"type": "picked"}) == before + 1


async def test_a_repeated_step_publishes_nothing():
    service, db, shipments = setup("picked")

    await service.record_event("SHP-1-WH-HAM", "picked", actor="3pl")

    assert db.events == [] and shipments.rows["SHP-1-WH-HAM"].version == 2


async def test_a_lost_race_is_retried_on_a_fresh_read_and_published_once():
    service, db, shipments = setup("picked")
    shipments.lose_next_saves = 1

    await service.record_event("SHP-1-WH-HAM", "packed", actor="3pl")

    assert db.rolled_back == 1 and db.committed == 1 and shipments.reads == 2
    # the second attempt read the other writer's version and saved after it
    assert [(e.type, e.aggregate_version) for e in db.events] == [("shipment.packed", 4)]
    assert shipments.rows["SHP-1-WH-HAM"].status is Status.PACKED


async def test_three_lost_races_reach_the_caller_and_publish_nothing():
    service, db, shipments = setup("picked")
    shipments.lose_next_saves = 3

    with pytest.raises(errors.Conflict):
        await service.record_event("SHP-1-WH-HAM", "packed", actor="3pl")
    assert db.events == [] and db.rolled_back == 3 and db.committed == 0


async def test_a_carrier_delay_is_published_with_the_new_expected_date():
    service, db, shipments = setup("picked", "shipped")

    await service.record_event(
        "SHP-1-WH-HAM", "delayed", actor="carrier", cause="storm", expected_delivery_date="2026-12-09"
    )

    assert shipments.rows["SHP-1-WH-HAM"].expected_delivery_date == "2026-12-09"
    [event] = db.events
    assert (event.type, event.reason, event.shipment.shipment.expected_delivery_date) == (
        "shipment.delayed",
        "storm",
        "2026-12-09",
    )


async def test_a_bad_step_is_refused_before_the_shipment_is_read():
    service, db, shipments = setup()

    with pytest.raises(errors.InvalidArgument):
        await service.record_event("SHP-1-WH-HAM", "teleported", actor="3pl")
    with pytest.raises(errors.InvalidArgument):
        await service.record_event("SHP-1-WH-HAM", "shipped", actor="3pl")  # no carrier
    assert shipments.reads == 0 and db.events == []


async def test_an_unknown_shipment_is_not_found_and_nothing_is_published():
    service, db, _ = setup()

    with pytest.raises(errors.NotFound):
        await service.record_event("SHP-NOPE", "picked", actor="3pl")
    assert db.events == [] and db.committed == 0


async def test_reads_go_through_the_read_only_unit_of_work():
    service, _, _ = setup("picked")

    assert (await service.get("SHP-1-WH-HAM", "P1")).status is Status.PICKED
    with pytest.raises(errors.NotFound):
        await service.get("SHP-1-WH-HAM", "P-OTHER")  # another partner's is not found
