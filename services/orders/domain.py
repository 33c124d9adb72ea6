"""The order aggregate and its lifecycle: plain Python, no I/O.

    received ─┬─> confirmed ─┬─> allocated ──> partially_shipped ──> shipped ──> completed
              │              └─> scheduled ─┘ (backorder; allocated once every line is reserved)
              └─> on_hold ──> confirmed | rejected
    cancelled: from received, on_hold, confirmed, scheduled, allocated (nothing shipped yet)

A partially shipped order is never cancelled: cancelling it (or every unit it has open) cancels its
remainder, a change request (`Order.change`, `changes.remainder`) that cuts each line to its shipped units
(lines with nothing shipped go), recorded as a cancel_lines change (order.changed, and the desk's numbers
count the units as cancelled, not the order), and the order moves on to shipped at once (completed when
everything shipped was delivered): it was fulfilled in part, and its shipped units stay on the books for
invoicing, returns and the fill rate. Its stock and the shipments of the remainder follow the change as
an allocated order's do (inventory's Reserve, shipping's order.changed consumer). Its remainder also
splits (`Order.split_delivery`): only units not yet shipped go to the linked order, the shipped ones stay
(with their allocations), and when nothing is left to ship it moves on to shipped the same way.

The order changes only through its own methods. Each change bumps the version and records a
typed event not yet published: a status change (`Transition`, with its history entry: time, actor,
reason) in `Order.transitions`; an accepted change (`OrderChanged`, also written to the change log)
and an exception opened or resolved (`ExceptionOpened`, `ExceptionResolved`) in `Order.events`.
The caller passes the time (`at`); nothing here reads a clock or parses a message.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import ClassVar, NamedTuple

from orderdesk import personal_data
from orderdesk.domain import ADDRESS_FIELDS, units_per_sku
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from orderdesk.parsing import time_bound, whole_number
from services.orders import changes as change_rules
from services.orders import exceptions as exception_rules
from services.orders.changes import ChangeRecord, ChangeRequest, FieldChange, describe
from services.orders.exceptions import OrderException, Resolution, find
from services.orders.notes import Note, Visibility
from services.orders.notes import parse as parse_note
from services.orders.promise import (
    AT_ONCE,
    RISK_CODES,
    OrderFacts,
    Policy,
    Risk,
    ShipmentFacts,
    assess,
    compare,
    current_priority,
    next_check,
)
from services.orders.replacements import Replacement


class Status(StrEnum):
    RECEIVED = "received"
    ON_HOLD = "on_hold"
    CONFIRMED = "confirmed"
    SCHEDULED = "scheduled"
    ALLOCATED = "allocated"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.ON_HOLD, Status.CONFIRMED, Status.REJECTED, Status.CANCELLED}),
    Status.ON_HOLD: frozenset({Status.CONFIRMED, Status.REJECTED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.SCHEDULED, Status.ALLOCATED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.ALLOCATED, Status.CANCELLED}),
    Status.ALLOCATED: frozenset({Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.CANCELLED}),
    Status.PARTIALLY_SHIPPED: frozenset({Status.SHIPPED}),
    Status.SHIPPED: frozenset({Status.COMPLETED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REJECTED: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Orders the allocation worker reserves stock for.
AWAITING_STOCK = (Status.CONFIRMED, Status.SCHEDULED)
# Orders a split delivery can divide: waiting for stock, allocated with the goods still in the warehouse, or
# partially shipped (its remainder only: what shipped stays on the order).
SPLITTABLE = (Status.CONFIRMED, Status.SCHEDULED, Status.ALLOCATED, Status.PARTIALLY_SHIPPED)
# Shipment statuses that mean the goods have left the warehouse.
LEFT_WAREHOUSE = ("shipped", "delivered")
# Shipment events that are the warehouse's or the desk's, not a carrier's word about the parcel.
NOT_FROM_CARRIER = frozenset(
    {"created", "picked", "packed", "cancelled", "updated", "carrier_changed", "carrier_claim_opened"}
)


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price: Decimal
    allocated: int = 0
    shipped: int = 0
    delivered: int = 0
    returned: int = 0

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


ACCEPTABLE_PROPOSALS = ("", "earliest_date", "split")


def split_parts(proposal: dict, lines: list[Line]) -> dict[str, list[tuple[str, int]]] | None:
    """A split proposal's parts by delivery date ({date: [(sku, quantity)]}), or None if
    they do not add up to the order's quantities (the order changed since the proposal)."""
    wanted = units_per_sku(lines)
    proposed: dict[str, int] = {}
    by_date: dict[str, list[tuple[str, int]]] = {}
    for part in proposal.get("parts", []):
        if part["quantity"] <= 0 or not part["delivery_date"]:
            return None
        proposed[part["sku"]] = proposed.get(part["sku"], 0) + part["quantity"]
        by_date.setdefault(part["delivery_date"], []).append((part["sku"], part["quantity"]))
    if proposed != wanted or len(by_date) < 2:
        return None
    return by_date


def in_line_order(lines: list[Line], units: dict[str, int]) -> list[int]:
    """How `units` (per SKU: reserved, shipped, delivered, held) fall to the order's lines: the lines
    of one SKU share its units in line order, each up to its quantity."""
    left = dict(units)
    shares = []
    for line in lines:
        take = max(0, min(line.quantity, left.get(line.sku, 0)))
        left[line.sku] = left.get(line.sku, 0) - take
        shares.append(take)
    return shares


def split_quantities(lines: list[Line], held: dict[str, int]) -> tuple[list[Line], list[Line]]:
    """A split delivery's arithmetic: the lines of what is held now (`held`: units per SKU, shared by
    the lines of one SKU in line order; the units shipped count as held) and the lines of the rest. Per
    SKU the two add up to the order's quantity; neither has a line of 0 units. A kept line keeps its
    shipped, delivered and returned units: a line never keeps fewer than it shipped."""
    kept: list[Line] = []
    rest: list[Line] = []
    for line, take in zip(lines, in_line_order(lines, held), strict=True):
        take = max(take, line.shipped)
        if take:
            kept.append(
                Line(
                    line.sku,
                    take,
                    line.unit_price,
                    allocated=take,
                    shipped=line.shipped,
                    delivered=line.delivered,
                    returned=line.returned,
                )
            )
        if line.quantity > take:
            rest.append(Line(line.sku, line.quantity - take, line.unit_price))
    return kept, rest


SPLIT_LINES = "details.split_lines"


def parse_split_lines(text: str) -> dict[str, int]:
    """A split's `split_lines` detail, the units to deliver later: "SKU=qty;SKU=qty" -> {sku: qty}
    ("" -> {}: the split is what is not reserved). Refused naming the field when malformed."""
    units: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        sku, _, qty = part.rpartition("=")
        sku = sku.strip()
        if not sku or not qty.strip().isdigit() or int(qty) <= 0:
            raise InvalidArgument(
                "split_lines is SKU=quantity;SKU=quantity (units to deliver later)",
                [FieldViolation(SPLIT_LINES, f"{part!r} is not SKU=quantity, quantity above 0", "malformed")],
            )
        units[sku] = units.get(sku, 0) + int(qty)
    return units


def check_split_lines(lines: list[Line], later: dict[str, int]) -> None:
    """Units asked to go later come only from what has not shipped (per SKU, over its lines), and some of
    the order stays (shipped or not); else InvalidArgument naming details.split_lines, nothing changed."""
    open_units = units_per_sku(lines, lambda line: max(line.quantity - line.shipped, 0))
    violations = []
    for sku, qty in later.items():
        if sku not in open_units:
            violations.append(
                FieldViolation(SPLIT_LINES, f"the order has no line for {sku!r}", "unknown_line")
            )
        elif qty > open_units[sku]:
            shipped = sum(line.shipped for line in lines if line.sku == sku)
            violations.append(
                FieldViolation(
                    SPLIT_LINES,
                    f"{qty} of {sku} asked; {open_units[sku]} not yet shipped"
                    + (f" ({shipped} shipped)" if shipped else ""),
                    "beyond_remainder",
                )
            )
    if not violations and units_per_sku(lines) == later:
        violations.append(
            FieldViolation(
                SPLIT_LINES, "every unit of the order would go later; some must stay", "nothing_stays"
            )
        )
    if violations:
        raise InvalidArgument(
            "the split asks for more than the order has open; nothing was changed", violations
        )


def split_off(lines: list[Line], later: dict[str, int]) -> tuple[list[Line], list[Line]]:
    """A split of chosen units (`later`, checked by check_split_lines): the lines that stay and the lines
    of the units that go later. The units come off the open (unshipped) units of the SKU's lines, the last
    line first; a line keeps its shipped, delivered and returned units."""
    left = dict(later)
    moved = [0] * len(lines)
    for i in reversed(range(len(lines))):
        line = lines[i]
        moved[i] = min(left.get(line.sku, 0), max(line.quantity - line.shipped, 0))
        left[line.sku] = left.get(line.sku, 0) - moved[i]
    kept: list[Line] = []
    rest: list[Line] = []
    for line, go in zip(lines, moved, strict=True):
        if line.quantity > go:
            kept.append(
                Line(
                    line.sku,
                    line.quantity - go,
                    line.unit_price,
                    shipped=line.shipped,
                    delivered=line.delivered,
                    returned=line.returned,
                )
            )
        if go:
            rest.append(Line(line.sku, go, line.unit_price))
    return kept, rest


def share_reservation(lines: list[Line], allocations: Iterable[Allocation]) -> None:
    """Sets each line's allocated units from what is reserved for the order (in line order per SKU)."""
    for line, allocated in zip(lines, in_line_order(lines, units_per_sku(allocations)), strict=True):
        line.allocated = allocated


def merge_allocations(allocations: Iterable[Allocation]) -> list[Allocation]:
    """One allocation per SKU and warehouse, their units added up (in SKU, warehouse order)."""
    units: dict[tuple[str, str], int] = {}
    for a in allocations:
        units[(a.sku, a.warehouse)] = units.get((a.sku, a.warehouse), 0) + a.quantity
    return [Allocation(sku, wh, q) for (sku, wh), q in sorted(units.items()) if q > 0]


def _where(allocations: Iterable[Allocation], sku: str) -> str:
    return ", ".join(
        f"{a.warehouse} x{a.quantity}"
        for a in sorted(allocations, key=lambda a: a.warehouse)
        if a.sku == sku and a.quantity > 0
    )


@dataclass(frozen=True)
class HistoryEntry:
    status: Status
    at: dt.datetime
    actor: str
    reason: str


@dataclass(frozen=True)
class Allocation:
    sku: str
    warehouse: str
    quantity: int


@dataclass
class ShipmentView:
    """The order's copy of a shipment, kept current from shipping's events."""

    shipment_id: str
    warehouse: str
    status: str
    carrier: str = ""
    tracking_number: str = ""
    lines: dict[str, int] = field(default_factory=dict)
    on_time: bool | None = None
    version: int = 0  # shipping's version of the shipment: an older event never overwrites a newer one
    # For the promise watch (services/orders/promise.py): the promise, when it left, and the carrier's last
    # word after that (an event name: shipped, delayed, lost …) with its time (ISO 8601) and revised date.
    promised_delivery_date: str = ""
    expected_delivery_date: str = ""
    shipped_at: str = ""
    last_event: str = ""
    last_event_at: str = ""
    # Shipping's schedule (services/shipping/domain.py `schedule`): the cut-off instant it must be picked
    # and packed by (ISO 8601) and the date it should arrive (YYYY-MM-DD); "" when shipping knows none.
    pick_by: str = ""
    deliver_by: str = ""


# --- what the order records about itself, published as events (orderdesk.usecase.publish) ---------
class _Said(NamedTuple):
    """Who recorded an event, why and when: what `orderdesk.usecase.Recorded` asks besides type and version."""

    actor: str
    reason: str
    at: dt.datetime


class _OrderEvent:
    """The part every typed event shares: its actor, reason and time, from the one `_said()` each gives."""

    def _said(self) -> _Said:
        raise NotImplementedError

    @property
    def actor(self) -> str:
        return self._said().actor

    @property
    def reason(self) -> str:
        return self._said().reason

    @property
    def at(self) -> dt.datetime:
        return self._said().at


@dataclass(frozen=True)
class Transition(_OrderEvent):
    """A status change: order.<status>."""

    previous: Status | None
    status: Status
    version: int
    entry: HistoryEntry

    @property
    def event_type(self) -> str:
        return f"order.{self.status._value_}"  # .value without the enum property's two calls

    def _said(self) -> _Said:
        return _Said(self.entry.actor, self.entry.reason, self.entry.at)


@dataclass(frozen=True)
class OrderChanged(_OrderEvent):
    """An accepted change (a change request, a re-allocation, a split, an accepted delay): order.changed."""

    record: ChangeRecord
    event_type: ClassVar[str] = "order.changed"

    @property
    def version(self) -> int:
        return self.record.version

    def _said(self) -> _Said:
        why = (self.record.reason + ": " if self.record.reason else "") + describe(self.record.changes)
        return _Said(self.record.actor, why, self.record.at)


@dataclass(frozen=True)
class _ExceptionEvent(_OrderEvent):
    """An exception opened or resolved: order.exception, carrying the exception."""

    exception: OrderException
    event_type: ClassVar[str] = "order.exception"


@dataclass(frozen=True)
class ExceptionOpened(_ExceptionEvent):
    """An exception recorded on the order."""

    version: int

    def _said(self) -> _Said:
        opened = self.exception
        return _Said(opened.opened_by, f"{opened.type} opened: {opened.cause}", opened.opened_at)


@dataclass(frozen=True)
class ExceptionResolved(_ExceptionEvent):
    """An exception resolved by the desk."""

    resolution: Resolution
    version: int

    def _said(self) -> _Said:
        how = self.resolution
        return _Said(how.actor, f"{self.exception.type} resolved: {how.action}", how.at)


@dataclass(frozen=True)
class MessageSent(_OrderEvent):
    """A customer-visible message of the desk: order.message (an internal note publishes nothing)."""

    note: Note
    event_type: ClassVar[str] = "order.message"

    @property
    def version(self) -> int:
        return self.note.version

    def _said(self) -> _Said:
        return _Said(self.note.actor, self.note.text, self.note.at)


@dataclass(frozen=True)
class _RiskEvent(_OrderEvent):
    """The promise watch's news about one risk, carrying it (services/orders/promise.py)."""

    risk: Risk
    version: int
    when: dt.datetime
    by: str = "watch"


@dataclass(frozen=True)
class RiskRaised(_RiskEvent):
    """The promise watch sees a new risk (or a new date for one): order.at_risk."""

    event_type: ClassVar[str] = "order.at_risk"

    def _said(self) -> _Said:
        return _Said(self.by, f"{self.risk.code.value}: {self.risk.evidence}", self.when)


@dataclass(frozen=True)
class RiskCleared(_RiskEvent):
    """A risk the watch had raised is gone: order.back_on_track (the order's other risks, if any, stay)."""

    event_type: ClassVar[str] = "order.back_on_track"

    def _said(self) -> _Said:
        return _Said(self.by, f"{self.risk.code.value} cleared", self.when)


RecordedEvent = (
    OrderChanged | ExceptionOpened | ExceptionResolved | MessageSent | RiskRaised | RiskCleared
)  # besides Transition


@dataclass
class Order:
    order_id: str
    partner_id: str
    channel: str
    external_ref: str
    customer_id: str
    ship_to: dict[str, str]
    lines: list[Line]
    requested_delivery_date: str
    payment_terms: str
    currency: str
    priority: int
    status: Status = Status.RECEIVED
    version: int = 0
    hold_reasons: list[dict[str, str]] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    shipments: dict[str, ShipmentView] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    # From intake, kept as given: delivery proposals when the requested date is infeasible
    # ({"kind", "delivery_date", "parts": [{"sku", "quantity", "delivery_date"}]}) and the
    # partner's urgent flag (already reflected in priority; stored so the desk sees why).
    proposals: list[dict] = field(default_factory=list)
    urgent: bool = False
    # Supply (from inventory's Reserve answer): while scheduled, when the backordered units are
    # due in a warehouse and the delivery date that gives; "" when allocated or unknown.
    expected_ship_date: str = ""
    expected_delivery_date: str = ""
    # Change requests accepted (before/after) and exceptions (services/orders/changes.py, exceptions.py).
    change_log: list[ChangeRecord] = field(default_factory=list)
    exceptions: list[OrderException] = field(default_factory=list)
    # An accepted split proposal: the later deliveries are orders of their own, linked both ways.
    split_from: str = ""
    split_into: list[str] = field(default_factory=list)
    # The desk's notes (services/orders/notes.py): internal ones never leave orders but to the desk.
    notes: list[Note] = field(default_factory=list)
    # The replacement orders entered for its returns and claims (services/orders/replacements.py).
    replacements: list[Replacement] = field(default_factory=list)
    # The promise watch's current risks (services/orders/promise.py), kept by Order.watch.
    risks: list[Risk] = field(default_factory=list)
    # Not persisted: what changed since load, for the store and the outbox: status changes, and the
    # order's other events (changes accepted, exceptions opened or resolved), each in the order made.
    transitions: list[Transition] = field(default_factory=list, repr=False)
    events: list[RecordedEvent] = field(default_factory=list, repr=False)
    lines_changed: bool = field(default=False, repr=False)
    loaded_version: int = field(default=0, repr=False)
    # Read from the archive (closed and old, services/orders/archive); saving it brings it back first.
    archived: bool = field(default=False, repr=False)
    # When the promise watch next has something to do for it, as stored (by the last save: next_look, or
    # AT_ONCE when the store has no watch's rule; by the watch's last look); AT_ONCE until saved.
    watch_at: dt.datetime | None = field(default=AT_ONCE, repr=False)

    # --- creation ----------------------------------------------------------
    @classmethod
    def receive(cls, *, at: dt.datetime, actor: str, hold_reasons: list[dict[str, str]], **fields) -> Order:
        """A new order from intake: received, then confirmed at once or held with reasons."""
        lines = fields["lines"]
        if not lines:
            raise InvalidArgument("an order needs at least one line", reason="no_lines")
        order = cls(**fields, created_at=at)
        order._move(Status.RECEIVED, at, actor, "submitted")
        if hold_reasons:
            order.hold_reasons = list(hold_reasons)
            order._move(Status.ON_HOLD, at, "system", "; ".join(r["code"] for r in hold_reasons))
        else:
            order._move(Status.CONFIRMED, at, "system", "auto-approved: every check passed")
        return order

    # --- decisions by people ---------------------------------------------------
    def approve(self, at: dt.datetime, actor: str, note: str, accept_proposal: str = "") -> list[Order]:
        """Releases a held order. With an accepted proposal it first takes the proposed date
        (earliest_date), or keeps the first date's quantities and splits the later dates off
        into orders of their own (split), confirmed with it. Returns the orders split off."""
        self._require(Status.ON_HOLD, "approve_only_on_hold", "only a held order can be approved")
        if accept_proposal not in ACCEPTABLE_PROPOSALS:
            raise InvalidArgument(
                f"accept_proposal must be one of {', '.join(k for k in ACCEPTABLE_PROPOSALS if k)}",
                [FieldViolation("accept_proposal", f"unknown proposal kind {accept_proposal!r}")],
            )
        reason = note or "approved"
        split_off: list[Order] = []
        if accept_proposal == "earliest_date":
            proposal = self._proposal("earliest_date")
            reason += (
                f"; accepted the earliest date {proposal['delivery_date']} "
                f"(requested {self.requested_delivery_date or 'none'})"
            )
            self.requested_delivery_date = proposal["delivery_date"]
        elif accept_proposal == "split":
            split_off = self._split(self._proposal("split"), at, actor, note)
            reason += "; accepted a split: " + "; ".join(
                f"{o.order_id} delivers {', '.join(f'{line.sku} x{line.quantity}' for line in o.lines)} "
                f"on {o.requested_delivery_date}"
                for o in split_off
            )
        self._move(Status.CONFIRMED, at, actor, reason)
        return split_off

    def _proposal(self, kind: str) -> dict:
        for proposal in self.proposals:
            if proposal.get("kind") == kind:
                return proposal
        raise FailedPrecondition(
            f"order {self.order_id} has no {kind} proposal to accept",
            rule="no_such_proposal",
            subject=self.order_id,
        )

    def _split(self, proposal: dict, at: dt.datetime, actor: str, note: str) -> list[Order]:
        by_date = split_parts(proposal, self.lines)
        if by_date is None:
            raise FailedPrecondition(
                f"the split proposal of order {self.order_id} no longer matches its lines",
                rule="proposal_stale",
                subject=self.order_id,
            )
        prices: dict[str, Decimal] = {}
        for line in self.lines:
            prices.setdefault(line.sku, line.unit_price)
        dates = sorted(by_date)
        self.lines = [Line(sku, qty, prices[sku]) for sku, qty in by_date[dates[0]]]
        self.lines_changed = True
        self.requested_delivery_date = dates[0]
        split_off = [
            self._linked_order(
                n,
                [Line(sku, qty, prices[sku]) for sku, qty in by_date[date]],
                date,
                at=at,
                actor=actor,
                received=f"split from {self.order_id}: its delivery of {date}",
                confirmed=note or "approved with the split",
            )
            for n, date in enumerate(dates[1:], start=2)
        ]
        self.split_into = [o.order_id for o in split_off]
        return split_off

    def _linked_order(
        self,
        n: int,
        lines: list[Line],
        delivery_date: str,
        *,
        at: dt.datetime,
        actor: str,
        received: str,
        confirmed: str,
    ) -> Order:
        """A later delivery of this order as an order of its own (`<id>-<n>`, confirmed): same partner,
        customer, ship-to, terms and priority, linked back by `split_from`."""
        child = Order(
            order_id=f"{self.order_id}-{n}",
            partner_id=self.partner_id,
            channel=self.channel,
            external_ref=f"{self.external_ref}/{n}" if self.external_ref else "",
            customer_id=self.customer_id,
            ship_to=dict(self.ship_to),
            lines=lines,
            requested_delivery_date=delivery_date,
            payment_terms=self.payment_terms,
            currency=self.currency,
            priority=self.priority,
            urgent=self.urgent,
            split_from=self.order_id,
            created_at=at,
        )
        child._move(Status.RECEIVED, at, actor, received)
        child._move(Status.CONFIRMED, at, actor, confirmed)
        return child

    # --- change requests ---------------------------------------------------------------------
    def change(self, request: ChangeRequest, *, at: dt.datetime, actor: str) -> ChangeRecord | None:
        """Applies a change request the policy table allows (services/orders/changes.py); returns what
        changed, also written to the change log and recorded as OrderChanged (None when the request
        changes nothing). Cancelling every remaining unit is a cancel of the order."""
        kinds = change_rules.check_request(self, request)
        targets = change_rules.target_quantities(self.lines, request)
        # Decide before touching anything, so a refused request leaves the order as it was.
        if not request.add_lines and all(targets.get(line.sku, line.quantity) <= 0 for line in self.lines):
            if change_rules.only_cancels(request):
                self.cancel(at, actor, request.reason or "every line cancelled")
                return None
            raise FailedPrecondition(
                "an order keeps at least one line; cancel the order instead",
                rule="order_needs_a_line",
                subject=self.order_id,
            )
        changes: list[FieldChange] = []
        if request.ship_to is not None:
            address = {f: request.ship_to.get(f, "").strip() for f in ADDRESS_FIELDS}
            changes += [
                FieldChange(f"ship_to.{f}", self.ship_to.get(f, ""), address[f])
                for f in ADDRESS_FIELDS
                if self.ship_to.get(f, "") != address[f]
            ]
            self.ship_to = address
        lines = {line.sku: line for line in self.lines}
        for sku, qty in targets.items():
            line = lines[sku]
            if qty == line.quantity:
                continue
            if qty == 0:
                changes.append(FieldChange(f"lines[{sku}]", f"{line.quantity} x {line.unit_price}", ""))
            else:
                changes.append(FieldChange(f"lines[{sku}].quantity", str(line.quantity), str(qty)))
            line.quantity = qty
        kept = [line for line in self.lines if line.quantity > 0]
        for new_line in request.add_lines:
            kept.append(
                Line(sku=new_line.sku, quantity=new_line.quantity, unit_price=Decimal(new_line.unit_price))
            )
            changes.append(
                FieldChange(f"lines[{new_line.sku}]", "", f"{new_line.quantity} x {new_line.unit_price}")
            )
        if not changes:
            return None
        if (
            len(kept) != len(self.lines)
            or request.add_lines
            or any(c.field.startswith("lines") for c in changes)
        ):
            self.lines_changed = True
        self.lines = kept
        if self.status is Status.PARTIALLY_SHIPPED and all(line.shipped >= line.quantity for line in kept):
            # Nothing is left to ship: the remainder was cancelled (the move first, so versions publish in order).
            self._move(Status.SHIPPED, at, actor, "the rest of the order was cancelled; what shipped stays")
            if all(line.delivered >= line.quantity for line in kept):
                self._move(Status.COMPLETED, at, "system", "every shipped unit delivered")
        return self._record_change(
            tuple(dict.fromkeys(k.value for k, _ in kinds)),
            changes,
            at=at,
            actor=actor,
            reason=request.reason,
        )

    def follow_reservation(self, allocations: list[Allocation]) -> None:
        """The reservation inventory now holds after the change request just applied: the change's
        record (and its OrderChanged) gains where the stock moved. Once goods left, the order's allocations
        keep the shipped units too (as they did since its allocation), so they stay all it was given."""
        if self.status is not Status.ALLOCATED:
            allocations = merge_allocations([*allocations, *self.shipped_allocations()])
        moved = self._set_allocations(allocations)
        if not moved:
            return
        last = self.change_log[-1]
        amended = ChangeRecord(
            last.version, last.at, last.actor, last.kinds, last.reason, last.changes + tuple(moved)
        )
        self.change_log[-1] = amended
        self.events = [
            OrderChanged(amended) if isinstance(e, OrderChanged) and e.record is last else e
            for e in self.events
        ]

    def shipped_allocations(self) -> list[Allocation]:
        """The units of the shipments that left the warehouse, per SKU and warehouse."""
        return merge_allocations(
            [
                Allocation(sku, s.warehouse, qty)
                for s in self.shipments.values()
                if s.status in LEFT_WAREHOUSE
                for sku, qty in s.lines.items()
            ]
        )

    def open_units(self) -> dict[str, int]:
        """Units per SKU not yet shipped: what inventory should hold for the order."""
        units = units_per_sku(self.lines, lambda line: max(line.quantity - line.shipped, 0))
        return {sku: n for sku, n in units.items() if n > 0}

    def reallocate(self, allocations: list[Allocation], *, at: dt.datetime, actor: str, reason: str) -> None:
        """The desk moved the order's stock (a re-allocation): a change of its own when anything moved."""
        moved = self._set_allocations(allocations)
        if moved:
            self._record_change(("allocation",), moved, at=at, actor=actor, reason=reason)

    def _set_allocations(self, allocations: list[Allocation]) -> list[FieldChange]:
        """The order's reservations as inventory now holds them; returns what moved, per SKU."""
        skus = sorted({a.sku for a in self.allocations} | {a.sku for a in allocations})
        moved = [
            FieldChange(f"allocations[{sku}]", _where(self.allocations, sku), _where(allocations, sku))
            for sku in skus
            if _where(self.allocations, sku) != _where(allocations, sku)
        ]
        self.allocations = [a for a in allocations if a.quantity > 0]
        share_reservation(self.lines, self.allocations)
        return moved

    def _record_change(
        self, kinds: tuple[str, ...], changes: list[FieldChange], *, at: dt.datetime, actor: str, reason: str
    ) -> ChangeRecord:
        self.version += 1
        record = ChangeRecord(self.version, at, actor, kinds, reason, tuple(changes))
        self.change_log.append(record)
        self.events.append(OrderChanged(record))
        return record

    # --- replacements (issue 14) -----------------------------------------------------------------
    def record_replacement(self, replacement: Replacement) -> bool:
        """A replacement order entered for one of this order's returns or claims (return.exchange_created);
        False when that RMA's is recorded already (a redelivery). Moves the version; published nowhere
        (the returns service published the fact)."""
        if any(r.rma_id == replacement.rma_id for r in self.replacements):
            return False
        self.version += 1
        self.replacements = [*self.replacements, replacement]
        return True

    # --- the desk's notes ----------------------------------------------------------------------
    def add_note(self, at: dt.datetime, actor: str, text: str, visibility: str = "") -> Note:
        """A note of the desk, kept with who and when; a customer-visible one is published as
        order.message, an internal one is published nowhere. Either moves the version."""
        text, kind = parse_note(text, visibility)
        self.version += 1
        note = Note(f"N{len(self.notes) + 1}", at, actor, kind, text, self.version)
        self.notes.append(note)
        if kind is Visibility.CUSTOMER:
            self.events.append(MessageSent(note))
        return note

    # --- personal data ------------------------------------------------------------------------
    def erase_personal_data(self) -> set[str]:
        """The customer's personal data on the order erased in place (orderdesk/personal_data.py): the
        ship-to, the address fields in the change log, and the values taken out of the change log's
        reasons, the desk's notes and the exceptions' causes and notes. Quantities, amounts, statuses and dates stay. Moves
        the version, so a writer holding the order as read before saves nothing over it; no event (the
        stream's copies age out). Returns the values taken: empty when already erased (nothing changed)."""
        found: set[str] = set()
        ship_to = personal_data.erase_address(self.ship_to, self.customer_id, found)
        change_log = [
            replace(
                record,
                changes=tuple(
                    FieldChange(
                        c.field,
                        *personal_data.erase_change(c.field, c.before, c.after, self.customer_id, found),
                    )
                    for c in record.changes
                ),
            )
            for record in self.change_log
        ]
        if not found:
            return found
        self.ship_to = ship_to
        self.change_log = [replace(r, reason=personal_data.scrub(r.reason, found)) for r in change_log]
        self.notes = [replace(n, text=personal_data.scrub(n.text, found)) for n in self.notes]
        for exception in self.exceptions:
            exception.cause = personal_data.scrub(exception.cause, found)
            if exception.resolution is not None:
                exception.resolution.note = personal_data.scrub(exception.resolution.note, found)
        self.version += 1
        return found

    # --- exceptions ---------------------------------------------------------------------------
    def record_exception(self, exception: OrderException) -> None:
        """An exception is recorded on the order (published as order.exception); a repeat (e.g. the same
        shipping event again) is recorded once."""
        if any(e.exception_id == exception.exception_id for e in self.exceptions):
            return
        self.exceptions.append(exception)
        self.version += 1
        self.events.append(ExceptionOpened(exception, self.version))

    def resolve_exception(
        self,
        exception_id: str,
        action: str,
        *,
        at: dt.datetime,
        actor: str,
        note: str = "",
        details: dict[str, str] | None = None,
    ) -> OrderException:
        exception = find(self.exceptions, exception_id)
        chosen = exception.check_resolution(action, details or {})
        exception.resolve(chosen, at=at, actor=actor, note=note, details=details or {})
        assert exception.resolution is not None
        self.version += 1
        self.events.append(ExceptionResolved(exception, exception.resolution, self.version))
        if exception.shipment_id:  # the desk acted on the carrier's word: the watch's risks of it are settled
            for risk in [r for r in self.risks if r.shipment_id == exception.shipment_id]:
                self.risks.remove(risk)
                self.version += 1
                self.events.append(RiskCleared(risk, self.version, at, actor))
        return exception

    # --- resolutions of exceptions that change the order ------------------------------------------
    def check_split_delivery(self) -> None:
        """Before inventory is asked: an order still waiting for some of its stock, an allocated one
        whose goods are still in the warehouse (units found missing at picking), or the remainder of a
        partially shipped one can split."""
        if self.status not in SPLITTABLE:
            raise FailedPrecondition(
                f"an order that is {self.status} can no longer be split",
                rule="split_not_allowed_in_status",
                subject=self.order_id,
            )

    def check_split_lines(self, later: dict[str, int]) -> None:
        """A split of chosen units (details.split_lines): only units not yet shipped (InvalidArgument
        naming the field), and, once stock is held, only a line whose shipment still in the warehouse is
        not yet picked (the policy table's quantity rule, judged on the remainder; FailedPrecondition)."""
        self.check_split_delivery()
        check_split_lines(self.lines, later)
        if self.status in (Status.ALLOCATED, Status.PARTIALLY_SHIPPED):
            shipments = list(self.shipments.values())
            for sku in later:
                stage = change_rules.order_stage(self.status.value, shipments, sku)
                change_rules.check_allowed(
                    self.status.value, change_rules.ChangeType.QUANTITY, stage, self.order_id
                )

    def open_allocations(self) -> list[Allocation]:
        """What inventory holds for the order now: its allocations less the units of the shipments that left."""
        gone = {(a.sku, a.warehouse): a.quantity for a in self.shipped_allocations()}
        return [
            Allocation(a.sku, a.warehouse, a.quantity - gone.get((a.sku, a.warehouse), 0))
            for a in self.allocations
            if a.quantity > gone.get((a.sku, a.warehouse), 0)
        ]

    def check_shortage(self, sku: str, warehouse: str, quantity: int) -> None:
        """Units found missing at picking can only be units still to ship from that warehouse (what left
        in a parcel is not on the shelf to miss): else InvalidArgument naming the exception's quantity."""
        held = sum(a.quantity for a in self.open_allocations() if (a.sku, a.warehouse) == (sku, warehouse))
        if quantity > held:
            raise InvalidArgument(
                "the shortage is more than the order still has to ship from that warehouse; nothing was changed",
                [
                    FieldViolation(
                        "quantity",
                        f"{quantity} of {sku} missing at {warehouse}; {held} still to ship from there",
                        "beyond_remainder",
                    )
                ],
            )

    def split_delivery(
        self,
        allocations: list[Allocation],
        *,
        at: dt.datetime,
        actor: str,
        delivery_date: str,
        reason: str,
        later: dict[str, int] | None = None,
    ) -> Order:
        """Deliver what is reserved now (`allocations`: what inventory holds for the order, not counting
        units that shipped), the rest later: this order keeps the reserved units (and any it shipped) and is
        (or stays) allocated; a new linked order (`<id>-<n>`, confirmed, same customer, ship-to, prices, terms
        and priority) gets the rest, due `delivery_date`. `later`: the units to deliver later, chosen
        (details.split_lines; only unshipped units, `check_split_lines`), instead of what is not reserved.

        A partially shipped order splits its remainder only: its shipped units stay, its allocations keep
        them (as since its allocation); when nothing of it is left to ship it moves on to shipped (completed
        when all of that was delivered). Returns the new order. Refused when nothing is reserved or nothing
        is missing."""
        if later:
            self.check_split_lines(later)
            kept, rest = split_off(self.lines, later)
        else:
            self.check_split_delivery()
            held = units_per_sku(allocations)
            for line in self.lines:  # what shipped counts as held: it stays
                held[line.sku] = held.get(line.sku, 0) + line.shipped
            kept, rest = split_quantities(self.lines, held)
        if not rest:
            raise FailedPrecondition(
                f"every unit of order {self.order_id} is reserved: nothing to deliver later",
                rule="split_nothing_missing",
                subject=self.order_id,
            )
        if not kept:
            raise FailedPrecondition(
                f"nothing of order {self.order_id} is reserved: nothing to deliver now",
                rule="split_nothing_allocated",
                subject=self.order_id,
            )
        if self.status is Status.PARTIALLY_SHIPPED:
            allocations = merge_allocations([*allocations, *self.shipped_allocations()])
        n = next(n for n in itertools.count(2) if f"{self.order_id}-{n}" not in self.split_into)
        date = delivery_date or self.requested_delivery_date
        when = f" on {date}" if date else " later"
        shipped = any(line.shipped for line in self.lines)
        child = self._linked_order(
            n,
            rest,
            date,
            at=at,
            actor=actor,
            received=f"split from {self.order_id}: "
            + ("units not yet shipped" if shipped else "the units missing there")
            + f", delivered{when}",
            confirmed=reason or "split delivery",
        )

        before, after = units_per_sku(self.lines), units_per_sku(kept)
        prices = {line.sku: line.unit_price for line in self.lines}
        changes = [
            FieldChange(f"lines[{sku}].quantity", str(qty), str(after[sku]))
            if sku in after
            else FieldChange(f"lines[{sku}]", f"{qty} x {prices[sku]}", "")
            for sku, qty in before.items()
            if after.get(sku) != qty
        ]
        changes.append(
            FieldChange(
                "split_into", ", ".join(self.split_into), ", ".join([*self.split_into, child.order_id])
            )
        )
        self.lines = kept
        self.lines_changed = True
        changes.extend(self._set_allocations(allocations))
        self.split_into = [*self.split_into, child.order_id]
        if self.status is Status.PARTIALLY_SHIPPED:
            if all(line.shipped >= line.quantity for line in kept):
                # Nothing is left to ship here: the rest is the linked order's (the move first, versions in order).
                self._move(Status.SHIPPED, at, actor, f"split delivery: the rest goes in {child.order_id}")
                if all(line.delivered >= line.quantity for line in kept):
                    self._move(Status.COMPLETED, at, "system", "every shipped unit delivered")
        elif self.status is not Status.ALLOCATED and all(line.allocated >= line.quantity for line in kept):
            self._move(
                Status.ALLOCATED,
                at,
                actor,
                f"split delivery: ships what is reserved now; the rest in {child.order_id}",
            )
        if (
            self.status not in AWAITING_STOCK
        ):  # nothing it keeps is awaited: the late units' dates are the child's
            self.expected_ship_date = self.expected_delivery_date = ""
        self._record_change(("split_delivery",), changes, at=at, actor=actor, reason=reason)
        return child

    def accept_delay(self, date: str, *, at: dt.datetime, actor: str, reason: str) -> None:
        """The customer accepts a later date: it becomes the date promised (on time is measured against it)."""
        if self.status in TERMINAL:
            raise FailedPrecondition(
                f"order {self.order_id} is {self.status}; its date no longer changes",
                rule="order_closed",
                subject=self.order_id,
            )
        if not date or date == self.requested_delivery_date:
            return
        change = FieldChange("requested_delivery_date", self.requested_delivery_date, date)
        self.requested_delivery_date = date
        self._record_change(("accept_delay",), [change], at=at, actor=actor, reason=reason)

    def reject(self, at: dt.datetime, actor: str, reason: str) -> None:
        self._require(Status.ON_HOLD, "reject_only_on_hold", "only a held order can be rejected")
        self._move(Status.REJECTED, at, actor, reason or "rejected")

    def remainder_cancel(self, reason: str) -> ChangeRequest:
        """The change request a cancel of this partially shipped order makes: every unit not yet shipped."""
        request = change_rules.remainder(self.lines, reason or "the rest of the order cancelled")
        if self.status is not Status.PARTIALLY_SHIPPED or not request.cancel:
            raise FailedPrecondition(
                f"order {self.order_id} is {self.status}: nothing is left to cancel (use a return)",
                rule="cancel_before_shipment",
                subject=self.order_id,
            )
        return request

    def cancel(self, at: dt.datetime, actor: str, reason: str) -> None:
        """Cancels an order none of whose goods shipped. A partially shipped order's cancel is a change
        request cancelling its remainder instead (`changes.remainder`, the module docstring)."""
        if any(line.shipped for line in self.lines) or any(
            s.status in LEFT_WAREHOUSE for s in self.shipments.values()
        ):
            raise FailedPrecondition(
                "the order has shipped goods; cancel is no longer possible (use a return)",
                rule="cancel_before_shipment",
                subject=self.order_id,
            )
        if Status.CANCELLED not in TRANSITIONS[self.status]:
            raise FailedPrecondition(
                f"an order that is {self.status} cannot be cancelled",
                rule="cancel_not_allowed_in_status",
                subject=self.order_id,
            )
        self._move(Status.CANCELLED, at, actor, reason or "cancelled")

    # --- supply ----------------------------------------------------------------
    def apply_reservation(
        self,
        at: dt.datetime,
        allocations: list[Allocation],
        backordered: dict[str, int],
        expected: tuple[str, str] = ("", ""),
    ) -> None:
        """Inventory's answer: allocated when every line is covered, else scheduled (backorder)
        with the dates inventory expects the missing units (`expected`: ship date, delivery date)."""
        if self.status not in AWAITING_STOCK:
            raise FailedPrecondition(
                f"stock is reserved only for confirmed or scheduled orders, not {self.status}",
                rule="reserve_only_when_awaiting_stock",
                subject=self.order_id,
            )
        self.allocations = list(allocations)
        share_reservation(self.lines, allocations)
        complete = all(line.allocated >= line.quantity for line in self.lines) and not any(
            backordered.values()
        )
        before = (self.expected_ship_date, self.expected_delivery_date)
        self.expected_ship_date, self.expected_delivery_date = ("", "") if complete else expected
        if complete:
            self._move(Status.ALLOCATED, at, "system", "every line reserved")
        elif self.status is not Status.SCHEDULED:
            missing = ", ".join(f"{sku} x{qty}" for sku, qty in sorted(backordered.items()) if qty)
            when = f"; expected delivery {expected[1]}" if expected[1] else ""
            self._move(Status.SCHEDULED, at, "system", f"backordered: {missing}{when}")
        elif before != tuple(expected):
            # Still waiting, but supply moved (a production run rescheduled, an inbound receipt announced):
            # the new dates are published as order.changed, so the partner hears them.
            changes = [
                FieldChange(name, old, new)
                for name, old, new in zip(
                    ("expected_ship_date", "expected_delivery_date"), before, expected, strict=True
                )
                if old != new
            ]
            self._record_change(("expected_date",), changes, at=at, actor="system", reason="supply moved")
        else:
            self.version += 1  # allocation changed, status did not

    def expected_shipments(self) -> set[str]:
        return {a.warehouse for a in self.allocations if a.quantity > 0}

    # --- fulfilment ------------------------------------------------------------
    def record_shipment(
        self, at: dt.datetime, view: ShipmentView, event: str = "", event_at: dt.datetime | None = None
    ) -> None:
        """A shipment step from shipping; derives line quantities and the order status. `event` (shipped,
        delayed, lost, …) and its time keep the carrier's last word for the promise watch."""
        known = self.shipments.get(view.shipment_id)
        if known is not None and view.version and known.version >= view.version:
            return  # stale or repeated (events of one shipment may arrive out of order: retries, replicas)
        if known is not None:
            view.shipped_at = view.shipped_at or known.shipped_at
            view.last_event, view.last_event_at = known.last_event, known.last_event_at
        when = (event_at or at).isoformat()
        if event == "shipped" and not view.shipped_at:
            view.shipped_at = when
        if view.status in LEFT_WAREHOUSE and event and event not in NOT_FROM_CARRIER:
            view.last_event, view.last_event_at = event, when
        self.shipments[view.shipment_id] = view
        live = [s for s in self.shipments.values() if s.status != "cancelled"]
        shipped: dict[str, int] = {}
        delivered: dict[str, int] = {}
        for s in live:
            for sku, qty in s.lines.items():
                if s.status in LEFT_WAREHOUSE:
                    shipped[sku] = shipped.get(sku, 0) + qty
                if s.status == "delivered":
                    delivered[sku] = delivered.get(sku, 0) + qty
        for line, line_shipped, line_delivered in zip(
            self.lines, in_line_order(self.lines, shipped), in_line_order(self.lines, delivered), strict=True
        ):
            line.shipped, line.delivered = line_shipped, line_delivered

        if self.status in TERMINAL:
            self.version += 1
            return
        expected = self.expected_shipments()
        by_warehouse = {s.warehouse: s for s in live}
        all_shipped = bool(expected) and all(
            w in by_warehouse and by_warehouse[w].status in LEFT_WAREHOUSE for w in expected
        )
        all_delivered = all_shipped and all(by_warehouse[w].status == "delivered" for w in expected)
        any_shipped = any(s.status in LEFT_WAREHOUSE for s in live)
        changed = False
        if any_shipped and not all_shipped and self.status is Status.ALLOCATED:
            self._move(Status.PARTIALLY_SHIPPED, at, "system", f"shipment {view.shipment_id} {view.status}")
            changed = True
        if all_shipped and self.status in (Status.ALLOCATED, Status.PARTIALLY_SHIPPED):
            self._move(Status.SHIPPED, at, "system", "every shipment has left the warehouse")
            changed = True
        if all_delivered and self.status is Status.SHIPPED:
            self._move(
                Status.COMPLETED,
                delivered_at(at, event, event_at, self.history),
                "system",
                "every shipment delivered",
            )
            changed = True
        if not changed:
            self.version += 1

    @property
    def delivered_on_time(self) -> bool:
        return all(s.on_time is not False for s in self.shipments.values() if s.status == "delivered")

    def record_return(self, returned: dict[str, int]) -> None:
        """Units accepted back by a return (inspected), per SKU."""
        for line in self.lines:
            take = min(returned.get(line.sku, 0), line.delivered - line.returned)
            if take > 0:
                line.returned += take
                returned[line.sku] -= take
        self.version += 1

    # --- the promise watch -------------------------------------------------------
    def watch(self, risks: list[Risk], at: dt.datetime) -> bool:
        """The watch's assessment: records order.at_risk for each risk new (or with a new date from a fact)
        and order.back_on_track for each one gone; a risk that stays as it was records nothing, so nobody
        hears it twice. Returns whether anything changed."""
        raised, cleared = compare(self.risks, risks)
        if not raised and not cleared:
            return False
        since = {(r.code, r.shipment_id): r.since for r in self.risks}
        kept = [
            Risk(
                r.code,
                r.expected_date,
                r.slip_days,
                r.evidence,
                r.shipment_id,
                since.get((r.code, r.shipment_id)) or at,
            )
            for r in risks
        ]
        current = {(r.code, r.shipment_id): r for r in kept}
        # The stored risk keeps the outlook last told (a same-as risk is not re-told, so not re-stored).
        told = {(r.code, r.shipment_id): r for r in self.risks}
        for r in raised:
            told[(r.code, r.shipment_id)] = current[(r.code, r.shipment_id)]
        for r in cleared:
            told.pop((r.code, r.shipment_id), None)
        self.risks = [told[(r.code, r.shipment_id)] for r in kept]
        for r in cleared:
            self.version += 1
            self.events.append(RiskCleared(r, self.version, at))
        for r in raised:
            self.version += 1
            self.events.append(RiskRaised(current[(r.code, r.shipment_id)], self.version, at))
        return True

    def next_look(self, now: dt.datetime, policy: Policy) -> dt.datetime | None:
        """When the promise watch next has something to do for the order as it is at `now` (its own rule,
        services/orders/watch.py): AT_ONCE when a look now would change something (a risk to raise or clear,
        a priority to age, risks of a settled order to drop), else the moment time alone could
        (promise.next_check); None for a settled order. A save stores it, so the watch looks at an order
        when it has something to tell rather than after every save."""
        if self.status in TERMINAL:
            return AT_ONCE if self.risks else None
        facts = self.promise_facts()
        raised, cleared = compare(self.risks, assess(facts, now, policy))
        if raised or cleared or self.current_priority(now.date()) != self.priority:
            return AT_ONCE
        return next_check(facts, now, policy)

    def current_priority(self, today: dt.date) -> int:
        """The order's priority today: it rises as its date nears and as it waits (promise.current_priority)."""
        return current_priority(
            self.priority,
            requested=_date(self.requested_delivery_date),
            placed=self.created_at.date() if self.created_at else None,
            today=today,
            urgent=self.urgent,
        )

    def settle_risks(self) -> None:
        """A settled order (completed, cancelled, rejected) has no promise left to watch: its risks go
        without a word (its own event said what happened)."""
        if self.risks:
            self.risks = []
            self.version += 1

    def promise_facts(self) -> OrderFacts:
        """The order as the watch's rules see it; each shipment's pick-by and deliver-by are shipping's."""
        held_since = None
        if self.status is Status.ON_HOLD:
            held_since = next((h.at for h in reversed(self.history) if h.status is Status.ON_HOLD), None)
        # The desk's last decision on each shipment's trouble (a resolved exception naming it): the carrier's
        # word before it is handled; a reshipped parcel is replaced by its reship.
        handled: dict[str, dt.datetime] = {}
        replaced: set[str] = set()
        for e in self.exceptions:
            if e.shipment_id and e.resolution is not None:
                handled[e.shipment_id] = max(handled.get(e.shipment_id, e.resolution.at), e.resolution.at)
                if e.resolution.action.value == "reship":
                    replaced.add(e.shipment_id)
        shipments = []
        for s in self.shipments.values():
            if s.status == "cancelled" or s.shipment_id in replaced:
                continue
            last_event, last_event_at = s.last_event, _instant(s.last_event_at)
            decided = handled.get(s.shipment_id)
            if decided is not None and (last_event_at is None or last_event_at <= decided):
                last_event, last_event_at = "", decided
            shipments.append(
                ShipmentFacts(
                    shipment_id=s.shipment_id,
                    status=s.status,
                    promised_date=_date(s.promised_delivery_date),
                    ship_by=_instant(s.pick_by),
                    deliver_by=_date(s.deliver_by),
                    shipped_at=_instant(s.shipped_at),
                    last_event=last_event,
                    last_event_at=last_event_at,
                    carrier_date=_date(s.expected_delivery_date),
                )
            )
        return OrderFacts(
            order_id=self.order_id,
            status=self.status._value_,  # .value without the enum property's two calls
            promised_date=_date(self.requested_delivery_date),
            expected_delivery_date=_date(self.expected_delivery_date),
            expected_ship_date=_date(self.expected_ship_date),
            held_since=held_since,
            shipments=tuple(sorted(shipments, key=lambda f: f.shipment_id)),
        )

    # --- reads -----------------------------------------------------------------
    @property
    def queue_keys(self) -> QueueKeys:
        """What the desk's work queues (Today) find the order by, as the store keeps it in indexed columns:
        the hold reasons while on hold, the types of its open exceptions while the order is not closed
        (a closed order is nobody's work), and every warehouse it is allocated at or ships from."""
        closed = self.status in TERMINAL
        return QueueKeys(
            hold_codes=tokens(r["code"] for r in self.hold_reasons) if self.status is Status.ON_HOLD else "",
            exception_types=""
            if closed or not self.exceptions
            else tokens(e.type.value for e in self.exceptions if e.open),
            warehouses=tokens(
                [a.warehouse for a in self.allocations] + [s.warehouse for s in self.shipments.values()]
            ),
            expected_ship_key=self.expected_ship_date or Listing.NO_DATE,
            risk_key=(self.requested_delivery_date or Listing.NO_DATE) if self.risks else "",
        )

    @property
    def date_to_expect(self) -> str:
        """The delivery date to tell the customer: the one an exception announced, else the backorder's
        expected date, else the requested date; "" when there is none."""
        return (
            exception_rules.expected_date(self.exceptions)
            or self.expected_delivery_date
            or self.requested_delivery_date
        )

    @property
    def at_risk(self) -> bool:
        """An open exception puts the order at risk until the desk resolves it; so does a risk the promise
        watch sees, until it clears."""
        return any(e.open for e in self.exceptions) or bool(self.risks)

    @property
    def total_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    # --- the one way a status changes ---------------------------------------------
    def _require(self, status: Status, rule: str, message: str) -> None:
        if self.status is not status:
            raise FailedPrecondition(
                f"{message}; the order is {self.status}", rule=rule, subject=self.order_id
            )

    def _move(self, to: Status, at: dt.datetime, actor: str, reason: str) -> None:
        previous = self.status if self.history else None
        if previous is not None and to not in TRANSITIONS[previous]:
            raise FailedPrecondition(
                f"an order cannot go from {previous} to {to}",
                rule=f"transition_{previous}_to_{to}",
                subject=self.order_id,
            )
        entry = HistoryEntry(status=to, at=at, actor=actor, reason=reason)
        self.status = to
        self.version += 1
        if to in TERMINAL:
            # A settled order has no promise left to watch: its risks go with the move, in the same save,
            # not at the watch's next pass (the order's own event says what happened).
            self.risks = []
        self.history.append(entry)
        self.transitions.append(Transition(previous, to, self.version, entry))


def tokens(codes: Iterable[str]) -> str:
    """Codes as the store's queue columns keep them: " a b " (sorted, each once, blank-free), "" for none,
    so `LIKE '% a %'` finds one and a GROUP BY counts the combinations (services/orders/store.py)."""
    found = sorted({c for c in codes if c})
    return f" {' '.join(found)} " if found else ""


@dataclass(frozen=True)
class QueueKeys:
    """An order's keys in the desk's work queues (Order.queue_keys), each in the form of `tokens`."""

    hold_codes: str
    exception_types: str
    warehouses: str
    # The backorders queue's order, the soonest expected ship date first and orders without one last, kept
    # as a column its index sorts by (an expression over expected_ship_date sorted every backorder per page).
    expected_ship_key: str
    # The at-risk queue's first key, the same way: the promised date (orders without one last) while the
    # promise watch sees a risk, "" while it sees none.
    risk_key: str


SEARCH_TEXT_FIELDS = ("external_ref", "customer_id", "sku", "channel")
SEARCH_TEXT_MAX = 128
SEARCH_FIELDS = (*SEARCH_TEXT_FIELDS, "created_from", "created_to")  # ListOrdersRequest's search fields


@dataclass(frozen=True)
class OrderSearch:
    """What a listing is narrowed to, besides partner and status: exact matches on the partner's
    reference (its PO number), the customer, a SKU some line of the order has, the channel; and the
    time the order was received, from `created_from` (included) to `created_to` (excluded)."""

    external_ref: str = ""
    customer_id: str = ""
    sku: str = ""
    channel: str = ""
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None

    @classmethod
    def parse(cls, violations: list[FieldViolation], **given: str) -> OrderSearch:
        """Appends what is wrong to `violations` (each naming its field) and returns what can be read.
        Dates: `YYYY-MM-DD` (whole UTC days, `created_to` includes its day) or RFC 3339 with offset."""
        texts = {}
        for name in SEARCH_TEXT_FIELDS:
            value = given.get(name, "")
            if len(value) > SEARCH_TEXT_MAX:
                violations.append(FieldViolation(name, f"at most {SEARCH_TEXT_MAX} characters"))
            elif any(not ch.isprintable() for ch in value):
                violations.append(FieldViolation(name, "printable characters only"))
            texts[name] = value
        times: dict[str, dt.datetime | None] = {}
        for name, is_end in (("created_from", False), ("created_to", True)):
            times[name] = time_bound(name, given.get(name, ""), end=is_end, violations=violations)
        start, stop = times["created_from"], times["created_to"]
        if start is not None and stop is not None and stop <= start:
            violations.append(FieldViolation("created_to", "must be after created_from", "empty_period"))
        return cls(**texts, created_from=start, created_to=stop)


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _instant(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Listing:
    """How a page of orders is chosen: newest first, oldest first (first come), the desk's queue (priority,
    then first come), backorders by their expected date (`expected`: the soonest expected ship date first,
    orders without one last, then first come), or the at-risk queue (`at_risk`: orders the promise watch
    sees at risk, of `risk` when given, most urgent first: the soonest promised date, orders without one
    last, then the largest slip, then first come); narrowed by a hold reason, an open exception (of
    `exception_type` when given), a warehouse and a search.

    Cursors name the last order of the previous page: "<seq>" newest first, "o<seq>" oldest first,
    "p<priority>.<seq>" by priority, "e<date>.<seq>" by expected date, "u<date>.<slip>.<seq>" by urgency
    (keyset paging: a page stays the same while orders arrive); a cursor from one ordering is refused by
    the others."""

    order_by: str = "newest"
    hold_reason: str = ""
    after: tuple[int | str, int] | None = None  # (priority or expected date, seq) of the previous page's last
    search: OrderSearch = field(default_factory=OrderSearch)
    at_risk: bool = False
    risk: str = ""
    risk_after: tuple[str, int, int] | None = None  # (promised date or NO_DATE, slip, seq)
    open_exception: bool = False
    exception_type: str = ""
    warehouse: str = ""

    ORDERINGS = ("newest", "oldest", "priority", "expected")
    NO_DATE = (
        "9999-12-31"  # orders without a promised (expected) date come last in the at-risk (backorder) queue
    )

    @property
    def by_priority(self) -> bool:
        return self.order_by == "priority"

    @property
    def narrowed(self) -> bool:
        """Whether the listing is a search (which looks in the archive too): the queue filters are not, as
        only open orders are in a queue."""
        return self.search != OrderSearch()

    @classmethod
    def parse(
        cls,
        order_by: str,
        hold_reason: str,
        cursor: str,
        *,
        at_risk: bool = False,
        risk: str = "",
        open_exception: bool = False,
        exception_type: str = "",
        warehouse: str = "",
        **search: str,
    ) -> Listing:
        violations = []
        if order_by and order_by not in cls.ORDERINGS:
            violations.append(FieldViolation("order_by", f"one of {', '.join(cls.ORDERINGS)}"))
        if hold_reason and not _is_code(hold_reason):
            violations.append(FieldViolation("hold_reason", "a hold reason code such as price_mismatch"))
        if risk and risk not in RISK_CODES:
            violations.append(FieldViolation("risk", f"one of {', '.join(RISK_CODES)}"))
        elif risk and not at_risk:
            violations.append(FieldViolation("risk", "only with at_risk=true"))
        if exception_type and exception_type not in {t.value for t in exception_rules.ExceptionType}:
            types = ", ".join(t.value for t in exception_rules.ExceptionType)
            violations.append(FieldViolation("exception_type", f"one of {types}"))
        elif exception_type and not open_exception:
            violations.append(FieldViolation("exception_type", "only with open_exception=true"))
        if len(warehouse) > SEARCH_TEXT_MAX or any(ch.isspace() or not ch.isprintable() for ch in warehouse):
            violations.append(FieldViolation("warehouse", "a warehouse id: printable, no spaces"))
        ordering = "urgency" if at_risk else (order_by or "newest")
        after = None
        risk_after = None
        if cursor and ordering in (*cls.ORDERINGS, "urgency"):
            try:
                after, risk_after = _read_cursor(ordering, cursor)
            except ValueError:
                violations.append(FieldViolation("cursor", "not a cursor issued for this ordering"))
        narrowed = OrderSearch.parse(violations, **search)
        if violations:
            raise InvalidArgument("invalid listing", violations)
        return cls(
            order_by="newest" if at_risk else ordering,
            hold_reason=hold_reason,
            after=after,
            search=narrowed,
            at_risk=at_risk,
            risk=risk,
            risk_after=risk_after,
            open_exception=open_exception,
            exception_type=exception_type,
            warehouse=warehouse,
        )

    def cursor_after(
        self, priority: int, seq: int, *, promised: str = "", slip: int = 0, expected: str = ""
    ) -> str:
        if self.at_risk:
            return f"u{promised or self.NO_DATE}.{slip}.{seq}"
        return {
            "priority": f"p{priority}.{seq}",
            "oldest": f"o{seq}",
            "expected": f"e{expected or self.NO_DATE}.{seq}",
        }.get(self.order_by, str(seq))


def _is_code(value: str) -> bool:
    return all(ch.islower() or ch == "_" for ch in value)


def _read_cursor(
    ordering: str, cursor: str
) -> tuple[tuple[int | str, int] | None, tuple[str, int, int] | None]:
    """(after, risk_after) of a cursor of this ordering (Listing); ValueError when it is not one."""
    prefix = {"urgency": "u", "priority": "p", "oldest": "o", "expected": "e"}.get(ordering, "")
    if prefix and not cursor.startswith(prefix):
        raise ValueError(cursor)
    parts = cursor[len(prefix) :].split(".")
    dated = ordering in ("urgency", "expected")
    if dated:
        dt.date.fromisoformat(parts[0])
    read = [whole_number(part) for part in (parts[1:] if dated else parts)]
    numbers = [n for n in read if n is not None]
    if len(numbers) != len(read):
        raise ValueError(cursor)
    if ordering == "urgency" and len(numbers) == 2:
        return None, (parts[0], numbers[0], numbers[1])
    if ordering == "priority" and len(numbers) == 2:
        return (numbers[0], numbers[1]), None
    if ordering == "expected" and len(numbers) == 1:
        return (parts[0], numbers[0]), None
    if ordering in ("newest", "oldest") and len(numbers) == 1:
        return (0, numbers[0]), None
    raise ValueError(cursor)


def delivered_at(
    now: dt.datetime, event: str, event_at: dt.datetime | None, history: list[HistoryEntry]
) -> dt.datetime:
    """When an order the last delivery completes was completed: the carrier's time of that delivery (a
    carrier's `delivered` tracking event, or the 3PL's step with its time), never later than now and never
    before the order's previous step, so the history stays in time order; else now."""
    if event != "delivered" or event_at is None:
        return now
    earliest = history[-1].at if history else event_at
    return max(min(event_at, now), earliest)
