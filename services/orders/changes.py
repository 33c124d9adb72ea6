"""Change requests on a placed order: the policy table and the request's checks. Plain Python, no I/O.

`Order.change` (services/orders/domain.py) applies a request these checks allowed.

The policy table (POLICY) says, for each order status and change type, until which
shipment step the change is allowed, and which rule refuses it afterwards:

| status            | ship_to            | quantity            | add_line / remove_line | cancel_lines / cancel      |
|-------------------|--------------------|---------------------|------------------------|----------------------------|
| received, on_hold,| yes                | yes                 | yes                    | yes                        |
| confirmed,        |                    |                     |                        |                            |
| scheduled         |                    |                     |                        |                            |
| allocated         | until a shipment   | until the line's    | until any shipment is  | until a shipment has       |
|                   | is packed          | shipment is picked  | picked                 | shipped                    |
| partially_shipped | as allocated, judged on the REMAINDER: the shipments not yet shipped (the parcels that     |
|                   | left keep their address, lines and units); never below what shipped (below_shipped)         |
| shipped, completed| no: returns only (returns_only_after_shipment)                                                      |
| cancelled,        | no: the order is closed (order_closed)                                                              |
| rejected          |                                                                                                     |

A partially shipped order's remainder is an allocated order of its own: `stage_of` skips the shipments that
left the warehouse, so ship_to is allowed until a shipment still in the warehouse is packed, a quantity until
that line's shipment still in the warehouse is picked, add/remove lines until any of them is picked, cancel
until they ship. A line can never go below its shipped units, nor be removed once some of it shipped
(`below_shipped`). Cancelling the whole remainder (`cancel`, or every open unit) ends the order as shipped
(Order.change, services/orders/domain.py).

A refusal is FailedPrecondition(rule=...), which the gateway answers as 409 with `rule`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import IntEnum, StrEnum

from orderdesk.domain import ADDRESS_FIELDS
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument


class ChangeType(StrEnum):
    SHIP_TO = "ship_to"
    QUANTITY = "quantity"  # a line's quantity up or down
    ADD_LINE = "add_line"
    REMOVE_LINE = "remove_line"
    CANCEL_LINES = "cancel_lines"  # cancel some units of given lines
    CANCEL = "cancel"  # the whole order (Order.cancel)


class Stage(IntEnum):
    """How far the goods concerned have gone through the warehouse."""

    NONE = 0  # no shipment yet, or pending
    PICKED = 1
    PACKED = 2
    SHIPPED = 3  # shipped or delivered: the goods left the warehouse


SHIPMENT_STAGE = {
    "pending": Stage.NONE,
    "picked": Stage.PICKED,
    "packed": Stage.PACKED,
    "shipped": Stage.SHIPPED,
    "delivered": Stage.SHIPPED,
}


@dataclass(frozen=True)
class Policy:
    """Allowed while the goods concerned are before `until`; else refused by `rule`."""

    until: int | None  # a Stage, or ALWAYS (beyond every stage); None: never allowed
    rule: str

    def refuses(self, stage: Stage) -> bool:
        return self.until is None or stage >= self.until


ALWAYS = Stage.SHIPPED + 1  # beyond every stage: always allowed
_OPEN = {c: Policy(ALWAYS, "always_allowed") for c in ChangeType}
_ALLOCATED = {
    ChangeType.SHIP_TO: Policy(Stage.PACKED, "address_until_packed"),
    ChangeType.QUANTITY: Policy(Stage.PICKED, "quantity_until_picked"),
    ChangeType.ADD_LINE: Policy(Stage.PICKED, "lines_until_picking"),
    ChangeType.REMOVE_LINE: Policy(Stage.PICKED, "lines_until_picking"),
    ChangeType.CANCEL_LINES: Policy(Stage.SHIPPED, "cancel_before_shipment"),
    ChangeType.CANCEL: Policy(Stage.SHIPPED, "cancel_before_shipment"),
}
# The remainder of a partially shipped order: as an allocated order, its stage judged without the shipments
# that left (`stage_of(..., remainder=True)`).
_PARTIALLY_SHIPPED = dict(_ALLOCATED)
_SHIPPED = {c: Policy(None, "returns_only_after_shipment") for c in ChangeType}
_CLOSED = {c: Policy(None, "order_closed") for c in ChangeType}

# Status values as strings, so this module does not import the aggregate (domain imports us).
POLICY: dict[str, dict[ChangeType, Policy]] = {
    "received": _OPEN,
    "on_hold": _OPEN,
    "confirmed": _OPEN,
    "scheduled": _OPEN,
    "allocated": _ALLOCATED,
    "partially_shipped": _PARTIALLY_SHIPPED,
    "shipped": _SHIPPED,
    "completed": _SHIPPED,
    "cancelled": _CLOSED,
    "rejected": _CLOSED,
}


def refusing_rule(status: str, change: ChangeType, stage: Stage) -> str | None:
    """The rule that refuses `change` on an order in `status` whose goods are at `stage`; None if allowed."""
    policy = POLICY[status][change]
    return policy.rule if policy.refuses(stage) else None


def check_allowed(status: str, change: ChangeType, stage: Stage, order_id: str = "") -> None:
    rule = refusing_rule(status, change, stage)
    if rule is not None:
        raise FailedPrecondition(
            f"a {change.value} change is not allowed on an order that is {status}"
            + (f" with goods {stage.name.lower()}" if stage is not Stage.NONE else ""),
            rule=rule,
            subject=order_id,
        )


# --- the request -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewLine:
    sku: str
    quantity: int
    unit_price: str


@dataclass
class ChangeRequest:
    """What a partner asks to change. `quantities`: sku -> new quantity (0 removes the line);
    `cancel`: sku -> units to cancel (cancel_lines)."""

    ship_to: dict[str, str] | None = None
    quantities: dict[str, int] = field(default_factory=dict)
    add_lines: list[NewLine] = field(default_factory=list)
    remove_skus: list[str] = field(default_factory=list)
    cancel: dict[str, int] = field(default_factory=dict)
    reason: str = ""

    @property
    def empty(self) -> bool:
        return not (
            self.ship_to is not None or self.quantities or self.add_lines or self.remove_skus or self.cancel
        )


@dataclass(frozen=True)
class FieldChange:
    field: str  # "ship_to.city", "lines[SKU-1].quantity", "lines[SKU-2]"
    before: str
    after: str


@dataclass(frozen=True)
class ChangeRecord:
    """One accepted change request: who, when, why, and each field before and after."""

    version: int
    at: dt.datetime
    actor: str
    kinds: tuple[str, ...]
    reason: str
    changes: tuple[FieldChange, ...]

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "kinds": list(self.kinds),
            "reason": self.reason,
            "changes": [[c.field, c.before, c.after] for c in self.changes],
        }

    @classmethod
    def from_json(cls, d: dict) -> ChangeRecord:
        return cls(
            version=d["version"],
            at=dt.datetime.fromisoformat(d["at"]),
            actor=d["actor"],
            kinds=tuple(d["kinds"]),
            reason=d["reason"],
            changes=tuple(FieldChange(*c) for c in d["changes"]),
        )


def describe(changes: tuple[FieldChange, ...] | list[FieldChange]) -> str:
    return "; ".join(f"{c.field}: {c.before or '-'} -> {c.after or '-'}" for c in changes)


def validate(request: ChangeRequest, line_skus: list[str]) -> None:
    """Shape and reference checks, every bad field reported together (before any state rule)."""
    violations: list[FieldViolation] = []
    if request.empty:
        violations.append(FieldViolation("body", "nothing to change", "empty_change"))
    if request.ship_to is not None:
        if set(request.ship_to) - set(ADDRESS_FIELDS):
            violations.append(FieldViolation("ship_to", "unknown address field"))
        for name in ("line1", "city", "country"):
            if not request.ship_to.get(name, "").strip():
                violations.append(FieldViolation(f"ship_to.{name}", "required", "required"))
        country = request.ship_to.get("country", "")
        if country and (len(country) != 2 or not country.isalpha()):
            violations.append(FieldViolation("ship_to.country", "ISO 3166-1 alpha-2, e.g. DE"))
    known = set(line_skus)
    duplicated = {s for s in known if line_skus.count(s) > 1}
    for i, (sku, qty) in enumerate(request.quantities.items()):
        _existing(violations, f"lines[{i}]", sku, known, duplicated)
        if qty < 0:
            violations.append(FieldViolation(f"lines[{i}].quantity", "0 or more (0 removes the line)"))
    for i, sku in enumerate(request.remove_skus):
        _existing(violations, f"remove_lines[{i}]", sku, known, duplicated)
    for i, (sku, qty) in enumerate(request.cancel.items()):
        _existing(violations, f"lines[{i}]", sku, known, duplicated)
        if qty <= 0:
            violations.append(FieldViolation(f"lines[{i}].quantity", "units to cancel: 1 or more"))
    for i, line in enumerate(request.add_lines):
        if not line.sku:
            violations.append(FieldViolation(f"add_lines[{i}].sku", "required", "required"))
        elif line.sku in known:
            violations.append(
                FieldViolation(
                    f"add_lines[{i}].sku", "the order has this SKU; change its quantity", "duplicate_sku"
                )
            )
        if line.quantity <= 0:
            violations.append(FieldViolation(f"add_lines[{i}].quantity", "must be positive"))
        try:
            if Decimal(line.unit_price) < 0:
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            violations.append(FieldViolation(f"add_lines[{i}].unit_price", 'a decimal string, e.g. "12.50"'))
    if len({line.sku for line in request.add_lines}) != len(request.add_lines):
        violations.append(FieldViolation("add_lines", "each SKU once", "duplicate_sku"))
    if violations:
        raise InvalidArgument("invalid change request; nothing was changed", violations)


def _existing(
    violations: list[FieldViolation], path: str, sku: str, known: set[str], duplicated: set[str]
) -> None:
    if sku not in known:
        violations.append(FieldViolation(f"{path}.sku", f"the order has no line for {sku!r}", "unknown_line"))
    elif sku in duplicated:
        violations.append(
            FieldViolation(f"{path}.sku", f"the order has several lines of {sku!r}", "ambiguous_line")
        )


def kinds_of(request: ChangeRequest, current: dict[str, int]) -> list[tuple[ChangeType, str | None]]:
    """The change types a request makes, each with the SKU it concerns (None: the whole order)."""
    kinds: list[tuple[ChangeType, str | None]] = []
    if request.ship_to is not None:
        kinds.append((ChangeType.SHIP_TO, None))
    for sku, qty in request.quantities.items():
        if qty == 0:
            kinds.append((ChangeType.REMOVE_LINE, sku))
        elif qty != current.get(sku):
            kinds.append((ChangeType.QUANTITY, sku))
    kinds.extend((ChangeType.ADD_LINE, None) for _ in request.add_lines)
    kinds.extend((ChangeType.REMOVE_LINE, sku) for sku in request.remove_skus)
    kinds.extend((ChangeType.CANCEL_LINES, sku) for sku in request.cancel)
    return kinds


# --- checking a change against the order ---------------------------------------------------------
ORDER_WIDE = frozenset({ChangeType.SHIP_TO, ChangeType.ADD_LINE, ChangeType.REMOVE_LINE, ChangeType.CANCEL})


LEFT = frozenset(s for s, stage in SHIPMENT_STAGE.items() if stage is Stage.SHIPPED)


def stage_of(shipments, sku: str | None = None, *, remainder: bool = False) -> Stage:
    """How far the goods have gone: the furthest live shipment (of `sku`, when given). `remainder`: only the
    goods not yet shipped, the shipments that left skipped (a partially shipped order's remainder)."""
    stages = [
        SHIPMENT_STAGE.get(s.status, Stage.NONE)
        for s in shipments
        if s.status != "cancelled"
        and not (remainder and s.status in LEFT)
        and (sku is None or sku in s.lines)
    ]
    return max(stages, default=Stage.NONE)


def order_stage(status: str, shipments, sku: str | None = None) -> Stage:
    """The stage the policy table judges an order in `status` by: a partially shipped order by its remainder."""
    return stage_of(shipments, sku, remainder=status == "partially_shipped")


def check_request(order, request: ChangeRequest) -> list[tuple[ChangeType, str | None]]:
    """Validates the request and checks each change it makes against the policy table."""
    validate(request, [line.sku for line in order.lines])
    current = {line.sku: line.quantity for line in order.lines}
    kinds = kinds_of(request, current)
    shipments = list(order.shipments.values())
    for kind, sku in kinds:
        stage = order_stage(order.status.value, shipments, None if kind in ORDER_WIDE else sku)
        check_allowed(order.status.value, kind, stage, order.order_id)
    return kinds


def target_quantities(lines, request: ChangeRequest) -> dict[str, int]:
    """The quantity each line the request names is to have (sku -> units; 0 removes the line).
    Refuses, every bad line together, to go below what has already shipped."""
    by_sku = {line.sku: line for line in lines}
    targets = dict(request.quantities)
    for sku in request.remove_skus:
        targets[sku] = 0
    violations: list[FieldViolation] = []
    for i, (sku, units) in enumerate(request.cancel.items()):
        line = by_sku[sku]
        left = targets.get(sku, line.quantity) - units
        if left < line.shipped:
            violations.append(
                FieldViolation(
                    f"lines[{i}].quantity",
                    f"at most {line.quantity - line.shipped} unit(s) of {sku} can be cancelled",
                    "more_than_open",
                )
            )
        targets[sku] = left
    for i, (sku, qty) in enumerate(request.quantities.items()):
        if qty < by_sku[sku].shipped:
            violations.append(
                FieldViolation(
                    f"lines[{i}].quantity", f"{by_sku[sku].shipped} already shipped", "below_shipped"
                )
            )
    for i, sku in enumerate(request.remove_skus):
        if by_sku[sku].shipped:
            violations.append(
                FieldViolation(
                    f"remove_lines[{i}]",
                    f"{by_sku[sku].shipped} of {sku} already shipped; the line stays",
                    "below_shipped",
                )
            )
    if violations:
        raise InvalidArgument("invalid change request; nothing was changed", violations)
    return targets


def remainder(lines, reason: str = "") -> ChangeRequest:
    """Cancels every unit not yet shipped: the whole-order cancel of a partially shipped order."""
    open_units: dict[str, int] = {}
    for line in lines:
        if line.quantity > line.shipped:
            open_units[line.sku] = open_units.get(line.sku, 0) + line.quantity - line.shipped
    return ChangeRequest(cancel=open_units, reason=reason)


def only_cancels(request: ChangeRequest) -> bool:
    """A request that only cancels units: cancelling every remaining unit is a cancel of the order."""
    return bool(request.cancel) and not (
        request.quantities or request.remove_skus or request.ship_to is not None or request.add_lines
    )


def needs_review(record: ChangeRecord) -> bool:
    """Price, credit and delivery date are intake's checks: they can only get worse when the order
    grows (more units, a new line) or goes elsewhere (a new address); shrinking needs no review."""
    for c in record.changes:
        if c.field.startswith("ship_to."):
            return True
        if c.field.startswith("lines[") and not c.before:
            return True  # a new line
        if c.field.endswith(".quantity") and int(c.after) > int(c.before):
            return True
    return False
