"""The notifier's rules without I/O: signatures, retry policy, SSRF guard, endpoint input, payload mapping."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import events
from orderdesk.errors import InvalidArgument
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2, returns_pb2, shipping_pb2
from services.notifier import domain
from services.notifier.domain import Outcome, RetryPolicy

SECRET = "whsec_test_secret_0123456789"
NOW = 1_800_000_000


# --- signatures ----------------------------------------------------------------------------------
def test_the_signature_header_is_t_and_the_hex_hmac_of_t_dot_body():
    body = b'{"id":"e1","type":"order.confirmed"}'
    header = domain.signature_header(SECRET, NOW, body)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert len(expected) == 64


def test_a_receiver_verifies_the_signature_and_refuses_tampering_other_keys_and_old_timestamps():
    body = b'{"a":1}'
    header = domain.signature_header(SECRET, NOW, body)
    assert domain.verify(SECRET, header, body, now=NOW + 10)
    assert not domain.verify(SECRET, header, b'{"a":2}', now=NOW)  # body changed
    assert not domain.verify("whsec_another_secret_xxxxxx", header, body, now=NOW)  # other key
    assert not domain.verify(SECRET, header, body, now=NOW + 301)  # replayed too late
    assert not domain.verify(SECRET, header.replace(f"t={NOW}", f"t={NOW + 1}"), body, now=NOW)  # t is signed
    assert not domain.verify(SECRET, "v1=" + "0" * 64, body, now=NOW)  # no timestamp
    assert not domain.verify(SECRET, "garbage", body, now=NOW)


def test_several_v1_values_verify_while_a_secret_rotates():
    body = b"{}"
    old = domain.signature(SECRET, NOW, body)
    new = domain.signature("whsec_new_secret_0123456789", NOW, body)
    header = f"t={NOW},v1={new},v1={old}"
    assert domain.verify(SECRET, header, body, now=NOW)
    assert domain.verify("whsec_new_secret_0123456789", header, body, now=NOW)


@given(st.binary(max_size=200), st.integers(min_value=0, max_value=2**40))
def test_any_body_signed_verifies(body, t):
    assert domain.verify(SECRET, domain.signature_header(SECRET, t, body), body, now=t)


def test_generated_secrets_are_long_random_and_prefixed():
    a, b = domain.new_secret(), domain.new_secret()
    assert a != b and a.startswith("whsec_") and len(a) >= 40


# --- the retry policy ----------------------------------------------------------------------------
POLICY = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=10.0)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status):
    assert POLICY.decide(status, 1).outcome is Outcome.DELIVERED


@pytest.mark.parametrize("status", [None, 500, 502, 503, 504, 429])
def test_network_errors_5xx_and_429_are_retried_with_exponential_backoff(status):
    assert [POLICY.decide(status, n).delay for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert all(POLICY.decide(status, n).outcome is Outcome.RETRY for n in (1, 2, 3, 4))


@pytest.mark.parametrize("status", [None, 500, 429])
def test_after_the_last_attempt_the_delivery_is_parked(status):
    assert POLICY.decide(status, 5).outcome is Outcome.PARKED
    assert POLICY.decide(status, 9).outcome is Outcome.PARKED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 422, 301, 302, 307])
def test_other_4xx_and_redirects_fail_at_once_and_are_never_retried(status):
    assert POLICY.decide(status, 1) == domain.Decision(Outcome.FAILED)


def test_410_gone_disables_the_endpoint():
    assert POLICY.decide(410, 1).outcome is Outcome.GONE


def test_the_backoff_is_capped():
    assert RetryPolicy(max_attempts=30, base_delay=1.0, max_delay=10.0).decide(500, 20).delay == 10.0


def test_retry_after_is_honoured_on_429_and_503_and_capped():
    assert POLICY.decide(429, 1, retry_after=7.0) == domain.Decision(Outcome.RETRY, 7.0)
    assert POLICY.decide(503, 2, retry_after=0.0) == domain.Decision(Outcome.RETRY, 0.0)
    assert POLICY.decide(429, 1, retry_after=10**9).delay == POLICY.max_retry_after
    assert POLICY.decide(500, 1, retry_after=7.0).delay == 1.0  # only 429 and 503 carry it
    assert POLICY.decide(429, 5, retry_after=1.0).outcome is Outcome.PARKED


def test_retry_after_reads_seconds_and_http_dates():
    now = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
    assert domain.parse_retry_after("120", now) == 120.0
    assert domain.parse_retry_after("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30.0
    assert domain.parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now) == 0.0  # in the past: now
    assert domain.parse_retry_after("soon", now) is None
    assert domain.parse_retry_after(None, now) is None


# --- the SSRF guard ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "fe80::1",
        "fc00::1",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",
        "::",
        "100.64.0.1",
        "240.0.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "198.18.0.1",
    ],
)
def test_loopback_private_link_local_multicast_and_reserved_addresses_are_refused(address):
    assert domain.address_refused(address)
    assert domain.refused_targets([address])


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_are_allowed(address):
    assert domain.address_refused(address) == ""
    assert domain.refused_targets([address]) == []


def test_a_name_with_one_private_address_among_public_ones_is_refused():
    refused = domain.refused_targets(["93.184.216.34", "10.0.0.1"])
    assert refused == [("10.0.0.1", "private")]


def test_the_reason_names_the_kind_of_address():
    assert domain.address_refused("127.0.0.1") == "loopback"
    assert domain.address_refused("169.254.169.254") == "link-local"
    assert domain.address_refused("10.1.1.1") == "private"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "example.com/hook",
        "http:///nohost",
        "https://user:pw@example.com/hook",
        "https://example.com/a#frag",
        "https://example.com:99999/",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_unusable_urls_are_refused_naming_the_url_field(url):
    with pytest.raises(InvalidArgument) as caught:
        domain.check_url(url)
    assert caught.value.violations[0].field == "url"


def test_usable_urls_give_host_and_port():
    assert domain.check_url("https://hooks.example.com/orderdesk") == ("hooks.example.com", 443)
    assert domain.check_url("http://127.0.0.1:8081/in") == ("127.0.0.1", 8081)


# --- endpoint input ------------------------------------------------------------------------------
def test_event_types_are_exact_wildcards_per_aggregate_or_everything():
    assert domain.check_event_types(["order.confirmed", "shipment.*", "order.confirmed"]) == [
        "order.confirmed",
        "shipment.*",
    ]
    with pytest.raises(InvalidArgument) as caught:
        domain.check_event_types(["order.confirmed", "Order Confirmed", "order"])
    assert [v.field for v in caught.value.violations] == ["event_types[1]", "event_types[2]"]
    with pytest.raises(InvalidArgument):
        domain.check_event_types([])


def test_matching():
    assert domain.matches("order.confirmed", ["order.confirmed"])
    assert domain.matches("order.exception", ["order.*"])  # a new type flows to a wildcard
    assert domain.matches("return.refunded", ["*"])
    assert not domain.matches("order.confirmed", ["shipment.*", "order.scheduled"])


def test_secrets_given_must_be_long_enough_and_are_generated_when_absent():
    assert domain.check_secret("").startswith("whsec_")
    assert domain.check_secret("a-partner-chosen-secret") == "a-partner-chosen-secret"
    for bad in ("short", "has spaces in the secret", "x" * 201):
        with pytest.raises(InvalidArgument):
            domain.check_secret(bad)


# --- payload mapping -----------------------------------------------------------------------------
AT = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)


def order_event(type_: str, status: str, **order_fields) -> events_pb2.Event:
    order = orders_pb2.Order(order_id="ORD-1", partner_id="P-SHOP", status=status, **order_fields)
    return events.new_event(
        type_,
        aggregate_id="ORD-1",
        version=2,
        order_id="ORD-1",
        at=AT,
        actor="desk",
        order=events_pb2.OrderEvent(status=status, previous_status="received", order=order),
    )


def decoded(event, sequence=7, order_sequence=2) -> dict:
    return json.loads(domain.body(event, sequence, order_sequence))


def test_an_order_event_carries_id_type_sequences_time_and_the_order():
    event = order_event("order.confirmed", "confirmed", requested_delivery_date="2026-12-01")
    doc = decoded(event)
    assert doc["id"] == event.event_id and doc["type"] == "order.confirmed"
    assert (doc["sequence"], doc["order_sequence"], doc["order_id"]) == (7, 2, "ORD-1")
    assert doc["occurred_at"] == "2026-11-27T09:30:00Z"
    assert doc["status"] == "confirmed" and doc["previous_status"] == "received"
    assert doc["expected_date"] == "2026-12-01"
    assert doc["data"]["partner_id"] == "P-SHOP" and doc["data"]["order_id"] == "ORD-1"
    assert domain.partner_of(event) == "P-SHOP"


def test_on_hold_names_the_reasons():
    event = order_event(
        "order.on_hold",
        "on_hold",
        hold_reasons=[common_pb2.Reason(code="credit_limit", message="over the limit")],
    )
    assert decoded(event)["reasons"] == [{"code": "credit_limit", "message": "over the limit"}]


def test_shipped_carries_carrier_tracking_and_promised_date_and_delivered_on_time():
    shipment = shipping_pb2.Shipment(
        shipment_id="SHP-1",
        order_id="ORD-1",
        status="shipped",
        carrier="DHL",
        tracking_number="JD0001",
        promised_delivery_date="2026-12-02",
        partner_id="P-SHOP",
    )
    event = events.new_event(
        "shipment.shipped",
        aggregate_id="SHP-1",
        version=3,
        order_id="ORD-1",
        at=AT,
        shipment=events_pb2.ShipmentEvent(shipment=shipment),
    )
    doc = decoded(event)
    assert (doc["carrier"], doc["tracking_number"], doc["promised_delivery_date"]) == (
        "DHL",
        "JD0001",
        "2026-12-02",
    )
    assert domain.partner_of(event) == "P-SHOP"
    shipment.status, shipment.delivered_on, shipment.on_time = "delivered", "2026-12-01", True
    event = events.new_event(
        "shipment.delivered",
        aggregate_id="SHP-1",
        version=4,
        order_id="ORD-1",
        at=AT,
        shipment=events_pb2.ShipmentEvent(shipment=shipment),
    )
    doc = decoded(event)
    assert doc["on_time"] is True and doc["delivered_on"] == "2026-12-01"


def test_refunded_carries_the_amount():
    ret = returns_pb2.Return(
        rma_id="RMA-1", order_id="ORD-1", partner_id="P-SHOP", status="refunded", refund_amount="25.00"
    )
    event = events.new_event(
        "return.refunded",
        aggregate_id="RMA-1",
        version=3,
        order_id="ORD-1",
        at=AT,
        return_=events_pb2.ReturnEvent(**{"return": ret}),
    )
    doc = decoded(event)
    assert doc["amount"] == "25.00" and doc["rma_id"] == "RMA-1" and doc["data"]["refund_amount"] == "25.00"
    assert domain.partner_of(event) == "P-SHOP"


def test_exchange_created_names_the_replacement_and_the_difference():
    ret = returns_pb2.Return(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P-SHOP",
        status="refunded",
        refund_amount="0.00",
        exchange_order_id="ORD-2",
        exchange_status="created",
        to_charge="10.00",
        to_credit="0.00",
    )
    event = events.new_event(
        "return.exchange_created",
        aggregate_id="RMA-1",
        version=4,
        order_id="ORD-1",
        at=AT,
        return_=events_pb2.ReturnEvent(**{"return": ret}),
    )
    doc = decoded(event)
    assert (doc["type"], doc["order_id"], doc["rma_id"], doc["exchange_order_id"]) == (
        "return.exchange_created",
        "ORD-1",
        "RMA-1",
        "ORD-2",
    )
    assert doc["to_charge"] == "10.00" and "to_credit" not in doc
    assert doc["data"]["exchange_order_id"] == "ORD-2"


def test_a_claim_names_its_reason_and_once_resolved_its_refund():
    ret = returns_pb2.Return(
        rma_id="RMA-2",
        order_id="ORD-1",
        partner_id="P-SHOP",
        status="refunded",
        refund_amount="60.00",
        kind="claim",
        claim_reason="damaged_in_transit",
    )
    event = events.new_event(
        "return.claim_resolved",
        aggregate_id="RMA-2",
        version=2,
        order_id="ORD-1",
        at=AT,
        return_=events_pb2.ReturnEvent(**{"return": ret}),
    )
    doc = decoded(event)
    assert (doc["type"], doc["rma_id"], doc["claim_reason"], doc["amount"]) == (
        "return.claim_resolved",
        "RMA-2",
        "damaged_in_transit",
        "60.00",
    )
    assert doc["data"]["kind"] == "claim" and domain.partner_of(event) == "P-SHOP"


def test_an_event_type_nobody_mapped_flows_through_generically():
    event = order_event("order.exception", "allocated")
    doc = decoded(event)
    assert (
        doc["type"] == "order.exception"
        and doc["status"] == "allocated"
        and doc["data"]["order_id"] == "ORD-1"
    )


def test_stock_events_name_no_partner():
    event = events.new_event(
        "stock.restocked",
        aggregate_id="SKU-1",
        version=1,
        stock=events_pb2.StockEvent(sku="SKU-1", warehouse="WH", on_hand=5),
    )
    assert domain.partner_of(event) == ""


def test_the_body_is_deterministic_bytes():
    event = order_event("order.confirmed", "confirmed")
    assert domain.body(event, 1, 1) == domain.body(event, 1, 1)


def test_an_exception_carries_what_changed_and_the_new_expected_date_from_the_event():
    event = order_event("order.exception", "allocated", requested_delivery_date="2026-12-01")
    event.order.expected_date = "2026-12-09"
    event.order.changes.add(field="expected_delivery_date", before="2026-12-01", after="2026-12-09")
    doc = decoded(event)
    assert doc["expected_date"] == "2026-12-09"  # the event's, not the requested date
    assert doc["changes"] == [
        {"field": "expected_delivery_date", "before": "2026-12-01", "after": "2026-12-09"}
    ]
    assert "order" not in doc and doc["data"]["order_id"] == "ORD-1"  # the order is in data, once


def test_an_event_goes_to_its_orders_partner_as_learnt_from_the_orders_events():
    def order_event(order_id: str, partner: str):
        return events.new_event(
            "order.received",
            aggregate_id=order_id,
            version=1,
            order_id=order_id,
            order=events_pb2.OrderEvent(order=orders_pb2.Order(order_id=order_id, partner_id=partner)),
        )

    def shipment_event(order_id: str, partner: str = ""):
        shipment = shipping_pb2.Shipment(shipment_id=f"SHP-{order_id}", order_id=order_id, partner_id=partner)
        return events.new_event(
            "shipment.packed",
            aggregate_id=f"SHP-{order_id}",
            version=1,
            order_id=order_id,
            shipment=events_pb2.ShipmentEvent(shipment=shipment),
        )

    stock = events.new_event(
        "stock.restocked", aggregate_id="SKU", version=1, stock=events_pb2.StockEvent(sku="SKU")
    )
    batch = [
        order_event("ORD-N", "P-SHOP"),
        shipment_event("ORD-N"),
        shipment_event("ORD-K"),
        shipment_event("ORD-X", "P-EDI"),
        shipment_event("ORD-Y"),
        stock,
    ]
    assert domain.orders_to_look_up(batch) == {"ORD-N", "ORD-K", "ORD-X", "ORD-Y"}
    known = {"ORD-K": "P-OLD"}  # learnt before this batch
    assert [domain.feed_partner(e, known) for e in batch] == ["P-SHOP", "P-SHOP", "P-OLD", "P-EDI", "", ""]
    assert known == {"ORD-K": "P-OLD", "ORD-N": "P-SHOP"}


# --- the address table: what embeds or stands for a refused address is refused too ----------------------
@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.169.254", "link-local"),  # AWS, GCP, Azure, OpenStack metadata
        ("169.254.170.2", "link-local"),  # AWS ECS task metadata
        ("fd00:ec2::254", "link-local"),  # AWS metadata over IPv6 (a unique-local address, named as metadata)
        ("fe80::a9fe:a9fe", "link-local"),
        ("::ffff:169.254.169.254", "link-local (embedded in ::ffff:a9fe:a9fe)"),
        ("2002:a9fe:a9fe::", "link-local (embedded in 2002:a9fe:a9fe::)"),  # 6to4 of the metadata address
        ("64:ff9b::a9fe:a9fe", "link-local (embedded in 64:ff9b::a9fe:a9fe)"),  # NAT64 of it
        ("64:ff9b:1::a9fe:a9fe", "link-local (embedded in 64:ff9b:1::a9fe:a9fe)"),  # local-use NAT64
        ("2002:7f00:1::", "loopback (embedded in 2002:7f00:1::)"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private (embedded in 2002:a00:1::)"),  # 6to4 of 10.0.0.1
        ("64:ff9b::c0a8:101", "private (embedded in 64:ff9b::c0a8:101)"),  # NAT64 of 192.168.1.1
        ("::7f00:1", "loopback (embedded in ::7f00:1)"),  # IPv4-compatible 127.0.0.1
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "private (embedded in 2001:0:4136:e378:8000:63bf:3fff:fdd2)",
        ),
        ("239.1.2.3", "multicast"),
        ("ff05::1", "multicast"),
        ("240.0.0.1", "private"),
        ("2001:db8::1", "private"),  # documentation
        ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
        ("0.0.0.0", "link-local"),  # "this network": never allowed
    ],
)
def test_the_address_table(address, reason):
    assert domain.address_refused(address) == reason


@pytest.mark.parametrize("address", ["2002:5db8:d822::", "64:ff9b::5db8:d822", "::ffff:93.184.216.34"])
def test_an_embedded_public_address_is_a_public_target(address):
    assert domain.address_refused(address) == ""


def test_the_allow_list_opens_only_its_networks_and_never_metadata():
    dev = domain.parse_networks("127.0.0.0/8, ::1/128, 10.9.8.7/32")
    for allowed in ("127.0.0.1", "127.5.5.5", "::1", "10.9.8.7", "2002:7f00:1::", "::ffff:127.0.0.1"):
        assert domain.address_refused(allowed, dev) == "", allowed
    for refused in ("10.9.8.6", "192.168.1.1", "169.254.169.254", "fd00:ec2::254", "2002:a9fe:a9fe::"):
        assert domain.address_refused(refused, dev), refused
    assert domain.plain_http_allowed(["127.0.0.1", "::1"], dev)
    assert not domain.plain_http_allowed(["127.0.0.1", "93.184.216.34"], dev)
    assert not domain.plain_http_allowed(["127.0.0.1"], ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.0.0.0/0", "too broad"),
        ("::/0", "too broad"),
        ("10.0.0.0/7", "too broad"),
        ("169.254.0.0/16", "never allowed"),
        ("169.254.169.254/32", "never allowed"),
        ("fd00:ec2::/32", "never allowed"),
        ("localhost", "not a network"),
    ],
)
def test_an_allow_list_of_everything_or_of_metadata_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        domain.parse_networks(text)
