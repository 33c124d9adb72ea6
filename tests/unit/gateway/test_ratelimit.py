"""Token buckets per key and route class, stream slots per partner, the route classes and the settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ratelimit import (
    ADMIN,
    FEED,
    READ,
    SUBMIT,
    Limit,
    RateLimiter,
    StreamSlots,
    is_stream,
    parse_limits,
    route_class,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**limits: Limit) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    full = {SUBMIT: Limit(2, 4), READ: Limit(0, 1), FEED: Limit(1, 1), ADMIN: Limit(1, 2), **limits}
    return RateLimiter(full, clock=clock), clock


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/orders", SUBMIT),
        ("PATCH", "/v1/orders/ORD-1", SUBMIT),
        ("DELETE", "/v1/webhooks/WH-1", SUBMIT),
        ("GET", "/v1/orders/ORD-1", READ),
        ("HEAD", "/v1/shipments", READ),
        ("GET", "/v1/events", FEED),
        ("POST", "/v1/admin/import/stock", ADMIN),
        ("GET", "/v1/admin/production", ADMIN),
        ("GET", "/v1/reports/kpis", ADMIN),
    ],
)
def test_route_classes(method, path, expected):
    assert route_class(method, path) == expected


def test_a_burst_then_refusals_with_the_time_to_wait_then_refill():
    rl, clock = limiter()
    decisions = [rl.take("k", SUBMIT) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions] == [3, 2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == 1 and refused.limit == 4 and refused.reset == 2
    assert refused.policy == "4;w=2"
    assert (b"retry-after", b"1") in refused.headers()
    assert all(name != b"retry-after" for name, _ in decisions[0].headers())
    clock.now += 0.5  # one token back at 2/s
    assert rl.take("k", SUBMIT).allowed and not rl.take("k", SUBMIT).allowed


def test_keys_and_classes_have_their_own_buckets():
    rl, _ = limiter()
    for _ in range(4):
        assert rl.take("a", SUBMIT).allowed
    assert not rl.take("a", SUBMIT).allowed
    assert rl.take("b", SUBMIT).allowed  # another key: untouched
    assert rl.take("a", ADMIN).allowed  # another class of the same key: untouched


def test_an_unlimited_class_decides_nothing():
    rl, _ = limiter()
    assert all(rl.take("k", READ) is None for _ in range(100))


def test_the_table_stays_bounded_dropping_idle_buckets_first():
    clock = Clock()
    rl = RateLimiter(
        {SUBMIT: Limit(1, 1), READ: Limit(1, 1), FEED: Limit(1, 1), ADMIN: Limit(1, 1)}, 10, clock
    )
    for n in range(10):
        rl.take(n, SUBMIT)
    clock.now += 5  # all full again
    rl.take("busy", SUBMIT)
    assert len(rl._buckets) == 1
    assert not rl.take("busy", SUBMIT).allowed  # the busy key kept its (empty) bucket


@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(rate, burst, gaps):
    clock = Clock()
    limits = {c: Limit(rate, burst) for c in (SUBMIT, READ, FEED, ADMIN)}
    rl = RateLimiter(limits, clock=clock)
    allowed = 0
    for gap in gaps:
        clock.now += gap
        d = rl.take("k", SUBMIT)
        allowed += d.allowed
        assert 0 <= d.remaining <= burst and d.retry_after >= (0 if d.allowed else 1)
    assert allowed <= burst + rate * sum(gaps) + 1e-6


def test_stream_slots_per_partner():
    slots = StreamSlots(2)
    assert slots.acquire("P1") and slots.acquire("P1") and not slots.acquire("P1")
    assert slots.acquire("P2")  # another partner: its own slots
    slots.release("P1")
    assert slots.held("P1") == 1 and slots.acquire("P1")
    uncapped = StreamSlots(0)
    assert all(uncapped.acquire("P") for _ in range(100))


@pytest.mark.parametrize(
    ("method", "path", "query", "accept", "expected"),
    [
        ("GET", "/v1/events", b"after=0&wait=20", "", True),
        ("GET", "/v1/events", b"after=0", "text/event-stream", True),
        ("GET", "/v1/events", b"after=0&wait=0", "", False),
        ("GET", "/v1/events", b"after=0", "application/json", False),
        ("GET", "/v1/events", b"wait=x", "", False),
        ("GET", "/v1/orders", b"wait=5", "text/event-stream", False),
    ],
)
def test_what_is_a_stream(method, path, query, accept, expected):
    assert is_stream(method, path, query, accept) is expected


def test_settings_override_the_defaults_per_class():
    limits = parse_limits("submit=5/10, feed=0")
    assert limits[SUBMIT] == Limit(5, 10) and limits[FEED] == Limit(0, 1)
    assert limits[READ] == Limit(100, 400)
    assert parse_limits("read=2.5")[READ] == Limit(2.5, 3)


@pytest.mark.parametrize("bad", ["bogus=1/2", "submit=x/2", "submit=1/0", "submit=-1/2", "submit=nan/3"])
def test_bad_settings_name_the_part(bad):
    with pytest.raises(ValueError, match="="):
        parse_limits(bad)
