"""The order-level allocation strategy: one warehouse for the whole order, then the fewest
shipments, then the nearest by transit days; never more than available or needed."""

from __future__ import annotations

from itertools import combinations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.inventory.domain import OrderReservations, plan_order_allocation

WHS = ["WH-A", "WH-B", "WH-C", "WH-D"]


def test_one_warehouse_that_ships_the_whole_order_beats_nearer_splits():
    available = {"X": {"WH-NEAR": 5, "WH-FAR": 5}, "Y": {"WH-NEAR": 0, "WH-FAR": 5}}
    plan = plan_order_allocation({"X": 2, "Y": 2}, available, {"WH-NEAR": 1, "WH-FAR": 9})
    assert plan == [("X", "WH-FAR", 2), ("Y", "WH-FAR", 2)]


def test_among_warehouses_that_ship_everything_the_nearest_wins():
    available = {"X": {"WH-A": 9, "WH-B": 9, "WH-C": 9}}
    assert plan_order_allocation({"X": 3}, available, {"WH-A": 6, "WH-B": 2, "WH-C": 8}) == [("X", "WH-B", 3)]


def test_fewest_shipments_before_nearest():
    # A+B needs two shipments; C alone has both SKUs but is far: one shipment wins.
    available = {"X": {"WH-A": 4, "WH-C": 4}, "Y": {"WH-B": 4, "WH-C": 4}}
    transit = {"WH-A": 1, "WH-B": 1, "WH-C": 9}
    assert {w for _, w, _ in plan_order_allocation({"X": 4, "Y": 4}, available, transit)} == {"WH-C"}
    # nothing covers all in one: the two nearest that cover everything
    available = {"X": {"WH-A": 4, "WH-C": 4, "WH-D": 4}, "Y": {"WH-B": 4, "WH-D": 4}}
    transit = {"WH-A": 5, "WH-B": 1, "WH-C": 2, "WH-D": 9}
    plan = plan_order_allocation({"X": 4, "Y": 4}, available, transit)
    assert {w for _, w, _ in plan} == {"WH-D"}  # D has both: one shipment
    available["X"]["WH-D"] = 1
    plan = plan_order_allocation({"X": 4, "Y": 4}, available, transit)
    assert sorted(plan) == [("X", "WH-C", 4), ("Y", "WH-B", 4)]  # two shipments, nearest pair


def test_a_warehouse_the_order_already_ships_from_costs_no_extra_shipment():
    available = {"X": {"WH-A": 5, "WH-B": 5}}
    transit = {"WH-A": 9, "WH-B": 1}
    assert plan_order_allocation({"X": 2}, available, transit, already={"WH-A"}) == [("X", "WH-A", 2)]


def test_never_backorders_what_stock_could_cover_even_at_the_cost_of_shipments():
    available = {"X": {"WH-A": 3, "WH-B": 3, "WH-C": 3}}
    plan = plan_order_allocation({"X": 8}, available, {"WH-A": 1, "WH-B": 2, "WH-C": 3})
    assert sum(q for *_, q in plan) == 8 and {w for _, w, _ in plan} == {"WH-A", "WH-B", "WH-C"}
    assert plan == [
        ("X", "WH-A", 3),
        ("X", "WH-B", 3),
        ("X", "WH-C", 2),
    ]  # nearest first, the far one tops up


def test_reserve_plan_places_all_skus_together():
    o = OrderReservations("O1")
    plan = o.plan({"X": 2, "Y": 2}, {"X": {"WH-A": 5, "WH-B": 5}, "Y": {"WH-B": 5}}, {"WH-A": 1, "WH-B": 5})
    assert plan.reserve == [("X", "WH-B", 2), ("Y", "WH-B", 2)] and not plan.backordered


stock_maps = st.dictionaries(
    st.sampled_from(["X", "Y", "Z"]),
    st.dictionaries(st.sampled_from(WHS), st.integers(0, 12), max_size=4),
    max_size=3,
)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(["X", "Y", "Z"]), st.integers(0, 20), max_size=3),
    stock_maps,
    st.fixed_dictionaries({w: st.integers(1, 10) for w in WHS}),
    st.sets(st.sampled_from(WHS), max_size=2),
)
def test_plan_is_bounded_maximal_and_uses_the_fewest_shipments(missing, available, transit, already):
    plan = plan_order_allocation(missing, available, transit, already)
    taken: dict[tuple[str, str], int] = {}
    for sku, wh, q in plan:
        assert q > 0
        taken[(sku, wh)] = taken.get((sku, wh), 0) + q
    for (sku, wh), q in taken.items():
        assert q <= available[sku][wh]  # never more than available
    for sku, need in missing.items():
        total = sum(q for (s, _), q in taken.items() if s == sku)
        stock = sum(max(v, 0) for v in available.get(sku, {}).values())
        assert total == min(max(need, 0), stock)  # as much as stock allows, never more than needed
    # no smaller set of new warehouses could have covered as much
    used_new = {wh for _, wh, _ in plan} - already
    candidates = sorted({wh for sku in missing for wh, q in available.get(sku, {}).items() if q > 0})

    def covers(ws) -> int:
        return sum(
            min(
                max(need, 0),
                sum(available.get(sku, {}).get(w, 0) for w in ws if available.get(sku, {}).get(w, 0) > 0),
            )
            for sku, need in missing.items()
        )

    best = covers(candidates)
    for size in range(len(used_new)):
        for ws in combinations(candidates, size):
            if not set(ws) & already and covers(set(ws) | (already & set(candidates))) == best:
                # a set with fewer new warehouses covering everything must not exist
                assert len(set(ws) - already) >= len(used_new), (ws, plan)


@given(st.dictionaries(st.sampled_from(["X", "Y"]), st.integers(1, 20), min_size=1), stock_maps)
def test_plan_is_stable_whatever_the_input_order(missing, available):
    shuffled = {sku: dict(reversed(levels.items())) for sku, levels in reversed(available.items())}
    assert plan_order_allocation(missing, available) == plan_order_allocation(
        dict(reversed(missing.items())), shuffled
    )
