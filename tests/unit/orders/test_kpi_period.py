"""The report's period is bounded: at most MAX_PERIOD_DAYS, longer is refused naming `from`."""

from __future__ import annotations

import datetime as dt

import pytest

from orderdesk.errors import InvalidArgument
from services.orders.kpi.rules import MAX_PERIOD_DAYS, parse_period

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)


def test_a_whole_leap_year_is_allowed():
    period = parse_period("2028-01-01", "2028-12-31", "month", NOW)
    assert period.end - period.start == dt.timedelta(days=MAX_PERIOD_DAYS) == dt.timedelta(days=366)


@pytest.mark.parametrize(
    ("start", "end"),
    [("2025-01-01", "2026-01-02"), ("2016-01-01", ""), ("2026-01-01T00:00:00Z", "2027-01-02T00:00:01Z")],
)
def test_a_longer_period_is_refused_naming_from(start, end):
    with pytest.raises(InvalidArgument) as refused:
        parse_period(start, end, "", NOW)
    (violation,) = refused.value.violations
    assert violation.field == "from" and violation.reason == "period_too_long"
    assert f"{MAX_PERIOD_DAYS} days" in violation.description
