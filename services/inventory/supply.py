"""Inventory's supply rules: backorders, production runs and available-to-promise. Plain Python, no I/O.

- A backorder is what an order still misses of one SKU after Reserve (target minus held
  minus shipped). Backorders are filled, and promised future supply, in *fill order*:
  highest priority first, first come (the order's placement time) within a priority,
  order id last so the order is total.
- A production run makes units of one SKU into one warehouse by an expected date. Short
  lines (and make-to-order products, which are short by nature) create runs for what the
  open runs do not already cover. A run's date is today + the product's lead time (working
  days of the warehouse it goes into, orderdesk.calendar), but
  never before the latest open run of the SKU: a production line works its queue in
  order, so a new run cannot overtake one already planned.
- Each backorder gets the date of the run whose cumulative quantity covers it in fill
  order; the order's expected date is the latest of its SKUs', plus transit from the
  run's warehouse to the ship-to country for the expected delivery date.
- Available-to-promise at a date: available now plus the runs due by then, minus every
  open backorder (they are already promised that supply, earliest supply first).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from orderdesk.calendar import Calendar, add_working_days
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.inventory.domain import UNKNOWN_TRANSIT


@dataclass(frozen=True)
class Backorder:
    order_id: str
    sku: str
    quantity: int  # units still missing
    priority: int
    placed_at: dt.datetime
    country: str = ""  # ship-to country (nearest-warehouse choice when filled)


def fill_order(backorders: list[Backorder]) -> list[Backorder]:
    """Highest priority first, first come within a priority, then order id."""
    return sorted(backorders, key=lambda b: (-b.priority, b.placed_at, b.order_id))


@dataclass(frozen=True)
class Run:
    """A production run (open: units still to come)."""

    production_id: str
    sku: str
    warehouse: str
    quantity: int
    expected_date: dt.date


# An announced inbound receipt counts as supply like an open run, named by its reference.
INBOUND_PREFIX = "INB:"


@dataclass(frozen=True)
class Inbound:
    """A supplier's receipt announced ahead: `quantity` of `sku` into `warehouse` by `expected_date`."""

    reference: str
    sku: str
    warehouse: str
    quantity: int
    expected_date: dt.date
    status: str = "open"  # open | received


def check_inbound(inbound: Inbound, today: dt.date, before: Inbound | None) -> bool:
    """Whether the announcement changes anything (False: the same again, a retry); refuses a reference
    used for other goods, one already received, and a date in the past."""
    if before is not None:
        if (before.sku, before.warehouse, before.quantity) != (
            inbound.sku,
            inbound.warehouse,
            inbound.quantity,
        ):
            raise InvalidArgument(
                f"reference {inbound.reference!r} announced other goods",
                [
                    FieldViolation(
                        "reference", "already used for another SKU, warehouse or quantity", "reference_reused"
                    )
                ],
            )
        if before.status != "open":
            raise FailedPrecondition(
                f"inbound receipt {inbound.reference} has arrived; it can no longer move",
                rule="inbound_received",
                subject=inbound.reference,
            )
        if before.expected_date == inbound.expected_date:
            return False
    if inbound.expected_date < today:
        raise InvalidArgument(
            "an inbound receipt cannot be expected in the past",
            [FieldViolation("expected_date", "today or later", "in_past")],
        )
    return True


def run_date(today: dt.date, lead_time_days: int, open_runs: list[Run], calendar: Calendar) -> dt.date:
    """today + lead time in the warehouse's working days (a working day: goods are made and
    received on working days), but not before the latest open run of the SKU (the line's queue)."""
    earliest = add_working_days(today, max(lead_time_days, 0), calendar)
    latest_open = max((r.expected_date for r in open_runs), default=earliest)
    return max(earliest, latest_open)


def run_to_grow(open_runs: list[Run], due: dt.date, warehouse: str) -> int | None:
    """Where in `open_runs` the run is that a shortfall due `due` into `warehouse` grows (one run per day
    and warehouse, not one per order), or None: it needs a new run. Any open run of that day and warehouse,
    not only the last: orders shipping to other countries alternate between warehouses."""
    for n in range(len(open_runs) - 1, -1, -1):
        if (open_runs[n].expected_date, open_runs[n].warehouse) == (due, warehouse):
            return n
    return None


def uncovered(backorders: list[Backorder], open_runs: list[Run]) -> int:
    """Units of one SKU that no open run covers yet: what a new run must make."""
    return max(sum(b.quantity for b in backorders) - sum(r.quantity for r in open_runs), 0)


@dataclass(frozen=True)
class Promise:
    date: dt.date
    warehouse: str


def covering_run(demand: int, open_runs: list[Run]) -> Promise | None:
    """The date (and warehouse) of the run by which the open runs, earliest first, have made
    `demand` units: the promise for a backorder that is owed `demand` units counting every
    backorder before it in fill order and itself. None when the runs never reach it."""
    made = 0
    for r in sorted(open_runs, key=lambda r: (r.expected_date, r.production_id)):
        made += r.quantity
        if made >= demand:
            return Promise(r.expected_date, r.warehouse)
    return None


def quote(
    owed: int,
    quantity: int,
    open_runs: list[Run],
    new_run: Promise | None,
    transit: dict[str, int] | None = None,
) -> Promise | None:
    """When `quantity` more units, backordered now behind the `owed` ones (a new order comes last
    in fill order), would be made: by the open runs when they cover owed + quantity (of the runs
    due that day, the one nearest the ship-to country), else by the run Reserve would plan for the
    rest (`new_run`: its date and warehouse; None when inventory cannot plan one). The same rule
    Reserve's promise follows, without writing anything."""
    covered = covering_run(owed + quantity, open_runs)
    if covered is None:
        return new_run
    days = transit or {}
    same_day = [r for r in open_runs if r.expected_date == covered.date]
    nearest = min(same_day, key=lambda r: (days.get(r.warehouse, UNKNOWN_TRANSIT), r.production_id))
    return Promise(covered.date, nearest.warehouse)


def promise_backorders(backorders: list[Backorder], open_runs: list[Run]) -> dict[str, Promise | None]:
    """Order id -> the promise for its backorder of this SKU, each owed everything before it in fill
    order (the store computes one order's `demand` with a SUM in SQL and calls covering_run)."""
    promised: dict[str, Promise | None] = {}
    demand = 0
    for b in fill_order(backorders):
        demand += b.quantity
        promised[b.order_id] = covering_run(demand, open_runs)
    return promised


# --- available to promise --------------------------------------------------------------------------
@dataclass
class AtpPoint:
    date: dt.date
    total: int  # promisable by this date, all warehouses
    by_warehouse: dict[str, int] = field(default_factory=dict)


def available_to_promise(
    today: dt.date, available: dict[str, int], open_runs: list[Run], backordered: int
) -> list[AtpPoint]:
    """Cumulative promisable quantity at today and at each date a run is due.

    Supply is consumed by the open backorders first, earliest supply first (stock now,
    then runs by date; warehouse code within a date), so a number here is free to promise
    to a new order. Dates only increase and so do the quantities (all demand is known now).
    """
    supplies: list[tuple[dt.date, str, int]] = [
        (today, wh, q) for wh, q in sorted(available.items()) if q > 0
    ]
    supplies += sorted(
        (max(r.expected_date, today), r.warehouse, r.quantity) for r in open_runs if r.quantity > 0
    )
    owed = max(backordered, 0)
    points: list[AtpPoint] = []
    free: dict[str, int] = {}
    dates = sorted({today} | {d for d, _, _ in supplies})
    for date in dates:
        for d, wh, q in supplies:
            if d != date:
                continue
            take = min(owed, q)
            owed -= take
            free[wh] = free.get(wh, 0) + q - take
        points.append(AtpPoint(date, sum(free.values()), {wh: q for wh, q in sorted(free.items())}))
    return points


# --- requests ----------------------------------------------------------------------------------------
def validate_production_id(production_id: str) -> None:
    if not production_id:
        raise InvalidArgument("production_id is required", [FieldViolation("production_id", "required")])
    if len(production_id) > 40:
        raise InvalidArgument(
            "production_id too long", [FieldViolation("production_id", "at most 40 characters", "too_long")]
        )
