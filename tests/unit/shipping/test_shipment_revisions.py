"""Shipments revised by order changes, carrier changes and carriers' tracking events (no I/O)."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.shipping.domain import Shipment, Status

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def shipment(status: str = "pending") -> Shipment:
    s = Shipment.create(
        at=NOW,
        shipment_id="SHP-1-WH-HAM",
        order_id="ORD-1",
        partner_id="P",
        warehouse="WH-HAM",
        lines={"A": 3},
        promised_delivery_date="2026-12-05",
    )
    for step in ("picked", "packed", "shipped", "delivered")[
        : ("pending", "picked", "packed", "shipped", "delivered").index(status)
    ]:
        s.record(step, at=NOW, actor="3pl", carrier="DHL", tracking_number="T1")
    s.changes.clear()
    return s


@pytest.mark.parametrize("status", ["pending", "picked", "packed"])
def test_lines_follow_the_order_while_in_the_warehouse(status):
    s = shipment(status)
    assert s.revise({"A": 5, "B": 0}, at=NOW, actor="P", reason="order changed")
    assert s.lines == {"A": 5} and s.status is Status(status)
    assert [c.event_name for c in s.changes] == ["updated"] and s.changes[0].version == s.version
    assert not s.revise({"A": 5}, at=NOW, actor="P", reason="again")  # nothing new


@pytest.mark.parametrize("status", ["shipped", "delivered"])
def test_goods_that_left_are_never_revised(status):
    with pytest.raises(FailedPrecondition) as refused:
        shipment(status).revise({"A": 1}, at=NOW, actor="P", reason="late")
    assert refused.value.rule == "shipment_left_warehouse"


def test_carrier_change_until_delivered():
    s = shipment("shipped")
    assert s.change_carrier("UPS", "1Z", at=NOW, actor="desk")
    assert (s.carrier, s.tracking_number) == ("UPS", "1Z") and s.changes[-1].event_name == "carrier_changed"
    assert "DHL T1 -> UPS 1Z" in s.changes[-1].reason
    assert not s.change_carrier("UPS", "1Z", at=NOW, actor="desk")
    with pytest.raises(InvalidArgument):
        s.change_carrier("UPS", "", at=NOW, actor="desk")
    with pytest.raises(FailedPrecondition):
        shipment("delivered").change_carrier("UPS", "1Z", at=NOW, actor="desk")


def test_tracking_events_only_on_a_shipped_parcel():
    with pytest.raises(FailedPrecondition) as early:
        shipment("packed").report("lost", at=NOW, actor="carrier", cause="?")
    assert early.value.rule == "tracking_needs_shipped"
    s = shipment("shipped")
    with pytest.raises(InvalidArgument):
        s.report("delayed", at=NOW, actor="carrier", cause="storm")
    assert s.report("delayed", at=NOW, actor="carrier", cause="storm", expected_delivery_date="2026-12-09")
    assert not s.report(
        "delayed", at=NOW, actor="carrier", cause="storm", expected_delivery_date="2026-12-09"
    )
    assert s.report("lost", at=NOW, actor="carrier", cause="not scanned")
    assert [c.event_name for c in s.changes] == ["delayed", "lost"] and s.status is Status.SHIPPED
    assert s.expected_delivery_date == "2026-12-09"


@pytest.mark.parametrize("status", ["pending", "packed", "shipped"])
def test_an_accepted_delay_is_the_promise_until_delivered(status):
    s = shipment(status)
    assert s.repromise("2026-12-20", at=NOW, actor="desk", reason="delay accepted (EX-1)")
    assert s.promised_delivery_date == "2026-12-20" and [c.event_name for c in s.changes] == ["updated"]
    assert "2026-12-05 -> 2026-12-20" in s.changes[0].reason
    assert not s.repromise("2026-12-20", at=NOW, actor="desk", reason="again")
    if status == "shipped":
        s.record("delivered", at=dt.datetime(2026, 12, 18, 9, tzinfo=dt.UTC), actor="carrier")
        assert s.on_time is True  # late against the first promise, on time against the accepted one
    assert not shipment("delivered").repromise("2026-12-20", at=NOW, actor="desk", reason="late")
