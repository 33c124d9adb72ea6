"""The console's formatting is babel's, kept: a kept answer must equal what babel says for the same value."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from console import i18n

NOW = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)
EDGES = [0, 0.4, 0.6, 1, 59.4, 59.6, 60, 89, 90, 3599, 3600, 5399, 5400, 86399, 86400, 86400 * 6.6]
EDGES += [86400 * 7, 86400 * 29.6, 86400 * 30, 86400 * 364, 86400 * 365, 86400 * 800]


@pytest.fixture(params=i18n.LOCALES)
def locale(request):
    token = i18n.current.set(request.param)
    yield request.param
    i18n.current.reset(token)


def test_an_age_is_babels_words_for_it_at_every_unit_edge_and_beyond(locale):
    spread = random.Random(7)
    for seconds in [*EDGES, *(spread.uniform(0, 1e8) for _ in range(3000))]:
        since = NOW - dt.timedelta(seconds=seconds)
        said = babel_dates.format_timedelta(NOW - since, threshold=1, locale=i18n.babel_locale())
        assert i18n.format_age(since, NOW) == said, seconds
        assert i18n.format_age(since, NOW) == said  # and once more, from what was kept


def test_money_numbers_and_dates_kept_are_babels_in_each_language(locale):
    for amount, currency in [("1234.50", "EUR"), ("0.10", "USD"), ("1234567", "CNY"), ("-3.5", "USD")]:
        for _ in range(2):
            assert i18n.format_money(amount, currency) == babel_numbers.format_currency(
                float(amount), currency, locale=i18n.babel_locale()
            )
    assert i18n.format_number(12345) == babel_numbers.format_decimal(12345, locale=i18n.babel_locale())
    assert i18n.format_date("2026-08-01") == babel_dates.format_date(
        dt.date(2026, 8, 1), "medium", locale=i18n.babel_locale()
    )
    assert i18n.format_date(dt.date(2026, 8, 1)) == i18n.format_date("2026-08-01")
