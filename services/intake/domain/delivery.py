"""Delivery planning: when each line can arrive at the earliest (from the warehouses' stock,
cut-offs and transit days, or made to order first), and whether the whole order can arrive
by the requested date (hold reasons delivery_date_infeasible with proposals earliest_date and
split, delivery_date_unverified). Delivery dates are calendar days; instants are UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orderdesk.masterdata import Product, Warehouse
from services.intake.domain.submission import OrderLine, Proposal, ProposalPart, Reason


@dataclass(frozen=True)
class Arrival:
    """Part of one line arriving on a date: from a warehouse's stock, or made first (warehouse "")."""

    quantity: int
    date: dt.date
    warehouse: str


def ship_day(now: dt.datetime, cutoff_hour_utc: int) -> dt.date:
    """Orders in before the warehouse's cut-off leave today, later ones tomorrow."""
    now = now.astimezone(dt.UTC)
    return now.date() if now.hour < cutoff_hour_utc else now.date() + dt.timedelta(days=1)


def transit_days(warehouse: Warehouse, country: str) -> int:
    domestic = warehouse.country.upper() == country.upper()
    return warehouse.transit_days_domestic if domestic else warehouse.transit_days_international


def plan_arrivals(
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]],
    warehouses: Mapping[str, Warehouse],
    country: str,
    now: dt.datetime,
) -> list[list[Arrival]]:
    """When each line can arrive, part by part, at the earliest.

    Stocked products come from the warehouses that deliver soonest (several when
    one does not have enough; lines of one SKU share its stock, first line first).
    What stock does not cover, and make-to-order products always, is made first:
    today + production lead time + transit from the fastest warehouse. Stock in a
    warehouse intake has no master data for is not promised (unknown cut-off and transit).
    Needs at least one warehouse (the caller checks).
    """
    today = now.astimezone(dt.UTC).date()
    fastest_transit = min(transit_days(w, country) for w in warehouses.values())
    left = {sku: dict(levels) for sku, levels in stock.items()}
    plan: list[list[Arrival]] = []
    for line in lines:
        product = products[line.sku]
        arrivals: list[Arrival] = []
        missing = line.quantity
        if not product.make_to_order:
            levels = left.get(line.sku, {})
            by_arrival = sorted(
                (
                    ship_day(now, warehouses[w].cutoff_hour_utc)
                    + dt.timedelta(days=transit_days(warehouses[w], country)),
                    w,
                )
                for w, available in levels.items()
                if available > 0 and w in warehouses
            )
            for date, w in by_arrival:
                if not missing:
                    break
                taken = min(missing, levels[w])
                levels[w] -= taken
                missing -= taken
                arrivals.append(Arrival(taken, date, w))
        if missing:
            made = today + dt.timedelta(days=product.production_lead_time_days + fastest_transit)
            arrivals.append(Arrival(missing, made, ""))
        plan.append(arrivals)
    return plan


def delivery_reasons(
    requested: dt.date,
    lines: Sequence[OrderLine],
    products: Mapping[str, Product],
    stock: Mapping[str, Mapping[str, int]] | None,
    warehouses: Mapping[str, Warehouse],
    country: str,
    now: dt.datetime,
) -> tuple[list[Reason], list[Proposal]]:
    """Holds an order whose whole quantity cannot arrive by `requested`, proposing what can be done."""
    field_path = "requested_delivery_date"
    if not warehouses:
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
    plan = plan_arrivals(lines, products, stock, warehouses, country, now)
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
