"""Signed status links: a genuine, unexpired token names its order; anything else names nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk import statuslinks
from orderdesk.config import StatusLinkSettings
from orderdesk.errors import InvalidArgument, Unavailable

SECRET = "s" * 40
NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=14)


def token(order_id: str = "ORD-1A2B3C", until: dt.datetime = LATER) -> str:
    return statuslinks.sign(order_id, until, SECRET)


def test_a_genuine_token_names_its_order_until_it_expires():
    t = token()
    assert statuslinks.verify(t, secret=SECRET, now=NOW) == "ORD-1A2B3C"
    assert statuslinks.verify(t, secret=SECRET, now=LATER - dt.timedelta(seconds=1)) == "ORD-1A2B3C"
    assert statuslinks.verify(t, secret=SECRET, now=LATER) is None  # expired at its expiry
    assert statuslinks.verify(t, secret=SECRET, now=LATER + dt.timedelta(days=300)) is None


def test_a_tampered_token_names_nothing():
    t = token()
    encoded_id, expiry, mac = t.split(".")
    other_id = statuslinks.sign("ORD-OTHER", LATER, SECRET).split(".")[0]
    later_expiry = str(int(expiry) + 86400 * 365)
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for forged in (
        f"{other_id}.{expiry}.{mac}",  # another order under this MAC
        f"{encoded_id}.{later_expiry}.{mac}",  # a longer life
        f"{encoded_id}.{expiry}.{flipped}",
        f"{encoded_id}.{expiry}.",
        f"{encoded_id}.{expiry}",
        f"{t}.x",
        t[:-3],
        "",
        "not-a-token",
        t.replace(".", "!"),
        t + "é",
    ):
        assert statuslinks.verify(forged, secret=SECRET, now=NOW) is None, forged
    assert statuslinks.verify(t, secret="t" * 40, now=NOW) is None  # another key
    assert statuslinks.verify(t, secret="", now=NOW) is None  # no key configured


@given(st.text(max_size=120))
def test_nothing_but_a_signed_token_verifies(text):
    assert statuslinks.verify(text, secret=SECRET, now=NOW) is None


@given(st.text(min_size=1, max_size=64), st.integers(min_value=1, max_value=statuslinks.MAX_DAYS))
def test_any_order_id_round_trips(order_id, days):
    until = statuslinks.expiry(days, NOW)
    assert statuslinks.verify(statuslinks.sign(order_id, until, SECRET), secret=SECRET, now=NOW) == order_id


def test_the_link_points_at_the_console_and_its_life_is_capped():
    settings = StatusLinkSettings(secret=SECRET, console_url="https://desk.example.com")
    url, until = statuslinks.link("ORD-9", None, settings=settings, now=NOW)
    assert until == NOW + dt.timedelta(days=statuslinks.DEFAULT_DAYS)
    assert url.startswith("https://desk.example.com/status/")
    assert statuslinks.verify(url.rsplit("/", 1)[1], secret=SECRET, now=NOW) == "ORD-9"
    for days in (0, -1, statuslinks.MAX_DAYS + 1):
        with pytest.raises(InvalidArgument) as refused:
            statuslinks.link("ORD-9", days, settings=settings, now=NOW)
        assert refused.value.violations[0].field == "expires_in_days"


def test_no_link_is_signed_with_a_short_or_missing_secret():
    for secret in ("", "short"):
        with pytest.raises(Unavailable):
            statuslinks.sign("ORD-1", LATER, secret)


def test_verify_reads_the_configured_secret(monkeypatch):
    tomorrow = token(until=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))  # verify reads the real clock
    monkeypatch.setenv("ORDERDESK_STATUS_LINK_SECRET", SECRET)
    assert statuslinks.verify(tomorrow) == "ORD-1A2B3C"
    monkeypatch.setenv("ORDERDESK_STATUS_LINK_SECRET", "x" * 40)
    assert statuslinks.verify(tomorrow) is None
