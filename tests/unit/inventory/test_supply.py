"""Supply rules without I/O: fill order, production dates, promises for backorders, available to
promise, and a hypothesis model of the stock book with backorders filled on every stock rise."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from orderdesk.calendar import EVERY_DAY, Calendar
from services.inventory.domain import OrderReservations, OrderState, StockLevel, plan_order_allocation
from services.inventory.supply import (
    Backorder,
    Promise,
    Run,
    available_to_promise,
    fill_order,
    promise_backorders,
    quote,
    run_date,
    run_to_grow,
    uncovered,
)

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 26)


def bo(order_id: str, quantity: int, priority: int = 0, minutes: int = 0, sku: str = "X") -> Backorder:
    return Backorder(order_id, sku, quantity, priority, T0 + dt.timedelta(minutes=minutes))


def run(pid: str, quantity: int, days: int, warehouse: str = "WH-A") -> Run:
    return Run(pid, "X", warehouse, quantity, TODAY + dt.timedelta(days=days))


# --- fill order -----------------------------------------------------------------------------------------------
def test_fill_order_is_priority_then_first_come_then_order_id():
    items = [bo("b", 1, 1, 5), bo("a", 1, 1, 5), bo("c", 1, 9, 30), bo("d", 1, 1, 1), bo("e", 1, 9, 20)]
    assert [b.order_id for b in fill_order(items)] == ["e", "c", "d", "a", "b"]


# --- production dates -------------------------------------------------------------------------------------------
ALWAYS = Calendar(working_days=EVERY_DAY)


def test_a_run_is_due_after_the_lead_time():
    assert run_date(TODAY, 7, [], ALWAYS) == TODAY + dt.timedelta(days=7)
    assert run_date(TODAY, 0, [], ALWAYS) == TODAY
    assert run_date(TODAY, -3, [], ALWAYS) == TODAY  # a bad lead time never dates a run in the past


def test_the_lead_time_counts_the_warehouses_working_days():
    friday = dt.date(2026, 12, 4)
    closed_monday = Calendar(holidays=frozenset({dt.date(2026, 12, 7)}))
    assert run_date(friday, 1, [], closed_monday) == dt.date(2026, 12, 8)
    assert run_date(friday, 5, [], closed_monday) == dt.date(2026, 12, 14)
    assert run_date(dt.date(2026, 12, 5), 0, [], closed_monday) == dt.date(
        2026, 12, 8
    )  # made on a working day


def test_a_new_run_never_overtakes_an_open_one_of_the_sku():
    assert run_date(TODAY, 5, [run("P1", 3, 12)], ALWAYS) == TODAY + dt.timedelta(days=12)
    assert run_date(TODAY, 20, [run("P1", 3, 12)], ALWAYS) == TODAY + dt.timedelta(days=20)
    assert run_date(TODAY, 5, [run("P1", 3, 2), run("P2", 3, 9)], ALWAYS) == TODAY + dt.timedelta(days=9)


def test_a_run_makes_only_what_open_runs_do_not_cover():
    assert uncovered([bo("a", 4), bo("b", 3)], [run("P1", 5, 3)]) == 2
    assert uncovered([bo("a", 4)], [run("P1", 5, 3)]) == 0
    assert uncovered([], []) == 0


def test_backorders_are_promised_runs_in_fill_order():
    waiting = [bo("low", 3, 1), bo("high", 4, 9), bo("mid", 2, 5)]
    runs = [run("P2", 5, 10, "WH-B"), run("P1", 4, 3)]
    assert promise_backorders(waiting, runs) == {
        "high": Promise(TODAY + dt.timedelta(days=3), "WH-A"),  # P1 (4 units, day 3) covers it alone
        "mid": Promise(TODAY + dt.timedelta(days=10), "WH-B"),  # 6 owed by then: needs P2
        "low": Promise(TODAY + dt.timedelta(days=10), "WH-B"),  # 9 owed, 9 planned
    }
    assert promise_backorders([*waiting, bo("later", 1, 0)], runs)["later"] is None  # nothing planned for it
    assert promise_backorders([bo("a", 1)], []) == {"a": None}


# --- available to promise -----------------------------------------------------------------------------------------
def test_atp_without_backorders_is_stock_now_plus_runs_by_date():
    points = available_to_promise(
        TODAY, {"WH-A": 5, "WH-B": 0}, [run("P1", 4, 7, "WH-B"), run("P2", 2, 3)], 0
    )
    assert [(p.date, p.total, p.by_warehouse) for p in points] == [
        (TODAY, 5, {"WH-A": 5}),
        (TODAY + dt.timedelta(days=3), 7, {"WH-A": 7}),
        (TODAY + dt.timedelta(days=7), 11, {"WH-A": 7, "WH-B": 4}),
    ]


def test_atp_serves_backorders_from_the_earliest_supply_first():
    points = available_to_promise(TODAY, {"WH-A": 2}, [run("P1", 4, 7, "WH-B"), run("P2", 5, 9, "WH-A")], 5)
    assert [(p.date, p.total) for p in points] == [
        (TODAY, 0),
        (TODAY + dt.timedelta(days=7), 1),
        (TODAY + dt.timedelta(days=9), 6),
    ]
    assert points[-1].by_warehouse == {"WH-A": 5, "WH-B": 1}


def test_a_run_overdue_counts_as_today():
    points = available_to_promise(TODAY, {}, [run("P1", 4, -3)], 0)
    assert [(p.date, p.total) for p in points] == [(TODAY, 4)]


@given(
    st.dictionaries(st.sampled_from(["WH-A", "WH-B"]), st.integers(0, 30)),
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(-5, 40), st.sampled_from(["WH-A", "WH-B"])), max_size=5
    ),
    st.integers(0, 100),
)
def test_atp_never_promises_more_than_supply_minus_backorders_and_never_decreases(available, runs_, owed):
    runs = [run(f"P{i}", q, d, w) for i, (q, d, w) in enumerate(runs_)]
    points = available_to_promise(TODAY, available, runs, owed)
    assert points[0].date == TODAY
    for before, after in zip(points, points[1:], strict=False):
        assert before.date < after.date and before.total <= after.total
    for p in points:
        supply = sum(available.values()) + sum(
            r.quantity for r in runs if max(r.expected_date, TODAY) <= p.date
        )
        assert p.total == max(supply - owed, 0)
        assert p.total == sum(p.by_warehouse.values()) and all(q >= 0 for q in p.by_warehouse.values())


# --- the stock book with backorders, through random operations ---------------------------------------------------
SKUS = ("X", "Y")
WAREHOUSES = ("WH-A", "WH-B", "WH-C")
ORDERS = ("o1", "o2", "o3", "o4")
TRANSIT = {"WH-A": 2, "WH-B": 5, "WH-C": 9}


class Book:
    """Inventory's reserve / release / receive / consume and the fill on every stock rise,
    with dictionaries for tables and the same rules the service applies."""

    def __init__(self, on_hand: dict[tuple[str, str], int]):
        self.levels = {k: StockLevel(k[1], q, 0) for k, q in on_hand.items()}
        self.orders: dict[str, OrderReservations] = {}
        self.wanted: dict[str, dict[str, int]] = {}
        self.missing: dict[tuple[str, str], int] = {}  # (order, sku) -> backordered
        self.placed: dict[str, int] = {}
        self.came_in = sum(on_hand.values())
        self.went_out = 0

    def available(self, sku: str) -> dict[str, int]:
        return {wh: lv.available for (s, wh), lv in self.levels.items() if s == sku}

    def reserve(self, order_id: str, wanted: dict[str, int], priority: int) -> None:
        o = self.orders.setdefault(order_id, OrderReservations(order_id))
        if o.state is OrderState.RELEASED:
            return
        o.priority = priority
        self.placed.setdefault(order_id, len(self.placed))
        plan = o.plan(wanted, {s: self.available(s) for s in SKUS}, TRANSIT)
        for sku, wh, q in plan.release:
            self.levels[(sku, wh)] = self.levels[(sku, wh)].unreserve(q)
        for sku, wh, q in plan.reserve:
            self.levels[(sku, wh)] = self.levels[(sku, wh)].reserve(q)
        o.apply(plan)
        self.wanted[order_id] = dict(wanted)
        for sku in SKUS:
            self.missing.pop((order_id, sku), None)
        self.missing.update({(order_id, sku): q for sku, q in plan.backordered.items()})

    def fill(self, sku: str) -> None:
        waiting = [
            Backorder(o, s, q, self.orders[o].priority, T0 + dt.timedelta(seconds=self.placed[o]))
            for (o, s), q in self.missing.items()
            if s == sku and self.orders[o].state is not OrderState.RELEASED
        ]
        left_short = False
        for b in fill_order(waiting):
            o = self.orders[b.order_id]
            already = {wh for (_, wh), q in o.held.items() if q}
            plan = plan_order_allocation({sku: b.quantity}, {sku: self.available(sku)}, TRANSIT, already)
            assert not (left_short and plan), "a later backorder got units while an earlier one stayed short"
            left_short = left_short or sum(q for *_, q in plan) < b.quantity
            for s, wh, q in plan:
                self.levels[(s, wh)] = self.levels[(s, wh)].reserve(q)
                o.held[(s, wh)] = o.held.get((s, wh), 0) + q
                self.missing[(b.order_id, sku)] -= q
                if o.state is OrderState.CONSUMED:
                    o.state = OrderState.ACTIVE
            if not self.missing[(b.order_id, sku)]:
                del self.missing[(b.order_id, sku)]
        # after a fill: whatever is still backordered, nothing of the SKU is left to give
        if any(s == sku for (_, s) in self.missing):
            assert sum(self.available(sku).values()) == 0

    def release(self, order_id: str) -> None:
        o = self.orders.setdefault(order_id, OrderReservations(order_id))
        given = o.release_all()
        for key in [k for k in self.missing if k[0] == order_id]:
            del self.missing[key]
        for sku, wh, q in given:
            self.levels[(sku, wh)] = self.levels[(sku, wh)].unreserve(q)
        for sku in sorted({s for s, _, _ in given}):
            self.fill(sku)

    def receive(self, sku: str, wh: str, q: int) -> None:
        self.levels[(sku, wh)] = self.levels[(sku, wh)].receive(q)
        self.came_in += q
        self.fill(sku)

    def ship(self, order_id: str, wh: str) -> None:
        o = self.orders.get(order_id)
        if o is None:
            return
        for (sku, w), q in sorted(o.held.items()):
            if w == wh:
                o.ship(sku, w, q)
                self.levels[(sku, w)] = self.levels[(sku, w)].consume(q)
                self.went_out += q


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("reserve"),
            st.sampled_from(ORDERS),
            st.tuples(
                st.dictionaries(st.sampled_from(SKUS), st.integers(1, 15), min_size=1), st.integers(0, 3)
            ),
        ),
        st.tuples(st.just("release"), st.sampled_from(ORDERS), st.none()),
        st.tuples(
            st.just("receive"),
            st.tuples(st.sampled_from(SKUS), st.sampled_from(WAREHOUSES)),
            st.integers(1, 12),
        ),
        st.tuples(st.just("ship"), st.sampled_from(ORDERS), st.sampled_from(WAREHOUSES)),
    ),
    max_size=50,
)


@settings(max_examples=300)
@given(st.fixed_dictionaries({(s, w): st.integers(0, 8) for s in SKUS for w in WAREHOUSES}), ops)
def test_no_sequence_of_reserve_release_receive_and_consume_goes_negative_or_double_counts(stock, operations):
    book = Book(stock)
    for op, who, arg in operations:
        if op == "reserve":
            book.reserve(who, *arg)
        elif op == "release":
            book.release(who)
        elif op == "receive":
            book.receive(*who, arg)
        else:
            book.ship(who, arg)
        for (sku, wh), lv in book.levels.items():
            assert lv.on_hand >= 0 and lv.reserved >= 0 and lv.available >= 0
            assert lv.reserved == sum(o.held.get((sku, wh), 0) for o in book.orders.values())  # counted once
        assert sum(lv.on_hand for lv in book.levels.values()) == book.came_in - book.went_out
        for order_id, o in book.orders.items():
            for sku in SKUS:
                if o.state is OrderState.RELEASED:
                    assert not o.held and (order_id, sku) not in book.missing
                    continue
                wanted = book.wanted.get(order_id, {}).get(sku, 0)
                # every unit an order asked for is held, shipped or backordered, exactly once
                assert o.held_for(sku) + book.missing.get((order_id, sku), 0) == max(
                    wanted - o.shipped_for(sku), 0
                )


# --- quotes (intake's delivery-date check) ---------------------------------------------------------------------
def test_a_quote_comes_from_the_open_runs_when_they_cover_every_backorder_and_the_new_units():
    runs = [run("P1", 5, 3, "WH-A"), run("P2", 4, 8, "WH-B"), run("P3", 4, 8, "WH-C")]
    new_run = Promise(TODAY + dt.timedelta(days=20), "WH-A")
    # 3 owed: 2 more are still in the first run; 3 more need the runs of day 8
    assert quote(3, 2, runs, new_run) == Promise(TODAY + dt.timedelta(days=3), "WH-A")
    # of the runs due that day, the one nearest the ship-to
    assert quote(3, 3, runs, new_run, {"WH-B": 6, "WH-C": 2}) == Promise(TODAY + dt.timedelta(days=8), "WH-C")
    assert quote(3, 3, runs, new_run, {"WH-B": 2, "WH-C": 6}) == Promise(TODAY + dt.timedelta(days=8), "WH-B")
    # beyond what is planned: the run Reserve would plan, or nothing when it cannot plan one
    assert quote(3, 11, runs, new_run) == new_run
    assert quote(3, 11, runs, None) is None
    assert quote(0, 1, [], new_run) == new_run


@given(
    owed=st.integers(0, 30),
    quantity=st.integers(1, 30),
    sizes=st.lists(st.tuples(st.integers(1, 10), st.integers(0, 20)), max_size=5),
)
def test_a_quote_is_what_reserve_then_promises(owed, quantity, sizes):
    """The quoted date is the covering run's for the order placed last (what Reserve promises it),
    and never before what the earlier backorders are promised."""
    runs = sorted(
        (run(f"P{i}", q, d) for i, (q, d) in enumerate(sizes)),
        key=lambda r: (r.expected_date, r.production_id),
    )
    new_run = Promise(TODAY + dt.timedelta(days=25), "WH-A")
    quoted = quote(owed, quantity, runs, new_run)
    assert quoted is not None
    short = owed + quantity - sum(r.quantity for r in runs)  # what Reserve's new run makes
    planned = runs + ([Run("NEW", "X", "WH-A", short, new_run.date)] if short > 0 else [])
    backorders = [bo("new", quantity, minutes=2)] + ([bo("earlier", owed, minutes=1)] if owed else [])
    assert promise_backorders(backorders, planned)["new"].date == quoted.date


def test_a_shortfall_grows_the_run_of_its_day_and_warehouse_wherever_it_is_in_the_queue():
    runs = [run("P1", 5, days=3, warehouse="WH-A"), run("P2", 4, days=3, warehouse="WH-B")]
    assert run_to_grow(runs, TODAY + dt.timedelta(days=3), "WH-A") == 0  # not only the last run
    assert run_to_grow(runs, TODAY + dt.timedelta(days=3), "WH-B") == 1
    assert run_to_grow(runs, TODAY + dt.timedelta(days=4), "WH-A") is None  # another day: a new run
    assert run_to_grow(runs, TODAY + dt.timedelta(days=3), "WH-C") is None
    assert run_to_grow([], TODAY, "WH-A") is None


def test_production_ids_sort_in_creation_order_within_one_millisecond(monkeypatch):
    """A batch plans several runs in one millisecond; runs of one date are used in id order, so the ids
    must still sort as they were made (a random tie-break made a batch's promises differ from Reserve's)."""
    import time

    from services.inventory import service

    monkeypatch.setattr(time, "time", lambda: 1_780_000_000.0)  # a clock that does not move
    made = [service.new_production_id() for _ in range(200)]
    assert made == sorted(made) and len(set(made)) == len(made)
