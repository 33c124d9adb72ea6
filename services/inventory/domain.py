"""Inventory rules: how a shortfall is split across warehouses, and the stock book's arithmetic.

Plain Python, no I/O. The store applies these decisions with guarded SQL updates
(`... WHERE on_hand - reserved >= :q`), so a plan made from a stale read can lose a
race but can never oversell: the loser re-plans from fresh numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument


@dataclass(frozen=True)
class StockLevel:
    warehouse: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def plan_allocation(needed: int, available: dict[str, int]) -> list[tuple[str, int]]:
    """Where to reserve `needed` units, given what each warehouse has available.

    1. One warehouse that covers everything (one shipment): the one with the most
       available, ties by warehouse code, so repeated plans are stable.
    2. Otherwise split: take from the warehouses with the most available first
       (fewest shipments for the quantity), as far as stock goes.
    What cannot be covered is left out; the caller reports it as backordered.
    """
    if needed <= 0:
        return []
    ranked = sorted(((wh, qty) for wh, qty in available.items() if qty > 0), key=lambda x: (-x[1], x[0]))
    if ranked and ranked[0][1] >= needed:
        return [(ranked[0][0], needed)]
    plan, remaining = [], needed
    for warehouse, qty in ranked:
        take = min(qty, remaining)
        plan.append((warehouse, take))
        remaining -= take
        if remaining == 0:
            break
    return plan


def validate_reserve_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
    """Reserve request lines -> requested total per SKU; bad lines are refused together."""
    violations = []
    wanted: dict[str, int] = {}
    for i, (sku, quantity) in enumerate(lines):
        if not sku:
            violations.append(FieldViolation(f"lines[{i}].sku", "required"))
        if quantity <= 0:
            violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive"))
        wanted[sku] = wanted.get(sku, 0) + quantity
    if not lines:
        violations.append(FieldViolation("lines", "at least one line"))
    if violations:
        raise InvalidArgument("invalid reserve request", violations)
    return wanted


class OrderHold:
    """What one order holds, per SKU and warehouse, and whether it may still hold anything."""

    ACTIVE, RELEASED, CONSUMED = "active", "released", "consumed"

    def __init__(self, order_id: str, state: str, held: dict[tuple[str, str], int]):
        self.order_id = order_id
        self.state = state
        self.held = dict(held)

    def require_reservable(self) -> None:
        if self.state == self.RELEASED:
            raise FailedPrecondition(
                f"order {self.order_id} was released (cancelled); nothing more is reserved for it",
                rule="order_released", subject=self.order_id,
            )

    def held_for(self, sku: str) -> int:
        return sum(q for (s, _), q in self.held.items() if s == sku)

    def excess(self, sku: str, requested: int) -> list[tuple[str, int]]:
        """Reservations to give back when the order now wants less than it holds (smallest first)."""
        over = self.held_for(sku) - requested
        give_back = []
        for (s, warehouse), qty in sorted(self.held.items(), key=lambda kv: (kv[1], kv[0][1])):
            if s != sku or over <= 0:
                continue
            take = min(qty, over)
            give_back.append((warehouse, take))
            over -= take
        return give_back


def validate_quantity(quantity: int, field: str = "quantity") -> None:
    if quantity <= 0:
        raise InvalidArgument(f"{field} must be positive", [FieldViolation(field, "must be positive")])
