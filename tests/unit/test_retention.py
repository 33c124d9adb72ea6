"""Retention rules (orderdesk.retention): which cut-off for which setting, and the settings refused at start-up;
the notifier's replay-window rule (a feed cursor older than what is kept)."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk.retention import DAY, RetentionSettingError, RetentionSettings, inbox_floor_days
from services.notifier import domain

WEEK = 7 * DAY
WINDOW = 900.0
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def settings(**env) -> RetentionSettings:
    return RetentionSettings.from_env(
        {f"ORDERDESK_RETENTION_{k.upper()}": v for k, v in env.items()},
        stream_max_age=WEEK,
        duplicate_window=WINDOW,
    )


def test_defaults_are_safe_and_the_inbox_outlives_the_stream_twice():
    s = settings()
    assert (s.outbox_days, s.feed_days, s.webhook_attempts_days, s.idempotency_days) == (1, 14, 14, 7)
    assert (s.interval_seconds, s.batch) == (900, 1000)
    assert s.inbox_days == pytest.approx(2 * (WEEK + WINDOW) / DAY)
    # the inbox default follows the stream: a month's max age keeps inbox rows two months
    longer = RetentionSettings.from_env({}, stream_max_age=30 * DAY, duplicate_window=WINDOW)
    assert longer.inbox_days == pytest.approx(2 * (30 * DAY + WINDOW) / DAY)


def test_each_setting_gives_its_cut_off_and_zero_keeps_forever():
    s = settings(
        inbox_days="10", outbox_days="0.5", feed_days="30", webhook_attempts_days="2", idempotency_days="0"
    )
    assert s.cutoff("inbox_days", NOW) == NOW - dt.timedelta(days=10)
    assert s.cutoff("outbox_days", NOW) == NOW - dt.timedelta(hours=12)
    assert s.cutoff("feed_days", NOW) == NOW - dt.timedelta(days=30)
    assert s.cutoff("webhook_attempts_days", NOW) == NOW - dt.timedelta(days=2)
    assert s.cutoff("idempotency_days", NOW) is None


def test_an_inbox_shorter_than_the_streams_max_age_plus_window_is_refused():
    assert inbox_floor_days(WEEK, WINDOW) == pytest.approx(7 + 900 / DAY)
    with pytest.raises(RetentionSettingError) as refused:
        settings(inbox_days="7")  # the max age alone is not enough: the duplicate window comes on top
    message = str(refused.value)
    assert "ORDERDESK_RETENTION_INBOX_DAYS=7" in message and "applied twice" in message and "7.02" in message
    assert settings(inbox_days="7.011").inbox_days == 7.011
    assert settings(inbox_days="0").cutoff("inbox_days", NOW) is None  # forever is always safe


def test_a_stream_that_keeps_messages_forever_needs_an_inbox_kept_forever():
    with pytest.raises(RetentionSettingError, match="must be kept forever"):
        RetentionSettings.from_env(
            {"ORDERDESK_RETENTION_INBOX_DAYS": "365"}, stream_max_age=0, duplicate_window=WINDOW
        )
    assert RetentionSettings.from_env({}, stream_max_age=0, duplicate_window=WINDOW).inbox_days == 0


def test_idempotency_keys_are_kept_at_least_as_long_as_a_partner_may_retry():
    with pytest.raises(RetentionSettingError, match="ORDERDESK_RETENTION_IDEMPOTENCY_DAYS=0.5 is shorter"):
        settings(idempotency_days="0.5")
    assert settings(idempotency_days="1").idempotency_days == 1


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("feed_days", "-1", "not negative"),
        ("feed_days", "two", "must be a number"),
        ("outbox_days", "nan", "finite"),
        ("webhook_attempts_days", "inf", "finite"),
        ("interval_seconds", "0", "more than 0"),
        ("batch", "0", "from 1 to 100000"),
        ("batch", "1.5", "whole number"),
        ("batch", "²", "whole number"),
    ],
)
def test_unreadable_settings_are_refused_naming_the_variable(name, value, why):
    with pytest.raises(RetentionSettingError) as refused:
        settings(**{name: value})
    assert f"ORDERDESK_RETENTION_{name.upper()}={value!r}" in str(refused.value) and why in str(refused.value)


def test_every_bad_setting_is_named_at_once():
    with pytest.raises(RetentionSettingError) as refused:
        settings(batch="x", inbox_days="1", idempotency_days="0.1")
    message = str(refused.value)
    assert all(n in message for n in ("_BATCH", "_INBOX_DAYS", "_IDEMPOTENCY_DAYS"))


# --- the replay window of a partner's feed --------------------------------------------------------
@pytest.mark.parametrize(
    ("after", "head", "page", "resume"),
    [
        (0, 50, [41, 42], None),  # from the start: what is kept, nothing missed on purpose
        (40, 50, [41, 42], None),  # in the window
        (10, 50, [41, 42], 40),  # 11..40 were pruned: continue after 40
        (10, 50, [], 50),  # everything up to the head was pruned
        (50, 50, [], None),  # caught up
        (60, 50, [], None),  # ahead of the head: nothing yet
    ],
)
def test_a_cursor_older_than_what_the_feed_keeps_is_detected(after, head, page, resume):
    assert domain.expired_cursor(after, head, page) == resume


def test_the_expired_cursor_message_says_where_to_continue():
    text = domain.expired_cursor_message(10, 40, 14)
    assert "after sequence 10 are no longer kept" in text and "after=40" in text and "14 days" in text
