"""The rules several services share: units per SKU, address fields, idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import errors
from orderdesk.domain import ADDRESS_FIELDS, address_dict, units_per_sku
from orderdesk.idempotency import check_key, key_reused, request_hash


@dataclass
class Line:
    sku: str
    quantity: int
    delivered: int = 0


def test_units_per_sku_adds_lines_of_one_sku_in_first_seen_order():
    lines = [Line("B", 2, 1), Line("A", 1), Line("B", 3, 2)]
    assert list(units_per_sku(lines).items()) == [("B", 5), ("A", 1)]
    assert units_per_sku(lines, lambda line: line.delivered) == {"B": 3, "A": 0}


@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 50))))
def test_units_per_sku_keeps_the_total(pairs):
    lines = [Line(sku, qty) for sku, qty in pairs]
    assert sum(units_per_sku(lines).values()) == sum(qty for _, qty in pairs)


def test_address_dict_reads_mappings_and_objects_alike():
    @dataclass
    class Address:
        name: str = "Ada"
        line1: str = "1 Main St"
        city: str = "Berlin"
        postal_code: str = "10115"
        country: str = "DE"
        phone: str = ""

    assert address_dict(Address()) == address_dict(
        {
            "name": "Ada",
            "line1": "1 Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
            "extra": "x",
        }
    )
    assert tuple(address_dict({})) == ADDRESS_FIELDS


def test_request_hash_is_canonical_and_sensitive_to_values():
    assert request_hash({"a": 1, "b": ["x"]}) == request_hash({"b": ["x"], "a": 1})
    assert request_hash({"price": "12.5"}) != request_hash({"price": "12.50"})


def test_key_rules():
    check_key("k" * 128)
    with pytest.raises(errors.InvalidArgument):
        check_key("k" * 129)
    refused = key_reused("return")
    assert refused.reason == "idempotency_key_reused" and "different return" in str(refused)
