"""The shared use-case shapes: retry on a lost race, publish recorded changes, count after commit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

from orderdesk import errors
from orderdesk.usecase import Publisher, changing, load, publish, retrying
from orderdesk.v1 import events_pb2, shipping_pb2
from tests.unit.fakes import FakeDatabase

AT = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


@dataclass
class Step:
    event_type: str
    version: int
    actor: str = "desk"
    reason: str = ""
    at: dt.datetime = AT


async def test_retrying_runs_again_after_a_conflict_and_returns_the_answer():
    db = FakeDatabase({})
    tries = []

    async def work(tx):
        tries.append(tx)
        if len(tries) < 3:
            raise errors.Conflict("someone else saved first")
        return "saved"

    assert await retrying(db, work) == "saved"
    assert len(tries) == 3 and db.committed == 1 and db.rolled_back == 2


async def test_retrying_gives_up_after_the_last_attempt():
    db = FakeDatabase({})

    async def work(tx):
        raise errors.Conflict("always late")

    with pytest.raises(errors.Conflict):
        await retrying(db, work, attempts=2)
    assert db.rolled_back == 2 and db.committed == 0


async def test_other_errors_are_not_retried():
    db = FakeDatabase({})
    calls = 0

    async def work(tx):
        nonlocal calls
        calls += 1
        raise errors.NotFound("no such shipment")

    with pytest.raises(errors.NotFound):
        await retrying(db, work)
    assert calls == 1


async def test_publish_emits_one_event_per_change_with_one_snapshot_and_counts_after_commit():
    db = FakeDatabase({})
    counted, snapshots = [], []

    def snapshot():
        snapshots.append(1)
        return "state"

    async def work(tx):
        await publish(
            tx,
            [Step("return.received", 2), Step("return.refunded", 3)],
            aggregate_id="RMA-1",
            order_id="ORD-1",
            snapshot=snapshot,
            payload=lambda change, state: {},
            count=lambda change: counted.append(change.version),
        )
        assert counted == []  # not before the commit
        return tx

    await retrying(db, work)
    assert [(e.type, e.aggregate_version, e.order_id, e.actor) for e in db.events] == [
        ("return.received", 2, "ORD-1", "desk"),
        ("return.refunded", 3, "ORD-1", "desk"),
    ]
    assert counted == [2, 3] and snapshots == [1]


async def test_publish_with_nothing_recorded_builds_nothing():
    db = FakeDatabase({})

    async def work(tx):
        await publish(tx, [], aggregate_id="x", order_id="x", snapshot=lambda: 1 / 0, payload=lambda c, s: {})

    await retrying(db, work)
    assert db.events == []


async def test_a_rolled_back_attempt_counts_nothing():
    db = FakeDatabase({})
    counted = []

    async def work(tx):
        await publish(
            tx,
            [Step("return.received", 2)],
            aggregate_id="RMA-1",
            order_id="ORD-1",
            snapshot=lambda: None,
            payload=lambda c, s: {},
            count=lambda c: counted.append(c),
        )
        raise errors.NotFound("then it fails")

    with pytest.raises(errors.NotFound):
        await retrying(db, work)
    assert counted == [] and db.events == []


@dataclass
class Parcel:
    shipment_id: str
    order_id: str
    changes: list[Step]


async def test_a_publisher_publishes_an_aggregates_changes_under_its_id_and_counts_with_it():
    db = FakeDatabase({})
    counted = []
    publish_changes = Publisher[Parcel](
        aggregate_id=lambda parcel: parcel.shipment_id,
        snapshot=lambda parcel: shipping_pb2.Shipment(shipment_id=parcel.shipment_id, status="packed"),
        payload=lambda change, state: {"shipment": events_pb2.ShipmentEvent(shipment=state)},
        count=lambda parcel, change: counted.append((parcel.shipment_id, change.version)),
    )
    parcel = Parcel("SH-1", "ORD-1", [Step("shipment.picked", 2), Step("shipment.packed", 3)])

    async def work(tx):
        await publish_changes(tx, parcel)

    await retrying(db, work)
    published = [(e.type, e.aggregate_id, e.aggregate_version, e.order_id) for e in db.events]
    assert published == [("shipment.picked", "SH-1", 2, "ORD-1"), ("shipment.packed", "SH-1", 3, "ORD-1")]
    assert [(e.shipment.shipment.shipment_id, e.shipment.shipment.status) for e in db.events] == [
        ("SH-1", "packed"),
        ("SH-1", "packed"),
    ]
    assert counted == [("SH-1", 2), ("SH-1", 3)]


class FakeParcels:
    """get(shipment_id) and a version-guarded save that loses the first `lost_races` saves."""

    def __init__(self, parcels: dict[str, Parcel], lost_races: int = 0):
        self.parcels = parcels
        self.saved: list[str] = []
        self.lost_races = lost_races

    async def get(self, shipment_id: str) -> Parcel | None:
        parcel = self.parcels.get(shipment_id)
        return None if parcel is None else Parcel(parcel.shipment_id, parcel.order_id, [])

    async def save(self, parcel: Parcel) -> None:
        if self.lost_races:
            self.lost_races -= 1
            raise errors.Conflict("someone else saved first")
        self.saved.append(parcel.shipment_id)


async def _publish_steps(tx, parcel: Parcel) -> None:
    await publish(
        tx,
        parcel.changes,
        aggregate_id=parcel.shipment_id,
        order_id=parcel.order_id,
        snapshot=lambda: None,
        payload=lambda c, s: {},
    )


def _pick(parcel: Parcel) -> bool:
    parcel.changes.append(Step("shipment.picked", 2))
    return True


async def test_changing_saves_and_publishes_a_change_again_after_a_lost_race():
    parcels = FakeParcels({"SH-1": Parcel("SH-1", "ORD-1", [])}, lost_races=1)
    db = FakeDatabase({FakeParcels: parcels})
    parcel = await changing(
        db, FakeParcels, ("SH-1",), _pick, _publish_steps, missing="shipment SH-1 not found"
    )
    assert parcel.changes == [Step("shipment.picked", 2)] and parcels.saved == ["SH-1"]
    assert [e.type for e in db.events] == ["shipment.picked"] and (db.committed, db.rolled_back) == (1, 1)


async def test_changing_saves_nothing_when_nothing_changed_and_names_what_is_missing():
    parcels = FakeParcels({"SH-1": Parcel("SH-1", "ORD-1", [])})
    db = FakeDatabase({FakeParcels: parcels})
    await changing(db, FakeParcels, ("SH-1",), lambda parcel: False, _publish_steps, missing="-")
    assert parcels.saved == [] and db.events == []
    with pytest.raises(errors.NotFound, match="shipment SH-2 not found"):
        await changing(db, FakeParcels, ("SH-2",), _pick, _publish_steps, missing="shipment SH-2 not found")


async def test_load_reads_the_aggregate_or_names_what_is_missing():
    db = FakeDatabase({FakeParcels: FakeParcels({"SH-1": Parcel("SH-1", "ORD-1", [])})})
    assert await load(db, FakeParcels, ("SH-1",), missing="-") == Parcel("SH-1", "ORD-1", [])
    with pytest.raises(errors.NotFound, match="shipment SH-2 not found"):
        await load(db, FakeParcels, ("SH-2",), missing="shipment SH-2 not found")
    assert db.committed == 0 and db.events == []
