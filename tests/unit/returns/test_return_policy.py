"""The return policy: windows, holds for the desk, reasons and who pays, fees and refunds, decisions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.calendar import Calendar, Holiday
from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.returns import policy
from services.returns.domain import (
    Inspection,
    OrderedSku,
    PolicyContext,
    RequestedLine,
    Return,
    Status,
)
from services.returns.policy import PolicySettings, ProductPolicy

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)  # a Thursday
TODAY = T0.date()
ORDERED = {
    "A": OrderedSku("A", delivered=100, unit_price=Decimal("100.00"), warehouse="WH-HAM"),
    "B": OrderedSku("B", delivered=100, unit_price=Decimal("3.33"), warehouse="WH-HAM"),
}


def request(lines, **context) -> Return:
    return Return.authorize(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P1",
        ordered=ORDERED,
        authorised={},
        requested=lines,
        resolution="refund",
        at=T0,
        actor="P1",
        context=PolicyContext(**{"currency": "USD", **context}),
    )


def codes(ret: Return) -> list[str]:
    return [r.code for r in ret.hold_reasons]


# --- windows ----------------------------------------------------------------------------------------
def test_the_window_is_the_products_else_the_tiers_else_the_default():
    settings = PolicySettings(default_window_days=30, tier_window_days={"strategic": 60})
    assert settings.window_days(ProductPolicy(window_days=7), "strategic") == 7
    assert settings.window_days(ProductPolicy(), "strategic") == 60
    assert settings.window_days(ProductPolicy(), "standard") == 30


def test_the_window_counts_working_days_where_a_calendar_exists():
    friday = dt.date(2026, 12, 4)
    assert policy.window_end(friday, 3) == dt.date(2026, 12, 7)  # calendar days
    assert policy.window_end(friday, 3, Calendar()) == dt.date(2026, 12, 9)  # Mon, Tue, Wed
    with_holiday = Calendar(holidays=frozenset({dt.date(2026, 12, 8)}))
    assert policy.window_end(friday, 3, with_holiday) == dt.date(2026, 12, 10)


def test_the_calendar_is_the_delivery_countrys_when_it_was_imported():
    holidays = [
        Holiday("country", "FR", dt.date(2026, 12, 25), "Noël"),
        Holiday("country", "DE", dt.date(2026, 12, 24), "Heiligabend"),
        Holiday("warehouse", "FR", dt.date(2026, 12, 1), "not a country"),
    ]
    assert policy.country_calendar(holidays, "fr") == Calendar(holidays=frozenset({dt.date(2026, 12, 25)}))
    assert policy.country_calendar(holidays, "US") is None  # no calendar: calendar days
    assert policy.country_calendar([], "FR") is None


def test_a_return_on_the_last_day_of_its_window_goes_straight_through():
    ret = request([RequestedLine("A", 1, "damaged")], delivered_on=TODAY - dt.timedelta(days=30))
    assert ret.status is Status.AUTHORIZED and ret.hold_reasons == []
    assert ret.changes[-1].event_type == "return.authorized"


def test_a_return_after_its_window_is_held_not_refused():
    ret = request([RequestedLine("A", 1, "damaged")], delivered_on=TODAY - dt.timedelta(days=31))
    assert ret.status is Status.HELD and codes(ret) == ["outside_window"]
    assert ret.hold_reasons[0].field == "lines[0].sku"
    assert "ended on 2026-12-09" in ret.hold_reasons[0].message
    assert ret.changes[-1].event_type == "return.held"


def test_the_window_in_working_days_reaches_further_than_in_calendar_days():
    delivered = TODAY - dt.timedelta(days=31)
    assert (
        request([RequestedLine("A", 1)], delivered_on=delivered, calendar=Calendar()).status
        is Status.AUTHORIZED
    )


def test_a_tier_with_a_longer_window_keeps_a_late_return_inside():
    settings = PolicySettings(tier_window_days={"strategic": 60})
    late = TODAY - dt.timedelta(days=45)
    assert (
        request([RequestedLine("A", 1)], delivered_on=late, settings=settings, tier="strategic").status
        == "authorized"
    )
    assert request([RequestedLine("A", 1)], delivered_on=late, settings=settings, tier="new").status == "held"


def test_an_order_not_completely_delivered_has_not_begun_its_window():
    assert request([RequestedLine("A", 1)], delivered_on=None).status is Status.AUTHORIZED


# --- other holds ------------------------------------------------------------------------------------
def test_a_product_that_is_not_returnable_is_held():
    ret = request(
        [RequestedLine("B", 1), RequestedLine("A", 1)], products={"A": ProductPolicy(returnable=False)}
    )
    assert codes(ret) == ["not_returnable"] and ret.hold_reasons[0].field == "lines[1].sku"


def test_a_return_worth_more_than_the_threshold_is_held_in_its_currency():
    settings = PolicySettings(value_thresholds={"USD": Decimal("250")})
    assert request([RequestedLine("A", 2)], settings=settings).status is Status.AUTHORIZED  # 200.00
    held = request([RequestedLine("A", 2), RequestedLine("B", 16)], settings=settings)  # 253.28
    assert codes(held) == ["above_value_threshold"] and "253.28 USD" in held.hold_reasons[0].message
    assert request([RequestedLine("A", 9)], settings=settings, currency="CNY").status is Status.AUTHORIZED


@given(
    returnable=st.booleans(),
    days_late=st.integers(-40, 40),
    units=st.integers(1, 10),
    threshold=st.integers(0, 1500),
)
def test_held_exactly_when_some_rule_is_broken(returnable, days_late, units, threshold):
    settings = PolicySettings(default_window_days=20, value_thresholds={"USD": Decimal(threshold)})
    ret = request(
        [RequestedLine("A", units)],
        settings=settings,
        products={"A": ProductPolicy(returnable=returnable)},
        delivered_on=TODAY - dt.timedelta(days=20 + days_late),
    )
    expected = {
        "not_returnable": not returnable,
        "outside_window": days_late > 0,
        "above_value_threshold": units * 100 > threshold,
    }
    assert set(codes(ret)) == {code for code, broken in expected.items() if broken}
    assert (ret.status is Status.HELD) == any(expected.values())


def test_settings_from_the_environment():
    settings = policy.settings_from_env(
        {
            "ORDERDESK_RETURN_WINDOW_DAYS": "14",
            "ORDERDESK_RETURN_TIER_WINDOWS": "strategic=60, key=45",
            "ORDERDESK_RETURN_HOLD_ABOVE": "usd=100",
        }
    )
    assert settings == PolicySettings(14, {"strategic": 60, "key": 45}, {"USD": Decimal("100")})
    assert policy.settings_from_env({}) == PolicySettings()
    with pytest.raises(ValueError):
        policy.settings_from_env({"ORDERDESK_RETURN_TIER_WINDOWS": "strategic"})
    with pytest.raises(ValueError):
        policy.settings_from_env({"ORDERDESK_RETURN_WINDOW_DAYS": "-1"})


# --- reasons, fees and who pays --------------------------------------------------------------------------
def test_reasons_are_a_vocabulary_and_decide_who_pays():
    assert policy.REASONS == (
        "damaged",
        "defective",
        "wrong_item",
        "not_as_described",
        "no_longer_needed",
        "late_delivery",
        "other",
    )
    assert {r for r in policy.REASONS if policy.fault(r) == "customer"} == {"no_longer_needed", "other"}
    assert policy.reason_code("", "Damaged") == "damaged"
    assert policy.reason_code("", "wrong size") == "other"
    assert policy.reason_code("defective", "it hums") == "defective"


def test_an_unknown_reason_code_is_refused_with_its_field():
    with pytest.raises(InvalidArgument) as err:
        request([RequestedLine("A", 1, reason_code="bored")])
    assert [(v.field, v.reason) for v in err.value.violations] == [("lines[0].reason_code", "unknown_reason")]


def test_the_restocking_fee_and_the_expected_refund_are_on_the_rma_before_anyone_confirms():
    ret = request([RequestedLine("A", 2, "", "no_longer_needed"), RequestedLine("B", 3, "broken", "damaged")])
    assert [x.restocking_fee for x in ret.lines] == [Decimal("30.00"), Decimal("0.00")]
    assert ret.restocking_fee == Decimal("30.00")
    assert ret.expected_refund == Decimal("179.99")  # 200.00 - 30.00 + 9.99
    assert ret.refund_amount == Decimal("0.00")  # nothing refunded until inspected


def inspected(reason: str, *outcomes: tuple[str, int]) -> Return:
    units = sum(n for _, n in outcomes)
    ret = request([RequestedLine("A", units, reason_code=reason)])
    ret.receive(T0, "dock")
    ret.inspect([Inspection("A", n, o) for o, n in outcomes], T0, "qa")
    return ret


def test_refunds_by_outcome_and_reason():
    assert inspected("no_longer_needed", ("restock", 1)).refund_amount == Decimal("85.00")
    assert inspected("no_longer_needed", ("refurbish", 1)).refund_amount == Decimal("85.00")
    assert inspected("defective", ("restock", 1)).refund_amount == Decimal("100.00")
    assert inspected("no_longer_needed", ("scrap_our_fault", 1)).refund_amount == Decimal("100.00")
    assert inspected("defective", ("scrap", 1)).refund_amount == Decimal("100.00")  # before the policy
    assert inspected("other", ("scrap_customer_fault", 1)).refund_amount == Decimal("50.00")


def test_inspection_records_each_outcome_and_scrapped_counts_both_faults():
    ret = inspected(
        "other", ("restock", 1), ("refurbish", 2), ("scrap_our_fault", 3), ("scrap_customer_fault", 4)
    )
    line = ret.lines[0]
    assert (line.restocked, line.refurbished, line.scrapped, line.scrapped_customer) == (1, 2, 7, 4)
    assert ret.refund_amount == Decimal("800.00")  # 1 + 2 + 3 at 100, 4 at 50


OUTCOME = st.sampled_from(policy.OUTCOMES)


@given(
    reason=st.sampled_from(policy.REASONS),
    split=st.lists(st.tuples(OUTCOME, st.integers(1, 3)), min_size=1, max_size=4),
)
def test_the_refund_never_exceeds_the_value_and_our_fault_costs_the_customer_nothing(reason, split):
    ret = inspected(reason, *split)
    units = {o: 0 for o in policy.OUTCOMES}
    for o, n in split:
        units[o] += n
    value = Decimal("100.00") * sum(units.values())
    fee = Decimal("15.00") if reason == "no_longer_needed" else Decimal("0.00")
    expected = (
        (Decimal("100.00") - fee) * (units["restock"] + units["refurbish"])
        + Decimal("100.00") * units["scrap_our_fault"]
        + Decimal("50.00") * units["scrap_customer_fault"]
    )
    assert ret.refund_amount == expected <= value
    if policy.fault(reason) == "ours" and not units["scrap_customer_fault"]:
        assert ret.refund_amount == value
    assert ret.expected_refund == value - fee * sum(units.values())


# --- the desk's decision and cancellation ------------------------------------------------------------------
def held() -> Return:
    return request([RequestedLine("A", 1)], products={"A": ProductPolicy(returnable=False)})


def test_an_approver_authorises_a_held_return_once():
    ret = held()
    assert ret.authorise(T0, "desk:ann", "long-standing customer") is True
    assert ret.status is Status.AUTHORIZED and ret.decision_note == "long-standing customer"
    assert ret.changes[-1].event_type == "return.authorized" and ret.changes[-1].actor == "desk:ann"
    assert ret.authorise(T0, "desk:ann") is False and ret.version == 2
    assert ret.hold_reasons  # why it was held stays on the RMA


def test_a_refusal_needs_a_reason_and_ends_the_return():
    ret = held()
    with pytest.raises(InvalidArgument):
        ret.refuse(T0, "desk:ann", " ")
    assert ret.status is Status.HELD and ret.version == 1
    assert ret.refuse(T0, "desk:ann", "sealed software") is True
    assert (ret.status, ret.decision_note, ret.changes[-1].reason) == (
        "refused",
        "sealed software",
        "sealed software",
    )
    assert ret.refuse(T0, "desk:ann", "sealed software") is False
    for step in (
        lambda: ret.authorise(T0, "x"),
        lambda: ret.receive(T0, "dock"),
        lambda: ret.cancel(T0, "x"),
    ):
        with pytest.raises(FailedPrecondition):
            step()


def test_only_a_held_return_is_decided():
    ret = request([RequestedLine("A", 1)])
    with pytest.raises(FailedPrecondition) as err:
        ret.refuse(T0, "desk:ann", "no")
    assert err.value.rule == "decide_only_when_held"


def test_a_held_return_is_neither_received_nor_inspected():
    ret = held()
    with pytest.raises(FailedPrecondition):
        ret.receive(T0, "dock")
    with pytest.raises(FailedPrecondition):
        ret.inspect([Inspection("A", 1, "restock")], T0, "qa")


@pytest.mark.parametrize("make", [held, lambda: request([RequestedLine("A", 1)])])
def test_an_rma_is_cancelled_before_receipt_once(make):
    ret = make()
    assert ret.cancel(T0, "P1", "customer kept it") is True
    assert ret.status is Status.CANCELLED and ret.changes[-1].event_type == "return.cancelled"
    assert ret.cancel(T0, "P1") is False


def test_a_received_rma_is_not_cancelled():
    ret = request([RequestedLine("A", 1)])
    ret.receive(T0, "dock")
    with pytest.raises(FailedPrecondition) as err:
        ret.cancel(T0, "P1")
    assert err.value.rule == "cancel_only_before_receipt" and ret.status is Status.RECEIVED
