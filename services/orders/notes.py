"""The desk's notes on an order. Plain Python.

A note is `internal` (for the desk only: never in the order partners read, never in an event) or
`customer` (a message to the customer: published as `order.message`, so it reaches the partner's feed
and webhooks). Each is kept with who wrote it (orderdesk/actors.py) and when, and the order's version
it made (a note is a change of the order, guarded by its version like any other).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from orderdesk.errors import FieldViolation, InvalidArgument

MAX_NOTE_CHARS = 2000


class Visibility(StrEnum):
    INTERNAL = "internal"
    CUSTOMER = "customer"


@dataclass(frozen=True)
class Note:
    note_id: str
    at: dt.datetime
    actor: str
    visibility: Visibility
    text: str
    version: int

    def to_json(self) -> dict:
        return {
            "note_id": self.note_id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "visibility": self.visibility.value,
            "text": self.text,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: dict) -> Note:
        return cls(
            note_id=data["note_id"],
            at=dt.datetime.fromisoformat(data["at"]),
            actor=data["actor"],
            visibility=Visibility(data["visibility"]),
            text=data["text"],
            version=data["version"],
        )


def parse(text: str, visibility: str) -> tuple[str, Visibility]:
    """The note's text (trimmed) and visibility (default internal); what is wrong names its field."""
    violations = []
    text = text.strip()
    if not text:
        violations.append(FieldViolation("text", "required", "required"))
    elif len(text) > MAX_NOTE_CHARS:
        violations.append(FieldViolation("text", f"at most {MAX_NOTE_CHARS} characters", "too_long"))
    elif any(not (ch.isprintable() or ch in "\n\t") for ch in text):
        violations.append(FieldViolation("text", "printable characters and line breaks only"))
    try:
        kind = Visibility(visibility or Visibility.INTERNAL)
    except ValueError:
        violations.append(FieldViolation("visibility", "internal or customer", "unknown_visibility"))
        kind = Visibility.INTERNAL
    if violations:
        raise InvalidArgument("invalid note", violations)
    return text, kind
