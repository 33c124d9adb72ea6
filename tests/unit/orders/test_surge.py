"""The allocator's surge gate: hold off while orders pour in, never longer than max_defer in a row."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.orders.surge import SurgeGate


def test_a_trickle_never_holds_allocation():
    gate = SurgeGate(rate=100, max_defer=10)
    for n in range(50):
        gate.arrived(1, now=n * 0.1)  # 10 orders/s
        assert not gate.hold(now=n * 0.1)


def test_a_surge_holds_until_it_ends():
    gate = SurgeGate(rate=100, max_defer=10)
    for n in range(20):
        gate.arrived(50, now=1 + n * 0.1)  # 500 orders/s for 2 s
    assert gate.hold(now=3.0)
    assert not gate.hold(now=4.5)  # a quiet second later: the backlog is allocated


def test_a_long_surge_lets_a_pass_through_every_max_defer_seconds():
    gate = SurgeGate(rate=100, max_defer=5)
    passes = []
    for tick in range(200):  # 20 s of 500 orders/s, the allocator asking every 0.1 s
        now = tick * 0.1
        gate.arrived(50, now)
        if not gate.hold(now):
            passes.append(now)
    assert len(passes) >= 3 and all(b - a <= 5.2 for a, b in zip(passes, passes[1:], strict=False))


def test_rate_zero_never_holds_and_settings_are_checked():
    gate = SurgeGate(rate=0, max_defer=10)
    gate.arrived(10_000, now=0)
    assert not gate.hold(now=0)
    assert SurgeGate.from_env({}).rate == 100 and SurgeGate.from_env({}).max_defer == 10
    with pytest.raises(ValueError, match="SURGE_RATE"):
        SurgeGate.from_env({"ORDERDESK_ALLOCATOR_SURGE_RATE": "fast"})


@given(st.lists(st.tuples(st.floats(0, 0.5), st.integers(0, 400)), max_size=60))
def test_holding_never_lasts_longer_than_max_defer(steps):
    gate = SurgeGate(rate=100, max_defer=2)
    now, held_since = 0.0, None
    for gap, orders in steps:
        now += gap
        gate.arrived(orders, now)
        if gate.hold(now):
            held_since = now if held_since is None else held_since
            assert now - held_since < 2 + 1e-9
        else:
            held_since = None
