"""Shipping's domain rules: the step state machine, cancellation, promises, splitting by warehouse."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.calendar import (
    DEFAULT_TRANSIT_DAYS,
    MONDAY_TO_FRIDAY,
    CalendarBook,
    Holiday,
    Lane,
    ship_date,
    working_days_between,
)
from orderdesk.errors import FailedPrecondition, InvalidArgument
from orderdesk.masterdata import Warehouse
from services.shipping.domain import (
    PROGRESS,
    STEP_FOLLOWS,
    Promises,
    Schedule,
    Shipment,
    Status,
    promised_delivery_date,
    schedule,
    shipment_id_for,
    split_by_warehouse,
    still_to_ship,
)

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
HAMBURG = Warehouse(
    "WH-HAM",
    "Hamburg DC",
    "DE",
    time_zone="Europe/Berlin",
    cutoff=dt.time(15),
    working_days=MONDAY_TO_FRIDAY,
    transit_days_domestic=2,
    transit_days_international=6,
)


def new_shipment(promised: str = "2026-12-05") -> Shipment:
    return Shipment.create(
        at=T0,
        shipment_id="SHP-1-WH-HAM",
        order_id="ORD-1",
        partner_id="P1",
        warehouse="WH-HAM",
        lines={"A": 2},
        promised_delivery_date=promised,
    )


def shipment_in(status: Status) -> Shipment:
    s = new_shipment()
    path = {
        Status.PENDING: [],
        Status.PICKED: ["picked"],
        Status.PACKED: ["picked", "packed"],
        Status.SHIPPED: ["picked", "packed", "shipped"],
        Status.DELIVERED: ["picked", "packed", "shipped", "delivered"],
    }
    if status is Status.CANCELLED:
        s.cancel(T0, "system", "order cancelled")
        return s
    for step in path[status]:
        s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    return s


# --- the state machine --------------------------------------------------------------
def test_new_shipment_is_pending_with_a_created_change():
    s = new_shipment()
    assert s.status is Status.PENDING and s.version == 1
    assert [c.event_name for c in s.changes] == ["created"]


def test_the_full_path_bumps_the_version_once_per_step():
    s = new_shipment()
    for step in ("picked", "packed", "shipped", "delivered"):
        assert s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    assert s.status is Status.DELIVERED and s.version == 5
    assert [c.event_name for c in s.changes] == ["created", "picked", "packed", "shipped", "delivered"]
    assert (s.carrier, s.tracking_number) == ("DHL", "TRK1")


def test_shipped_may_follow_picked_without_packed():
    s = shipment_in(Status.PICKED)
    assert s.record("shipped", at=T0, actor="3pl", carrier="UPS", tracking_number="1Z")
    assert s.status is Status.SHIPPED


@pytest.mark.parametrize("status", [Status.PICKED, Status.PACKED, Status.SHIPPED, Status.DELIVERED])
def test_repeating_the_current_step_changes_nothing(status):
    s = shipment_in(status)
    version, changes = s.version, len(s.changes)
    assert s.record(status.value, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK2") is False
    assert (s.version, len(s.changes), s.status) == (version, changes, status)
    if status in (Status.SHIPPED, Status.DELIVERED):
        assert s.tracking_number == "TRK1"  # a retry does not rewrite what was recorded


@pytest.mark.parametrize(
    ("current", "step"),
    [
        (Status.PACKED, "picked"),
        (Status.SHIPPED, "packed"),
        (Status.SHIPPED, "picked"),
        (Status.DELIVERED, "shipped"),
        (Status.DELIVERED, "picked"),
    ],
)
def test_going_backwards_is_refused(current, step):
    s = shipment_in(current)
    with pytest.raises(FailedPrecondition) as err:
        s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    assert err.value.rule == "shipment_step_backwards"
    assert s.status is current


@pytest.mark.parametrize(
    ("current", "step"),
    [
        (Status.PENDING, "packed"),
        (Status.PENDING, "shipped"),
        (Status.PENDING, "delivered"),
        (Status.PICKED, "delivered"),
        (Status.PACKED, "delivered"),
    ],
)
def test_skipping_a_step_is_refused(current, step):
    s = shipment_in(current)
    with pytest.raises(FailedPrecondition) as err:
        s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    assert err.value.rule == "shipment_step_skipped"


@pytest.mark.parametrize("step", ["picked", "packed", "shipped", "delivered"])
def test_a_cancelled_shipment_takes_no_steps(step):
    s = shipment_in(Status.CANCELLED)
    with pytest.raises(FailedPrecondition) as err:
        s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
    assert err.value.rule == "shipment_cancelled"


@pytest.mark.parametrize("step", ["", "returned", "PICKED", "pending", "cancelled"])
def test_unknown_types_are_invalid_arguments_on_type(step):
    with pytest.raises(InvalidArgument) as err:
        new_shipment().record(step, at=T0, actor="3pl")
    assert [v.field for v in err.value.violations] == ["type"]


@pytest.mark.parametrize(
    ("carrier", "tracking", "missing"),
    [("", "", ["carrier", "tracking_number"]), ("DHL", "", ["tracking_number"]), ("  ", "T1", ["carrier"])],
)
def test_shipped_names_each_missing_field(carrier, tracking, missing):
    s = shipment_in(Status.PACKED)
    with pytest.raises(InvalidArgument) as err:
        s.record("shipped", at=T0, actor="3pl", carrier=carrier, tracking_number=tracking)
    assert [v.field for v in err.value.violations] == missing
    assert s.status is Status.PACKED


@pytest.mark.parametrize(
    ("delivered_at", "on_time"),
    [
        (dt.datetime(2026, 12, 4, 23, 59, tzinfo=dt.UTC), True),
        (dt.datetime(2026, 12, 5, 23, 59, tzinfo=dt.UTC), True),
        (dt.datetime(2026, 12, 6, 0, 0, tzinfo=dt.UTC), False),
        # 01:00 on the 6th in Berlin is still the 5th in UTC: the UTC date counts.
        (dt.datetime(2026, 12, 6, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), True),
    ],
)
def test_delivered_records_the_utc_date_and_whether_it_kept_the_promise(delivered_at, on_time):
    s = shipment_in(Status.SHIPPED)
    s.record("delivered", at=delivered_at, actor="carrier")
    assert s.delivered_on == delivered_at.astimezone(dt.UTC).date().isoformat()
    assert s.on_time is on_time


@pytest.mark.parametrize(
    ("delivered_at", "zone", "delivered_on", "on_time"),
    [
        # 23:30 UTC on the 5th is the 6th in Berlin and Shanghai: late there
        (dt.datetime(2026, 12, 5, 23, 30, tzinfo=dt.UTC), "Europe/Berlin", "2026-12-06", False),
        (dt.datetime(2026, 12, 5, 17, 30, tzinfo=dt.UTC), "Asia/Shanghai", "2026-12-06", False),
        # 03:00 UTC on the 6th is still the 5th in Chicago: on time
        (dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC), "America/Chicago", "2026-12-05", True),
    ],
)
def test_the_delivery_date_is_taken_in_the_warehouses_time_zone(delivered_at, zone, delivered_on, on_time):
    s = shipment_in(Status.SHIPPED)  # promised 2026-12-05
    s.record("delivered", at=delivered_at, actor="carrier", time_zone=zone)
    assert (s.delivered_on, s.on_time) == (delivered_on, on_time)


@pytest.mark.parametrize("status", [Status.PENDING, Status.PICKED, Status.PACKED])
def test_cancel_before_anything_left(status):
    s = shipment_in(status)
    assert s.cancellable and s.cancel(T0, "system", "order cancelled")
    assert s.status is Status.CANCELLED and s.changes[-1].event_name == "cancelled"
    assert s.cancel(T0, "system", "again") is False  # a second cancel is a no-op


@pytest.mark.parametrize("status", [Status.SHIPPED, Status.DELIVERED])
def test_cancel_refused_once_shipped(status):
    s = shipment_in(status)
    assert not s.cancellable
    with pytest.raises(FailedPrecondition) as err:
        s.cancel(T0, "system", "too late")
    assert err.value.rule == "cancel_before_shipment"


STEP_NAMES = ["picked", "packed", "shipped", "delivered"]


@given(st.lists(st.sampled_from(STEP_NAMES), max_size=12))
def test_any_sequence_of_reports_moves_only_forward_along_the_allowed_edges(steps):
    """Whatever a 3PL sends, in whatever order, the shipment never goes back or jumps a step."""
    s = new_shipment()
    for step in steps:
        before, version = s.status, s.version
        try:
            changed = s.record(step, at=T0, actor="3pl", carrier="DHL", tracking_number="TRK1")
        except FailedPrecondition:
            assert (s.status, s.version) == (before, version)
            continue
        if changed:
            assert before in STEP_FOLLOWS[s.status]
            assert PROGRESS.index(s.status) > PROGRESS.index(before)
            assert s.version == version + 1
        else:
            assert s.status is before and s.status.value == step and s.version == version
    assert [c.version for c in s.changes] == list(range(1, s.version + 1))


# --- delivery promises ------------------------------------------------------------------
def at_hour(hour: int, minute: int = 0, day: int = 1) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute, tzinfo=dt.UTC)


BOOK = CalendarBook(
    [HAMBURG],
    [
        Holiday("country", "DE", dt.date(2026, 12, 8), "a holiday"),
        Holiday("country", "US", dt.date(2026, 12, 9)),
    ],
    [Lane("DE", "FR", 1)],
)


def promise(allocated_at: dt.datetime, country: str, requested: str = "", warehouse: str = "WH-HAM") -> str:
    return promised_delivery_date(
        allocated_at=allocated_at,
        book=BOOK,
        warehouse=warehouse,
        destination_country=country,
        requested_delivery_date=requested,
    )


def test_domestic_international_and_lane_transit_in_working_days():
    # Tuesday 09:00 UTC (10:00 in Hamburg), before its 15:00 cut-off: ships Tuesday the 1st
    assert promise(at_hour(9), "DE") == "2026-12-03"
    assert promise(at_hour(9), "de") == "2026-12-03"
    # 6 working days to the US: Wed Thu Fri Mon, (Tue the 8th is closed in Germany but not in
    # the US), Tue, (Wed the 9th closed in the US) Thu
    assert promise(at_hour(9), "US") == "2026-12-10"
    assert promise(at_hour(9), "FR") == "2026-12-02"  # the lane: one working day
    # at 14:00 UTC it is 15:00 in Hamburg: the cut-off has passed, ships Wednesday
    assert promise(at_hour(14), "DE") == "2026-12-04"
    # No destination country: the longer, international promise (on the warehouse's calendar).
    assert promise(at_hour(9), "") == "2026-12-10"


def test_a_friday_order_before_a_holiday_is_promised_on_a_working_day():
    # Friday the 4th after the cut-off ships Monday the 7th; Tuesday the 8th is closed: Wed, Thu
    assert promise(at_hour(16, day=4), "DE") == "2026-12-10"


def test_the_requested_date_is_the_promise_when_set():
    assert promise(at_hour(9), "DE", "2027-01-15") == "2027-01-15"
    # a requested date on a closed day: delivered by the working day before it
    assert promise(at_hour(9), "DE", "2026-12-13") == "2026-12-11"  # a Sunday
    assert promise(at_hour(9), "DE", "2026-12-08") == "2026-12-07"  # the holiday
    # A date we cannot read is ignored rather than promised.
    assert promise(at_hour(9), "DE", "next week") == "2026-12-03"


def test_an_unknown_warehouse_promises_the_default_days():
    # Tuesday 22:00: ships on the next working day (Wednesday), then 5 working days in Germany
    # (Tuesday the 8th is closed there): Thu, Fri, Mon, Wed, Thu
    assert promise(at_hour(22), "DE", warehouse="WH-X") == "2026-12-10"
    assert DEFAULT_TRANSIT_DAYS == 5


@given(
    allocated=st.datetimes(
        min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(dt.UTC)
    ),
    cutoff=st.integers(0, 23),
    domestic=st.integers(0, 10),
    international=st.integers(0, 30),
    same_country=st.booleans(),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/Chicago", "Asia/Shanghai"]),
)
def test_a_promise_is_transit_working_days_after_the_day_of_shipping(
    allocated, cutoff, domestic, international, same_country, zone
):
    wh = Warehouse("W", "W", "DE", zone, dt.time(cutoff), MONDAY_TO_FRIDAY, domestic, international)
    book = CalendarBook([wh])
    country = "DE" if same_country else "FR"
    promised = dt.date.fromisoformat(
        promised_delivery_date(allocated_at=allocated, book=book, warehouse="W", destination_country=country)
    )
    ships = ship_date(allocated, book.warehouse("W"))
    assert promised.weekday() < 5 and ships.weekday() < 5
    transit = domestic if same_country else international
    assert working_days_between(ships, promised, book.warehouse("W")) == transit


# --- one shipment per warehouse -------------------------------------------------------------
def test_ids_are_deterministic_per_order_and_warehouse():
    assert shipment_id_for("ORD-7F3A", "WH-HAM") == "SHP-7F3A-WH-HAM"
    assert shipment_id_for("7F3A", "WH-HAM") == "SHP-7F3A-WH-HAM"


def test_allocations_are_grouped_by_warehouse_and_empty_ones_dropped():
    plan = split_by_warehouse(
        [("A", "WH-HAM", 3), ("B", "WH-CHI", 2), ("A", "WH-CHI", 1), ("C", "WH-HAM", 0), ("A", "WH-HAM", 1)]
    )
    assert plan == {"WH-HAM": {"A": 4}, "WH-CHI": {"B": 2, "A": 1}}


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from(["W1", "W2", "W3"]), st.integers(0, 5))))
def test_splitting_keeps_every_allocated_unit(allocations):
    plan = split_by_warehouse(allocations)
    for sku in "ABC":
        assert sum(lines.get(sku, 0) for lines in plan.values()) == sum(
            q for s, _, q in allocations if s == sku
        )
    assert all(q > 0 for lines in plan.values() for q in lines.values())


def test_a_partly_shipped_order_ships_only_what_its_parcels_that_left_did_not_carry():
    plan = {"WH-HAM": {"A": 3, "B": 1}, "WH-CHI": {"C": 2}}
    assert still_to_ship(plan, [("WH-HAM", {"A": 2})]) == {"WH-HAM": {"A": 1, "B": 1}, "WH-CHI": {"C": 2}}
    assert still_to_ship(plan, [("WH-HAM", {"A": 3, "B": 1})]) == {"WH-CHI": {"C": 2}}
    assert still_to_ship({"WH-HAM": {"A": 3}}, [("WH-HAM", {"A": 2}), ("WH-HAM", {"A": 1})]) == {}


@given(
    st.dictionaries(st.sampled_from(["W1", "W2"]), st.dictionaries(st.sampled_from("AB"), st.integers(1, 5))),
    st.lists(
        st.tuples(st.sampled_from(["W1", "W2"]), st.dictionaries(st.sampled_from("AB"), st.integers(1, 5)))
    ),
)
def test_what_is_still_to_ship_never_exceeds_the_plan_nor_goes_negative(plan, left):
    rest = still_to_ship(plan, left)
    for warehouse, lines in rest.items():
        for sku, qty in lines.items():
            gone = sum(parcel.get(sku, 0) for wh, parcel in left if wh == warehouse)
            assert 0 < qty == plan[warehouse][sku] - gone


# --- the promise watch's schedule: pick-by and deliver-by ----------------------------------------
def scheduled(promised: str, country: str = "DE", warehouse: str = "WH-HAM", **more) -> Schedule:
    return schedule(
        BOOK, warehouse=warehouse, destination_country=country, promised_delivery_date=promised, **more
    )


def test_pick_by_is_the_cutoff_of_the_last_day_it_can_leave_for_the_promise():
    # promised Thursday the 3rd, 2 working days in Germany: it must leave Tuesday the 1st, by 15:00 in
    # Hamburg (14:00 UTC), and then arrives the 3rd
    assert scheduled("2026-12-03") == Schedule(dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC), "2026-12-03")
    # promised the 10th: Wednesday the 9th, the 8th is a holiday, Monday the 7th
    assert scheduled("2026-12-10") == Schedule(dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC), "2026-12-10")
    # France's lane takes one working day: it may leave the day before
    assert scheduled("2026-12-10", "FR").pick_by == dt.datetime(2026, 12, 9, 14, 0, tzinfo=dt.UTC)
    # a warehouse nobody imported has no cut-off
    assert scheduled("2026-12-10", warehouse="WH-X") == Schedule(None, "")


def test_deliver_by_counts_the_lanes_days_from_the_local_day_it_left():
    friday = dt.datetime(2026, 12, 4, 16, 0, tzinfo=dt.UTC)
    # Monday the 7th, (the 8th closed) Wednesday the 9th
    assert scheduled("2026-12-03", shipped_at=friday) == Schedule(None, "2026-12-09")
    # 23:30 UTC on Wednesday the 2nd is already Thursday in Hamburg: Friday, Monday
    late = dt.datetime(2026, 12, 2, 23, 30, tzinfo=dt.UTC)
    assert scheduled("2026-12-03", shipped_at=late).deliver_by == "2026-12-07"


def test_a_shipment_keeps_its_schedule_and_moves_it_when_it_leaves_or_is_promised_again():
    s = new_shipment("2026-12-03")
    s.destination_country = "DE"
    s.reschedule(BOOK)
    pick_by = dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC)
    assert (s.pick_by, s.deliver_by) == (pick_by, "2026-12-03")
    assert s.repromise("2026-12-10", at=T0, actor="desk", reason="delay accepted", book=BOOK)
    assert (s.pick_by, s.deliver_by) == (dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC), "2026-12-10")
    friday = dt.datetime(2026, 12, 4, 16, 0, tzinfo=dt.UTC)
    s.record("picked", at=friday, actor="3pl", book=BOOK)
    s.record("shipped", at=friday, actor="3pl", carrier="DHL", tracking_number="T1", book=BOOK)
    assert s.deliver_by == "2026-12-09" and s.pick_by == dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC)


CHICAGO = Warehouse(
    "WH-CHI",
    "Chicago DC",
    "US",
    time_zone="America/Chicago",
    cutoff=dt.time(14),
    working_days=MONDAY_TO_FRIDAY | {5},  # Saturdays too
    transit_days_domestic=3,
    transit_days_international=8,
)
SATURDAYS = CalendarBook([CHICAGO], [], [])


def test_a_warehouse_working_saturdays_may_ship_on_one_for_a_promise_made_on_it():
    # Friday 19:18 in Chicago (01:18 UTC Saturday), after the cut-off: ships Saturday the 5th, three working
    # days in the US (Monday, Tuesday, Wednesday) deliver Wednesday the 9th; leaving Friday would do the same,
    # but Saturday is the last day it can leave: its pick-by is Saturday's cut-off, not Friday's, long passed.
    now = dt.datetime(2026, 12, 5, 1, 18, tzinfo=dt.UTC)
    promised = SATURDAYS.promise(now, "WH-CHI", "US")
    assert (promised.ship_date, promised.delivery_date) == (dt.date(2026, 12, 5), dt.date(2026, 12, 9))
    planned = schedule(
        SATURDAYS, warehouse="WH-CHI", destination_country="US", promised_delivery_date="2026-12-09"
    )
    assert planned == Schedule(dt.datetime(2026, 12, 5, 20, 0, tzinfo=dt.UTC), "2026-12-09")


@given(
    st.datetimes(
        min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC)
    )
)
def test_a_fresh_promise_is_never_past_its_pick_by(now):
    # The promise watch would flag a shipment at once if its pick-by came before the cut-off of the day it
    # was promised to leave.
    for book, warehouse, country in (
        (SATURDAYS, "WH-CHI", "US"),
        (BOOK, "WH-HAM", "DE"),
        (BOOK, "WH-HAM", "US"),
    ):
        promised = book.promise(now, warehouse, country)
        planned = schedule(
            book,
            warehouse=warehouse,
            destination_country=country,
            promised_delivery_date=promised.delivery_date.isoformat(),
        )
        assert planned.pick_by >= book.warehouse(warehouse).cutoff_at(promised.ship_date)
        assert planned.deliver_by <= promised.delivery_date.isoformat()


# --- promises worked out once per warehouse, destination and day -----------------------------
BOTH = CalendarBook(
    [HAMBURG, CHICAGO],
    [
        Holiday("warehouse", "WH-HAM", dt.date(2026, 12, 7)),
        Holiday("country", "DE", dt.date(2026, 12, 24)),
        Holiday("country", "DE", dt.date(2026, 12, 25)),
        Holiday("country", "US", dt.date(2026, 12, 25)),
        Holiday("country", "FR", dt.date(2027, 1, 1)),
    ],
    [Lane("DE", "FR", 1), Lane("US", "CA", 3), Lane("DE", "US", 5)],
)


@given(
    st.lists(
        st.tuples(
            st.datetimes(
                min_value=dt.datetime(2026, 11, 20),
                max_value=dt.datetime(2027, 1, 10),
                timezones=st.just(dt.UTC),
            ),
            st.sampled_from(["WH-HAM", "WH-CHI", "WH-X"]),
            st.sampled_from(["DE", "FR", "US", "CA", "", "ZZ"]),
            st.sampled_from(["", "2026-12-25", "2026-12-19", "2027-01-02", "soon"]),
        ),
        max_size=30,
    )
)
def test_promises_shared_by_shipments_are_the_rules_answers(made):
    # One Promises for the whole list: the shipments after the first of a warehouse, destination and day
    # get the answers the rules give them on their own.
    promises = Promises(BOTH)
    for allocated_at, warehouse, country, requested in made:
        promised = promised_delivery_date(
            allocated_at=allocated_at,
            book=BOTH,
            warehouse=warehouse,
            destination_country=country,
            requested_delivery_date=requested,
        )
        assert promises.promised_delivery_date(allocated_at, warehouse, country, requested) == promised
        assert promises.schedule(warehouse, country, promised) == schedule(
            BOTH, warehouse=warehouse, destination_country=country, promised_delivery_date=promised
        )
