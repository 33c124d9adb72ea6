"""The promise watch's settings: defaults, values read, and every bad one named before the process starts."""

import pytest

from orderdesk.config import WatchSettings


def test_defaults_and_values():
    assert WatchSettings.from_env({}) == WatchSettings()
    read = WatchSettings.from_env(
        {
            "ORDERDESK_WATCH_LEAD_DAYS": "5",
            "ORDERDESK_WATCH_CARRIER_SILENCE_HOURS": "36",
            "ORDERDESK_WATCH_MAX_HOLD_HOURS": "4.5",
            "ORDERDESK_WATCH_BATCH": "200",
            "ORDERDESK_WATCH_WORKING_DAYS": "Sun-Thu",
        }
    )
    assert (read.lead_days, read.carrier_silence_hours, read.max_hold_hours, read.batch) == (
        5,
        36.0,
        4.5,
        200,
    )
    assert read.working_days == "Sun-Thu"


def test_bad_values_are_refused_each_named():
    with pytest.raises(ValueError) as refused:
        WatchSettings.from_env(
            {
                "ORDERDESK_WATCH_LEAD_DAYS": "three",
                "ORDERDESK_WATCH_BATCH": "0",
                "ORDERDESK_WATCH_WORKING_DAYS": "Funday",
            }
        )
    text = str(refused.value)
    assert "ORDERDESK_WATCH_LEAD_DAYS='three'" in text and "ORDERDESK_WATCH_BATCH='0'" in text
    assert "ORDERDESK_WATCH_WORKING_DAYS='Funday'" in text
