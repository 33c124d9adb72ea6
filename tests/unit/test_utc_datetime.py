"""orderdesk.db.UtcDateTime binds aware datetimes as UTC (a UTC one as it is) and refuses naive ones."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import postgresql

from orderdesk.db import UtcDateTime

BIND = UtcDateTime().process_bind_param
PG = postgresql.dialect()


def test_a_utc_datetime_is_bound_as_it_is():
    at = dt.datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=dt.UTC)
    assert BIND(at, PG) is at


@pytest.mark.parametrize(
    "zone", [dt.timezone(dt.timedelta(hours=2)), ZoneInfo("UTC"), ZoneInfo("America/New_York")]
)
def test_another_zone_is_bound_as_the_same_instant_in_utc(zone):
    at = dt.datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=zone)
    bound = BIND(at, PG)
    assert bound == at
    assert bound.tzinfo is dt.UTC


def test_none_is_none_and_a_naive_datetime_is_refused():
    assert BIND(None, PG) is None
    with pytest.raises(ValueError, match="naive datetime"):
        BIND(dt.datetime(2026, 3, 1, 12), PG)
