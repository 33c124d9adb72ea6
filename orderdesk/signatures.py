"""One HMAC signature scheme for whatever crosses orderdesk's edge: the webhooks we send (the notifier
signs) and the carrier events we receive (the gateway verifies). Plain Python, no I/O.

`<header>: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` keyed with a shared secret;
several v1= values may be sent (a sender signing with an old and a new secret while rotating). A
receiver recomputes it over the raw bytes, compares in constant time and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from orderdesk.parsing import whole_number

DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<t>.<raw body>"."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes, *older: str) -> str:
    """The header signed with `secret`, and with each of `older` too (a rotation's overlap)."""
    signed = ",".join(f"v1={signature(s, timestamp, body)}" for s in (secret, *older))
    return f"t={timestamp},{signed}"


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """The timestamp (None when absent or not a whole number) and the v1 signatures of a header."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and whole_number(value) is not None:
            timestamp = whole_number(value)
        elif key == "v1" and value:
            candidates.append(value)
    return timestamp, candidates


class Verdict(StrEnum):
    VALID = "valid"
    UNSIGNED = "unsigned"  # no header, or no timestamp or signature in it
    STALE = "stale"  # the timestamp is further from now than the tolerance
    BAD_SIGNATURE = "bad_signature"  # no v1 value matches any of the secrets


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    timestamp: int | None = None
    signature: str = ""  # the v1 value that matched (a replay sends it again)


def check(
    secrets: Iterable[str],
    header: str,
    body: bytes,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> Checked:
    """Why a signed request is refused, or VALID with what matched; any of `secrets` may have signed."""
    timestamp, candidates = parse_header(header or "")
    if timestamp is None or not candidates:
        return Checked(Verdict.UNSIGNED)
    if abs(now - timestamp) > tolerance:
        return Checked(Verdict.STALE, timestamp)
    for secret in secrets:
        expected = signature(secret, timestamp, body)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return Checked(Verdict.VALID, timestamp, expected)
    return Checked(Verdict.BAD_SIGNATURE, timestamp)


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: float = DEFAULT_TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: parse the header, check the timestamp is recent, compare in constant time."""
    return check([secret], header, body, now, tolerance).verdict is Verdict.VALID
