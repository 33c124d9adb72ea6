"""Ids that begin with the time they were made (orderdesk.ids): their layout, and that they sort by it."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from orderdesk import ids


@pytest.fixture
def clock(monkeypatch):
    """time.time_ns as the test sets it, in milliseconds."""
    now = {"ms": 1_790_000_000_000}
    monkeypatch.setattr(time, "time_ns", lambda: now["ms"] * 1_000_000 + 999_999)
    return now


def test_a_uuid7_carries_its_millisecond_version_and_variant(clock):
    made = ids.uuid7()
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert made.int >> 80 == clock["ms"]
    assert str(made).startswith(f"{clock['ms']:012x}"[:8] + "-")


def test_uuid7s_sort_by_the_millisecond_they_were_made_in(clock):
    made = []
    for step in range(50):
        clock["ms"] += step % 3  # some in the same millisecond, some later
        made.append(ids.uuid7())
    assert [u.int >> 80 for u in sorted(made)] == sorted(u.int >> 80 for u in made)
    assert sorted(str(u) for u in made) == [str(u) for u in sorted(made)]  # as text too, as stored


def test_uuid7s_made_in_one_millisecond_differ_in_their_random_bits(clock):
    made = {ids.uuid7() for _ in range(10_000)}
    assert len(made) == 10_000
    assert {u.int >> 80 for u in made} == {clock["ms"]}


def test_time_ordered_hex_is_eleven_digits_of_milliseconds_then_random_ones(clock):
    made = ids.time_ordered_hex(13)
    assert re.fullmatch(r"[0-9A-F]{24}", made)
    assert int(made[:11], 16) == clock["ms"]
    same_ms = {ids.time_ordered_hex(13)[11:] for _ in range(10_000)}
    assert len(same_ms) == 10_000


def test_time_ordered_hex_sorts_by_time_as_text(clock):
    earlier = [ids.time_ordered_hex(13) for _ in range(20)]
    clock["ms"] += 1
    later = [ids.time_ordered_hex(13) for _ in range(20)]
    assert max(earlier) < min(later)


def test_the_real_clock_gives_todays_millisecond():
    before = time.time_ns() // 1_000_000
    made = ids.uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= made.int >> 80 <= after


def test_a_given_millisecond_stands_in_for_the_clock(clock):
    made = ids.time_ordered_hex(8, 1_780_000_000_123)
    assert re.fullmatch(r"[0-9A-F]{19}", made)
    assert int(made[:11], 16) == 1_780_000_000_123
