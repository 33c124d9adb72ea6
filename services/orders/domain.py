"""The order aggregate and its lifecycle: plain Python, no I/O.

    received ─┬─> confirmed ─┬─> allocated ──> partially_shipped ──> shipped ──> completed
              │              └─> scheduled ─┘ (backorder; allocated once every line is reserved)
              └─> on_hold ──> confirmed | rejected
    cancelled: from received, on_hold, confirmed, scheduled, allocated (nothing shipped yet)

Every transition bumps the version and appends a history entry (time, actor,
reason); `Order.transitions` collects the ones not yet published.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.orders.changes import ChangeRecord, FieldChange, set_allocations
from services.orders.exceptions import OrderException


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


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.RECEIVED: frozenset({S.ON_HOLD, S.CONFIRMED, S.REJECTED, S.CANCELLED}),
    S.ON_HOLD: frozenset({S.CONFIRMED, S.REJECTED, S.CANCELLED}),
    S.CONFIRMED: frozenset({S.SCHEDULED, S.ALLOCATED, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.ALLOCATED, S.CANCELLED}),
    S.ALLOCATED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    S.PARTIALLY_SHIPPED: frozenset({S.SHIPPED}),
    S.SHIPPED: frozenset({S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
}
TERMINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Orders the allocation worker reserves stock for.
AWAITING_STOCK = (S.CONFIRMED, S.SCHEDULED)
# Orders a split delivery can divide: waiting for stock, or allocated with the goods still in the warehouse.
SPLITTABLE = (S.CONFIRMED, S.SCHEDULED, S.ALLOCATED)
# Shipment statuses that mean the goods have left the warehouse.
LEFT_WAREHOUSE = ("shipped", "delivered")


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
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
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


def split_quantities(lines: list[Line], held: dict[str, int]) -> tuple[list[Line], list[Line]]:
    """A split delivery's arithmetic: the lines of what is held now (`held`: units per SKU, shared by
    the lines of one SKU in line order) and the lines of the rest. Per SKU the two add up to the
    order's quantity; neither has a line of 0 units."""
    left = dict(held)
    kept: list[Line] = []
    rest: list[Line] = []
    for line in lines:
        take = max(0, min(line.quantity, left.get(line.sku, 0)))
        left[line.sku] = left.get(line.sku, 0) - take
        if take:
            kept.append(Line(line.sku, take, line.unit_price, allocated=take))
        if line.quantity > take:
            rest.append(Line(line.sku, line.quantity - take, line.unit_price))
    return kept, rest


def _units(lines: list[Line]) -> dict[str, int]:
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


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


@dataclass(frozen=True)
class Transition:
    previous: Status | None
    status: Status
    version: int
    entry: HistoryEntry


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
    status: Status = S.RECEIVED
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
    # Not persisted: what changed since load, for the store and the outbox.
    transitions: list[Transition] = field(default_factory=list, repr=False)
    # Not persisted: facts besides status changes to publish (("changed", ChangeRecord) | ("exception", ...)).
    notices: list[tuple] = field(default_factory=list, repr=False)
    lines_changed: bool = field(default=False, repr=False)
    loaded_version: int = field(default=0, repr=False)

    # --- creation ----------------------------------------------------------
    @classmethod
    def receive(cls, *, at: dt.datetime, actor: str, hold_reasons: list[dict[str, str]], **fields) -> Order:
        """A new order from intake: received, then confirmed at once or held with reasons."""
        lines = fields["lines"]
        if not lines:
            raise InvalidArgument("an order needs at least one line", reason="no_lines")
        order = cls(**fields, created_at=at)
        order._move(S.RECEIVED, at, actor, "submitted")
        if hold_reasons:
            order.hold_reasons = list(hold_reasons)
            order._move(S.ON_HOLD, at, "system", "; ".join(r["code"] for r in hold_reasons))
        else:
            order._move(S.CONFIRMED, at, "system", "auto-approved: every check passed")
        return order

    # --- decisions by people ---------------------------------------------------
    def approve(self, at: dt.datetime, actor: str, note: str, accept_proposal: str = "") -> list[Order]:
        """Releases a held order. With an accepted proposal it first takes the proposed date
        (earliest_date), or keeps the first date's quantities and splits the later dates off
        into orders of their own (split), confirmed with it. Returns the orders split off."""
        self._require(S.ON_HOLD, "approve_only_on_hold", "only a held order can be approved")
        if accept_proposal not in ACCEPTABLE_PROPOSALS:
            raise InvalidArgument(
                f"accept_proposal must be one of {', '.join(k for k in ACCEPTABLE_PROPOSALS if k)}",
                [FieldViolation("accept_proposal", f"unknown proposal kind {accept_proposal!r}")])
        reason = note or "approved"
        split_off: list[Order] = []
        if accept_proposal == "earliest_date":
            proposal = self._proposal("earliest_date")
            reason += (f"; accepted the earliest date {proposal['delivery_date']} "
                       f"(requested {self.requested_delivery_date or 'none'})")
            self.requested_delivery_date = proposal["delivery_date"]
        elif accept_proposal == "split":
            split_off = self._split(self._proposal("split"), at, actor, note)
            reason += "; accepted a split: " + "; ".join(
                f"{o.order_id} delivers {', '.join(f'{line.sku} x{line.quantity}' for line in o.lines)} "
                f"on {o.requested_delivery_date}" for o in split_off)
        self._move(S.CONFIRMED, at, actor, reason)
        return split_off

    def _proposal(self, kind: str) -> dict:
        for proposal in self.proposals:
            if proposal.get("kind") == kind:
                return proposal
        raise FailedPrecondition(f"order {self.order_id} has no {kind} proposal to accept",
                                 rule="no_such_proposal", subject=self.order_id)

    def _split(self, proposal: dict, at: dt.datetime, actor: str, note: str) -> list[Order]:
        by_date = split_parts(proposal, self.lines)
        if by_date is None:
            raise FailedPrecondition(
                f"the split proposal of order {self.order_id} no longer matches its lines",
                rule="proposal_stale", subject=self.order_id)
        prices = {}
        for line in self.lines:
            prices.setdefault(line.sku, line.unit_price)
        dates = sorted(by_date)
        self.lines = [Line(sku, qty, prices[sku]) for sku, qty in by_date[dates[0]]]
        self.lines_changed = True
        self.requested_delivery_date = dates[0]
        split_off = []
        for n, date in enumerate(dates[1:], start=2):
            child = Order(
                order_id=f"{self.order_id}-{n}", partner_id=self.partner_id, channel=self.channel,
                external_ref=f"{self.external_ref}/{n}" if self.external_ref else "", customer_id=self.customer_id,
                ship_to=dict(self.ship_to), lines=[Line(sku, qty, prices[sku]) for sku, qty in by_date[date]],
                requested_delivery_date=date, payment_terms=self.payment_terms, currency=self.currency,
                priority=self.priority, urgent=self.urgent, split_from=self.order_id, created_at=at,
            )
            child._move(S.RECEIVED, at, actor, f"split from {self.order_id}: its delivery of {date}")
            child._move(S.CONFIRMED, at, actor, note or "approved with the split")
            split_off.append(child)
        self.split_into = [o.order_id for o in split_off]
        return split_off

    # --- resolutions of exceptions that change the order (issue 4) ------------------------
    def check_split_delivery(self) -> None:
        """Before inventory is asked: an order still waiting for some of its stock, or an allocated one
        whose goods are still in the warehouse (units found missing at picking), can split."""
        if self.status not in SPLITTABLE:
            raise FailedPrecondition(f"an order that is {self.status} can no longer be split",
                                     rule="split_not_allowed_in_status", subject=self.order_id)

    def split_delivery(self, allocations: list[Allocation], *, at: dt.datetime, actor: str, delivery_date: str,
                       reason: str) -> Order:
        """Deliver what is reserved now (`allocations`: what inventory holds for the order), the rest later:
        this order keeps the reserved units and is (or stays) allocated; a new linked order (`<id>-<n>`, confirmed,
        same customer, ship-to, prices, terms and priority) gets the rest, due `delivery_date`.
        Returns the new order. Refused when nothing is reserved or nothing is missing."""
        self.check_split_delivery()
        held: dict[str, int] = {}
        for a in allocations:
            held[a.sku] = held.get(a.sku, 0) + a.quantity
        kept, rest = split_quantities(self.lines, held)
        if not rest:
            raise FailedPrecondition(f"every unit of order {self.order_id} is reserved: nothing to deliver later",
                                     rule="split_nothing_missing", subject=self.order_id)
        if not kept:
            raise FailedPrecondition(f"nothing of order {self.order_id} is reserved: nothing to deliver now",
                                     rule="split_nothing_allocated", subject=self.order_id)
        n = next(n for n in itertools.count(2) if f"{self.order_id}-{n}" not in self.split_into)
        child = Order(
            order_id=f"{self.order_id}-{n}", partner_id=self.partner_id, channel=self.channel,
            external_ref=f"{self.external_ref}/{n}" if self.external_ref else "", customer_id=self.customer_id,
            ship_to=dict(self.ship_to), lines=rest, requested_delivery_date=delivery_date or self.requested_delivery_date,
            payment_terms=self.payment_terms, currency=self.currency, priority=self.priority, urgent=self.urgent,
            split_from=self.order_id, created_at=at,
        )
        when = f" on {child.requested_delivery_date}" if child.requested_delivery_date else " later"
        child._move(S.RECEIVED, at, actor, f"split from {self.order_id}: the units missing there, delivered{when}")
        child._move(S.CONFIRMED, at, actor, reason or "split delivery")

        before, after = _units(self.lines), _units(kept)
        prices = {line.sku: line.unit_price for line in self.lines}
        changes = [FieldChange(f"lines[{sku}].quantity", str(qty), str(after[sku])) if sku in after
                   else FieldChange(f"lines[{sku}]", f"{qty} x {prices[sku]}", "")
                   for sku, qty in before.items() if after.get(sku) != qty]
        changes.append(FieldChange("split_into", ", ".join(self.split_into),
                                   ", ".join([*self.split_into, child.order_id])))
        self.lines = kept
        self.lines_changed = True
        changes.extend(set_allocations(self, allocations))
        self.split_into = [*self.split_into, child.order_id]
        self.expected_ship_date = self.expected_delivery_date = ""
        if self.status is not S.ALLOCATED:
            self._move(S.ALLOCATED, at, actor, f"split delivery: ships what is reserved now; the rest in {child.order_id}")
        self.version += 1
        record = ChangeRecord(self.version, at, actor, ("split_delivery",), reason, tuple(changes))
        self.change_log.append(record)
        self.notices.append(("changed", record))
        return child

    def accept_delay(self, date: str, *, at: dt.datetime, actor: str, reason: str) -> None:
        """The customer accepts a later date: it becomes the date promised (on time is measured against it)."""
        if self.status in TERMINAL:
            raise FailedPrecondition(f"order {self.order_id} is {self.status}; its date no longer changes",
                                     rule="order_closed", subject=self.order_id)
        if not date or date == self.requested_delivery_date:
            return
        change = FieldChange("requested_delivery_date", self.requested_delivery_date, date)
        self.requested_delivery_date = date
        self.version += 1
        record = ChangeRecord(self.version, at, actor, ("accept_delay",), reason, (change,))
        self.change_log.append(record)
        self.notices.append(("changed", record))

    def reject(self, at: dt.datetime, actor: str, reason: str) -> None:
        self._require(S.ON_HOLD, "reject_only_on_hold", "only a held order can be rejected")
        self._move(S.REJECTED, at, actor, reason or "rejected")

    def cancel(self, at: dt.datetime, actor: str, reason: str) -> None:
        if any(line.shipped for line in self.lines) or any(
            s.status in LEFT_WAREHOUSE for s in self.shipments.values()
        ):
            raise FailedPrecondition(
                "the order has shipped goods; cancel is no longer possible (use a return)",
                rule="cancel_before_shipment", subject=self.order_id,
            )
        if S.CANCELLED not in TRANSITIONS[self.status]:
            raise FailedPrecondition(
                f"an order that is {self.status} cannot be cancelled", rule="cancel_not_allowed_in_status",
                subject=self.order_id,
            )
        self._move(S.CANCELLED, at, actor, reason or "cancelled")

    # --- supply ----------------------------------------------------------------
    def apply_reservation(self, at: dt.datetime, allocations: list[Allocation], backordered: dict[str, int],
                          expected: tuple[str, str] = ("", "")) -> None:
        """Inventory's answer: allocated when every line is covered, else scheduled (backorder)
        with the dates inventory expects the missing units (`expected`: ship date, delivery date)."""
        if self.status not in AWAITING_STOCK:
            raise FailedPrecondition(
                f"stock is reserved only for confirmed or scheduled orders, not {self.status}",
                rule="reserve_only_when_awaiting_stock", subject=self.order_id,
            )
        self.allocations = list(allocations)
        reserved: dict[str, int] = {}
        for a in allocations:
            reserved[a.sku] = reserved.get(a.sku, 0) + a.quantity
        for line in self.lines:
            # Lines of one SKU share its reservation in line order.
            take = min(line.quantity, reserved.get(line.sku, 0))
            line.allocated = take
            reserved[line.sku] = reserved.get(line.sku, 0) - take
        complete = all(line.allocated >= line.quantity for line in self.lines) and not any(backordered.values())
        self.expected_ship_date, self.expected_delivery_date = ("", "") if complete else expected
        if complete:
            self._move(S.ALLOCATED, at, "system", "every line reserved")
        elif self.status is not S.SCHEDULED:
            missing = ", ".join(f"{sku} x{qty}" for sku, qty in sorted(backordered.items()) if qty)
            when = f"; expected delivery {expected[1]}" if expected[1] else ""
            self._move(S.SCHEDULED, at, "system", f"backordered: {missing}{when}")
        else:
            self.version += 1  # allocation changed, status did not

    def expected_shipments(self) -> set[str]:
        return {a.warehouse for a in self.allocations if a.quantity > 0}

    # --- fulfilment ------------------------------------------------------------
    def record_shipment(self, at: dt.datetime, view: ShipmentView) -> None:
        """A shipment step from shipping; derives line quantities and the order status."""
        known = self.shipments.get(view.shipment_id)
        if known is not None and view.version and known.version >= view.version:
            return  # stale or repeated (events of one shipment may arrive out of order: retries, replicas)
        self.shipments[view.shipment_id] = view
        live = [s for s in self.shipments.values() if s.status != "cancelled"]
        for line in self.lines:
            line.shipped = line.delivered = 0
        remaining_shipped: dict[str, int] = {}
        remaining_delivered: dict[str, int] = {}
        for s in live:
            for sku, qty in s.lines.items():
                if s.status in LEFT_WAREHOUSE:
                    remaining_shipped[sku] = remaining_shipped.get(sku, 0) + qty
                if s.status == "delivered":
                    remaining_delivered[sku] = remaining_delivered.get(sku, 0) + qty
        for line in self.lines:
            line.shipped = min(line.quantity, remaining_shipped.get(line.sku, 0))
            remaining_shipped[line.sku] = remaining_shipped.get(line.sku, 0) - line.shipped
            line.delivered = min(line.quantity, remaining_delivered.get(line.sku, 0))
            remaining_delivered[line.sku] = remaining_delivered.get(line.sku, 0) - line.delivered

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
        if any_shipped and not all_shipped and self.status is S.ALLOCATED:
            self._move(S.PARTIALLY_SHIPPED, at, "system", f"shipment {view.shipment_id} {view.status}")
            changed = True
        if all_shipped and self.status in (S.ALLOCATED, S.PARTIALLY_SHIPPED):
            self._move(S.SHIPPED, at, "system", "every shipment has left the warehouse")
            changed = True
        if all_delivered and self.status is S.SHIPPED:
            self._move(S.COMPLETED, at, "system", "every shipment delivered")
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

    # --- reads -----------------------------------------------------------------
    @property
    def at_risk(self) -> bool:
        """An open exception puts the order at risk until the desk resolves it."""
        return any(e.open for e in self.exceptions)

    @property
    def total_amount(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    # --- the one way a status changes ---------------------------------------------
    def _require(self, status: Status, rule: str, message: str) -> None:
        if self.status is not status:
            raise FailedPrecondition(f"{message}; the order is {self.status}", rule=rule, subject=self.order_id)

    def _move(self, to: Status, at: dt.datetime, actor: str, reason: str) -> None:
        previous = self.status if self.history else None
        if previous is not None and to not in TRANSITIONS[previous]:
            raise FailedPrecondition(
                f"an order cannot go from {previous} to {to}", rule=f"transition_{previous}_to_{to}",
                subject=self.order_id,
            )
        entry = HistoryEntry(status=to, at=at, actor=actor, reason=reason)
        self.status = to
        self.version += 1
        self.history.append(entry)
        self.transitions.append(Transition(previous, to, self.version, entry))


@dataclass(frozen=True)
class Listing:
    """How a page of orders is chosen: newest first, or the desk's queue (priority, then first come).

    Cursors name the last order of the previous page: "<seq>" newest first, "p<priority>.<seq>"
    by priority; a cursor from one ordering is refused by the other."""

    by_priority: bool = False
    hold_reason: str = ""
    after: tuple[int, int] | None = None  # (priority, seq) of the previous page's last order

    ORDERINGS = ("newest", "priority")

    @classmethod
    def parse(cls, order_by: str, hold_reason: str, cursor: str) -> Listing:
        violations = []
        if order_by and order_by not in cls.ORDERINGS:
            violations.append(FieldViolation("order_by", "one of newest, priority"))
        if hold_reason and not all(ch.islower() or ch == "_" for ch in hold_reason):
            violations.append(FieldViolation("hold_reason", "a hold reason code such as price_mismatch"))
        by_priority = order_by == "priority"
        after = None
        if cursor:
            try:
                if by_priority:
                    if not cursor.startswith("p"):
                        raise ValueError
                    priority, seq = cursor[1:].split(".")
                    after = (int(priority), int(seq))
                else:
                    after = (0, int(cursor))
            except ValueError:
                violations.append(FieldViolation("cursor", "not a cursor issued for this ordering"))
        if violations:
            raise InvalidArgument("invalid listing", violations)
        return cls(by_priority=by_priority, hold_reason=hold_reason, after=after)

    def cursor_after(self, priority: int, seq: int) -> str:
        return f"p{priority}.{seq}" if self.by_priority else str(seq)
