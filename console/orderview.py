"""The order as the desk reads it: one timeline of everything that happened to it, and the actions its state
allows. Plain Python over the orders service's messages, no I/O (console/screens/order_detail.py shows it).

The actions follow the services' own rules, read from the same tables (services/orders/changes.py's change
policy, services/orders/exceptions.py's resolutions); the page offers only what they would accept, and the
services still refuse anything else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from orderdesk import actors
from orderdesk.v1 import orders_pb2
from services.orders.changes import POLICY, ChangeType, Stage, refusing_rule, stage_of
from services.orders.exceptions import RESOLUTIONS, ExceptionType

CLOSED = frozenset({"completed", "cancelled", "rejected"})


class Action(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    AMEND_ADDRESS = "amend_address"
    AMEND_LINES = "amend_lines"
    CANCEL_ORDER = "cancel_order"
    CANCEL_LINES = "cancel_lines"
    RAISE_EXCEPTION = "raise_exception"
    AUTHORISE_RETURN = "authorise_return"


@dataclass(frozen=True)
class _Shipment:  # what stage_of reads of a shipment (the summary carries no lines: order-wide stage)
    status: str
    lines: tuple[str, ...] = ()


def stage(order: orders_pb2.Order) -> Stage:
    """How far the order's goods have gone through the warehouse (the furthest live shipment)."""
    return stage_of([_Shipment(s.status) for s in order.shipments])


def _allowed(order: orders_pb2.Order, change: ChangeType) -> bool:
    return order.status in POLICY and refusing_rule(order.status, change, stage(order)) is None


def returnable(order: orders_pb2.Order) -> dict[str, int]:
    """Units per SKU that were delivered and are not yet returned."""
    return {
        line.sku: line.delivered_quantity - line.returned_quantity
        for line in order.lines
        if line.delivered_quantity > line.returned_quantity
    }


def actions(order: orders_pb2.Order) -> frozenset[Action]:
    """What the order's state allows (the person's role is checked apart)."""
    allowed: set[Action] = set()
    if order.status == "on_hold":
        allowed |= {Action.APPROVE, Action.REJECT}
    if _allowed(order, ChangeType.SHIP_TO):
        allowed.add(Action.AMEND_ADDRESS)
    if _allowed(order, ChangeType.QUANTITY) and _allowed(order, ChangeType.ADD_LINE):
        allowed.add(Action.AMEND_LINES)
    if _allowed(order, ChangeType.CANCEL):
        allowed.add(Action.CANCEL_ORDER)
    if _allowed(order, ChangeType.CANCEL_LINES):
        allowed.add(Action.CANCEL_LINES)
    if order.status in POLICY and order.status not in CLOSED:
        allowed.add(Action.RAISE_EXCEPTION)
    if returnable(order):
        allowed.add(Action.AUTHORISE_RETURN)
    return frozenset(allowed)


def resolutions(exception: orders_pb2.OrderException) -> list[str]:
    """The resolutions an open exception of this type allows (none for an unknown type or a resolved one)."""
    if exception.status != "open":
        return []
    try:
        kind = ExceptionType(exception.type)
    except ValueError:
        return []
    return sorted(a.value for a in RESOLUTIONS[kind])


# --- the timeline ----------------------------------------------------------------------------------------------
class Kind(StrEnum):
    STATUS = "status"
    CHANGE = "change"
    EXCEPTION = "exception"
    RESOLUTION = "resolution"
    NOTE = "note"
    WEBHOOK = "webhook"


@dataclass(frozen=True)
class Entry:
    """One thing that happened: when, who (actors.Who), what kind, and its message (the template words it)."""

    at: dt.datetime
    kind: Kind
    who: actors.Who
    item: object = None  # the StatusChange, ChangeEntry, OrderException, OrderNote or Delivery
    details: list[tuple[str, str]] = field(default_factory=list)  # a resolution's details, sorted


def _at(stamp) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)


def timeline(order: orders_pb2.Order, notes=(), deliveries=()) -> list[Entry]:
    """Everything on record, oldest first: status history, accepted change requests (each field before ->
    after), exceptions and their resolutions, desk notes and webhooks sent; ties keep that order."""
    entries: list[Entry] = []
    entries += [Entry(_at(h.at), Kind.STATUS, actors.parse(h.actor), h) for h in order.history]
    entries += [Entry(_at(c.at), Kind.CHANGE, actors.parse(c.actor), c) for c in order.changes]
    for e in order.exceptions:
        entries.append(Entry(_at(e.opened_at), Kind.EXCEPTION, actors.parse(e.opened_by), e))
        if e.HasField("resolution") and e.resolution.action:
            r = e.resolution
            entries.append(
                Entry(_at(r.at), Kind.RESOLUTION, actors.parse(r.actor), e, sorted(r.details.items()))
            )
    entries += [Entry(_at(n.at), Kind.NOTE, actors.parse(n.actor), n) for n in notes]
    entries += [
        Entry(_at(d.created_at), Kind.WEBHOOK, actors.Who("system", actors.SYSTEM), d) for d in deliveries
    ]
    return sorted(entries, key=lambda entry: entry.at)  # stable: ties keep the order above


def changes_since(order: orders_pb2.Order, version: int) -> list[Entry]:
    """The change requests accepted after the order was at `version` (someone else's edit, for a conflict),
    as timeline entries."""
    return [
        Entry(_at(c.at), Kind.CHANGE, actors.parse(c.actor), c) for c in order.changes if c.version > version
    ]
