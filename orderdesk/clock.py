"""The processes' clock: what "now" is for every rule and record (orderdesk.db.utcnow reads it).

Real UTC time, unless a test or a demo moves it: ORDERDESK_CLOCK_AT (an RFC 3339 instant) is what
the clock read at the real instant ORDERDESK_CLOCK_SINCE (default: when the process started), and it
runs on from there in real time (an offset: durations, timeouts and retries are unchanged). A suite
whose processes share both settings agrees on the time, also across a restart, so a test can place an
order "on a Friday before a holiday" without waiting for one. Never set in production. Webhook
signatures keep real time (a partner checks them against its own clock).
"""

from __future__ import annotations

import datetime as dt

_offset = dt.timedelta(0)


def now() -> dt.datetime:
    """The current instant (aware, UTC)."""
    return dt.datetime.now(dt.UTC) + _offset


def start_at(instant: dt.datetime | None, since: dt.datetime | None = None) -> None:
    """Moves this process's clock so that it read `instant` at the real instant `since` (default:
    now) and runs on from there; None: real time."""
    global _offset
    real = since or dt.datetime.now(dt.UTC)
    _offset = dt.timedelta(0) if instant is None else instant - real


def parse_instant(text: str, setting: str = "ORDERDESK_CLOCK_AT") -> dt.datetime | None:
    """ "" for none, else an RFC 3339 instant with its offset ("2026-12-04T15:00:00Z"); raises
    ValueError naming the setting otherwise."""
    if not text.strip():
        return None
    try:
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise ValueError(
            f"{setting}={text!r}: an RFC 3339 instant with its offset, e.g. 2026-12-04T15:00:00Z"
        )
    return instant.astimezone(dt.UTC)
