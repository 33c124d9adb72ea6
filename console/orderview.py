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
from typing import Any

from orderdesk import actors
from orderdesk.v1 import orders_pb2
from services.orders.changes import POLICY, ChangeType, Stage, order_stage, refusing_rule
from services.orders.exceptions import RESOLUTIONS, ExceptionType

CLOSED = frozenset({"completed", "cancelled", "rejected"})
EXCEPTION_TYPES = tuple(t.value for t in ExceptionType)  # what the desk may raise


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
    """How far the order's goods have gone through the warehouse (the furthest live shipment; of a partially
    shipped order, the furthest of its remainder, as the policy judges it)."""
    return order_stage(order.status, [_Shipment(s.status) for s in order.shipments])


def _allowed(order: orders_pb2.Order, change: ChangeType) -> bool:
    return order.status in POLICY and refusing_rule(order.status, change, stage(order)) is None


def at_risk(order: orders_pb2.Order) -> bool:
    """At risk: an exception is open, or the promise watch (issue 13) sees a risk to the promised date."""
    return order.at_risk or bool(order.risks)


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
    EXCEPTION_OPENED = "exception_opened"
    EXCEPTION_RESOLVED = "exception_resolved"
    NOTE = "note"  # internal
    MESSAGE = "message"  # a note the customer sees
    WEBHOOK = "webhook"
    TRACKING = "tracking"  # a carrier's event on one of the order's shipments (shipping's timeline)


@dataclass(frozen=True)
class Entry:
    """One thing that happened: when, who (actors.Who), what kind, and what (the template words it)."""

    at: dt.datetime
    kind: str  # a Kind; the orders service's own kinds pass through (an unknown one is shown as it is)
    who: actors.Who
    item: Any = None  # orders_pb2.TimelineEntry, orders_pb2.ChangeEntry, notifier_pb2.Delivery or
    # shipping_pb2.TrackingEntry
    details: list[tuple[str, str]] = field(default_factory=list)  # a resolution's details, sorted
    kinds: list[str] = field(default_factory=list)  # a change request's kinds (ship_to, quantity, ...)


def _at(stamp) -> dt.datetime:
    return stamp.ToDatetime(tzinfo=dt.UTC)


def timeline(
    order: orders_pb2.Order, recorded: orders_pb2.OrderTimeline, deliveries=(), shipments=()
) -> list[Entry]:
    """The orders service's timeline (status history, change requests field by field, exceptions and their
    resolutions, desk notes; oldest first) with the webhooks sent about the order and its shipments' carrier
    events (shipping's tracking timeline, at the carrier's time, by the carrier) merged in by time; ties keep
    the service's order, then webhooks, then tracking. A change carries its kinds (from the order's change
    log)."""
    kinds = {c.version: list(c.kinds) for c in order.changes}
    entries = [
        Entry(
            _at(e.at),
            e.kind,
            actors.parse(e.actor),
            e,
            sorted(e.details.items()),
            kinds.get(e.version, []) if e.kind == Kind.CHANGE else [],
        )
        for e in recorded.entries
    ]
    entries += [
        Entry(_at(d.created_at), Kind.WEBHOOK, actors.Who("system", actors.SYSTEM), d) for d in deliveries
    ]
    entries += [
        Entry(_at(t.occurred_at), Kind.TRACKING, actors.Who("carrier", t.carrier or t.source), t)
        for shipment in shipments
        for t in shipment.tracking
    ]
    return sorted(entries, key=lambda entry: entry.at)  # stable


def changes_since(order: orders_pb2.Order, version: int) -> list[Entry]:
    """The change requests accepted after the order was at `version` (someone else's edit, for a conflict),
    as timeline entries."""
    return [
        Entry(_at(c.at), Kind.CHANGE, actors.parse(c.actor), c, kinds=list(c.kinds))
        for c in order.changes
        if c.version > version
    ]
