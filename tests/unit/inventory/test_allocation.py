"""Allocation strategy and an order's hold arithmetic, without I/O."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.inventory.domain import OrderHold, plan_allocation, validate_reserve_lines

warehouses = st.dictionaries(st.sampled_from(["WH-A", "WH-B", "WH-C", "WH-D"]), st.integers(0, 50), max_size=4)


def test_one_warehouse_that_covers_everything_wins():
    assert plan_allocation(5, {"WH-A": 4, "WH-B": 9, "WH-C": 6}) == [("WH-B", 5)]


def test_ties_break_by_warehouse_code():
    assert plan_allocation(3, {"WH-C": 5, "WH-A": 5}) == [("WH-A", 3)]


def test_split_takes_largest_first():
    assert plan_allocation(10, {"WH-A": 3, "WH-B": 6, "WH-C": 2}) == [("WH-B", 6), ("WH-A", 3), ("WH-C", 1)]


def test_shortfall_is_left_out():
    assert plan_allocation(10, {"WH-A": 3, "WH-B": 0}) == [("WH-A", 3)]
    assert plan_allocation(4, {}) == []
    assert plan_allocation(0, {"WH-A": 3}) == []


@given(st.integers(0, 200), warehouses)
def test_plan_never_exceeds_need_or_availability(needed, available):
    plan = plan_allocation(needed, available)
    assert sum(q for _, q in plan) == min(needed, sum(available.values()))
    assert all(0 < q <= available[w] for w, q in plan)
    assert len({w for w, _ in plan}) == len(plan)
    if any(q >= needed for q in available.values()) and needed > 0:
        assert len(plan) == 1  # one shipment when one warehouse can


def test_reserve_lines_are_summed_per_sku_and_validated_together():
    assert validate_reserve_lines([("A", 2), ("B", 1), ("A", 3)]) == {"A": 5, "B": 1}
    with pytest.raises(InvalidArgument) as err:
        validate_reserve_lines([("", 1), ("B", 0)])
    assert [v.field for v in err.value.violations] == ["lines[0].sku", "lines[1].quantity"]
    with pytest.raises(InvalidArgument):
        validate_reserve_lines([])


def test_released_order_refuses_reservations():
    OrderHold("O1", OrderHold.ACTIVE, {}).require_reservable()
    with pytest.raises(FailedPrecondition) as err:
        OrderHold("O1", OrderHold.RELEASED, {}).require_reservable()
    assert err.value.rule == "order_released"


def test_excess_gives_back_smallest_reservations_first():
    hold = OrderHold("O1", OrderHold.ACTIVE, {("A", "WH-1"): 5, ("A", "WH-2"): 2, ("B", "WH-1"): 4})
    assert hold.held_for("A") == 7
    assert hold.excess("A", 4) == [("WH-2", 2), ("WH-1", 1)]
    assert hold.excess("A", 7) == []
    assert hold.excess("B", 0) == [("WH-1", 4)]


class Book:
    """An in-memory stock book driven by the same rules the store applies with guarded SQL."""

    def __init__(self, stock: dict[str, int]):
        self.on_hand = dict(stock)
        self.reserved = dict.fromkeys(stock, 0)
        self.holds: dict[str, dict[str, int]] = {}

    def available(self) -> dict[str, int]:
        return {w: self.on_hand[w] - self.reserved[w] for w in self.on_hand}

    def reserve(self, order: str, qty: int) -> None:
        held = self.holds.setdefault(order, {})
        for w, q in plan_allocation(qty - sum(held.values()), self.available()):
            self.reserved[w] += q
            held[w] = held.get(w, 0) + q

    def release(self, order: str) -> None:
        for w, q in self.holds.pop(order, {}).items():
            self.reserved[w] -= q

    def consume(self, order: str) -> None:
        for w, q in self.holds.pop(order, {}).items():
            self.reserved[w] -= q
            self.on_hand[w] -= q

    def restock(self, w: str, q: int) -> None:
        self.on_hand[w] += q


ops = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from("abcde"), st.integers(1, 30)),
        st.tuples(st.just("release"), st.sampled_from("abcde"), st.just(0)),
        st.tuples(st.just("consume"), st.sampled_from("abcde"), st.just(0)),
        st.tuples(st.just("restock"), st.sampled_from(["WH-A", "WH-B", "WH-C"]), st.integers(1, 20)),
    ),
    max_size=60,
)


@given(st.fixed_dictionaries({"WH-A": st.integers(0, 30), "WH-B": st.integers(0, 30), "WH-C": st.integers(0, 30)}), ops)
def test_no_sequence_of_operations_oversells_or_double_counts(stock, operations):
    book = Book(stock)
    for op, who, qty in operations:
        if op == "reserve":
            book.reserve(who, qty)
        elif op == "release":
            book.release(who)
        elif op == "consume":
            book.consume(who)
        else:
            book.restock(who, qty)
        for w in book.on_hand:
            assert 0 <= book.reserved[w] <= book.on_hand[w]
            assert book.reserved[w] == sum(h.get(w, 0) for h in book.holds.values())
