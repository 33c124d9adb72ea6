"""The processes' clock (orderdesk.clock): real time, or started at ORDERDESK_CLOCK_AT and running on."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk import clock, events
from orderdesk.config import Settings
from orderdesk.db import utcnow

FRIDAY = dt.datetime(2026, 12, 4, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def moved():
    clock.start_at(FRIDAY)
    yield
    clock.start_at(None)


def test_real_time_by_default():
    before = dt.datetime.now(dt.UTC)
    assert before <= clock.now() <= dt.datetime.now(dt.UTC)


def test_a_moved_clock_starts_at_the_instant_and_runs_on(moved):
    now = clock.now()
    assert FRIDAY <= now < FRIDAY + dt.timedelta(seconds=5)
    assert FRIDAY <= utcnow() < FRIDAY + dt.timedelta(seconds=5)  # what every store and rule reads
    assert events.timestamp().ToDatetime(dt.UTC) >= FRIDAY  # and every event's time
    assert clock.now() >= now


def test_processes_sharing_the_anchor_agree_also_after_a_restart():
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)  # the suite started ten minutes ago
    clock.start_at(FRIDAY, since)  # a process (re)started now
    try:
        assert FRIDAY + dt.timedelta(minutes=10) <= clock.now() < FRIDAY + dt.timedelta(minutes=10, seconds=5)
    finally:
        clock.start_at(None)


def test_the_setting_is_read_and_checked(monkeypatch):
    monkeypatch.setenv("ORDERDESK_CLOCK_AT", "2026-12-04T16:00:00+01:00")
    assert Settings.from_env("orders").clock_at == FRIDAY
    monkeypatch.setenv("ORDERDESK_CLOCK_AT", "")
    assert Settings.from_env("orders").clock_at is None
    for bad in ("tomorrow", "2026-12-04T15:00:00"):  # no offset: which zone would it be?
        monkeypatch.setenv("ORDERDESK_CLOCK_AT", bad)
        with pytest.raises(ValueError, match="ORDERDESK_CLOCK_AT"):
            Settings.from_env("orders")
    monkeypatch.setenv("ORDERDESK_CLOCK_AT", "2026-12-04T15:00:00Z")
    monkeypatch.setenv("ORDERDESK_CLOCK_SINCE", "2026-12-03T08:00:00Z")
    assert Settings.from_env("orders").clock_since == dt.datetime(2026, 12, 3, 8, tzinfo=dt.UTC)
    monkeypatch.setenv("ORDERDESK_CLOCK_SINCE", "soon")
    with pytest.raises(ValueError, match="ORDERDESK_CLOCK_SINCE"):
        Settings.from_env("orders")


def test_make_run_passes_the_clock_to_every_process_with_one_anchor(monkeypatch, tmp_path):
    from devtools.devstack import Stack

    stack = Stack(data_dir=tmp_path, nats_url="nats://127.0.0.1:1")
    assert "ORDERDESK_CLOCK_AT" not in stack.env("orders")
    monkeypatch.setenv("ORDERDESK_CLOCK_AT", "2026-12-04T15:30:00Z")
    orders, intake = stack.env("orders"), stack.env("intake")
    assert orders["ORDERDESK_CLOCK_AT"] == intake["ORDERDESK_CLOCK_AT"] == "2026-12-04T15:30:00Z"
    assert orders["ORDERDESK_CLOCK_SINCE"] == intake["ORDERDESK_CLOCK_SINCE"] == stack.started_at
