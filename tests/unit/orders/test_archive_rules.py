"""Which orders the archive takes (services/orders/archive/rules.py), and its settings."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.config import ArchiveSettingError, ArchiveSettings
from services.orders.archive import rules
from services.orders.domain import Status

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_only_completed_cancelled_and_rejected_orders_are_closed():
    assert rules.CLOSED == {Status.COMPLETED, Status.CANCELLED, Status.REJECTED}
    assert rules.CLOSED_VALUES == ("cancelled", "completed", "rejected")


@pytest.mark.parametrize(
    ("status", "age_days", "expected"),
    [
        ("completed", 181, True),
        ("cancelled", 181, True),
        ("rejected", 181, True),
        ("completed", 179, False),  # closed, but changed (a return, a late event) too recently
        ("shipped", 400, False),  # still moving: never archived, however old
        ("on_hold", 400, False),
        ("scheduled", 400, False),
    ],
)
def test_closed_and_unchanged_for_the_setting(status, age_days, expected):
    assert rules.qualifies(status, NOW - age_days * DAY, NOW, 180) is expected


@given(
    status=st.sampled_from(list(Status)),
    age=st.floats(min_value=0, max_value=4000, allow_nan=False),
    after=st.floats(min_value=0, max_value=4000, allow_nan=False),
)
def test_the_rule_is_closed_and_older_than_the_cutoff(status, age, after):
    last_changed = NOW - dt.timedelta(days=age)
    taken = rules.qualifies(status, last_changed, NOW, after)
    assert taken == (after > 0 and status in rules.CLOSED and age > after + 1e-9) or (
        # float days to timedelta rounds to microseconds: only the boundary itself may go either way
        abs(age - after) < 1e-6
    )
    if after == 0:
        assert not taken and rules.cutoff(NOW, after) is None  # 0: never archive


def test_settings_defaults_and_refusals():
    assert ArchiveSettings.from_env({}) == ArchiveSettings(after_days=180, interval_seconds=3600, batch=200)
    s = ArchiveSettings.from_env(
        {
            "ORDERDESK_ARCHIVE_AFTER_DAYS": "0.5",
            "ORDERDESK_ARCHIVE_INTERVAL_SECONDS": "60",
            "ORDERDESK_ARCHIVE_BATCH": "50",
        }
    )
    assert (s.after_days, s.interval_seconds, s.batch) == (0.5, 60, 50)
    with pytest.raises(ArchiveSettingError) as refused:
        ArchiveSettings.from_env(
            {
                "ORDERDESK_ARCHIVE_AFTER_DAYS": "-1",
                "ORDERDESK_ARCHIVE_BATCH": "lots",
                "ORDERDESK_ARCHIVE_INTERVAL_SECONDS": "nan",
            }
        )
    message = str(refused.value)
    for name in (
        "ORDERDESK_ARCHIVE_AFTER_DAYS",
        "ORDERDESK_ARCHIVE_BATCH",
        "ORDERDESK_ARCHIVE_INTERVAL_SECONDS",
    ):
        assert name in message
    with pytest.raises(ArchiveSettingError, match="at most 5000"):
        ArchiveSettings.from_env({"ORDERDESK_ARCHIVE_BATCH": "100000"})
