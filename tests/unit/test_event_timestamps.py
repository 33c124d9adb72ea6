"""orderdesk.events.timestamp: the Timestamp protobuf's own FromDatetime gives the same, for any aware
instant (before the epoch too, any offset) and for a naive one (taken as local time, as before)."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import events


def from_datetime(at: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at.astimezone(dt.UTC))
    return ts


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(-dt.timedelta(hours=8))]
        ),
    )
)
def test_timestamp_is_from_datetime(at):
    assert events.timestamp(at) == from_datetime(at)


def test_a_naive_instant_and_the_default_now():
    naive = dt.datetime(2026, 12, 4, 15, 0, 0, 123456)
    assert events.timestamp(naive) == from_datetime(naive)
    assert events.timestamp(dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)) == Timestamp(
        seconds=-1, nanos=999999000
    )
