"""Exchanges (issue 14, "on receipt"): an exchanged line's validation, its price by the policy, the
difference charged or credited, no refund, and ONE replacement order linked however often it is asked."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.returns import policy
from services.returns.domain import (
    AWAITING_RECEIPT,
    EXCHANGE_CANCELLED,
    EXCHANGE_CREATED,
    EXCHANGE_DUE,
    Inspection,
    OrderedSku,
    PolicyContext,
    Replacement,
    RequestedLine,
    Return,
    Status,
    exchange_key,
    request_hash,
)
from services.returns.policy import ExchangeLine, PolicySettings, exchange_difference, exchange_unit_price
from services.returns.service import ReturnsService
from services.returns.store import ReturnRepository
from tests.unit.fakes import FakeDatabase
from tests.unit.returns.test_returns_usecases import FakeReturns

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
ORDERED = {
    "SHIRT-M": OrderedSku("SHIRT-M", delivered=4, unit_price=Decimal("40.00"), warehouse="WH-HAM"),
    "MUG": OrderedSku("MUG", delivered=2, unit_price=Decimal("8.00"), warehouse="WH-HAM"),
}
OFFERS = {
    "SHIRT-L": Replacement("SHIRT-L", Decimal("45.00"), "USD"),
    "SHIRT-S": Replacement("SHIRT-S", Decimal("35.00"), "USD"),
    "SHIRT-M": Replacement("SHIRT-M", Decimal("42.00"), "USD"),  # dearer today than when bought
    "OLD": Replacement("OLD", Decimal("10.00"), "USD", active=False),
    "EURO": Replacement("EURO", Decimal("10.00"), "EUR"),
}


def authorize(requested, *, resolution="refund", offers=OFFERS) -> Return:
    return Return.authorize(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P1",
        ordered=ORDERED,
        authorised={},
        requested=requested,
        resolution=resolution,
        at=T0,
        actor="P1",
        context=PolicyContext(currency="USD"),
        replacements=offers,
    )


def fields(err) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in err.value.violations]


def inspected(ret: Return) -> Return:
    ret.receive(T0, "dock")
    ret.inspect([Inspection(line.sku, line.quantity, "restock") for line in ret.lines], T0, "dock")
    return ret


# --- the policy -------------------------------------------------------------------------------
def test_like_for_like_keeps_the_price_paid_another_sku_takes_todays_price():
    assert exchange_unit_price("SHIRT-M", Decimal("40"), "SHIRT-M", Decimal("42")) == Decimal("40")
    assert exchange_unit_price("SHIRT-M", Decimal("40"), "SHIRT-L", Decimal("45")) == Decimal("45")


def test_the_difference_is_the_replacement_less_the_returned_goods_in_cents():
    assert exchange_difference([ExchangeLine(2, Decimal("40"), 2, Decimal("45"))]) == Decimal("10.00")
    assert exchange_difference([ExchangeLine(2, Decimal("40"), 1, Decimal("35"))]) == Decimal("-45.00")
    assert exchange_difference([ExchangeLine(3, Decimal("0.333"), 3, Decimal("0.335"))]) == Decimal("0.01")
    assert exchange_difference([]) == Decimal("0.00")


prices = st.decimals(min_value=0, max_value=10_000, places=2)


@given(st.lists(st.tuples(st.integers(1, 50), prices, st.integers(1, 50), prices), max_size=5))
def test_charge_and_credit_mirror_each_other(lines):
    forth = exchange_difference(ExchangeLine(q, p, rq, rp) for q, p, rq, rp in lines)
    back = exchange_difference(ExchangeLine(rq, rp, q, p) for q, p, rq, rp in lines)
    assert forth == -back
    assert forth == sum((rq * rp - q * p for q, p, rq, rp in lines), Decimal("0"))


# --- the request --------------------------------------------------------------------------------
def test_an_exchange_for_another_size_is_priced_and_charged_the_difference():
    ret = authorize([RequestedLine("SHIRT-M", 2, "too small", exchange_sku="SHIRT-L")], resolution="exchange")
    (line,) = ret.lines
    assert (line.resolution, line.exchange_sku, line.exchange_quantity) == ("exchange", "SHIRT-L", 2)
    assert line.exchange_unit_price == Decimal("45.00")
    assert (ret.to_charge, ret.to_credit) == (Decimal("10.00"), Decimal("0.00"))
    assert ret.expected_refund == Decimal("0.00") and ret.restocking_fee == Decimal("0.00")
    assert ret.exchange_status == AWAITING_RECEIPT


def test_the_same_sku_by_default_at_the_price_paid_costs_nothing():
    ret = authorize([RequestedLine("SHIRT-M", 1, "defective")], resolution="exchange")
    (line,) = ret.lines
    assert (line.exchange_sku, line.exchange_quantity, line.exchange_unit_price) == (
        "SHIRT-M",
        1,
        Decimal("40.00"),
    )
    assert ret.price_difference == Decimal("0.00")


def test_a_cheaper_replacement_is_credited_and_a_refunded_line_beside_it_is_refunded():
    ret = authorize(
        [
            RequestedLine("SHIRT-M", 2, resolution="exchange", exchange_sku="SHIRT-S", exchange_quantity=1),
            RequestedLine("MUG", 1, "no_longer_needed"),
        ]
    )
    assert ret.to_credit == Decimal("45.00") and ret.to_charge == Decimal("0.00")
    inspected(ret)
    assert [line.refund for line in ret.lines] == [Decimal("0.00"), Decimal("6.80")]  # 8 less 15 %
    assert ret.refund_amount == Decimal("6.80") and ret.exchange_status == EXCHANGE_DUE


@pytest.mark.parametrize(
    "line, expected",
    [
        (RequestedLine("SHIRT-M", 1, exchange_sku="NOPE"), ("lines[0].exchange_sku", "unknown")),
        (RequestedLine("SHIRT-M", 1, exchange_sku="OLD"), ("lines[0].exchange_sku", "not_exchangeable")),
        (RequestedLine("SHIRT-M", 1, exchange_sku="EURO"), ("lines[0].exchange_sku", "not_exchangeable")),
        (
            RequestedLine("SHIRT-M", 2, exchange_sku="SHIRT-L", exchange_quantity=3),
            ("lines[0].exchange_quantity", "exceeds_returned"),
        ),
        (
            RequestedLine("SHIRT-M", 2, exchange_sku="SHIRT-L", exchange_quantity=-1),
            ("lines[0].exchange_quantity", "not_positive"),
        ),
        (RequestedLine("SHIRT-M", 1, resolution="swap"), ("lines[0].resolution", "unsupported_resolution")),
    ],
)
def test_a_bad_exchange_names_the_field(line, expected):
    with pytest.raises(InvalidArgument) as err:
        authorize([line], resolution="exchange")
    assert fields(err) == [expected]


def test_a_replacement_on_a_refunded_line_is_refused():
    with pytest.raises(InvalidArgument) as err:
        authorize([RequestedLine("SHIRT-M", 1, exchange_sku="SHIRT-L")], resolution="refund")
    assert fields(err) == [("lines[0].exchange_sku", "not_an_exchange")]


def test_the_request_hash_changes_with_the_replacement_and_not_for_plain_refunds():
    plain = [RequestedLine("A", 1, "x")]
    assert request_hash("O", plain, "refund") == request_hash("O", [RequestedLine("A", 1, "x", "")], "refund")
    assert request_hash("O", [RequestedLine("A", 1, exchange_sku="B")], "exchange") != request_hash(
        "O", [RequestedLine("A", 1, exchange_sku="C")], "exchange"
    )


# --- the link ---------------------------------------------------------------------------------------
def test_the_replacement_is_linked_once_and_only_after_inspection():
    ret = authorize([RequestedLine("SHIRT-M", 1, exchange_sku="SHIRT-L")], resolution="exchange")
    with pytest.raises(FailedPrecondition):
        ret.record_exchange("ORD-2", T0, "system")
    inspected(ret)
    version = ret.version
    assert ret.record_exchange("ORD-2", T0, "system") is True
    assert ret.record_exchange("ORD-2", T0, "system") is False
    with pytest.raises(FailedPrecondition):
        ret.record_exchange("ORD-3", T0, "system")
    assert ret.exchange_status == EXCHANGE_CREATED and ret.version == version + 1
    assert [c.event_type for c in ret.changes][-1] == "return.exchange_created"
    assert ret.status is Status.REFUNDED


def test_a_cancelled_exchange_is_never_due():
    ret = authorize([RequestedLine("SHIRT-M", 1)], resolution="exchange")
    ret.cancel(T0, "P1")
    assert ret.exchange_status == EXCHANGE_CANCELLED and not ret.exchange_due


def test_a_refund_has_no_exchange():
    ret = inspected(authorize([RequestedLine("SHIRT-M", 1)]))
    assert ret.exchange_status == "" and not ret.exchanged_lines


# --- the use case: one replacement order however often it is asked ------------------------------------
class FakeOrders:
    async def GetOrder(self, request, timeout=None, metadata=None):
        return orders_pb2.Order(
            order_id=request.order_id,
            partner_id="P1",
            customer_id="C-1",
            ship_to=common_pb2.Address(
                name="Ann", line1="1 Rue", city="Lyon", postal_code="69001", country="FR"
            ),
            payment_terms="NET30",
            urgent=True,
        )


class FakeIntake:
    """SubmitOrder answers one key with one order, as intake does."""

    def __init__(self):
        self.requests: list[intake_pb2.SubmitOrderRequest] = []
        self.orders: dict[str, str] = {}

    async def SubmitOrder(self, request, timeout=None, metadata=None):
        self.requests.append(request)
        order_id = self.orders.setdefault(request.idempotency_key, f"ORD-X{len(self.orders) + 1}")
        return intake_pb2.SubmitOrderResponse(order_id=order_id, status="approved")


async def test_make_exchange_enters_one_order_with_the_originals_facts_and_links_it():
    ret = inspected(authorize([RequestedLine("SHIRT-M", 2, exchange_sku="SHIRT-L")], resolution="exchange"))
    rmas = FakeReturns(ret)
    db = FakeDatabase({ReturnRepository: rmas})
    intake = FakeIntake()
    service = ReturnsService(db, orders=FakeOrders(), timeout=1.0, clock=lambda: T0, intake=intake)

    await service.make_exchange("RMA-1")
    await service.make_exchange("RMA-1")  # a redelivered event: nothing is asked, nothing published

    (sent,) = intake.requests
    assert (sent.idempotency_key, sent.external_ref) == (exchange_key("RMA-1"), "RMA-1")
    assert sent.channel == policy.EXCHANGE_CHANNEL == "exchange"
    assert (sent.partner_id, sent.customer_id, sent.payment_terms, sent.urgent) == (
        "P1",
        "C-1",
        "NET30",
        True,
    )
    assert sent.ship_to.city == "Lyon"
    assert [(x.sku, x.quantity, x.unit_price) for x in sent.lines] == [("SHIRT-L", 2, "45.00")]
    stored = rmas.rows["RMA-1"]
    assert stored.exchange_order_id == "ORD-X1"
    assert [e.type for e in db.events] == ["return.exchange_created"]
    snapshot = getattr(getattr(db.events[0], "return"), "return")
    assert (snapshot.exchange_order_id, snapshot.exchange_status, snapshot.to_charge) == (
        "ORD-X1",
        "created",
        "10.00",
    )


async def test_a_lost_link_is_made_again_to_the_same_order():
    """The first link rolled back after intake entered the order: asking again links that order."""
    ret = inspected(authorize([RequestedLine("SHIRT-M", 1)], resolution="exchange"))
    rmas = FakeReturns(ret)
    intake = FakeIntake()
    intake.orders[exchange_key("RMA-1")] = "ORD-FIRST"
    service = ReturnsService(
        FakeDatabase({ReturnRepository: rmas}),
        orders=FakeOrders(),
        timeout=1.0,
        clock=lambda: T0,
        intake=intake,
    )
    await service.make_exchange("RMA-1")
    assert rmas.rows["RMA-1"].exchange_order_id == "ORD-FIRST"


async def test_an_exchange_not_inspected_yet_asks_nobody():
    rmas = FakeReturns(authorize([RequestedLine("SHIRT-M", 1)], resolution="exchange"))
    intake = FakeIntake()
    service = ReturnsService(
        FakeDatabase({ReturnRepository: rmas}), orders=None, timeout=1.0, clock=lambda: T0, intake=intake
    )
    await service.make_exchange("RMA-1")
    assert intake.requests == [] and rmas.rows["RMA-1"].exchange_order_id == ""


# --- advance exchange: the replacement at once, the goods charged when late ------------------------------
ADVANCE_POLICY = PolicySettings(advance_exchange_tiers=frozenset({"key"}), advance_exchange_days=14)


def advance(requested=None, *, tier="key", mode="") -> Return:
    return Return.authorize(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P1",
        ordered=ORDERED,
        authorised={},
        requested=requested or [RequestedLine("SHIRT-M", 2, exchange_sku="SHIRT-L")],
        resolution="exchange",
        at=T0,
        actor="P1",
        context=PolicyContext(currency="USD", tier=tier, settings=ADVANCE_POLICY),
        replacements=OFFERS,
        exchange_mode=mode,
    )


def test_the_mode_is_the_customers_by_policy_and_advance_only_for_its_tiers():
    assert policy.exchange_mode("", "key", ADVANCE_POLICY) == "advance"
    assert policy.exchange_mode("", "standard", ADVANCE_POLICY) == "on_receipt"
    assert policy.exchange_mode("on_receipt", "key", ADVANCE_POLICY) == "on_receipt"
    assert policy.exchange_mode("advance", "standard", ADVANCE_POLICY) is None
    assert advance().exchange_mode == "advance" and advance(tier="standard").exchange_mode == "on_receipt"
    assert authorize([RequestedLine("SHIRT-M", 1)]).exchange_mode == ""  # a refund has none
    with pytest.raises(InvalidArgument) as err:
        advance(tier="standard", mode="advance")
    assert fields(err) == [("exchange_mode", "not_exchangeable")]
    with pytest.raises(InvalidArgument) as err:
        advance(mode="overnight")
    assert fields(err) == [("exchange_mode", "unknown_mode")]


def test_an_advance_exchange_is_due_once_authorised_and_its_goods_have_a_deadline():
    ret = advance()
    assert ret.status is Status.AUTHORIZED and ret.exchange_due
    assert ret.record_exchange("ORD-2", T0, "system", ADVANCE_POLICY)
    assert ret.return_due_on == dt.date(2026, 12, 24)
    assert ret.return_due_at == dt.datetime(2026, 12, 24, 23, 59, 59, 999999, tzinfo=dt.UTC)
    with pytest.raises(FailedPrecondition):  # the replacement is out: the RMA stands
        ret.cancel(T0, "P1")


LATER = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)


def test_late_goods_are_charged_once_and_goods_in_time_never():
    ret = advance()
    ret.record_exchange("ORD-2", T0, "system", ADVANCE_POLICY)
    last_day = dt.datetime(2026, 12, 24, 23, 59, 59, tzinfo=dt.UTC)
    assert not ret.charge_unreturned(last_day, "system")  # the last day still counts
    assert ret.charge_unreturned(dt.datetime(2026, 12, 25, tzinfo=dt.UTC), "system")
    assert ret.unreturned_charge == Decimal("80.00")  # 2 x 40.00 paid
    assert [c.event_type for c in ret.changes][-1] == "return.unreturned_charged"
    assert not ret.charge_unreturned(LATER, "system")

    in_time = advance()
    in_time.record_exchange("ORD-3", T0, "system", ADVANCE_POLICY)
    in_time.receive(T0, "dock")
    assert not in_time.charge_unreturned(LATER, "system")
    on_receipt = inspected(authorize([RequestedLine("SHIRT-M", 1)], resolution="exchange"))
    on_receipt.record_exchange("ORD-4", T0, "system")
    assert on_receipt.return_due_on is None
    assert not on_receipt.charge_unreturned(LATER, "system")


def test_a_held_advance_exchange_waits_for_the_desk():
    ret = advance()
    ret.status = Status.HELD
    assert not ret.exchange_due and ret.exchange_status == AWAITING_RECEIPT


def test_the_policy_reads_the_advance_settings_from_the_environment():
    settings = policy.settings_from_env(
        {
            "ORDERDESK_RETURN_ADVANCE_EXCHANGE_TIERS": "strategic, key",
            "ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS": "7",
        }
    )
    assert settings.advance_exchange_tiers == {"strategic", "key"} and settings.advance_exchange_days == 7
    assert policy.settings_from_env({}).advance_exchange_tiers == frozenset()


def test_a_deadline_of_a_fraction_of_a_day_is_that_long_after_the_replacement():
    two_seconds = PolicySettings(advance_exchange_tiers=frozenset({"key"}), advance_exchange_days=2 / 86400)
    ret = advance()
    ret.record_exchange("ORD-2", T0, "system", two_seconds)
    assert ret.return_due_at == T0 + dt.timedelta(seconds=2) and ret.return_due_on == T0.date()
    assert not ret.charge_unreturned(T0 + dt.timedelta(seconds=2), "system")
    assert ret.charge_unreturned(T0 + dt.timedelta(seconds=2.001), "system")
    half = PolicySettings(advance_exchange_days=0.5)
    assert policy.return_due_at(T0, half) == T0 + dt.timedelta(hours=12)
    a_day = PolicySettings(advance_exchange_days=1.0)  # a whole day: its end, as for 14
    assert policy.return_due_at(T0, a_day) == dt.datetime(2026, 12, 11, 23, 59, 59, 999999, tzinfo=dt.UTC)


@pytest.mark.parametrize("text, days", [("7", 7.0), ("0.5", 0.5), (repr(2 / 86400), 2 / 86400), (" 3 ", 3.0)])
def test_the_advance_days_may_be_a_fraction(text, days):
    settings = policy.settings_from_env({"ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS": text})
    assert settings.advance_exchange_days == days
    assert policy.settings_from_env({}).advance_exchange_days == 14


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan", "inf", "1,5"])
def test_advance_days_not_above_zero_are_refused_naming_the_variable(text):
    with pytest.raises(ValueError, match="ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS"):
        policy.settings_from_env({"ORDERDESK_RETURN_ADVANCE_EXCHANGE_DAYS": text})


def test_the_deadline_check_interval_is_seconds_above_zero():
    name = "ORDERDESK_RETURN_DEADLINE_CHECK_SECONDS"
    assert policy.deadline_check_seconds({}) == 300
    assert policy.deadline_check_seconds({name: ""}) == 300
    assert policy.deadline_check_seconds({name: "0.5"}) == 0.5
    for bad in ("0", "-2", "often", "nan"):
        with pytest.raises(ValueError, match=name):
            policy.deadline_check_seconds({name: bad})
