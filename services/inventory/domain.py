"""Inventory's rules: the stock book's arithmetic, how a shortfall is split across
warehouses, and what one order holds. Plain Python, no I/O.

The stock book's rules (`may_reserve`, `may_release`, `may_ship`, `may_count`) are
written once, here: `StockLevel` applies them to numbers, and the store hands them its
columns to get the WHERE clause of each guarded UPDATE, so the database refuses exactly
what they refuse, whatever the caller read before.

An order's reservations are target-state: Reserve says "hold N of this SKU for
this order" and only the difference to what the order already holds (or has
already shipped) is reserved or given back, so a repeated call changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import combinations
from typing import Any

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument


class StockBookError(Exception):
    """An event asks for a stock movement the books cannot make (for example a shipment of
    units that were never reserved). Never applied by going negative: the consumer retries
    it and then parks it on the dead-letter stream for a person to look at."""


# --- one stock row: a SKU at a warehouse ---------------------------------------------------
# Each rule is the condition for moving `quantity` on a row, as a tuple of comparisons that
# all must hold. Only comparison and arithmetic operators, so the same function gives a bool
# for a StockLevel's numbers and a SQL condition for the store's columns (store/levels.py).
def may_reserve(on_hand: Any, reserved: Any, quantity: Any) -> tuple[Any, ...]:
    return (on_hand - reserved >= quantity,)


def may_release(on_hand: Any, reserved: Any, quantity: Any) -> tuple[Any, ...]:
    return (reserved >= quantity,)


def may_ship(on_hand: Any, reserved: Any, quantity: Any) -> tuple[Any, ...]:
    return (reserved >= quantity, on_hand >= quantity)


def may_count(on_hand: Any, reserved: Any, counted: Any) -> tuple[Any, ...]:
    """A stock count (master data import) sets on hand, never below what is promised to orders."""
    return (reserved <= counted,)


@dataclass(frozen=True)
class RecordedReceipt:
    """A receipt as the book keeps it, with who recorded it (orderdesk/actors.py; "" when not recorded)."""

    reference: str
    warehouse: str
    quantity: int
    received_at: dt.datetime
    received_by: str


@dataclass(frozen=True)
class StockLevel:
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    # A movement is of a positive quantity; the rule decides whether the row allows it.
    def reserve(self, quantity: int) -> StockLevel:
        if quantity <= 0 or not all(may_reserve(self.on_hand, self.reserved, quantity)):
            raise StockBookError(f"cannot reserve {quantity} at {self.warehouse}: {self.available} available")
        return replace(self, reserved=self.reserved + quantity)

    def unreserve(self, quantity: int) -> StockLevel:
        if quantity <= 0 or not all(may_release(self.on_hand, self.reserved, quantity)):
            raise StockBookError(f"cannot release {quantity} at {self.warehouse}: {self.reserved} reserved")
        return replace(self, reserved=self.reserved - quantity)

    def consume(self, quantity: int) -> StockLevel:
        """Shipped units leave the building: they stop being reserved and on hand."""
        if quantity <= 0 or not all(may_ship(self.on_hand, self.reserved, quantity)):
            raise StockBookError(f"cannot ship {quantity} at {self.warehouse}: {self.reserved} reserved")
        return replace(self, on_hand=self.on_hand - quantity, reserved=self.reserved - quantity)

    def receive(self, quantity: int) -> StockLevel:
        if quantity <= 0:
            raise StockBookError(f"a receipt adds a positive quantity, not {quantity}")
        return replace(self, on_hand=self.on_hand + quantity)

    def count(self, on_hand: int) -> StockLevel:
        """Sets on hand to what a stock count found."""
        if not all(may_count(self.on_hand, self.reserved, on_hand)):
            raise StockBookError(
                f"on hand {on_hand} at {self.warehouse} is less than the {self.reserved} reserved"
            )
        return replace(self, on_hand=on_hand)


# --- allocation strategy ----------------------------------------------------------------------
# Exhaustive search over warehouse sets up to this many candidates (2^12 sets of a few
# additions each: well under a millisecond); beyond it a greedy cover is used.
EXHAUSTIVE_WAREHOUSES = 12
UNKNOWN_TRANSIT = 10_000  # a warehouse with no transit figure is the last choice, never excluded


def plan_order_allocation(
    missing: dict[str, int],
    available: dict[str, dict[str, int]],
    transit: dict[str, int] | None = None,
    already: frozenset[str] | set[str] = frozenset(),
) -> list[tuple[str, str, int]]:
    """Where to reserve an order's missing units: [(sku, warehouse, quantity)] by SKU, nearest first.

    The strategy, in order of importance:
    0. Never leave a unit backordered that some warehouse could supply (cover the most).
    1. Prefer one warehouse that can ship the whole order (one shipment).
    2. Otherwise the fewest shipments: the smallest set of warehouses that covers as
       much as all of them together. Warehouses already holding units for the order
       (`already`) ship anyway, so they cost no extra shipment.
    3. Then the nearest: the smallest total transit days to the ship-to country
       (`transit`, per warehouse; unknown = last choice).
    4. Then the most available (leaves stock where it is plentiful), then warehouse code,
       so the same inputs always give the same plan.
    Within the chosen set, each SKU is taken from the nearest warehouse first.
    What cannot be covered is left out; the caller reports it as backordered.
    Never more than `available` per warehouse, never more than `missing` per SKU.
    """
    transit = transit or {}
    need = {sku: q for sku, q in missing.items() if q > 0}
    stock = {sku: {wh: q for wh, q in available.get(sku, {}).items() if q > 0} for sku in need}
    candidates = sorted({wh for levels in stock.values() for wh in levels})
    if not candidates:
        return []

    def days(wh: str) -> int:
        return transit.get(wh, UNKNOWN_TRANSIT)

    def covered(chosen: tuple[str, ...]) -> int:
        return sum(min(q, sum(stock[sku].get(wh, 0) for wh in chosen)) for sku, q in need.items())

    def rank(chosen: tuple[str, ...]) -> tuple:
        return (
            len(set(chosen) - set(already)),
            len(chosen),
            sum(days(wh) for wh in chosen),
            -sum(stock[sku].get(wh, 0) for sku in need for wh in chosen),
            chosen,
        )

    best_cover = covered(tuple(candidates))
    if len(candidates) <= EXHAUSTIVE_WAREHOUSES:
        best: tuple[str, ...] | None = None
        for size in range(1, len(candidates) + 1):
            for chosen in combinations(candidates, size):
                if covered(chosen) == best_cover and (best is None or rank(chosen) < rank(best)):
                    best = chosen
        chosen_set: tuple[str, ...] = best or tuple(candidates)
    else:  # greedy set cover: each step adds the warehouse that covers the most of what is left
        picked: list[str] = []
        while covered(tuple(picked)) < best_cover:
            picked.append(
                min(
                    (wh for wh in candidates if wh not in picked),
                    key=lambda wh: (-covered((*picked, wh)), wh not in already, days(wh), wh),
                )
            )
        chosen_set = tuple(sorted(picked))

    plan: list[tuple[str, str, int]] = []
    for sku, q in sorted(need.items()):
        left = q
        for wh in sorted(chosen_set, key=lambda w: (days(w), -stock[sku].get(w, 0), w)):
            take = min(left, stock[sku].get(wh, 0))
            if take > 0:
                plan.append((sku, wh, take))
                left -= take
            if not left:
                break
    return plan


def plan_allocation(
    needed: int, available: dict[str, int], transit: dict[str, int] | None = None
) -> list[tuple[str, int]]:
    """One SKU's plan under the same strategy, in the order units are taken (nearest first)."""
    plan = plan_order_allocation({"_": needed}, {"_": available}, transit)
    days = transit or {}
    return sorted(
        ((wh, q) for _, wh, q in plan),
        key=lambda x: (days.get(x[0], UNKNOWN_TRANSIT), -available.get(x[0], 0), x[0]),
    )


# --- the request --------------------------------------------------------------------------------
# The widths of the store's key columns: a longer value is the caller's mistake, not a database error.
MAX_LENGTH = {"order_id": 40, "sku": 64, "warehouse": 32, "reference": 200}


def _text(violations: list[FieldViolation], path: str, value: str, kind: str) -> None:
    if not value:
        violations.append(FieldViolation(path, "required"))
    elif len(value) > MAX_LENGTH[kind]:
        violations.append(FieldViolation(path, f"at most {MAX_LENGTH[kind]} characters", "too_long"))


def validate_reserve_lines(order_id: str, lines: list[tuple[str, int]]) -> dict[str, int]:
    """Reserve request -> requested total per SKU; every bad field is reported together."""
    violations: list[FieldViolation] = []
    _text(violations, "order_id", order_id, "order_id")
    return _wanted(lines, violations, "invalid reserve request")


def validate_quote_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
    """QuoteSupply request -> units per SKU (first asked first); every bad field reported together."""
    return _wanted(lines, [], "invalid supply quote request")


def _wanted(lines: list[tuple[str, int]], violations: list[FieldViolation], message: str) -> dict[str, int]:
    if not lines:
        violations.append(FieldViolation("lines", "at least one line"))
    wanted: dict[str, int] = {}
    for i, (sku, quantity) in enumerate(lines):
        _text(violations, f"lines[{i}].sku", sku, "sku")
        if quantity <= 0:
            violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive"))
        wanted[sku] = wanted.get(sku, 0) + quantity
    if violations:
        raise InvalidArgument(message, violations)
    return wanted


def check_column_widths(records: list, columns: dict[str, int]) -> None:
    """Imported rows whose codes would not fit the store's columns (row 1 is the CSV header)."""
    violations = [
        FieldViolation(f"row {number}.{column}", f"at most {width} characters", "too_long")
        for number, record in enumerate(records, start=2)
        for column, width in columns.items()
        if len(getattr(record, column)) > width
    ]
    if violations:
        raise InvalidArgument(f"{len(violations)} value(s) too long; nothing was imported", violations)


def validate_restock(sku: str, warehouse: str, quantity: int, reference: str) -> None:
    violations: list[FieldViolation] = []
    _text(violations, "sku", sku, "sku")
    _text(violations, "warehouse", warehouse, "warehouse")
    if quantity <= 0:
        violations.append(FieldViolation("quantity", "must be positive"))
    _text(violations, "reference", reference, "reference")
    if violations:
        raise InvalidArgument("invalid restock", violations)


def unknown_warehouse(warehouse: str, field_path: str = "warehouse") -> InvalidArgument:
    return InvalidArgument(
        f"unknown warehouse {warehouse!r}",
        [
            FieldViolation(
                field_path, f"unknown warehouse {warehouse!r}; import warehouses first", "unknown_warehouse"
            )
        ],
    )


def reference_reused(reference: str) -> InvalidArgument:
    """The same receipt reference with other contents: refused, the first receipt stands."""
    return InvalidArgument(
        f"receipt {reference!r} was already applied with another SKU, warehouse or quantity",
        [FieldViolation("reference", "already used for a different receipt", "reference_reused")],
        reason="reference_reused",
    )


# --- what one order holds --------------------------------------------------------------------------
class OrderState(StrEnum):
    ACTIVE = "active"  # may hold reservations; Reserve adjusts them
    RELEASED = "released"  # cancelled: everything given back, later Reserves refused
    CONSUMED = "consumed"  # everything it held has shipped


Key = tuple[str, str]  # (sku, warehouse)


@dataclass(frozen=True)
class ReservationPlan:
    """What a Reserve call changes: units given back, units newly reserved, and what is missing."""

    release: list[tuple[str, str, int]] = field(default_factory=list)  # (sku, warehouse, quantity)
    reserve: list[tuple[str, str, int]] = field(default_factory=list)  # (sku, warehouse, quantity)
    backordered: dict[str, int] = field(default_factory=dict)  # sku -> missing units

    @property
    def units_reserved(self) -> int:
        return sum(q for _, _, q in self.reserve)

    @property
    def changes_nothing(self) -> bool:
        return not self.release and not self.reserve


@dataclass
class OrderReservations:
    """One order's reservations per (sku, warehouse), the units of it already shipped, and its state."""

    order_id: str
    state: OrderState = OrderState.ACTIVE
    held: dict[Key, int] = field(default_factory=dict)
    shipped: dict[Key, int] = field(default_factory=dict)
    priority: int = 0  # the order's priority as orders last sent it (for filling backorders later)

    def require_reservable(self) -> None:
        if self.state is OrderState.RELEASED:
            raise FailedPrecondition(
                f"order {self.order_id} was released (cancelled); nothing more is reserved for it",
                rule="order_released",
                subject=self.order_id,
            )

    def held_for(self, sku: str) -> int:
        return sum(q for (s, _), q in self.held.items() if s == sku)

    def shipped_for(self, sku: str) -> int:
        return sum(q for (s, _), q in self.shipped.items() if s == sku)

    def skus(self) -> set[str]:
        return {s for (s, _), q in self.held.items() if q > 0}

    def plan(
        self,
        wanted: dict[str, int],
        available: dict[str, dict[str, int]],
        transit: dict[str, int] | None = None,
    ) -> ReservationPlan:
        """Target state: hold min(requested, reservable) of each wanted SKU, nothing of any other.

        Units already shipped for the order count towards its request (they were reserved
        once and must not be reserved again). `available` is per SKU, per warehouse;
        `transit` the days from each warehouse to the order's ship-to country. Missing
        units of all SKUs are placed together (`plan_order_allocation`), so the order ships
        from as few warehouses as the stock allows.
        """
        self.require_reservable()
        release: list[tuple[str, str, int]] = []
        missing: dict[str, int] = {}
        for sku in sorted(set(wanted) | self.skus()):
            target = max(wanted.get(sku, 0) - self.shipped_for(sku), 0)
            over = self.held_for(sku) - target
            if over > 0:  # wants less than it holds: give back the smallest reservations first
                for (s, warehouse), qty in sorted(self.held.items(), key=lambda kv: (kv[1], kv[0][1])):
                    if s != sku or qty <= 0 or over <= 0:
                        continue
                    take = min(qty, over)
                    release.append((sku, warehouse, take))
                    over -= take
            elif over < 0:
                missing[sku] = -over
        already = {wh for (_, wh), q in self.held.items() if q > 0}
        reserve = plan_order_allocation(missing, available, transit, already)
        backordered = dict(missing)
        for sku, _, qty in reserve:
            backordered[sku] -= qty
        backordered = {sku: q for sku, q in backordered.items() if q > 0}
        return ReservationPlan(release=release, reserve=reserve, backordered=backordered)

    def apply(self, plan: ReservationPlan) -> None:
        for sku, warehouse, qty in plan.release:
            self._take((sku, warehouse), qty)
        for sku, warehouse, qty in plan.reserve:
            self.held[(sku, warehouse)] = self.held.get((sku, warehouse), 0) + qty
        if plan.reserve and self.state is OrderState.CONSUMED:
            self.state = OrderState.ACTIVE

    def release_all(self) -> list[tuple[str, str, int]]:
        """The order is cancelled: every reservation goes back; the order stays released."""
        given_back = sorted((sku, wh, q) for (sku, wh), q in self.held.items() if q > 0)
        self.held.clear()
        self.state = OrderState.RELEASED
        return given_back

    def ship(self, sku: str, warehouse: str, quantity: int) -> None:
        """Units of a shipment left `warehouse`: they move from held to shipped."""
        if quantity <= 0:
            raise StockBookError(f"a shipment line needs a positive quantity, not {quantity} of {sku}")
        if self.held.get((sku, warehouse), 0) < quantity:
            raise StockBookError(
                f"order {self.order_id} holds {self.held.get((sku, warehouse), 0)} of {sku} at {warehouse}, "
                f"a shipment of {quantity} cannot be consumed"
            )
        self._take((sku, warehouse), quantity)
        self.shipped[(sku, warehouse)] = self.shipped.get((sku, warehouse), 0) + quantity
        if not self.skus() and self.state is OrderState.ACTIVE:
            self.state = OrderState.CONSUMED

    def reservations(self) -> list[tuple[str, str, int]]:
        return sorted((sku, wh, q) for (sku, wh), q in self.held.items() if q > 0)

    def _take(self, key: Key, qty: int) -> None:
        left = self.held.get(key, 0) - qty
        if left < 0:
            raise StockBookError(f"order {self.order_id} holds fewer than {qty} of {key[0]} at {key[1]}")
        if left:
            self.held[key] = left
        else:
            self.held.pop(key, None)


def reservation_outcome(plan: ReservationPlan, order: OrderReservations) -> str:
    """full: nothing missing; partial: something held, something missing; none: nothing held."""
    if not plan.backordered:
        return "full"
    return "partial" if order.held else "none"
