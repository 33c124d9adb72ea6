"""domain.to_dict (the feed bodies' protobuf -> JSON mapping) gives exactly what protobuf's MessageToDict
gives, for every message of the API filled with every kind of value (the bodies are signed: a byte apart is
a different body)."""

from __future__ import annotations

import itertools

import pytest
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
