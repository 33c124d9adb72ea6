"""An order's reservations (target state, release, shipment) and the whole book's arithmetic,
driven through the domain rules on an in-memory model of the store."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition
from services.inventory.domain import (
    OrderReservations,
    OrderState,
    ReservationPlan,
    StockBookError,
    StockLevel,
    reservation_outcome,
)


def order(held=None, shipped=None, state=OrderState.ACTIVE) -> OrderReservations:
    return OrderReservations("O1", state, dict(held or {}), dict(shipped or {}))


# --- target state ------------------------------------------------------------------------------------
def test_reserves_only_the_shortfall_beyond_what_is_held():
    o = order({("A", "WH-1"): 3})
    plan = o.plan({"A": 5}, {"A": {"WH-1": 10, "WH-2": 1}})
    assert plan == ReservationPlan(reserve=[("A", "WH-1", 2)])
    o.apply(plan)
    assert o.reservations() == [("A", "WH-1", 5)]


def test_a_repeat_changes_nothing():
    o = order()
    o.apply(o.plan({"A": 5, "B": 2}, {"A": {"WH-1": 3, "WH-2": 1}, "B": {"WH-1": 9}}))
    again = o.plan({"A": 5, "B": 2}, {"A": {"WH-1": 0, "WH-2": 0}, "B": {"WH-1": 7}})
    assert again.changes_nothing
    assert again.backordered == {"A": 1}


def test_splits_and_backorders_what_no_warehouse_has():
    plan = order().plan({"A": 9}, {"A": {"WH-CHI": 3, "WH-HAM": 4}})
    assert plan.reserve == [("A", "WH-HAM", 4), ("A", "WH-CHI", 3)]
    assert plan.backordered == {"A": 2}


def test_wanting_less_gives_back_the_smallest_reservations_first():
    o = order({("A", "WH-1"): 5, ("A", "WH-2"): 2, ("B", "WH-1"): 4})
    plan = o.plan({"A": 4, "B": 4}, {"A": {}, "B": {}})
    assert plan.release == [("A", "WH-2", 2), ("A", "WH-1", 1)]
    assert plan.reserve == [] and plan.backordered == {}


def test_a_sku_no_longer_requested_is_given_back():
    o = order({("A", "WH-1"): 5, ("B", "WH-1"): 4})
    plan = o.plan({"A": 5}, {"A": {}, "B": {}})
    assert plan.release == [("B", "WH-1", 4)]
    o.apply(plan)
    assert o.reservations() == [("A", "WH-1", 5)]


def test_shipped_units_count_towards_the_request():
    o = order({("A", "WH-2"): 2}, shipped={("A", "WH-1"): 3})
    assert o.plan({"A": 5}, {"A": {"WH-1": 10}}).changes_nothing
    assert o.plan({"A": 6}, {"A": {"WH-1": 10}}).reserve == [("A", "WH-1", 1)]
    assert o.plan({"A": 4}, {"A": {}}).release == [("A", "WH-2", 1)]  # never "un-ships"


def test_released_order_refuses_reservations():
    with pytest.raises(FailedPrecondition) as err:
        order(state=OrderState.RELEASED).plan({"A": 1}, {"A": {"WH-1": 5}})
    assert err.value.rule == "order_released"


def test_release_gives_everything_back_and_remembers():
    o = order({("B", "WH-1"): 4, ("A", "WH-2"): 1})
    assert o.release_all() == [("A", "WH-2", 1), ("B", "WH-1", 4)]
    assert o.state is OrderState.RELEASED and o.held == {}
    assert order().release_all() == []  # a cancel before any reservation still blocks later ones


def test_shipping_moves_held_to_shipped_and_consumes_the_order_at_the_end():
    o = order({("A", "WH-1"): 3, ("A", "WH-2"): 2})
    o.ship("A", "WH-1", 3)
    assert o.state is OrderState.ACTIVE and o.reservations() == [("A", "WH-2", 2)]
    with pytest.raises(StockBookError):
        o.ship("A", "WH-2", 3)  # more than held: refused, nothing changes
    assert o.reservations() == [("A", "WH-2", 2)]
    o.ship("A", "WH-2", 2)
    assert o.state is OrderState.CONSUMED and o.shipped == {("A", "WH-1"): 3, ("A", "WH-2"): 2}
    with pytest.raises(StockBookError):
        o.ship("A", "WH-1", 1)


def test_outcome_labels():
    assert reservation_outcome(ReservationPlan(), order()) == "full"
    assert reservation_outcome(ReservationPlan(backordered={"A": 1}), order({("A", "W"): 1})) == "partial"
    assert reservation_outcome(ReservationPlan(backordered={"A": 1}), order()) == "none"


# --- the whole book, through random operations -----------------------------------------------------------
SKUS = ("A", "B")
WAREHOUSES = ("WH-A", "WH-B", "WH-C")
ORDERS = ("o1", "o2", "o3", "o4", "o5")


class InMemoryInventory:
    """The store's operations with dictionaries instead of tables, through the same domain rules."""

    def __init__(self, on_hand: dict[tuple[str, str], int]):
        self.levels = {key: StockLevel(key[1], qty, 0) for key, qty in on_hand.items()}
        self.orders: dict[str, OrderReservations] = {}
        self.requested: dict[str, dict[str, int]] = {}
        self.received = 0
        self.shipped = 0
        self.counted = 0  # net change from stock counts

    def order(self, order_id: str) -> OrderReservations:
        return self.orders.setdefault(order_id, OrderReservations(order_id))

    def available(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for (sku, wh), level in self.levels.items():
            result.setdefault(sku, {})[wh] = level.available
        return result

    def reserve(self, order_id: str, wanted: dict[str, int]) -> ReservationPlan | None:
        o = self.order(order_id)
        if o.state is OrderState.RELEASED:
            with pytest.raises(FailedPrecondition):
                o.plan(wanted, self.available())
            return None
        plan = o.plan(wanted, self.available())
        for sku, wh, q in plan.release:
            self.levels[(sku, wh)] = self.levels[(sku, wh)].unreserve(q)
        for sku, wh, q in plan.reserve:
            self.levels[(sku, wh)] = self.levels[(sku, wh)].reserve(q)
        o.apply(plan)
        self.requested[order_id] = dict(wanted)
        return plan

    def cancel(self, order_id: str) -> None:
        for sku, wh, q in self.order(order_id).release_all():
            self.levels[(sku, wh)] = self.levels[(sku, wh)].unreserve(q)

    def ship(self, order_id: str, warehouse: str) -> None:
        o = self.order(order_id)
        for (sku, wh), q in sorted(o.held.items()):
            if wh == warehouse:
                o.ship(sku, wh, q)
                self.levels[(sku, wh)] = self.levels[(sku, wh)].consume(q)
                self.shipped += q

    def restock(self, sku: str, warehouse: str, q: int) -> None:
        self.levels[(sku, warehouse)] = self.levels[(sku, warehouse)].receive(q)
        self.received += q

    def count(self, sku: str, warehouse: str, on_hand: int) -> None:
        before = self.levels[(sku, warehouse)]
        try:
            self.levels[(sku, warehouse)] = before.count(on_hand)
        except StockBookError:
            assert on_hand < before.reserved  # refused only when it would undercut reservations
            return
        self.counted += on_hand - before.on_hand


wanted_lines = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 25), min_size=1)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.sampled_from(ORDERS), wanted_lines),
        st.tuples(st.just("cancel"), st.sampled_from(ORDERS), st.none()),
        st.tuples(st.just("ship"), st.sampled_from(ORDERS), st.sampled_from(WAREHOUSES)),
        st.tuples(
            st.just("restock"),
            st.tuples(st.sampled_from(SKUS), st.sampled_from(WAREHOUSES)),
            st.integers(1, 20),
        ),
        st.tuples(
            st.just("count"),
            st.tuples(st.sampled_from(SKUS), st.sampled_from(WAREHOUSES)),
            st.integers(0, 30),
        ),
    ),
    max_size=60,
)
initial_stock = st.fixed_dictionaries({(s, w): st.integers(0, 20) for s in SKUS for w in WAREHOUSES})


@settings(max_examples=300)
@given(initial_stock, operations)
def test_no_sequence_oversells_goes_negative_or_double_counts(stock, ops):
    book = InMemoryInventory(stock)
    start = sum(stock.values())
    for op, who, arg in ops:
        plan = None
        if op == "reserve":
            plan = book.reserve(who, arg)
        elif op == "cancel":
            book.cancel(who)
        elif op == "ship":
            book.ship(who, arg)
        elif op == "restock":
            book.restock(*who, arg)
        else:
            book.count(*who, arg)

        for (sku, wh), level in book.levels.items():
            assert level.on_hand >= 0 and level.reserved >= 0 and level.available >= 0
            # every reserved unit belongs to exactly one order's reservation
            assert level.reserved == sum(o.held.get((sku, wh), 0) for o in book.orders.values())
        # every unit is accounted for: what came in, minus what shipped
        assert (
            sum(lv.on_hand for lv in book.levels.values())
            == start + book.received + book.counted - book.shipped
        )
        for order_id, o in book.orders.items():
            if o.state is OrderState.RELEASED:
                assert not o.held
            for sku in SKUS:  # never more held than still wanted after what shipped
                still_wanted = max(book.requested.get(order_id, {}).get(sku, 0) - o.shipped_for(sku), 0)
                assert o.held_for(sku) <= still_wanted
        if plan is not None:
            available = book.available()
            for sku, missing in plan.backordered.items():
                assert sum(available[sku].values()) == 0  # backordered only when nothing was left
                o = book.orders[who]
                assert o.held_for(sku) + o.shipped_for(sku) + missing == arg[sku]
            assert book.order(who).plan(arg, available).changes_nothing  # a repeat is harmless
