"""The return (RMA) aggregate: authorised against delivered quantities, received, inspected, refunded.

    authorized ──> received ──> refunded
                                (on inspection: every authorised unit is restocked or
                                 scrapped, and every inspected unit is refunded)

Plain Python, no I/O. What may be returned is what the order shows as delivered
minus what this order's RMAs already authorised (in any status: an RMA stays
counted once it exists). Receiving twice, or repeating the same inspection of a
refunded RMA, changes nothing (a warehouse retries). Every change bumps the version;
`Return.changes` collects the ones not yet published.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from orderdesk import idempotency
from orderdesk.domain import StatusChange, units_per_sku
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument


class Status(StrEnum):
    AUTHORIZED = "authorized"
    RECEIVED = "received"
    REFUNDED = "refunded"


RESOLUTIONS = ("refund",)  # exchange is later work
OUTCOMES = ("restock", "scrap")
CENTS = Decimal("0.01")
MAX_REASON_LENGTH = 1000


def new_rma_id() -> str:
    return "RMA-" + secrets.token_hex(10).upper()


# --- what the order says ----------------------------------------------------------------
@dataclass(frozen=True)
class OrderedSku:
    """One SKU of the order as returns sees it: delivered units, price paid, where it shipped from."""

    sku: str
    delivered: int
    unit_price: Decimal
    warehouse: str


def summarise_order(
    lines: list[tuple[str, int, Decimal]], allocations: list[tuple[str, str]]
) -> dict[str, OrderedSku]:
    """(sku, delivered, unit_price) order lines and (sku, warehouse) allocations -> per-SKU facts.

    Lines of one SKU add up their delivered units and keep the first line's price;
    the goods go back to the first warehouse the SKU was allocated from.
    """
    warehouse: dict[str, str] = {}
    for sku, wh in allocations:
        warehouse.setdefault(sku, wh)
    summary: dict[str, OrderedSku] = {}
    for sku, delivered, unit_price in lines:
        if sku in summary:
            known = summary[sku]
            summary[sku] = OrderedSku(sku, known.delivered + delivered, known.unit_price, known.warehouse)
        else:
            summary[sku] = OrderedSku(sku, delivered, unit_price, warehouse.get(sku, ""))
    return summary


def returnable(ordered: dict[str, OrderedSku], authorised: dict[str, int]) -> dict[str, int]:
    """Units per SKU that a new RMA may still take back."""
    return {sku: max(0, o.delivered - authorised.get(sku, 0)) for sku, o in ordered.items()}


# --- requests -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    reason: str = ""


@dataclass(frozen=True)
class Inspection:
    sku: str
    quantity: int
    outcome: str  # restock | scrap


def request_hash(order_id: str, lines: list[RequestedLine], resolution: str) -> str:
    """The hash stored with a CreateReturn's idempotency key: its body without the key."""
    return idempotency.request_hash(
        {
            "order_id": order_id,
            "lines": [[line.sku, line.quantity, line.reason] for line in lines],
            "resolution": resolution,
        }
    )


# --- the aggregate ----------------------------------------------------------------------------
@dataclass
class ReturnLine:
    sku: str
    quantity: int
    reason: str
    unit_price: Decimal
    warehouse: str
    restocked: int = 0
    scrapped: int = 0


@dataclass(frozen=True)
class Change(StatusChange[Status]):
    """One status change, to publish as return.<status>."""

    @property
    def event_type(self) -> str:
        return f"return.{self.status.value}"


@dataclass
class Return:
    rma_id: str
    order_id: str
    partner_id: str
    resolution: str
    lines: list[ReturnLine]
    status: Status = Status.AUTHORIZED
    refund_amount: Decimal = Decimal("0.00")
    version: int = 0
    created_at: dt.datetime | None = None
    # Not persisted: what changed since load, for the store and the outbox.
    changes: list[Change] = field(default_factory=list, repr=False)
    loaded_version: int = field(default=0, repr=False)

    # --- authorisation ---------------------------------------------------------
    @classmethod
    def authorize(
        cls,
        *,
        rma_id: str,
        order_id: str,
        partner_id: str,
        ordered: dict[str, OrderedSku],
        authorised: dict[str, int],
        requested: list[RequestedLine],
        resolution: str,
        at: dt.datetime,
        actor: str,
    ) -> Return:
        """A new RMA for `requested`, given the order and what its other RMAs already authorised."""
        violations: list[FieldViolation] = []
        if resolution not in RESOLUTIONS:
            violations.append(
                FieldViolation(
                    "resolution", f"must be one of {', '.join(RESOLUTIONS)}", "unsupported_resolution"
                )
            )
        if not requested:
            violations.append(FieldViolation("lines", "at least one line", "required"))
        for i, line in enumerate(requested):
            if not line.sku:
                violations.append(FieldViolation(f"lines[{i}].sku", "required", "required"))
            elif line.sku not in ordered:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].sku", f"{line.sku} is not on order {order_id}", "not_on_order"
                    )
                )
            if line.quantity <= 0:
                violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive", "not_positive"))
            if len(line.reason) > MAX_REASON_LENGTH:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].reason", f"at most {MAX_REASON_LENGTH} characters", "too_long"
                    )
                )
        if violations:
            raise InvalidArgument("the return request is invalid", violations)

        if not any(o.delivered > 0 for o in ordered.values()):
            raise FailedPrecondition(
                f"nothing of order {order_id} has been delivered yet; only delivered goods can be returned",
                rule="nothing_delivered",
                subject=order_id,
            )
        left = returnable(ordered, authorised)
        asked: dict[str, int] = {}
        for i, line in enumerate(requested):
            asked[line.sku] = asked.get(line.sku, 0) + line.quantity
            if asked[line.sku] > left[line.sku]:
                o = ordered[line.sku]
                violations.append(
                    FieldViolation(
                        f"lines[{i}].quantity",
                        f"at most {left[line.sku]} of {line.sku} can be returned "
                        f"({o.delivered} delivered, {authorised.get(line.sku, 0)} already on returns)",
                        "exceeds_returnable",
                    )
                )
        if violations:
            raise InvalidArgument(
                "more is to be returned than was delivered", violations, reason="exceeds_returnable"
            )

        ret = cls(
            rma_id=rma_id,
            order_id=order_id,
            partner_id=partner_id,
            resolution=resolution,
            created_at=at,
            lines=[
                ReturnLine(
                    sku=line.sku,
                    quantity=line.quantity,
                    reason=line.reason,
                    unit_price=ordered[line.sku].unit_price,
                    warehouse=ordered[line.sku].warehouse,
                )
                for line in requested
            ],
        )
        ret._change(Status.AUTHORIZED, at, actor, "return authorised")
        return ret

    def authorised_by_sku(self) -> dict[str, int]:
        return units_per_sku(self.lines)

    # --- receipt ----------------------------------------------------------------
    def receive(self, at: dt.datetime, actor: str) -> bool:
        """The goods arrived at the warehouse; False when already recorded."""
        if self.status is Status.RECEIVED:
            return False
        if self.status is not Status.AUTHORIZED:
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}; only an authorised return can be received",
                rule="receive_only_when_authorized",
                subject=self.rma_id,
            )
        self._change(Status.RECEIVED, at, actor, "goods received")
        return True

    # --- inspection and refund ------------------------------------------------------
    def inspect(self, inspections: list[Inspection], at: dt.datetime, actor: str) -> bool:
        """Restock or scrap every authorised unit, then refund them all; False for a repeat."""
        if self.status is Status.AUTHORIZED:
            raise FailedPrecondition(
                f"return {self.rma_id} has not been received; inspect it once the goods are in",
                rule="inspect_only_when_received",
                subject=self.rma_id,
            )
        outcome = self._check_inspection(inspections)
        if self.status is Status.REFUNDED:
            if outcome == self._recorded_outcome():
                return False  # the same inspection again (a retry)
            raise FailedPrecondition(
                f"return {self.rma_id} was inspected and refunded already",
                rule="inspect_only_when_received",
                subject=self.rma_id,
            )
        for line in self.lines:  # lines of one SKU are filled in order, restocked units first
            restock, scrap = outcome[line.sku]
            line.restocked = min(restock, line.quantity)
            line.scrapped = line.quantity - line.restocked
            outcome[line.sku] = (restock - line.restocked, scrap - line.scrapped)
        self.refund_amount = refund_amount(self.lines)
        self._change(Status.REFUNDED, at, actor, f"inspected; refunded {self.refund_amount}")
        return True

    def _check_inspection(self, inspections: list[Inspection]) -> dict[str, tuple[int, int]]:
        """Validates the inspection; returns {sku: (restock, scrap)}."""
        authorised = self.authorised_by_sku()
        violations: list[FieldViolation] = []
        if not inspections:
            violations.append(FieldViolation("lines", "at least one line", "required"))
        totals: dict[str, list[int]] = {}
        first_line: dict[str, int] = {}
        for i, line in enumerate(inspections):
            if line.sku not in authorised:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].sku", f"{line.sku or 'sku'} is not on this return", "not_on_return"
                    )
                )
            if line.quantity <= 0:
                violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive", "not_positive"))
            if line.outcome not in OUTCOMES:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].outcome", f"must be one of {', '.join(OUTCOMES)}", "unknown_outcome"
                    )
                )
            if line.sku in authorised and line.quantity > 0 and line.outcome in OUTCOMES:
                first_line.setdefault(line.sku, i)
                totals.setdefault(line.sku, [0, 0])[OUTCOMES.index(line.outcome)] += line.quantity
        if not violations:
            for sku, quantity in authorised.items():
                inspected = sum(totals.get(sku, (0, 0)))
                if inspected == quantity:
                    continue
                path = f"lines[{first_line[sku]}].quantity" if sku in first_line else "lines"
                violations.append(
                    FieldViolation(
                        path,
                        f"{sku}: {inspected} inspected, but {quantity} authorised; every unit must be inspected",
                        "must_match_authorized",
                    )
                )
        if violations:
            raise InvalidArgument("the inspection does not account for the authorised units", violations)
        return {sku: (r, s) for sku, (r, s) in totals.items()}

    def _recorded_outcome(self) -> dict[str, tuple[int, int]]:
        restocked = units_per_sku(self.lines, lambda line: line.restocked)
        scrapped = units_per_sku(self.lines, lambda line: line.scrapped)
        return {sku: (restocked[sku], scrapped[sku]) for sku in restocked}

    def _change(self, to: Status, at: dt.datetime, actor: str, reason: str) -> None:
        self.status = to
        self.version += 1
        self.changes.append(Change(to, self.version, at, actor, reason))


def refund_amount(lines: list[ReturnLine]) -> Decimal:
    """Every inspected unit is refunded at the price paid, restocked or scrapped alike."""
    total = sum(((line.restocked + line.scrapped) * line.unit_price for line in lines), Decimal("0"))
    return total.quantize(CENTS, rounding=ROUND_HALF_UP)
