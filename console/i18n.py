"""Languages: English (the source strings) and Simplified Chinese, from gettext catalogues (Babel).

console/locale/<locale>/LC_MESSAGES/messages.po is read when the console starts (no compile step).
Templates use `_("…")` / `{% trans %}`; Python code marks a message with `_()` at the place it is
shown, or `N_()` where it is defined and translated later (form errors, refusals). `ngettext` for
plurals. Extraction: babel's extractors over console/**.py and console/templates/** (see
tests/unit/console/test_translations.py, which fails when a string has no zh_Hans translation).

Which language: the account's choice when it has one, else the console_lang cookie (the switch,
signed out), else the browser's Accept-Language, else English.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import gettext as gettext_module
import io
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

from babel import Locale
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from orderdesk import clock

LOCALE_DIR = Path(__file__).parent / "locale"
DEFAULT = "en"
LOCALES = ("en", "zh_Hans")  # the languages offered; "" on an account: follow the browser
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "简体中文"}  # each in its own language (not translated)
COOKIE = "console_lang"

current: contextvars.ContextVar[str] = contextvars.ContextVar("console_locale", default=DEFAULT)


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated where it is shown (`gettext(message)`)."""
    return message


@cache
def translations(locale: str) -> gettext_module.NullTranslations:
    if locale == DEFAULT or locale not in LOCALES:
        return gettext_module.NullTranslations()
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def load_all() -> None:
    """Reads every catalogue (at start-up: a broken one stops the console before it serves)."""
    for locale in LOCALES:
        translations(locale)


def gettext(message: str, **variables) -> str:
    text = translations(current.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = translations(current.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


# --- which language ------------------------------------------------------------------------------------------
def from_accept_language(header: str) -> str | None:
    """The best offered language for an Accept-Language header ("zh-CN,zh;q=0.9,en;q=0.8"), or None."""
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip().lower().replace("_", "-")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = _offered(tag)
        if locale and quality > 0:
            choices.append((-quality, position, locale))
    return min(choices)[2] if choices else None


def _offered(tag: str) -> str | None:
    if tag == "zh" or tag.startswith(("zh-cn", "zh-sg", "zh-hans")):
        return "zh_Hans"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def choose(account_locale: str, cookie: str, accept_language: str) -> str:
    for candidate in (account_locale, cookie):
        if candidate in LOCALES:
            return candidate
    return from_accept_language(accept_language) or DEFAULT


# --- formatting for the current language ---------------------------------------------------------------------
def babel_locale(locale: str | None = None) -> Locale:
    return _parsed(locale or current.get())


@cache
def _parsed(locale: str) -> Locale:
    """One Locale per language, parsed once: Locale.parse costs more than the formatting it serves (a page
    of 50 orders formats some 200 values)."""
    return Locale.parse(locale)


def format_datetime(value: dt.datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return babel_dates.format_datetime(value, fmt, tzinfo=dt.UTC, locale=babel_locale())


def from_timestamp(value) -> dt.datetime | None:
    """A google.protobuf.Timestamp as an aware UTC datetime; None when unset (0)."""
    if value is None or (value.seconds == 0 and value.nanos == 0):
        return None
    return value.ToDatetime(tzinfo=dt.UTC)


def format_timestamp(value, fmt: str = "medium") -> str:
    return format_datetime(from_timestamp(value), fmt)


# Dates, numbers and money are formatted through small caches: babel spends 20-100 µs on each value (a
# page of 50 orders formats some 200), and a desk meets the same dates, priorities and totals page after
# page. Each is a pure function of (value, language), so a cached answer is the same answer.
FORMATTED_KEPT = 8192


def format_date(value: dt.date | str | None, fmt: str = "medium") -> str:
    if not value:
        return ""
    return _formatted_date(value if isinstance(value, str) else value.isoformat(), fmt, current.get())


@lru_cache(maxsize=FORMATTED_KEPT)
def _formatted_date(iso: str, fmt: str, locale: str) -> str:
    return babel_dates.format_date(dt.date.fromisoformat(iso), fmt, locale=_parsed(locale))


def format_number(value: int | Decimal | str) -> str:
    return _formatted_number(str(value), current.get())


@lru_cache(maxsize=FORMATTED_KEPT)
def _formatted_number(value: str, locale: str) -> str:
    return babel_numbers.format_decimal(Decimal(value), locale=_parsed(locale))


def format_money(amount: Decimal | str, currency: str) -> str:
    if amount in ("", None):
        return ""
    return _formatted_money(str(amount), currency, current.get())


@lru_cache(maxsize=FORMATTED_KEPT)
def _formatted_money(amount: str, currency: str, locale: str) -> str:
    return babel_numbers.format_currency(Decimal(amount), currency, locale=_parsed(locale))


def format_age(since: dt.datetime, now: dt.datetime | None = None) -> str:
    """How long ago, in the current language ("3 hours"): babel's words for the largest unit with at least
    one whole of it, rounded. Kept per (unit, amount, language): the words depend on nothing else."""
    delta = (now or clock.now()) - since
    seconds = abs(delta.total_seconds())
    unit, amount = next(
        ((u, round(seconds / per)) for u, per in babel_dates.TIMEDELTA_UNITS if seconds / per >= 1),
        ("second", max(1, round(seconds)) if seconds > 0 else 0),
    )
    key = (unit, amount, current.get())
    if key not in _AGES:
        if len(_AGES) >= FORMATTED_KEPT:
            _AGES.clear()
        _AGES[key] = babel_dates.format_timedelta(delta, threshold=1, locale=babel_locale())
    return _AGES[key]


_AGES: dict[tuple[str, int, str], str] = {}
