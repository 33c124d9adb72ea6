"""The desk's approval of a held order: what can have changed while it waited (stock and credit)
is checked again on the order as it will be approved, and what the re-check finds that the
order was not held for must be acknowledged by the approver."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from services.intake.domain.submission import OrderLine, Proposal, Reason, parse_date

RECHECKED_ON_APPROVAL = ("delivery_date_infeasible", "delivery_date_unverified", "credit_limit_exceeded")


def deliveries_to_check(
    lines: Sequence[OrderLine],
    requested_delivery_date: str,
    accept_proposal: str,
    proposals: Sequence[Proposal],
) -> list[tuple[dt.date, list[OrderLine]]]:
    """The (date, lines) the approved order must meet: its own date; the accepted earliest date;
    or, for an accepted split, each delivery date with its parts."""
    by_kind = {p.kind: p for p in proposals}
    earliest = by_kind["earliest_date"].delivery_date if "earliest_date" in by_kind else None
    if accept_proposal == "earliest_date" and earliest is not None:
        return [(earliest, list(lines))]
    if accept_proposal == "split" and "split" in by_kind:
        prices = {line.sku: line.unit_price for line in lines}
        groups: dict[dt.date, list[OrderLine]] = {}
        for part in by_kind["split"].parts:
            groups.setdefault(part.delivery_date, []).append(
                OrderLine(part.sku, part.quantity, prices.get(part.sku, Decimal(0)))
            )
        return sorted(groups.items())
    requested = parse_date(requested_delivery_date)
    return [(requested, list(lines))] if requested is not None else []


def approval_findings(
    held_for: Sequence[str], found: Sequence[Reason], acknowledged: Sequence[str]
) -> list[Reason]:
    """What the re-check found that the order was not held for and the approver did not acknowledge:
    any of these refuses the approval (a person must see it first)."""
    known = set(held_for) | set(acknowledged)
    return [r for r in found if r.code not in known]
