"""A customer's personal data and what erasing it means: plain rules, no I/O (orderdesk/erasure.py runs them).

The rule (`plan`): an order's personal data may go once the order is closed (completed, cancelled, rejected)
and its legal retention has passed since (ORDERDESK_PERSONAL_DATA_RETENTION_DAYS). Scope "all" is refused
(FAILED_PRECONDITION `personal_data_retained`, each order that stays named) while any order of the customer
must keep its data; scope "expired" erases what may go and reports what stays, and until when.

What erased means (`erase_address`, `erase_message`, `erase_document`), in place: the name becomes a token
stable per customer (`erased-<10 hex of sha256(customer_id)>`, so one customer's orders still read as one),
every other address field that held something becomes "[erased]", and the country stays (the books and the
promises need only the country: transit days, the nearest warehouse). A change log's before/after of an
address field is erased the same way, and the values taken are scrubbed from the free-text reasons, notes
and causes of the same record. Quantities, amounts, SKUs, statuses, dates, ids and the customer id (a
pseudonymous key once the master record is erased) never change, so totals, KPIs and the books stay.
Erasing what is already erased changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from orderdesk import errors

ERASED = "[erased]"
TOKEN_PREFIX = "erased-"
SCOPES = ("all", "expired")
CLOSED = frozenset({"completed", "cancelled", "rejected"})
# Address fields that are personal; the country is kept.
PERSONAL_ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "phone")
RETAINED_RULE = "personal_data_retained"
# Free-text fields (reasons, notes, causes, the desk's notes and messages) the values taken are scrubbed from.
FREE_TEXT = ("reason", "note", "cause", "text")
MIN_SCRUB_LENGTH = 3  # shorter erased values are not searched for in free text (they would match anywhere)


def token(customer_id: str) -> str:
    """The stable stand-in for a customer's name: the same for every record of the customer."""
    return TOKEN_PREFIX + hashlib.sha256(customer_id.encode()).hexdigest()[:10]


# --- the retention rule ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderClosure:
    """What the rule needs of one order: its status and, when closed, when it closed."""

    order_id: str
    status: str
    closed_at: dt.datetime | None = None


@dataclass(frozen=True)
class Kept:
    """An order whose personal data stays: `open`, or closed `within_retention` (until `until`)."""

    order_id: str
    status: str
    reason: str
    until: dt.datetime | None = None

    def describe(self) -> str:
        if self.reason == "open":
            return f"the order is still open ({self.status})"
        assert self.until is not None
        return f"closed ({self.status}); its personal data is kept until {self.until.isoformat()}"


@dataclass(frozen=True)
class Plan:
    erase: tuple[str, ...]  # order ids whose personal data goes
    kept: tuple[Kept, ...]

    @property
    def whole_customer(self) -> bool:
        """Nothing of the customer stays: its master record may go too."""
        return not self.kept


def plan(orders: Iterable[OrderClosure], *, now: dt.datetime, retention: dt.timedelta, scope: str) -> Plan:
    """Which orders' personal data may go now. Scope "all" refuses (FailedPrecondition) while any must stay."""
    check_scope(scope)
    erase: list[str] = []
    kept: list[Kept] = []
    for o in sorted(orders, key=lambda o: o.order_id):
        if o.status not in CLOSED or o.closed_at is None:
            kept.append(Kept(o.order_id, o.status, "open"))
        elif o.closed_at + retention > now:
            kept.append(Kept(o.order_id, o.status, "within_retention", o.closed_at + retention))
        else:
            erase.append(o.order_id)
    if kept and scope == "all":
        raise errors.FailedPrecondition(
            f"{len(kept)} order(s) of the customer must keep their personal data (open, or closed less than "
            'the legal retention ago); nothing was erased. Ask again with scope "expired" to erase what '
            "has passed the retention",
            rule=RETAINED_RULE,
            subject="customer",
            violations=[errors.FieldViolation(f"orders[{k.order_id}]", k.describe(), k.reason) for k in kept],
        )
    return Plan(tuple(erase), tuple(kept))


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise errors.InvalidArgument(
            f"scope must be one of {', '.join(SCOPES)}", [errors.FieldViolation("scope", "unknown scope")]
        )


# --- what erased means -----------------------------------------------------------------------------
def _erased_value(name: str, value: str, customer_id: str) -> str:
    if not value:
        return value
    return token(customer_id) if name == "name" else ERASED


def erase_address(address: dict[str, Any], customer_id: str, found: set[str] | None = None) -> dict[str, Any]:
    """A copy of an address (dict) with its personal fields erased; the values taken are added to `found`."""
    erased = dict(address)
    for name in PERSONAL_ADDRESS_FIELDS:
        value = erased.get(name)
        if isinstance(value, str) and value:
            new = _erased_value(name, value, customer_id)
            if new != value and found is not None:
                found.add(value)
            erased[name] = new
    return erased


def address_change_field(path: str) -> str | None:
    """The personal address field a change log path names ("ship_to.city" -> "city"), else None."""
    head, _, name = path.partition(".")
    return name if head == "ship_to" and name in PERSONAL_ADDRESS_FIELDS else None


def erase_change(path: str, before: str, after: str, customer_id: str, found: set[str]) -> tuple[str, str]:
    """A change log entry's before/after, erased when the path is a personal address field."""
    name = address_change_field(path)
    if name is None:
        return before, after
    new = (_erased_value(name, before, customer_id), _erased_value(name, after, customer_id))
    found.update(v for v, n in zip((before, after), new, strict=True) if v and v != n)
    return new


def scrub(text: str, values: Iterable[str]) -> str:
    """Free text with the erased values taken out (longest first, so a street is not half replaced)."""
    for value in sorted({v for v in values if len(v) >= MIN_SCRUB_LENGTH}, key=len, reverse=True):
        if value in text and not value.startswith(TOKEN_PREFIX) and value != ERASED:
            text = text.replace(value, ERASED)
    return text


def erase_message(message: Message, customer_id: str, found: set[str] | None = None) -> set[str]:
    """Erases, in place, every Address and every address FieldChange anywhere in a protobuf message (an
    Event, a CreateOrderRequest ...), then scrubs the values taken from its free-text fields (FREE_TEXT).
    Returns the values taken (empty: nothing changed)."""
    found = set() if found is None else found
    _walk_message(message, customer_id, found)
    if found:
        _scrub_message(message, found)
    return found


def _walk_message(message: Message, customer_id: str, found: set[str]) -> None:
    name = message.DESCRIPTOR.name
    if name == "Address":
        for f in PERSONAL_ADDRESS_FIELDS:
            value = getattr(message, f)
            new = _erased_value(f, value, customer_id)
            if new != value:
                found.add(value)
                setattr(message, f, new)
        return
    if name == "FieldChange":
        before, after = erase_change(message.field, message.before, message.after, customer_id, found)
        message.before, message.after = before, after
        return
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is not None:
                for item in value.values():
                    _walk_message(item, customer_id, found)
        elif _repeated(descriptor):
            for item in value:
                _walk_message(item, customer_id, found)
        else:
            _walk_message(value, customer_id, found)


def _scrub_message(message: Message, found: set[str]) -> None:
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            if descriptor.name in FREE_TEXT and isinstance(value, str):
                setattr(message, descriptor.name, scrub(value, found))
        elif descriptor.message_type.GetOptions().map_entry:
            continue
        elif _repeated(descriptor):
            for item in value:
                _scrub_message(item, found)
        else:
            _scrub_message(value, found)


def _repeated(descriptor) -> bool:
    flag = getattr(descriptor, "is_repeated", None)  # newer protobuf; `label` on older ones
    return flag if flag is not None else descriptor.label == descriptor.LABEL_REPEATED


def erase_document(document: Any, customer_id: str, found: set[str] | None = None) -> set[str]:
    """The same for a JSON document mapped from such a message (a partner feed entry): every object under
    a `ship_to` key is an address, every {"field": "ship_to.…", "before", "after"} a change; then the values
    taken are scrubbed from the FREE_TEXT strings. In place; returns the values taken."""
    found = set() if found is None else found
    _walk_document(document, customer_id, found)
    if found:
        _scrub_document(document, found)
    return found


def _walk_document(node: Any, customer_id: str, found: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk_document(item, customer_id, found)
    elif isinstance(node, dict):
        if isinstance(node.get("field"), str) and ("before" in node or "after" in node):
            before, after = erase_change(
                node["field"], node.get("before", ""), node.get("after", ""), customer_id, found
            )
            for key, value in (("before", before), ("after", after)):
                if key in node:
                    node[key] = value
        for key, value in node.items():
            if key == "ship_to" and isinstance(value, dict):
                node[key] = erase_address(value, customer_id, found)
            else:
                _walk_document(value, customer_id, found)


def _scrub_document(node: Any, found: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _scrub_document(item, found)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in FREE_TEXT and isinstance(value, str):
                node[key] = scrub(value, found)
            else:
                _scrub_document(value, found)
