"""Priority: which orders are served first when stock is scarce (the customer's tier, then the
urgent flag and the requested date)."""

from __future__ import annotations

import datetime as dt

TIER_RANK = {"new": 0, "standard": 1, "key": 2, "strategic": 3}
URGENCY_HORIZON_DAYS = 90
URGENT_FLOOR = 91  # urgent orders use 91..99 of their tier's hundred


def priority(tier: str, requested_delivery_date: dt.date | None, today: dt.date, urgent: bool = False) -> int:
    """Higher is served first when stock is scarce: the customer's tier, then urgency, then the date.

    priority = 100 x tier rank (new 0, standard 1, key 2, strategic 3) + urgency, where
    urgency is 0..90: 90 for a date today or already past, one less per day further
    out, 0 from 90 days on or when no date is requested. An order flagged urgent
    ranks above every non-urgent order of its tier: 91..99, still sooner dates first
    (91 + urgency x 8 / 90, rounded down). Urgency never outweighs a tier: the tier
    is a commercial promise, the flag and the date order customers within a tier.
    """
    due = urgency(requested_delivery_date, today)
    within_tier = URGENT_FLOOR + due * 8 // URGENCY_HORIZON_DAYS if urgent else due
    return 100 * TIER_RANK.get(tier, 0) + within_tier


def urgency(requested_delivery_date: dt.date | None, today: dt.date) -> int:
    if requested_delivery_date is None:
        return 0
    days_left = max((requested_delivery_date - today).days, 0)
    return max(URGENCY_HORIZON_DAYS - days_left, 0)
