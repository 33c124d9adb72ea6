"""The promise watch's rules (services/orders/promise.py): each risk, its date and evidence, the changes
told once, the next moment to look, and priority aging (hypothesis: monotonic in time, never above the
top class)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from services.orders import promise
from services.orders.domain import HistoryEntry, Line, Order, ShipmentView, Status
from services.orders.promise import OrderFacts, Policy, Risk, RiskCode, ShipmentFacts, assess, compare

NOW = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
D = dt.date.fromisoformat


def facts(status="confirmed", promised="2026-12-20", **more) -> OrderFacts:
    return OrderFacts("ORD-1", status, D(promised) if promised else None, **more)


def codes(risks) -> list[str]:
    return [r.code.value for r in risks]


def test_an_order_with_time_enough_is_on_track():
    assert assess(facts(), NOW) == []
    assert assess(facts("allocated"), NOW) == []
    assert assess(facts("completed", promised="2026-12-01"), NOW) == []


def test_not_allocatable_in_time_when_the_lead_time_no_longer_fits():
    # promised the 12th, lead time 3 days: released today it arrives the 13th at the earliest
    [risk] = assess(facts(promised="2026-12-12"), NOW)
    assert risk.code is RiskCode.NOT_ALLOCATABLE_IN_TIME
    assert (risk.expected_date, risk.slip_days) == ("2026-12-13", 1)
    assert "not allocated on 2026-12-10" in risk.evidence and "promised 2026-12-12" in risk.evidence
    assert assess(facts(promised="2026-12-13"), NOW) == []  # exactly fits
    assert assess(facts(promised="2026-12-12"), NOW, Policy(lead_days=2)) == []
    # a backorder without a supply date runs out of time the same way
    assert codes(assess(facts("scheduled", promised="2026-12-11"), NOW)) == ["not_allocatable_in_time"]


def test_supply_late_when_the_backorder_comes_after_the_promise():
    late = facts("scheduled", expected_delivery_date=D("2026-12-24"), expected_ship_date=D("2026-12-21"))
    [risk] = assess(late, NOW)
    assert risk.code is RiskCode.SUPPLY_LATE and (risk.expected_date, risk.slip_days) == ("2026-12-24", 4)
    assert "2026-12-24 (ready 2026-12-21)" in risk.evidence
    assert assess(facts("scheduled", expected_delivery_date=D("2026-12-20")), NOW) == []
    # no promise, nothing to be late for
    assert assess(facts("scheduled", promised="", expected_delivery_date=D("2026-12-24")), NOW) == []


def test_not_picked_by_the_cutoff_of_the_last_ship_date():
    ship_by = dt.datetime(2026, 12, 10, 8, 0, tzinfo=dt.UTC)
    packed = ShipmentFacts("SHP-1", "packed", D("2026-12-12"), ship_by=ship_by, transit_days=2)
    [risk] = assess(facts("allocated", promised="2026-12-12", shipments=(packed,)), NOW)
    assert risk.code is RiskCode.NOT_PICKED_BY_CUTOFF and risk.shipment_id == "SHP-1"
    assert (risk.expected_date, risk.slip_days) == ("2026-12-13", 1)  # leaves the 11th, 2 days
    before = dt.datetime(2026, 12, 10, 7, 59, tzinfo=dt.UTC)
    assert assess(facts("allocated", promised="2026-12-12", shipments=(packed,)), before) == []
    gone = ShipmentFacts("SHP-1", "shipped", D("2026-12-12"), ship_by=ship_by, shipped_at=before)
    assert assess(facts("shipped", promised="2026-12-12", shipments=(gone,)), NOW) == []


def test_carrier_silent_after_the_configured_time_without_an_event():
    shipped = NOW - dt.timedelta(hours=48)
    s = ShipmentFacts("SHP-1", "shipped", shipped_at=shipped, last_event="shipped", last_event_at=shipped)
    [risk] = assess(facts("shipped", shipments=(s,)), NOW)
    assert risk.code is RiskCode.CARRIER_SILENT and "48 h" in risk.evidence
    assert risk.expected_date == "2026-12-20" and risk.slip_days == 0  # the promise still lies ahead
    assert assess(facts("shipped", shipments=(s,)), NOW, Policy(carrier_silence=dt.timedelta(hours=49))) == []
    heard = ShipmentFacts("SHP-1", "shipped", shipped_at=shipped, last_event_at=NOW - dt.timedelta(hours=1))
    assert assess(facts("shipped", shipments=(heard,)), NOW) == []


def test_transit_overdue_when_longer_on_the_way_than_the_lane_takes():
    shipped = dt.datetime(2026, 12, 6, 15, 0, tzinfo=dt.UTC)
    s = ShipmentFacts(
        "SHP-1", "shipped", D("2026-12-09"), transit_days=3, shipped_at=shipped, last_event_at=NOW
    )
    [risk] = assess(facts("shipped", promised="2026-12-09", shipments=(s,)), NOW)
    assert risk.code is RiskCode.TRANSIT_OVERDUE and "4 day(s) in transit; the lane takes 3" in risk.evidence
    assert (risk.expected_date, risk.slip_days) == ("2026-12-11", 2)  # not before tomorrow
    on_time = ShipmentFacts("SHP-1", "shipped", transit_days=4, shipped_at=shipped, last_event_at=NOW)
    assert assess(facts("shipped", shipments=(on_time,)), NOW) == []


def test_not_picked_by_the_cutoff_moves_shippings_deliver_by_with_the_ship_date():
    ship_by = dt.datetime(2026, 12, 9, 14, 0, tzinfo=dt.UTC)  # Wednesday's cut-off, due Friday the 11th
    s = ShipmentFacts("SHP-1", "pending", ship_by=ship_by, deliver_by=D("2026-12-11"))
    # leaves Friday (tomorrow) at the earliest, two working days later than planned: due Tuesday the 15th
    weekdays = Policy(calendar=Calendar())
    [risk] = assess(facts("allocated", promised="2026-12-11", shipments=(s,)), NOW, weekdays)
    assert risk.code is RiskCode.NOT_PICKED_BY_CUTOFF and (risk.expected_date, risk.slip_days) == (
        "2026-12-15",
        4,
    )
    assert (
        assess(facts("allocated", promised="2026-12-11", shipments=(s,)), ship_by - dt.timedelta(minutes=1))
        == []
    )


def test_transit_overdue_after_shippings_deliver_by():
    shipped = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
    s = ShipmentFacts("SHP-1", "shipped", shipped_at=shipped, last_event_at=NOW, deliver_by=D("2026-12-09"))
    [risk] = assess(facts("shipped", promised="2026-12-12", shipments=(s,)), NOW)
    assert risk.code is RiskCode.TRANSIT_OVERDUE and "6 day(s) in transit; due 2026-12-09" in risk.evidence
    assert (risk.expected_date, risk.slip_days) == ("2026-12-12", 0)
    # deliver-by today is not overdue yet (and it wins over a lane's days counted by orders)
    due_today = ShipmentFacts(
        "SHP-1", "shipped", shipped_at=shipped, last_event_at=NOW, deliver_by=D("2026-12-10"), transit_days=1
    )
    assert assess(facts("shipped", shipments=(due_today,)), NOW) == []


def test_carrier_problem_takes_the_carriers_new_date():
    s = ShipmentFacts(
        "SHP-1",
        "shipped",
        shipped_at=NOW,
        last_event="delivery_attempted",
        last_event_at=NOW,
        carrier_date=D("2026-12-22"),
    )
    [risk] = assess(facts("shipped", shipments=(s,)), NOW)
    assert risk.code is RiskCode.CARRIER_PROBLEM and (risk.expected_date, risk.slip_days) == ("2026-12-22", 2)
    assert "carrier reports delivery attempted for shipment SHP-1" in risk.evidence
    for word in ("delayed", "lost", "exception", "returning_to_sender"):
        s2 = ShipmentFacts("SHP-1", "shipped", shipped_at=NOW, last_event=word, last_event_at=NOW)
        assert codes(assess(facts("shipped", shipments=(s2,)), NOW)) == ["carrier_problem"]
    fine = ShipmentFacts("SHP-1", "shipped", shipped_at=NOW, last_event="in_transit", last_event_at=NOW)
    assert assess(facts("shipped", shipments=(fine,)), NOW) == []


def test_hold_too_long_by_time_held_or_by_the_date():
    held = facts("on_hold", held_since=NOW - dt.timedelta(hours=25))
    [risk] = assess(held, NOW)
    assert risk.code is RiskCode.HOLD_TOO_LONG and risk.expected_date == "2026-12-20" and risk.slip_days == 0
    assert assess(facts("on_hold", held_since=NOW - dt.timedelta(hours=2)), NOW) == []
    # two hours on hold, but released now it cannot arrive by the 11th
    [late] = assess(facts("on_hold", promised="2026-12-11", held_since=NOW - dt.timedelta(hours=2)), NOW)
    assert (late.expected_date, late.slip_days) == ("2026-12-13", 2)


def test_risks_come_in_a_stable_order_and_several_at_once():
    s = ShipmentFacts(
        "SHP-2", "shipped", shipped_at=NOW - dt.timedelta(days=5), last_event="delayed", transit_days=2
    )
    found = assess(facts("partially_shipped", shipments=(s,)), NOW)
    assert codes(found) == ["carrier_problem", "carrier_silent", "transit_overdue"]


def test_compare_tells_each_risk_once_and_news_only_from_facts():
    a = Risk(RiskCode.SUPPLY_LATE, "2026-12-24", 4, "x")
    b = Risk(RiskCode.CARRIER_SILENT, "2026-12-20", 0, "y", "SHP-1")
    assert compare([], [a, b]) == ([a, b], [])
    assert compare([a, b], [a, b]) == ([], [])
    moved = Risk(RiskCode.SUPPLY_LATE, "2026-12-28", 8, "x")
    assert compare([a, b], [moved, b]) == ([moved], [])  # supply's new date is news
    estimate = Risk(RiskCode.CARRIER_SILENT, "2026-12-21", 1, "y", "SHP-1")
    assert compare([a, b], [a, estimate]) == ([], [])  # an estimate moving with the calendar is not
    assert compare([a, b], [b]) == ([], [a])


def test_next_check_is_the_earliest_threshold_ahead():
    policy = Policy()
    held = facts("on_hold", held_since=NOW - dt.timedelta(hours=20))
    assert promise.next_check(held, NOW, policy) == NOW + dt.timedelta(hours=1)  # recheck before the 4 h left
    shipped_at = NOW - dt.timedelta(hours=47, minutes=30)
    s = ShipmentFacts("SHP-1", "shipped", shipped_at=shipped_at)
    assert (
        promise.next_check(facts("shipped", shipments=(s,)), NOW, policy)
        == shipped_at + policy.carrier_silence
    )
    assert promise.next_check(facts("completed"), NOW, policy) is None


def order(status: Status, **more) -> Order:
    o = Order(
        order_id="ORD-1",
        partner_id="P",
        channel="api",
        external_ref="r",
        customer_id="C",
        ship_to={"country": "DE"},
        lines=[Line("A", 1, 1)],
        requested_delivery_date="2026-12-20",
        payment_terms="NET30",
        currency="EUR",
        priority=100,
        status=status,
        **more,
    )
    return o


def test_the_order_records_at_risk_and_back_on_track_only_when_its_risks_change():
    o = order(Status.SCHEDULED, expected_delivery_date="2026-12-24")
    risks = assess(o.promise_facts(), NOW)
    assert o.watch(risks, NOW) and [e.event_type for e in o.events] == ["order.at_risk"]
    assert o.at_risk and o.risks[0].since == NOW and o.version == 1
    assert not o.watch(assess(o.promise_facts(), NOW + dt.timedelta(hours=1)), NOW + dt.timedelta(hours=1))
    assert o.version == 1 and len(o.events) == 1  # the same risk again: nothing new
    o.expected_delivery_date = "2026-12-19"
    later = NOW + dt.timedelta(hours=2)
    assert o.watch(assess(o.promise_facts(), later), later)
    assert [e.event_type for e in o.events] == ["order.at_risk", "order.back_on_track"]
    assert not o.risks and not o.at_risk and o.version == 2


def test_an_order_that_settles_drops_its_risks_in_the_same_move():
    """Completed, cancelled or rejected: no promise is left to watch, so its risks go with the move itself
    (the saved order never shows a settled order at risk, whenever the watch comes by)."""
    o = order(Status.SCHEDULED, expected_delivery_date="2026-12-24")
    o.watch(assess(o.promise_facts(), NOW), NOW)
    assert o.at_risk
    o.cancel(NOW, "desk", "customer asked")
    assert o.status is Status.CANCELLED and o.risks == [] and not o.at_risk


def test_the_next_look_is_at_once_only_when_the_watch_would_change_something():
    """Order.next_look, what a save stores as watch_at: exactly what a look by the watch now would find."""
    policy = Policy()
    aged = order(Status.SCHEDULED).current_priority(NOW.date())  # as intake places it today
    o = order(Status.SCHEDULED, expected_delivery_date="2026-12-19")  # supply in time: on track
    o.priority = aged
    facts = o.promise_facts()
    assert o.next_look(NOW, policy) == promise.next_check(facts, NOW, policy) > NOW
    o.expected_delivery_date = "2026-12-24"  # a slip the change brought: to be told at once
    assert o.next_look(NOW, policy) == promise.AT_ONCE
    o.watch(assess(o.promise_facts(), NOW), NOW)  # told: nothing new until time moves
    assert o.next_look(NOW, policy) == promise.next_check(o.promise_facts(), NOW, policy)
    o.expected_delivery_date = "2026-12-19"  # back in time: the risk to clear
    assert o.next_look(NOW, policy) == promise.AT_ONCE
    o.watch(assess(o.promise_facts(), NOW), NOW)
    assert o.next_look(NOW, policy) > NOW
    o.priority = aged - 1  # a priority to age
    assert o.next_look(NOW, policy) == promise.AT_ONCE
    o.priority = aged
    o.cancel(NOW, "desk", "customer asked")  # settled: never again
    assert o.next_look(NOW, policy) is None
    o.risks = [Risk(RiskCode.SUPPLY_LATE, "2026-12-24", 4, "e")]  # a settled order's risks to drop
    assert o.next_look(NOW, policy) == promise.AT_ONCE


def test_the_orders_facts_come_from_its_history_and_shipments():
    held_at = NOW - dt.timedelta(hours=3)
    o = order(
        Status.ON_HOLD,
        history=[
            HistoryEntry(Status.RECEIVED, held_at, "p", ""),
            HistoryEntry(Status.ON_HOLD, held_at, "s", ""),
        ],
    )
    assert o.promise_facts().held_since == held_at
    o = order(Status.ALLOCATED, allocations=[])
    view = ShipmentView("SHP-1", "W", "shipped", promised_delivery_date="2026-12-19")
    o.record_shipment(NOW, view, "shipped", NOW)
    o.record_shipment(
        NOW, ShipmentView("SHP-1", "W", "shipped", version=2), "delayed", NOW + dt.timedelta(hours=1)
    )
    o.record_shipment(
        NOW, ShipmentView("SHP-1", "W", "shipped", version=3), "carrier_changed", NOW + dt.timedelta(hours=2)
    )
    o.record_shipment(
        NOW,
        ShipmentView(
            "SHP-1",
            "W",
            "shipped",
            version=4,
            pick_by="2026-12-09T14:00:00+00:00",
            deliver_by="2026-12-14",
        ),
        "updated",
        NOW,
    )
    [s] = o.promise_facts().shipments
    assert (
        s.shipped_at == NOW and s.last_event == "delayed" and s.last_event_at == NOW + dt.timedelta(hours=1)
    )
    # shipping's schedule, as the rules take it
    assert s.ship_by == dt.datetime(2026, 12, 9, 14, 0, tzinfo=dt.UTC) and s.deliver_by == D("2026-12-14")


TIER = st.integers(0, 3)


@given(
    tier=TIER,
    within=st.integers(0, 99),
    urgent=st.booleans(),
    requested=st.one_of(st.none(), st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31))),
    placed=st.dates(dt.date(2025, 6, 1), dt.date(2026, 12, 31)),
    day=st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)),
    later=st.integers(0, 400),
)
def test_priority_rises_with_time_stays_in_its_tier_and_never_passes_the_top(
    tier, within, urgent, requested, placed, day, later
):
    start = tier * 100 + within

    def at(today: dt.date) -> int:
        return promise.current_priority(start, requested=requested, placed=placed, today=today, urgent=urgent)

    first, then = at(day), at(day + dt.timedelta(days=later))
    assert start <= first <= then  # never lower than it was, never falling as time passes
    assert then // 100 == tier and then <= 399  # its tier, at most the top class


def test_a_week_old_standard_order_overtakes_a_new_one_without_a_date():
    today = dt.date(2026, 12, 10)
    old = promise.current_priority(100, requested=None, placed=today - dt.timedelta(days=7), today=today)
    new = promise.current_priority(100, requested=None, placed=today, today=today)
    assert old == 114 > new == 100
    # the date's urgency as intake computes it: 90 minus the days left
    assert (
        promise.current_priority(100, requested=today + dt.timedelta(days=5), placed=today, today=today)
        == 185
    )
    # an urgent order stays in its band above every non-urgent one of its tier
    assert promise.current_priority(191, requested=today, placed=today, today=today, urgent=True) == 199


def test_a_carrier_date_that_still_meets_the_promise_endangers_nothing():
    s = ShipmentFacts("SHP-1", "shipped", shipped_at=NOW, last_event="delayed", carrier_date=D("2026-12-20"))
    assert assess(facts("shipped", shipments=(s,)), NOW) == []


def test_the_desks_resolution_settles_the_shipments_risks_and_the_watch_does_not_raise_them_again():
    from services.orders.exceptions import ExceptionType, OrderException

    o = order(Status.SHIPPED)
    o.record_shipment(NOW, ShipmentView("SHP-1", "W", "shipped", version=1), "shipped", NOW)
    o.record_shipment(
        NOW,
        ShipmentView("SHP-1", "W", "shipped", version=2, expected_delivery_date="2026-12-28"),
        "delayed",
        NOW,
    )
    o.record_exception(
        OrderException(
            "EX-1", ExceptionType.CARRIER_DELAY, "storm", NOW, "carrier", "shipping", shipment_id="SHP-1"
        )
    )
    o.watch(assess(o.promise_facts(), NOW), NOW)
    assert codes(o.risks) == ["carrier_problem"] and o.at_risk
    later = NOW + dt.timedelta(hours=1)
    o.resolve_exception(
        "EX-1", "change_carrier", at=later, actor="desk", details={"carrier": "UPS", "tracking_number": "1Z"}
    )
    assert o.risks == [] and not o.at_risk
    assert [e.event_type for e in o.events][-2:] == ["order.exception", "order.back_on_track"]
    assert assess(o.promise_facts(), later) == []  # handled: not raised again
    # the carrier speaks again after the decision: that is news
    o.record_shipment(
        later, ShipmentView("SHP-1", "W", "shipped", version=3), "delayed", later + dt.timedelta(hours=1)
    )
    assert codes(assess(o.promise_facts(), later + dt.timedelta(hours=2))) == ["carrier_problem"]


# --- working days (orderdesk.calendar) -----------------------------------------------------------------
from orderdesk.calendar import Calendar, is_working_day  # noqa: E402

WEEKDAYS = Policy(calendar=Calendar())  # Monday to Friday
THURSDAY = NOW  # 2026-12-10


def test_the_lead_time_and_transit_count_working_days_with_a_calendar():
    monday = facts(promised="2026-12-14")
    assert assess(monday, THURSDAY) == []  # calendar days: Sunday the 13th at the earliest
    [risk] = assess(monday, THURSDAY, WEEKDAYS)  # Fri, Mon, Tue: Tuesday the 15th
    assert risk.code is RiskCode.NOT_ALLOCATABLE_IN_TIME and (risk.expected_date, risk.slip_days) == (
        "2026-12-15",
        1,
    )
    friday = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)
    s = ShipmentFacts("SHP-1", "shipped", transit_days=3, shipped_at=friday, last_event_at=THURSDAY)
    assert codes(assess(facts("shipped", shipments=(s,)), THURSDAY, WEEKDAYS)) == [
        "transit_overdue"
    ]  # due Wed 9th
    wednesday = dt.datetime(2026, 12, 9, 12, 0, tzinfo=dt.UTC)
    assert assess(facts("shipped", shipments=(s,)), wednesday, WEEKDAYS) == []
    # after the promise passed on a Friday, nothing comes before Monday
    fri = dt.datetime(2026, 12, 11, 12, 0, tzinfo=dt.UTC)
    quiet = ShipmentFacts("SHP-1", "shipped", shipped_at=fri - dt.timedelta(days=3))
    [silent] = assess(facts("shipped", promised="2026-12-11", shipments=(quiet,)), fri, WEEKDAYS)
    assert silent.code is RiskCode.CARRIER_SILENT and silent.expected_date == "2026-12-14"


@given(
    status=st.sampled_from(["confirmed", "scheduled", "on_hold", "allocated", "shipped"]),
    promised=st.dates(dt.date(2026, 12, 1), dt.date(2027, 1, 31)),
    today=st.dates(dt.date(2026, 12, 1), dt.date(2027, 1, 31)),
    hours=st.integers(0, 200),
    transit=st.integers(0, 6),
    holidays=st.sets(st.dates(dt.date(2026, 12, 1), dt.date(2027, 1, 31)), max_size=6),
)
def test_with_a_calendar_an_estimated_date_is_the_promise_or_a_working_day(
    status, promised, today, hours, transit, holidays
):
    calendar = Calendar(holidays=frozenset(holidays))
    now = dt.datetime.combine(today, dt.time(10), tzinfo=dt.UTC)
    then = now - dt.timedelta(hours=hours)
    shipments = ()
    if status in ("allocated", "shipped"):
        shipments = (
            ShipmentFacts(
                "SHP-1",
                "packed" if status == "allocated" else "shipped",
                ship_by=then,
                transit_days=transit,
                shipped_at=then if status == "shipped" else None,
                last_event="delayed" if hours % 2 else "",
            ),
        )
    f = facts(
        status,
        promised=promised.isoformat(),
        held_since=then if status == "on_hold" else None,
        shipments=shipments,
    )
    for risk in assess(f, now, Policy(calendar=calendar)):
        expected = dt.date.fromisoformat(risk.expected_date)
        assert expected == promised or is_working_day(expected, calendar), risk
        assert risk.slip_days == max((expected - promised).days, 0)
