"""Numbers read from headers, cursors and path parameters: ASCII digits only; dates and instants.

`"²".isdigit()` is true and `int("²")` raises, so `text.isdigit()` is no guard before `int()`;
`int()` on the other hand accepts other scripts' digits ("٣") and spaces. What a partner sends
in a header or cursor is a plain ASCII number or it is refused.
"""

from __future__ import annotations

import datetime as dt
import re

from orderdesk.errors import FieldViolation


def whole_number(text: str | None) -> int | None:
    """The non-negative number `text` spells in ASCII digits, else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def instant(value: str, *, end: bool = False) -> dt.datetime:
    """A date `YYYY-MM-DD` (a whole UTC day: as the end of a range it includes that day) or an RFC 3339
    instant with offset, in UTC. Raises ValueError for anything else (no offset included)."""
    value = value.strip()
    if len(value) == 10:
        day = dt.date.fromisoformat(value)
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return start + dt.timedelta(days=1) if end else start
    at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("a time needs a UTC offset")
    return at.astimezone(dt.UTC)


def time_bound(name: str, value: str, *, end: bool, violations: list[FieldViolation]) -> dt.datetime | None:
    """The bound `name` of a period as `instant` reads it (`end`: a date includes its day), or None
    when it is empty or unreadable; an unreadable one adds a violation naming `name`."""
    if not value:
        return None
    try:
        return instant(value, end=end)
    except ValueError:
        violations.append(
            FieldViolation(
                name,
                "a date YYYY-MM-DD or an RFC 3339 time with offset, e.g. 2026-11-01T00:00:00Z",
                "invalid_time",
            )
        )
        return None


# C0 controls but tab, line feed and carriage return; DEL; C1 controls (0x9b is a terminal's CSI).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Either of them, or a lone surrogate (exactly what str.encode("utf-8") refuses): one scan clears a usual text.
_SUSPECT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(text: str) -> str:
    """Why a partner's text cannot be taken ("" when it can): NUL and control characters (which reach
    terminals, logs and PostgreSQL, which refuses NUL), lone surrogates (no UTF-8 message can carry them).
    The one check of every text taken from outside: the gateway's bodies (RequestBody) and the cells of
    order sheets (orderdesk.order_sheets: the gateway's CSV, the console's uploads)."""
    if _SUSPECT.search(text) is None:  # the usual text, in one call: it runs on every text of every order
        return ""
    if match := _CONTROL.search(text):
        return f"must not contain control characters (U+{ord(match.group()):04X} found)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text must be valid Unicode (a lone surrogate was sent)"
    return ""
