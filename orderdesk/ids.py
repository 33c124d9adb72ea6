"""Identifiers that begin with the time they were made, so that they sort in that order.

A random id (uuid4) scatters the rows made together across every unique index keyed by it: each commit
dirties a different leaf page per new row, and each dirty page is written whole, to SQLite's WAL (then
again by the checkpoint) or to PostgreSQL's (a full-page image after each checkpoint). An order's id keys
its row, lines, history, facts and warehouses, and in the other services its exposure, reservations,
shipments and feed; an event's id keys the outbox and every consumer's inbox. Ids that begin with the
time are added at the right edge of those indexes, a few pages per commit instead of one per row.

What the time costs: an id tells when it was made, to the millisecond. Who may see an order's id may see
its creation time anyway; the random part, not the time, is what keeps ids from being guessed.
"""

from __future__ import annotations

import secrets
import time
import uuid

_RAND_B_BITS = 62


def _millis() -> int:
    return time.time_ns() // 1_000_000


def uuid7() -> uuid.UUID:
    """A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, then 74 random bits."""
    random = secrets.randbits(74)  # one read of the system's randomness: 12 bits before the variant, 62 after
    rand_a, rand_b = random >> _RAND_B_BITS, random & ((1 << _RAND_B_BITS) - 1)
    value = (_millis() & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return uuid.UUID(int=value)


def time_ordered_hex(random_digits: int, millis: int | None = None) -> str:
    """Upper-case hex: 11 digits of Unix time in milliseconds (enough until the year 2527), then
    `random_digits` random ones. Ids made by two processes in the same millisecond differ in those.
    `millis` stands in for the clock where ids must also differ in their time within a process
    (inventory's production runs, used in id order)."""
    at = _millis() if millis is None else millis
    return f"{at:011X}{secrets.randbits(4 * random_digits):0{random_digits}X}"
