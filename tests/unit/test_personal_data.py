"""The personal data rules (orderdesk/personal_data.py): the retention rule and what erased means."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import errors, personal_data
from orderdesk.personal_data import ERASED, OrderClosure, plan, token
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2

NOW = dt.datetime(2036, 12, 3, 8, 0, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


def test_closed_orders_past_the_retention_go_and_the_others_stay_with_the_reason_and_until():
    orders = [
        OrderClosure("ORD-OLD", "completed", NOW - 2 * YEAR),
        OrderClosure("ORD-CANCELLED", "cancelled", NOW - YEAR - dt.timedelta(seconds=1)),
        OrderClosure("ORD-RECENT", "completed", NOW - dt.timedelta(days=30)),
        OrderClosure("ORD-OPEN", "allocated"),
    ]
    decided = plan(orders, now=NOW, retention=YEAR, scope="expired")
    assert decided.erase == ("ORD-CANCELLED", "ORD-OLD")
    assert [(k.order_id, k.reason) for k in decided.kept] == [
        ("ORD-OPEN", "open"),
        ("ORD-RECENT", "within_retention"),
    ]
    assert decided.kept[1].until == NOW - dt.timedelta(days=30) + YEAR
    assert not decided.whole_customer


def test_scope_all_is_refused_naming_every_order_that_stays():
    orders = [OrderClosure("ORD-OLD", "rejected", NOW - 2 * YEAR), OrderClosure("ORD-OPEN", "on_hold")]
    with pytest.raises(errors.FailedPrecondition) as refused:
        plan(orders, now=NOW, retention=YEAR, scope="all")
    assert refused.value.rule == "personal_data_retained"
    assert [(v.field, v.reason) for v in refused.value.violations] == [("orders[ORD-OPEN]", "open")]
    everything_past = plan(orders[:1], now=NOW, retention=YEAR, scope="all")
    assert everything_past.erase == ("ORD-OLD",) and everything_past.whole_customer


def test_an_unknown_scope_is_an_invalid_argument():
    with pytest.raises(errors.InvalidArgument) as bad:
        plan([], now=NOW, retention=YEAR, scope="everything")
    assert bad.value.violations[0].field == "scope"


STATUSES = ["received", "on_hold", "confirmed", "allocated", "shipped", "completed", "cancelled", "rejected"]


@given(
    st.lists(
        st.tuples(st.sampled_from(STATUSES), st.integers(min_value=0, max_value=3000)),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=2000),
)
def test_every_order_is_either_erased_or_kept_and_only_closed_ones_past_retention_go(orders, retention_days):
    closures = [
        OrderClosure(
            f"ORD-{n}", status, NOW - dt.timedelta(days=age) if status in personal_data.CLOSED else None
        )
        for n, (status, age) in enumerate(orders)
    ]
    retention = dt.timedelta(days=retention_days)
    decided = plan(closures, now=NOW, retention=retention, scope="expired")
    assert sorted([*decided.erase, *(k.order_id for k in decided.kept)]) == sorted(
        c.order_id for c in closures
    )
    by_id = {c.order_id: c for c in closures}
    for order_id in decided.erase:
        closure = by_id[order_id]
        assert closure.status in personal_data.CLOSED and closure.closed_at + retention <= NOW
    for kept in decided.kept:
        closure = by_id[kept.order_id]
        assert closure.status not in personal_data.CLOSED or closure.closed_at + retention > NOW
    if decided.kept:
        with pytest.raises(errors.FailedPrecondition):
            plan(closures, now=NOW, retention=retention, scope="all")
    else:
        assert plan(closures, now=NOW, retention=retention, scope="all") == decided


ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
    "phone": "+44 20 7946 0001",
}


def test_an_address_keeps_only_its_country_and_the_name_becomes_the_customers_token():
    found: set[str] = set()
    erased = personal_data.erase_address(ADDRESS, "C0001", found)
    assert erased == {
        "name": token("C0001"),
        "line1": ERASED,
        "city": ERASED,
        "postal_code": ERASED,
        "country": "GB",
        "phone": ERASED,
    }
    assert found == {v for k, v in ADDRESS.items() if k != "country"}
    assert token("C0001") == token("C0001") != token("C0002") and token("C0001").startswith("erased-")
    again: set[str] = set()
    assert personal_data.erase_address(erased, "C0001", again) == erased and not again  # idempotent
    assert personal_data.erase_address({"name": "A", "phone": "", "country": "DE"}, "C1")["phone"] == ""


def order_event() -> events_pb2.Event:
    order = orders_pb2.Order(
        order_id="ORD-1",
        customer_id="C0001",
        ship_to=common_pb2.Address(**ADDRESS),
        lines=[orders_pb2.OrderLine(sku="BRK-001", quantity=3, unit_price="9.50", delivered_quantity=3)],
        total_amount="28.50",
        status="completed",
        history=[common_pb2.StatusChange(status="received", reason="call Ada Lovelace on arrival")],
        changes=[
            orders_pb2.ChangeEntry(
                reason="moved to London",
                changes=[
                    orders_pb2.FieldChange(field="ship_to.city", before="Leeds", after="London"),
                    orders_pb2.FieldChange(field="ship_to.country", before="GB", after="GB"),
                    orders_pb2.FieldChange(field="lines[BRK-001].quantity", before="2", after="3"),
                ],
            )
        ],
    )
    return events_pb2.Event(
        event_id="e1",
        type="order.changed",
        order_id="ORD-1",
        reason="moved: ship_to.city: Leeds -> London",
        order=events_pb2.OrderEvent(
            status="completed",
            order=order,
            changes=[orders_pb2.FieldChange(field="ship_to.city", before="Leeds", after="London")],
        ),
    )


def test_an_event_loses_every_address_and_address_change_and_keeps_its_facts():
    event = order_event()
    found = personal_data.erase_message(event, "C0001")
    assert {"Ada Lovelace", "London", "Leeds"} <= found
    order = event.order.order
    assert order.ship_to.name == token("C0001") and order.ship_to.line1 == ERASED
    assert order.ship_to.country == "GB"
    assert [(c.before, c.after) for c in order.changes[0].changes] == [
        (ERASED, ERASED),
        ("GB", "GB"),
        ("2", "3"),
    ]
    assert (event.order.changes[0].before, event.order.changes[0].after) == (ERASED, ERASED)
    assert event.reason == f"moved: ship_to.city: {ERASED} -> {ERASED}"
    assert order.changes[0].reason == f"moved to {ERASED}"
    assert order.history[0].reason == f"call {ERASED} on arrival"
    assert (order.lines[0].quantity, order.total_amount, order.status) == (3, "28.50", "completed")
    assert not personal_data.erase_message(event, "C0001")  # a second pass changes nothing


def test_a_feed_document_is_erased_like_the_event_it_was_mapped_from():
    from google.protobuf.json_format import MessageToDict

    event = order_event()
    document = {
        "id": "e1",
        "reason": event.reason,
        "changes": MessageToDict(event.order, preserving_proto_field_name=True)["changes"],
        "data": MessageToDict(event.order.order, preserving_proto_field_name=True),
    }
    before = json.dumps(document)
    assert personal_data.erase_document(document, "C0001")
    text = json.dumps(document)
    for value in ("Ada Lovelace", "London", "Leeds", "Square", "SW1Y", "7946"):
        assert value in before and value not in text
    assert document["data"]["ship_to"]["country"] == "GB" and document["data"]["total_amount"] == "28.50"
    assert document["changes"][0] == {"field": "ship_to.city", "before": ERASED, "after": ERASED}
    assert not personal_data.erase_document(document, "C0001")


def test_the_retention_setting_defaults_to_ten_years_and_refuses_nonsense(monkeypatch):
    from orderdesk import config

    monkeypatch.delenv("ORDERDESK_PERSONAL_DATA_RETENTION_DAYS", raising=False)
    assert config.personal_data_retention_days() == 3653
    monkeypatch.setenv("ORDERDESK_PERSONAL_DATA_RETENTION_DAYS", "0.5")
    assert config.personal_data_retention_days() == 0.5
    for bad in ("-1", "ten", "inf", "nan"):
        monkeypatch.setenv("ORDERDESK_PERSONAL_DATA_RETENTION_DAYS", bad)
        with pytest.raises(ValueError, match="ORDERDESK_PERSONAL_DATA_RETENTION_DAYS"):
            config.personal_data_retention_days()


def test_a_request_names_every_missing_or_wrong_field():
    from orderdesk import erasure

    with pytest.raises(errors.InvalidArgument) as bad:
        erasure.Request.from_proto(common_pb2.EraseCustomerRequest(scope="some"))
    assert sorted(v.field for v in bad.value.violations) == ["actor.id", "customer_id", "request_id", "scope"]
    ok = erasure.Request.from_proto(
        common_pb2.EraseCustomerRequest(
            customer_id="C1",
            request_id="ER-1",
            actor=common_pb2.Actor(id="system"),
            order_ids=["A", "A", "B"],
        )
    )
    assert ok.scope == "all" and ok.order_ids == ("A", "B")


@given(
    st.fixed_dictionaries(
        {f: st.text(max_size=12) for f in ("name", "line1", "city", "postal_code", "country", "phone")}
    ),
    st.text(min_size=1, max_size=10),
)
def test_any_address_keeps_its_country_loses_every_other_value_and_a_second_pass_changes_nothing(
    address, customer
):
    found: set[str] = set()
    erased = personal_data.erase_address(address, customer, found)
    assert erased["country"] == address["country"]
    for name in personal_data.PERSONAL_ADDRESS_FIELDS:
        if not address[name]:
            assert erased[name] == ""
        else:
            assert erased[name] == (token(customer) if name == "name" else ERASED)
    again: set[str] = set()
    assert personal_data.erase_address(erased, customer, again) == erased and not again
