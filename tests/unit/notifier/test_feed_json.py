"""domain.to_dict (the feed bodies' protobuf -> JSON mapping) gives exactly what protobuf's MessageToDict
gives, for every message of the API filled with every kind of value, and domain.body the very bytes
protobuf's mapping and json.dumps give, for every kind of event (the bodies are signed: a byte apart is a
different body)."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.json_format import MessageToDict

from orderdesk.v1 import (
    common_pb2,
    events_pb2,
    intake_pb2,
    inventory_pb2,
    notifier_pb2,
    orders_pb2,
    returns_pb2,
    shipping_pb2,
)
from services.notifier import domain

MODULES = (
    common_pb2,
    events_pb2,
    intake_pb2,
    inventory_pb2,
    notifier_pb2,
    orders_pb2,
    returns_pb2,
    shipping_pb2,
)
MESSAGES = sorted(
    (getattr(module, name) for module in MODULES for name in module.DESCRIPTOR.message_types_by_name),
    key=lambda m: m.DESCRIPTOR.full_name,
)
_counter = itertools.count(1)


def sample(field):
    """A value for a scalar field, different every call (0/empty now and then: not sent at all)."""
    n = next(_counter)
    t = field.cpp_type
    if t == FieldDescriptor.CPPTYPE_STRING:
        return (
            f'v\u00e9{n}\U0001d538"<>'
            if field.type != FieldDescriptor.TYPE_BYTES
            else bytes([n % 256, 0, 255])
        )
    if t == FieldDescriptor.CPPTYPE_BOOL:
        return bool(n % 2)
    if t in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_INT32):
        return (-1) ** n * n * (10**12 if t == FieldDescriptor.CPPTYPE_INT64 else 1000)
    if t in (FieldDescriptor.CPPTYPE_UINT64, FieldDescriptor.CPPTYPE_UINT32):
        return n * 7
    if t in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
        return n / 3
    if t == FieldDescriptor.CPPTYPE_ENUM:
        return field.enum_type.values[n % len(field.enum_type.values)].number
    raise AssertionError(t)


def fill(message, depth: int = 0) -> None:
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and message.WhichOneof(field.containing_oneof.name):
            continue
        target = getattr(message, field.name)
        if field.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for i in range(2):
                    target[f"k{i}"] = sample(field.message_type.fields_by_name["value"])
            elif field.message_type.full_name == "google.protobuf.Timestamp":
                ts = target.add() if domain._repeated(field) else target
                ts.FromSeconds(1_700_000_000 + next(_counter))
            elif depth < 3:
                for _ in range(2 if domain._repeated(field) else 1):
                    fill(target.add() if domain._repeated(field) else target, depth + 1)
        elif domain._repeated(field):
            target.extend([sample(field), sample(field)])
        else:
            setattr(message, field.name, sample(field))


@pytest.mark.parametrize("message_type", MESSAGES, ids=lambda m: m.DESCRIPTOR.full_name)
def test_to_dict_is_message_to_dict(message_type):
    empty = message_type()
    assert domain.to_dict(empty) == MessageToDict(empty, preserving_proto_field_name=True)
    message = message_type()
    fill(message)
    expected = MessageToDict(message, preserving_proto_field_name=True)
    got = domain.to_dict(message)
    assert got == expected
    assert repr(got) == repr(expected)  # the same keys in the same order too: the JSON bytes are signed


@pytest.mark.parametrize(
    "holder_type", [events_pb2.OrderEvent, events_pb2.ShipmentEvent, events_pb2.ReturnEvent]
)
def test_to_dict_skips_the_aggregate_as_a_copy_without_it_would(holder_type):
    holder = holder_type()
    fill(holder)
    skip = domain._holder_fields(holder.DESCRIPTOR)[1]
    assert skip
    copy = holder_type()
    copy.CopyFrom(holder)
    for name in skip:
        copy.ClearField(name)
    expected = MessageToDict(copy, preserving_proto_field_name=True)
    assert repr(domain.to_dict(holder, skip=skip)) == repr(expected)


# --- the whole body, byte for byte ---------------------------------------------------------------------
def reference_body(event, sequence: int, order_sequence: int) -> bytes:
    """domain.body as first written, on protobuf's own mapping (MessageToDict, Timestamp.ToJsonString and
    ToDatetime) and json.dumps: what the feed's bytes must stay."""

    def as_dict(message, skip=()):
        if skip:
            copy = type(message)()
            copy.CopyFrom(message)
            for name in skip:
                copy.ClearField(name)
            message = copy
        return MessageToDict(message, preserving_proto_field_name=True)

    kind = event.WhichOneof("payload")
    holder = getattr(event, kind) if kind else None
    payload_field, aggregates = domain._holder_fields(holder.DESCRIPTOR) if kind else ("", frozenset())
    payload = (getattr(holder, payload_field) if payload_field else holder) if kind else None
    facts = as_dict(holder, aggregates) if kind else {}
    if kind == "order":
        order = event.order.order
        facts["status"] = event.order.status
        if event.order.previous_status:
            facts["previous_status"] = event.order.previous_status
        expected = (
            event.order.expected_date
            or order.exception_expected_date
            or order.expected_delivery_date
            or order.requested_delivery_date
        )
        if expected:
            facts["expected_date"] = expected
        if event.type == "order.on_hold" or event.order.status == "on_hold":
            facts["reasons"] = [as_dict(r) for r in order.hold_reasons]
    elif kind == "shipment":
        shipment = event.shipment.shipment
        facts.update(shipment_id=shipment.shipment_id, status=shipment.status)
        for name in ("carrier", "tracking_number", "promised_delivery_date", "delivered_on"):
            if getattr(shipment, name):
                facts[name] = getattr(shipment, name)
        if shipment.status == "delivered":
            facts["on_time"] = shipment.on_time
    elif kind == "return":
        ret = payload
        facts.update(rma_id=ret.rma_id, status=ret.status)
        if event.type == "return.refunded" or ret.status == "refunded":
            facts["amount"] = ret.refund_amount
        if ret.kind == "claim":
            facts["claim_reason"] = ret.claim_reason
        if ret.exchange_order_id:
            facts["exchange_order_id"] = ret.exchange_order_id
            for name in ("to_charge", "to_credit"):
                if getattr(ret, name) not in ("", "0.00"):
                    facts[name] = getattr(ret, name)
    document = {
        "id": event.event_id,
        "type": event.type,
        "sequence": sequence,
        "order_id": event.order_id,
        "order_sequence": order_sequence,
        "occurred_at": event.occurred_at.ToDatetime(dt.UTC).isoformat().replace("+00:00", "Z"),
        "actor": event.actor or None,
        "reason": event.reason or None,
        **facts,
        "data": as_dict(payload) if payload is not None else {},
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def every_kind_of_event():
    """Events of every payload kind, filled with every kind of value and left empty, in the states the
    summary tells apart (on hold, delivered, refunded, a claim, an exchange's money), at whole seconds and
    at milli-, micro- and nanosecond times."""
    variants = {
        "order": [("order.on_hold", {}), ("order.confirmed", {"status": "on_hold"}), ("order.changed", None)],
        "shipment": [("shipment.delivered", {"status": "delivered"}), ("shipment.shipped", None)],
        "return": [
            ("return.refunded", {}),
            ("return.claim_opened", {"kind": "claim"}),
            ("return.exchange_created", {"to_charge": "0.00", "to_credit": ""}),
            ("return.received", {"status": "refunded"}),
        ],
        "stock": [("stock.changed", {})],
    }
    times = [(1_700_000_000, 0), (1_700_000_001, 5_000_000), (1_700_000_002, 123_000), (1_700_000_003, 7)]
    events = [events_pb2.Event(event_id="e0", type="ping")]  # no payload at all
    for n, (kind, (event_type, overrides)) in enumerate(
        (kind, v) for kind, vs in variants.items() for v in vs
    ):
        for filled in (True, False):
            event = events_pb2.Event(event_id=f"e{n}", type=event_type, order_id="" if n % 3 else f"ORD-{n}")
            if n % 2:
                event.actor, event.reason = "desk:ann\u00e9", 'a "reason"\n'
            seconds, nanos = times[n % len(times)]
            event.occurred_at.seconds, event.occurred_at.nanos = seconds, nanos
            holder = getattr(event, kind)
            if filled:
                fill(holder)
            else:
                holder.SetInParent()
            payload_field = domain._holder_fields(holder.DESCRIPTOR)[0]
            payload = getattr(holder, payload_field) if payload_field else holder
            for name, value in (overrides or {}).items():
                setattr(payload, name, value)
            events.append(event)
    return events


@pytest.mark.parametrize("event", every_kind_of_event(), ids=lambda e: f"{e.type}-{e.event_id}")
def test_the_body_is_byte_for_byte_what_protobufs_mapping_and_json_dumps_give(event):
    expected = reference_body(event, 7, 3)
    assert domain.body(event, 7, 3) == expected
    assert domain.body(event, 7, 3, event.occurred_at.ToDatetime(dt.UTC)) == expected  # the caller's time


@pytest.mark.parametrize(
    "seconds",
    [-62135596800, -62135596799, -86401, -1, 0, 1, 951782400, 1_700_000_000, 253402300799],
)
@pytest.mark.parametrize("nanos", [0, 1, 7, 1_000, 123_000, 5_000_000, 999_000_000, 999_999_999])
def test_timestamps_map_as_protobuf_maps_them(seconds, nanos):
    timestamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert domain._timestamp_json(timestamp) == timestamp.ToJsonString()
    assert domain.utc_time(timestamp) == timestamp.ToDatetime(dt.UTC)
    assert domain.utc_time(timestamp).tzinfo is dt.UTC


@pytest.mark.parametrize("seconds, nanos", [(-62135596801, 0), (253402300800, 0), (0, -1), (0, 10**9)])
def test_an_invalid_timestamp_is_refused_as_protobuf_refuses_it(seconds, nanos):
    timestamp = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        domain._timestamp_json(timestamp)
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        domain.utc_time(timestamp)


def test_no_float_is_reachable_from_an_event():
    """domain.body encodes with orjson, whose floats are not json.dumps' (1e16, not 1e+16): the same bytes
    only while no float field can reach a body. One added to an event's messages must be mapped to what
    json.dumps gave (a string, or the body encoded with json) before this test is changed."""
    seen: set[str] = set()
    floats = []

    def walk(descriptor):
        if descriptor.full_name in seen:
            return
        seen.add(descriptor.full_name)
        for field in descriptor.fields:
            if field.cpp_type in (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT):
                floats.append(f"{descriptor.full_name}.{field.name}")
            if field.message_type is not None:
                walk(field.message_type)

    walk(events_pb2.Event.DESCRIPTOR)
    assert len(seen) > 10 and floats == []


def test_strings_of_every_kind_are_encoded_as_json_dumps_encodes_them():
    text = "".join(map(chr, range(0x3000))) + "\U0001d538\u2028\u2029\ufeff"
    event = events_pb2.Event(event_id=text, type="order.received", actor=text, reason=text, order_id="O1")
    event.order.order.partner_id = text
    event.order.order.lines.add(sku=text, quantity=-(2**31))
    expected = reference_body(event, 2**62, 1)
    assert domain.body(event, 2**62, 1) == expected
