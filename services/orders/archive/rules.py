"""Which orders the archive takes: plain rules, no I/O.

A closed order (completed, cancelled or rejected: no status follows) that has not changed for
ORDERDESK_ARCHIVE_AFTER_DAYS leaves the hot tables. "Changed" is the order's last save (its
updated_at): a return refunded or a late shipment event after the order closed keeps it hot for
another period, so late events find it where they are cheapest to apply.
"""

from __future__ import annotations

import datetime as dt

from services.orders.domain import TERMINAL, Status

CLOSED: frozenset[Status] = TERMINAL
CLOSED_VALUES: tuple[str, ...] = tuple(sorted(s.value for s in CLOSED))


def cutoff(now: dt.datetime, after_days: float) -> dt.datetime | None:
    """Orders last changed before this are old enough; None: the archive is switched off (0 days)."""
    if after_days <= 0:
        return None
    return now - dt.timedelta(days=after_days)


def qualifies(status: Status | str, last_changed: dt.datetime, now: dt.datetime, after_days: float) -> bool:
    """True when the order is closed and unchanged for longer than `after_days`."""
    limit = cutoff(now, after_days)
    return limit is not None and Status(status) in CLOSED and last_changed < limit
