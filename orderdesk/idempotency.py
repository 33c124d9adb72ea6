"""Idempotency keys, the same rule for every service that takes one (intake, returns).

A key is stored with a hash of the request it came with: the same key and body replays
the first answer; the same key with another body is refused and the first answer stands.
Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orderdesk.errors import FieldViolation, InvalidArgument

MAX_KEY_LENGTH = 128


def request_hash(canonical: dict[str, Any]) -> str:
    """sha256 of a request's canonical JSON (sorted keys, no spaces), without its key.

    Values are hashed as sent, so "12.5" and "12.50" are different requests."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_key(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidArgument(
            "the Idempotency-Key is too long",
            [FieldViolation("Idempotency-Key", f"at most {MAX_KEY_LENGTH} characters", "too_long")],
        )


def key_reused(what: str) -> InvalidArgument:
    """The same key with a different body: refused, the first `what` (order, return) stands."""
    return InvalidArgument(
        f"this Idempotency-Key was already used for a different {what}; use a new key for a new {what}",
        [
            FieldViolation(
                "Idempotency-Key", "already used with another request body", "idempotency_key_reused"
            )
        ],
        reason="idempotency_key_reused",
    )
