"""Delivery planning: when each line can arrive at the earliest (from the warehouses' stock,
their cut-offs, working days and lanes, or from inventory's production), and whether the whole
order can arrive by the requested date (hold reasons delivery_date_infeasible with proposals
earliest_date and split, delivery_date_unverified). Every date comes from orderdesk.calendar
(working days in the warehouses' time zones and the destination's calendar); units stock does
not cover arrive when inventory says (its QuoteSupply: the production queue and available to
promise, the same rule its Reserve promises with)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orderdesk.calendar import CalendarBook
from orderdesk.masterdata import Product
from services.intake.domain.submission import OrderLine, Proposal, ProposalPart, Reason


@dataclass(frozen=True)
class Arrival:
    """Part of one line arriving on a date: from a warehouse's stock, or made first (warehouse "")."""

    quantity: int
    date: dt.date
    warehouse: str


@dataclass(frozen=True)
class Supply:
    """Inventory's answer for the units of one SKU that stock does not cover: the date they would
    be delivered (made, or from production already planned); None when inventory cannot plan them."""

    delivery_date: dt.date | None
    warehouse: str = ""


def stock_arrivals(
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]],
    book: CalendarBook,
    country: str,
    now: dt.datetime,
) -> tuple[list[list[Arrival]], dict[str, int]]:
    """What stock delivers per line, and the units per SKU it does not (what must be made).

    Stocked products come from the warehouses that deliver soonest (several when one does not
    have enough; lines of one SKU share its stock, first line first), each on its calendar: its
    ship date (local cut-off, working days) plus the lane's transit working days. Make-to-order
    products are always made. Stock in a warehouse intake has no master data for is not promised
    (unknown cut-off and transit)."""
    left = {sku: dict(levels) for sku, levels in stock.items()}
    arrivals_by_warehouse = {w: book.promise(now, w, country).delivery_date for w in sorted(book.warehouses)}
    plan: list[list[Arrival]] = []
    missing: dict[str, int] = {}
    for line in lines:
        arrivals: list[Arrival] = []
        short = line.quantity
        if not products[line.sku].make_to_order:
            levels = left.get(line.sku, {})
            by_arrival = sorted(
                (arrivals_by_warehouse[w], w)
                for w, available in levels.items()
                if available > 0 and w in arrivals_by_warehouse
            )
            for date, w in by_arrival:
                if not short:
                    break
                taken = min(short, levels[w])
                levels[w] -= taken
                short -= taken
                arrivals.append(Arrival(taken, date, w))
        if short:
            missing[line.sku] = missing.get(line.sku, 0) + short
        plan.append(arrivals)
    return plan, missing


def plan_arrivals(
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]],
    book: CalendarBook,
    country: str,
    now: dt.datetime,
    supply: Mapping[str, Supply],
) -> list[list[Arrival]]:
    """When each line can arrive, part by part, at the earliest: stock as `stock_arrivals`
    plans it, the rest when inventory's `supply` delivers it (the caller checked that every
    missing SKU has a dated supply)."""
    plan, _ = stock_arrivals(lines, products, stock, book, country, now)
    for line, arrivals in zip(lines, plan, strict=True):
        short = line.quantity - sum(a.quantity for a in arrivals)
        if short:
            date = supply[line.sku].delivery_date
            assert date is not None
            arrivals.append(Arrival(short, date, ""))
    return plan


def earliest_dates(
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]],
    book: CalendarBook,
    country: str,
    now: dt.datetime,
    supply: Mapping[str, Supply],
) -> list[dt.date | None]:
    """The date each line's whole quantity can arrive at the earliest, planned as `plan_arrivals` plans
    an order (the desk's order entry shows it as the line is typed); None where inventory cannot date
    the units stock does not cover."""
    _, missing = stock_arrivals(lines, products, stock, book, country, now)
    undated = {sku for sku in missing if _undated(supply.get(sku))}
    dated = [line for line in lines if line.sku not in undated]
    plan = iter(plan_arrivals(dated, products, stock, book, country, now, supply))
    return [
        None if line.sku in undated else max((a.date for a in next(plan)), default=None) for line in lines
    ]


def delivery_reasons(
    requested: dt.date,
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]] | None,
    book: CalendarBook | None,
    country: str,
    now: dt.datetime,
    supply: Mapping[str, Supply] | None = None,
) -> tuple[list[Reason], list[Proposal]]:
    """Holds an order whose whole quantity cannot arrive by `requested`, proposing what can be done.
    `supply`: inventory's answers for what stock does not cover (None: inventory could not be asked)."""
    field_path = "requested_delivery_date"
    if book is None or not book.warehouses:
        return [
            Reason(
                "delivery_date_unverified",
                "intake has no warehouse master data to plan deliveries with",
                field_path,
            )
        ], []
    if stock is None:
        return [
            Reason(
                "delivery_date_unverified",
                "stock could not be read from inventory; the desk should check the date",
                field_path,
            )
        ], []
    _, missing = stock_arrivals(lines, products, stock, book, country, now)
    unplanned = sorted(sku for sku in missing if supply is None or _undated(supply.get(sku)))
    if unplanned:
        return [
            Reason(
                "delivery_date_unverified",
                "inventory could not plan production for "
                + ", ".join(unplanned)
                + "; the desk should check the date",
                field_path,
            )
        ], []
    assert supply is not None
    plan = plan_arrivals(lines, products, stock, book, country, now, supply)
    earliest = max(a.date for arrivals in plan for a in arrivals)
    if earliest <= requested:
        return [], []
    proposals = [Proposal("earliest_date", delivery_date=earliest)]
    parts: dict[tuple[str, dt.date], int] = {}
    for line, arrivals in zip(lines, plan, strict=True):
        in_time = sum(a.quantity for a in arrivals if a.date <= requested)
        if in_time:
            parts[(line.sku, requested)] = parts.get((line.sku, requested), 0) + in_time
        if in_time < line.quantity:
            rest_date = max(a.date for a in arrivals)
            parts[(line.sku, rest_date)] = parts.get((line.sku, rest_date), 0) + line.quantity - in_time
    if any(date == requested for _, date in parts):  # a split helps only if something arrives in time
        proposals.append(
            Proposal(
                "split",
                parts=tuple(
                    ProposalPart(sku, quantity, date)
                    for (sku, date), quantity in sorted(parts.items(), key=_by_date_then_line(lines))
                ),
            )
        )
    reason = Reason(
        "delivery_date_infeasible",
        f"the whole order cannot arrive by {requested}; the earliest date is {earliest}",
        field_path,
    )
    return [reason], proposals


def _by_date_then_line(
    lines: Sequence[OrderLine],
) -> Callable[[tuple[tuple[str, dt.date], int]], tuple[dt.date, int]]:
    """Sorts a split's parts by date, then by the line their SKU first appears on."""
    position: dict[str, int] = {}
    for i, line in enumerate(lines):
        position.setdefault(line.sku, i)
    return lambda item: (item[0][1], position[item[0][0]])


def _undated(supply: Supply | None) -> bool:
    return supply is None or supply.delivery_date is None
