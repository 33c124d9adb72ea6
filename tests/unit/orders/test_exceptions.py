"""Exceptions on an order: recording, at risk, the expected date and resolutions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument, NotFound
from services.orders import exceptions as ex
from services.orders.domain import ExceptionOpened, Line, Order

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def order() -> Order:
    o = Order.receive(
        at=NOW,
        actor="P",
        hold_reasons=[],
        order_id="ORD-1",
        partner_id="P",
        channel="api",
        external_ref="PO",
        customer_id="C1",
        ship_to={},
        lines=[Line("A", 3, Decimal("1"))],
        requested_delivery_date="2026-12-01",
        payment_terms="NET30",
        currency="USD",
        priority=100,
    )
    o.transitions.clear()
    return o


def delay(eid="EX-1", date="2026-12-20", **kw) -> ex.OrderException:
    return ex.OrderException.create(
        exception_id=eid,
        type="production_delay",
        cause="press broken",
        at=NOW,
        actor="desk",
        expected_date=date,
        **kw,
    )


def test_an_open_exception_flags_the_order_at_risk_and_moves_the_date():
    o = order()
    assert not o.at_risk and ex.expected_date(o.exceptions) == ""
    v = o.version
    o.record_exception(delay())
    assert o.at_risk and o.version == v + 1 and ex.expected_date(o.exceptions) == "2026-12-20"
    assert o.events == [ExceptionOpened(o.exceptions[0], v + 1)]
    o.record_exception(delay())  # the same exception again: recorded once
    assert len(o.exceptions) == 1 and o.version == v + 1


def test_resolution_is_recorded_and_clears_the_risk():
    o = order()
    o.record_exception(delay())
    resolved = o.resolve_exception("EX-1", "accept_delay", at=NOW, actor="desk-1", note="customer agreed")
    assert (
        not o.at_risk
        and resolved.resolution.actor == "desk-1"
        and resolved.resolution.note == "customer agreed"
    )
    assert ex.expected_date(o.exceptions) == "2026-12-20"  # the delay was accepted: the date stands
    with pytest.raises(FailedPrecondition) as again:
        o.resolve_exception("EX-1", "accept_delay", at=NOW, actor="desk")
    assert again.value.rule == "exception_already_resolved"


def test_reallocation_ends_the_moved_date():
    o = order()
    o.record_exception(delay())
    o.resolve_exception("EX-1", "reallocate", at=NOW, actor="desk")
    assert ex.expected_date(o.exceptions) == ""


def test_each_type_only_takes_its_resolutions():
    o = order()
    o.record_exception(
        ex.OrderException.create(
            exception_id="EX-2",
            type="carrier_delay",
            cause="storm",
            at=NOW,
            actor="shipping",
            shipment_id="SHP-1",
        )
    )
    with pytest.raises(FailedPrecondition) as refused:
        o.resolve_exception("EX-2", "reallocate", at=NOW, actor="desk")
    assert refused.value.rule == "resolution_not_for_carrier_delay"
    with pytest.raises(InvalidArgument) as missing:
        o.resolve_exception("EX-2", "change_carrier", at=NOW, actor="desk", details={"carrier": "UPS"})
    assert [v.field for v in missing.value.violations] == ["tracking_number"]
    with pytest.raises(InvalidArgument):
        o.resolve_exception("EX-2", "teleport", at=NOW, actor="desk")
    with pytest.raises(NotFound):
        o.resolve_exception("EX-9", "accept_delay", at=NOW, actor="desk")
    assert o.at_risk


def test_substitute_needs_the_customers_consent():
    o = order()
    o.record_exception(delay())
    for details in ({"substitute_sku": "A2"}, {"substitute_sku": "A2", "customer_consent": "no"}):
        with pytest.raises(InvalidArgument) as refused:
            o.resolve_exception("EX-1", "substitute", at=NOW, actor="desk", details=details)
        assert refused.value.violations[-1].field == "customer_consent"
    o.resolve_exception(
        "EX-1",
        "substitute",
        at=NOW,
        actor="desk",
        details={"substitute_sku": "A2", "customer_consent": "email 2026-11-26 from buyer"},
    )
    assert o.exceptions[0].resolution.details["customer_consent"].startswith("email")


def test_creation_names_each_missing_field():
    with pytest.raises(InvalidArgument) as bad:
        ex.OrderException.create(
            exception_id="E",
            type="stock_shortage_at_pick",
            cause=" ",
            at=NOW,
            actor="w",
            expected_date="soon",
        )
    assert {v.field for v in bad.value.violations} == {
        "cause",
        "sku",
        "warehouse",
        "quantity",
        "expected_date",
    }
    with pytest.raises(InvalidArgument) as bad:
        ex.OrderException.create(exception_id="E", type="meteor", cause="x", at=NOW, actor="w")
    assert bad.value.violations[0].field == "type"


def test_storage_round_trip():
    e = delay(sku="A")
    e.resolve(ex.Action.SPLIT_DELIVERY, at=NOW, actor="desk", note="n", details={"first": "2"})
    assert ex.OrderException.from_json(e.to_json()) == e


@given(st.lists(st.tuples(st.sampled_from(list(ex.ExceptionType)), st.booleans()), max_size=8))
def test_at_risk_exactly_while_some_exception_is_open(plan):
    o = order()
    for n, (kind, close) in enumerate(plan):
        o.record_exception(
            ex.OrderException.create(
                exception_id=f"E{n}",
                type=kind.value,
                cause="c",
                at=NOW,
                actor="a",
                sku="A",
                warehouse="W",
                quantity=1,
                shipment_id="S",
            )
        )
        if close:
            action = sorted(ex.RESOLUTIONS[kind])[0]
            details = {
                "carrier": "UPS",
                "tracking_number": "1",
                "substitute_sku": "A2",
                "customer_consent": "yes",
            }
            o.resolve_exception(f"E{n}", action.value, at=NOW, actor="desk", details=details)
    assert o.at_risk == any(not close for _, close in plan)
