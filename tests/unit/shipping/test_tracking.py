"""A carrier's tracking events: the vocabulary, time order, never backwards (services.shipping.tracking)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.shipping.domain import Shipment, Status
from services.shipping.tracking import (
    OPENS_EXCEPTION,
    VOCABULARY,
    Outcome,
    TrackingEntry,
    TrackingStatus,
    choose_shipment,
    event_name,
    in_time_order,
    normalise,
)

T0 = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)


def entry(status: str, hours: float = 0, event_id: str = "", **fields) -> TrackingEntry:
    return TrackingEntry(
        source="dhl",
        event_id=event_id or f"{status}-{hours}",
        status=TrackingStatus(status),
        occurred_at=T0 + dt.timedelta(hours=hours),
        **fields,
    )


def shipment(status: Status = Status.SHIPPED) -> Shipment:
    s = Shipment(
        shipment_id="SHP-1-WH-HAM",
        order_id="ORD-1",
        partner_id="P-SHOP",
        warehouse="WH-HAM",
        lines={"BRK-001": 2},
        promised_delivery_date="2026-12-04",
        status=status,
        carrier="DHL" if status is Status.SHIPPED else "",
        tracking_number="JD01" if status is Status.SHIPPED else "",
        version=3,
        loaded_version=3,
    )
    return s


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("in_transit", "in_transit"),
        ("InTransit", "in_transit"),
        ("IN-TRANSIT", "in_transit"),
        (" in transit ", "in_transit"),
        ("AttemptFail", "delivery_attempted"),
        ("OutForDelivery", "out_for_delivery"),
        ("InfoReceived", "label_created"),
        ("AvailableForPickup", "available_for_pickup"),
        ("return-to-sender", "returning_to_sender"),
        ("Delivered", "delivered"),
        ("Exception", "exception"),
        ("canceled", "cancelled"),
        ("XYZ-42", "unknown"),
        ("", "unknown"),
    ],
)
def test_a_carriers_word_is_normalised_onto_the_vocabulary(word, status):
    assert normalise(word) == TrackingStatus(status)


@given(st.sampled_from(VOCABULARY))
def test_every_word_of_the_vocabulary_is_itself(word):
    assert normalise(word).value == word
    assert normalise(word.upper().replace("_", "-")).value == word


def test_the_vocabulary_is_the_issues():
    assert VOCABULARY == (
        "label_created",
        "picked_up",
        "in_transit",
        "delayed",
        "out_for_delivery",
        "available_for_pickup",
        "delivery_attempted",
        "delivered",
        "exception",
        "returning_to_sender",
        "returned",
        "cancelled",
        "unknown",
    )


def test_troubles_have_their_own_events_and_the_rest_is_tracked():
    assert {event_name(TrackingStatus(s)) for s in OPENS_EXCEPTION} == {
        "delivery_attempted",
        "exception",
        "returning_to_sender",
    }
    assert event_name(TrackingStatus.IN_TRANSIT) == "tracked"
    assert event_name(TrackingStatus.CANCELLED) == "tracked"  # never shipment.cancelled: a label voided


def test_delivered_completes_the_shipment_at_the_carriers_time():
    s = shipment()
    assert s.track(entry("delivered", 30), actor="carrier:dhl", time_zone="Europe/Berlin")
    assert s.status is Status.DELIVERED
    assert s.delivered_on == "2026-12-03"
    assert s.on_time is True
    assert s.changes[-1].event_type == "shipment.delivered"
    assert s.changes[-1].at == T0 + dt.timedelta(hours=30)
    assert s.changes[-1].tracking is not None and s.changes[-1].tracking.event_id == "delivered-30"


def test_a_failed_attempt_is_published_as_its_own_event():
    s = shipment()
    assert s.track(entry("delivery_attempted", 5, message="nobody home"), actor="carrier:dhl")
    assert s.status is Status.SHIPPED
    assert (s.tracking_status, s.tracked_at) == ("delivery_attempted", T0 + dt.timedelta(hours=5))
    assert [c.event_type for c in s.changes] == ["shipment.delivery_attempted"]
    assert s.changes[0].reason == "nobody home"


def test_an_older_event_joins_the_timeline_only():
    s = shipment()
    assert s.track(entry("out_for_delivery", 10), actor="c")
    assert not s.track(entry("delivery_attempted", 4), actor="c")  # superseded by a newer word
    assert s.tracking_status == "out_for_delivery"
    assert [c.event_type for c in s.changes] == ["shipment.tracked"]


def test_delivered_arriving_late_still_completes_and_nothing_moves_it_back():
    s = shipment()
    assert s.track(entry("in_transit", 10), actor="c")
    assert s.track(entry("delivered", 8), actor="c")  # the carrier's clocks disagree: delivered stands
    assert (s.status, s.tracking_status) == (Status.DELIVERED, "delivered")
    assert s.tracked_at == T0 + dt.timedelta(hours=10)
    assert not s.track(entry("in_transit", 20), actor="c")
    assert not s.track(entry("exception", 21), actor="c")
    assert (s.status, s.tracking_status) == (Status.DELIVERED, "delivered")


def test_a_parcel_in_the_carriers_hands_ships_a_packed_shipment():
    s = shipment(Status.PACKED)
    assert s.track(entry("picked_up", 1, tracking_number="JD77", carrier="UPS"), actor="c")
    assert (s.status, s.carrier, s.tracking_number) == (Status.SHIPPED, "UPS", "JD77")
    assert [c.event_type for c in s.changes] == ["shipment.shipped", "shipment.tracked"]


def test_a_label_does_not_ship_and_a_pending_shipment_does_not_skip_steps():
    packed = shipment(Status.PACKED)
    assert packed.track(entry("label_created", 1, tracking_number="JD77"), actor="c")
    assert packed.status is Status.PACKED
    pending = shipment(Status.PENDING)
    assert pending.track(entry("delivered", 2, tracking_number="JD77"), actor="c")
    assert pending.status is Status.PENDING and pending.tracking_status == "delivered"


def test_a_cancelled_shipment_takes_nothing():
    s = shipment(Status.PENDING)
    s.status = Status.CANCELLED
    assert not s.track(entry("in_transit", 1), actor="c")
    assert s.changes == []


def test_a_delay_with_a_date_revises_the_expected_date():
    s = shipment()
    assert s.track(entry("delayed", 2, expected_delivery_date="2026-12-08"), actor="c")
    assert s.expected_delivery_date == "2026-12-08"
    assert s.changes[-1].event_type == "shipment.delayed"


_WORDS = st.sampled_from([s for s in VOCABULARY])


@given(st.lists(st.tuples(_WORDS, st.integers(0, 100)), min_size=1, max_size=12), st.randoms())
def test_arrival_order_does_not_change_the_outcome_of_delivery(events, rnd):
    """Whatever order the events arrive in: never backwards, the last word is the newest (or delivered),
    and the shipment is delivered iff some event said delivered."""
    entries = [entry(word, hours, event_id=f"E{i}") for i, (word, hours) in enumerate(events)]
    shuffled = entries[:]
    rnd.shuffle(shuffled)
    s = shipment()
    seen = [Status.SHIPPED]
    for e in shuffled:
        s.track(e, actor="c")
        seen.append(s.status)
    assert seen == sorted(seen, key=[Status.SHIPPED, Status.DELIVERED].index)  # never backwards
    said_delivered = any(e.status is TrackingStatus.DELIVERED for e in entries)
    assert (s.status is Status.DELIVERED) == said_delivered
    if not said_delivered:
        assert s.tracked_at == max(e.occurred_at for e in entries)


def test_the_timeline_is_in_the_carriers_time_order():
    late = entry("in_transit", 3, event_id="b", received_at=T0 + dt.timedelta(hours=9))
    early = entry("picked_up", 1, event_id="a", received_at=T0 + dt.timedelta(hours=10))
    assert [e.event_id for e in in_time_order([late, early])] == ["a", "b"]


def test_a_tracking_number_names_one_shipment():
    assert choose_shipment([("S1", "DHL")], "ups") == ("S1", Outcome.APPLIED)
    assert choose_shipment([], "dhl") == ("", Outcome.UNKNOWN_SHIPMENT)
    assert choose_shipment([("S1", "DHL"), ("S2", "UPS")], "dhl") == ("S1", Outcome.APPLIED)
    assert choose_shipment([("S1", "DHL"), ("S2", "DHL")], "dhl") == ("", Outcome.AMBIGUOUS)
