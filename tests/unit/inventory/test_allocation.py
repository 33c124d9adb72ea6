"""The allocation strategy, the stock row's guards and the request checks, without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import InvalidArgument
from services.inventory.domain import (
    StockBookError,
    StockLevel,
    plan_allocation,
    validate_reserve_lines,
    validate_restock,
)

warehouses = st.dictionaries(
    st.sampled_from(["WH-A", "WH-B", "WH-C", "WH-D"]), st.integers(0, 50), max_size=4
)


# --- strategy -------------------------------------------------------------------------------------
def test_one_warehouse_that_covers_everything_wins_even_if_others_could_too():
    assert plan_allocation(5, {"WH-A": 5, "WH-B": 9, "WH-C": 6}) == [("WH-B", 5)]


def test_single_warehouse_is_preferred_to_a_split_from_larger_ones():
    assert plan_allocation(4, {"WH-A": 4, "WH-B": 3, "WH-C": 3}) == [("WH-A", 4)]


def test_ties_break_by_warehouse_code():
    assert plan_allocation(3, {"WH-C": 5, "WH-A": 5, "WH-B": 5}) == [("WH-A", 3)]
    assert plan_allocation(8, {"WH-C": 5, "WH-A": 5, "WH-B": 5}) == [("WH-A", 5), ("WH-B", 3)]


def test_split_takes_most_available_first():
    assert plan_allocation(10, {"WH-A": 3, "WH-B": 6, "WH-C": 2}) == [("WH-B", 6), ("WH-A", 3), ("WH-C", 1)]


def test_what_cannot_be_covered_is_left_out():
    assert plan_allocation(10, {"WH-A": 3, "WH-B": 0}) == [("WH-A", 3)]
    assert plan_allocation(4, {}) == []
    assert plan_allocation(4, {"WH-A": 0, "WH-B": -2}) == []
    assert plan_allocation(0, {"WH-A": 3}) == []


@given(st.integers(0, 200), warehouses)
def test_plan_never_exceeds_need_or_availability(needed, available):
    plan = plan_allocation(needed, available)
    assert sum(q for _, q in plan) == min(needed, sum(available.values()))
    assert all(0 < q <= available[w] for w, q in plan)
    assert len({w for w, _ in plan}) == len(plan)
    if needed > 0 and any(q >= needed for q in available.values()):
        assert len(plan) == 1  # one shipment when one warehouse can
    else:  # a split uses the fewest warehouses: every one but the last is emptied
        assert all(q == available[w] for w, q in plan[:-1])


@given(st.integers(1, 100), warehouses)
def test_plan_is_stable(needed, available):
    assert plan_allocation(needed, available) == plan_allocation(needed, dict(reversed(available.items())))


# --- one stock row's guards ----------------------------------------------------------------------------
def test_stock_level_guards():
    level = StockLevel("WH-A", on_hand=10, reserved=4)
    assert level.available == 6
    assert level.reserve(6) == StockLevel("WH-A", 10, 10)
    assert level.unreserve(4) == StockLevel("WH-A", 10, 0)
    assert level.consume(3) == StockLevel("WH-A", 7, 1)
    assert level.receive(5) == StockLevel("WH-A", 15, 4)
    assert level.count(4) == StockLevel("WH-A", 4, 4)
    for refused in (
        lambda: level.reserve(7),
        lambda: level.reserve(0),
        lambda: level.unreserve(5),
        lambda: level.consume(5),
        lambda: level.receive(0),
        lambda: level.count(3),
    ):
        with pytest.raises(StockBookError):
            refused()


# --- requests -------------------------------------------------------------------------------------------
def test_reserve_lines_are_summed_per_sku_and_validated_together():
    assert validate_reserve_lines("O1", [("A", 2), ("B", 1), ("A", 3)]) == {"A": 5, "B": 1}
    with pytest.raises(InvalidArgument) as err:
        validate_reserve_lines("", [("", 1), ("B", 0)])
    assert [v.field for v in err.value.violations] == ["order_id", "lines[0].sku", "lines[1].quantity"]
    with pytest.raises(InvalidArgument) as err:
        validate_reserve_lines("O1", [])
    assert [v.field for v in err.value.violations] == ["lines"]
    with pytest.raises(InvalidArgument) as err:
        validate_reserve_lines("O" * 41, [("S" * 65, 1)])
    assert [v.field for v in err.value.violations] == ["order_id", "lines[0].sku"]


def test_restock_request_checks():
    validate_restock("A", "WH-A", 1, "PO-1")
    with pytest.raises(InvalidArgument) as err:
        validate_restock("", "", 0, "")
    assert [v.field for v in err.value.violations] == ["sku", "warehouse", "quantity", "reference"]
    with pytest.raises(InvalidArgument) as err:
        validate_restock("A", "WH-A", 1, "x" * 201)
    assert err.value.violations[0].reason == "too_long"
