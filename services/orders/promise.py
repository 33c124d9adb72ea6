"""The promise watch's rules: is an open order still on course for the date promised? Plain Python, no I/O.

`assess(facts, now, policy)` looks at one order as it now is and returns its risks, each typed
(`RiskCode`), with the delivery date now to expect, the slip in days against the promise and the
evidence (what was seen, in words a desk reads). An order is on track when it has none. The watch
job (services/orders/watch.py) re-assesses open orders when something happens to them and on a
schedule, keeps the current risks on the order, and publishes `order.at_risk` / `order.back_on_track`
only when they change (`Order.watch`).

| code | when | date now expected |
|---|---|---|
| `not_allocatable_in_time` | confirmed or backordered without a supply date, and less than the policy's lead time (release → delivered) is left before the promise | today + lead time |
| `supply_late` | backordered, and the backorder's (production run's or receipt's) expected delivery date falls after the promise | that date |
| `not_picked_by_cutoff` | a shipment still in the warehouse (pending, picked, packed) at the cut-off of the last day it can leave and still arrive on time | the next ship date + transit (its deliver-by, moved as many days as the ship date) |
| `carrier_silent` | shipped, and no carrier event for `policy.carrier_silence` | the promise, or tomorrow once it passed |
| `transit_overdue` | shipped and not delivered after its deliver-by date (the lane's transit days after the day it left) | the promise, or tomorrow once it passed |
| `carrier_problem` | the carrier's last word is a delay, a failed delivery attempt, an exception, a return to sender or a loss | the carrier's new date, else as above |
| `hold_too_long` | on hold for `policy.max_hold` or longer, or so long that the lead time no longer fits before the promise | the promise, or today + lead time when later |

Dates are plain dates (YYYY-MM-DD). Day arithmetic counts the working days of `Policy.calendar`
(orderdesk.calendar: the lead time, a parcel's transit, "the next day it can leave or arrive"), or
calendar days without one; a shipment's cut-off and the date it is due are handed in
(`ShipmentFacts.ship_by`, `.deliver_by`: shipping computes them on the warehouse's calendar and the lane,
services/shipping/domain.py `schedule`; else `.transit_days` from the day it left), so these rules carry
no warehouse calendar of their own. An order without a promised date has nothing to be late for: only the carrier's
and the hold's risks apply to it (their dates are then unknown, "").

Priority aging (`current_priority`) lives here too: the allocator serves the highest priority first, and
an order's priority rises as its due date nears, so a week-old standard order is not starved by a stream
of newer ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from orderdesk.calendar import Calendar, add_working_days, next_working_day


class RiskCode(StrEnum):
    NOT_ALLOCATABLE_IN_TIME = "not_allocatable_in_time"
    SUPPLY_LATE = "supply_late"
    NOT_PICKED_BY_CUTOFF = "not_picked_by_cutoff"
    CARRIER_SILENT = "carrier_silent"
    TRANSIT_OVERDUE = "transit_overdue"
    CARRIER_PROBLEM = "carrier_problem"
    HOLD_TOO_LONG = "hold_too_long"


RISK_CODES = tuple(c.value for c in RiskCode)
# Risks whose expected date is a fact someone gave (a new one is news); the others' dates are estimates.
DATED_BY_FACTS = frozenset({RiskCode.SUPPLY_LATE, RiskCode.CARRIER_PROBLEM})
# Shipment statuses: still in the warehouse, on its way, done.
IN_WAREHOUSE = frozenset({"pending", "picked", "packed"})
# What a carrier may say that endangers the date (shipping's `delayed` / `lost` events, and the
# normalised tracking vocabulary's words for the same troubles).
CARRIER_TROUBLE = frozenset(
    {"delayed", "lost", "delivery_attempted", "exception", "returning_to_sender", "returned"}
)
# Order statuses the watch looks at; every other one is settled (nothing left to promise).
OPEN = frozenset(
    {"received", "on_hold", "confirmed", "scheduled", "allocated", "partially_shipped", "shipped"}
)
AWAITING_STOCK = frozenset({"confirmed", "scheduled"})


@dataclass(frozen=True)
class Policy:
    """How much time things may take before the promise is in danger (README "Promise watch").

    lead_days: days from releasing an order to the warehouse to its delivery, at the least (pick, pack,
    ship, transit); carrier_silence: how long a shipped parcel may go without a carrier event; max_hold:
    how long an order may wait on hold; calendar: whose working days the days count (None: every day)."""

    lead_days: int = 3
    carrier_silence: dt.timedelta = dt.timedelta(hours=48)
    max_hold: dt.timedelta = dt.timedelta(hours=24)
    recheck: dt.timedelta = dt.timedelta(hours=1)  # at the latest, assess an open order again after this
    calendar: Calendar | None = None

    def add_days(self, day: dt.date, n: int) -> dt.date:
        """`n` days after `day`: working days of the calendar (a closed `day` counts from the next working
        day's start), else calendar days."""
        if self.calendar is None:
            return day + dt.timedelta(days=n)
        return add_working_days(day, n, self.calendar)

    def next_day(self, day: dt.date) -> dt.date:
        """The first day after `day` that things happen on: the next working day, else tomorrow."""
        return day + dt.timedelta(days=1) if self.calendar is None else next_working_day(day, self.calendar)


# An order due for the watch at once, whatever anyone's clock says (the orders table's watch_at).
AT_ONCE = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ShipmentFacts:
    shipment_id: str
    status: str  # pending | picked | packed | shipped | delivered | cancelled
    promised_date: dt.date | None = None
    ship_by: dt.datetime | None = None  # the cut-off of the last day it can leave and arrive on time
    transit_days: int | None = None  # the lane's, when known
    deliver_by: dt.date | None = None  # shipping's: when it should arrive, once shipped from the day it left
    shipped_at: dt.datetime | None = None
    last_event: str = (
        ""  # the carrier's last word after shipping: shipped, delayed, lost, delivery_attempted …
    )
    last_event_at: dt.datetime | None = None
    carrier_date: dt.date | None = None  # the carrier's revised delivery date, if it gave one


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    status: str
    promised_date: dt.date | None  # the date the customer was promised (requested, or accepted later)
    expected_delivery_date: dt.date | None = None  # while backordered: what supply gives, when known
    expected_ship_date: dt.date | None = None
    held_since: dt.datetime | None = None
    shipments: tuple[ShipmentFacts, ...] = ()


@dataclass(frozen=True)
class Risk:
    code: RiskCode
    expected_date: str  # YYYY-MM-DD, "" when nobody can say
    slip_days: int  # days after the promise (0 when unknown or not later)
    evidence: str
    shipment_id: str = ""
    since: dt.datetime | None = field(default=None, compare=False)  # when first raised (kept by the order)

    def same_as(self, other: Risk) -> bool:
        """The same risk with the same outlook: nothing new to tell anyone. A new date counts as news only
        where a fact gave it (supply's date, the carrier's date); the dates the rules estimate move with
        the calendar and would repeat the same warning every day."""
        if (self.code, self.shipment_id) != (other.code, other.shipment_id):
            return False
        return self.code not in DATED_BY_FACTS or self.expected_date == other.expected_date

    def to_json(self) -> dict:
        return {
            "code": self.code.value,
            "expected_date": self.expected_date,
            "slip_days": self.slip_days,
            "evidence": self.evidence,
            "shipment_id": self.shipment_id,
            "since": self.since.isoformat() if self.since else "",
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Risk:
        since = data.get("since") or ""
        return cls(
            code=RiskCode(data["code"]),
            expected_date=data.get("expected_date", ""),
            slip_days=int(data.get("slip_days", 0)),
            evidence=data.get("evidence", ""),
            shipment_id=data.get("shipment_id", ""),
            since=dt.datetime.fromisoformat(since) if since else None,
        )


def _slip(promised: dt.date | None, expected: dt.date | None) -> int:
    if promised is None or expected is None:
        return 0
    return max((expected - promised).days, 0)


def _risk(
    code: RiskCode, promised: dt.date | None, expected: dt.date | None, evidence: str, shipment_id: str = ""
) -> Risk:
    return Risk(
        code, expected.isoformat() if expected else "", _slip(promised, expected), evidence, shipment_id
    )


def _not_before(promised: dt.date | None, today: dt.date, policy: Policy) -> dt.date | None:
    """With no better word: the promise while it still lies ahead, else the next (working) day: it cannot
    come sooner."""
    if promised is None:
        return None
    return promised if promised > today else policy.next_day(today)


def assess(facts: OrderFacts, now: dt.datetime, policy: Policy = Policy()) -> list[Risk]:
    """The order's risks at `now`, in a stable order (by code, then shipment); [] when on track."""
    if facts.status not in OPEN:
        return []
    today = now.date()
    promised = facts.promised_date
    found: list[Risk] = []

    if facts.status in AWAITING_STOCK:
        supply = facts.expected_delivery_date
        if facts.status == "scheduled" and supply is not None and promised is not None and supply > promised:
            ship = f" (ready {facts.expected_ship_date.isoformat()})" if facts.expected_ship_date else ""
            found.append(
                _risk(
                    RiskCode.SUPPLY_LATE,
                    promised,
                    supply,
                    f"backordered units are expected for delivery on {supply.isoformat()}{ship}, "
                    f"after the promised {promised.isoformat()}",
                )
            )
        elif (supply is None or facts.status == "confirmed") and promised is not None:
            earliest = policy.add_days(today, policy.lead_days)
            if earliest > promised:
                what = "not allocated" if facts.status == "confirmed" else "backordered with no supply date"
                found.append(
                    _risk(
                        RiskCode.NOT_ALLOCATABLE_IN_TIME,
                        promised,
                        earliest,
                        f"{what} on {today.isoformat()}: with {policy.lead_days} day(s) from release to "
                        f"delivery it arrives {earliest.isoformat()} at the earliest, promised "
                        f"{promised.isoformat()}",
                    )
                )

    if facts.status == "on_hold" and facts.held_since is not None:
        held = now - facts.held_since
        earliest = policy.add_days(today, policy.lead_days)
        too_long = held >= policy.max_hold
        too_late = promised is not None and earliest > promised
        if too_long or too_late:
            expected = max(promised, earliest) if promised is not None else None
            found.append(
                _risk(
                    RiskCode.HOLD_TOO_LONG,
                    promised,
                    expected,
                    f"on hold since {facts.held_since.isoformat(timespec='minutes')} "
                    f"({_hours(held)} h; at most {_hours(policy.max_hold)} h)"
                    + (
                        f"; released now it arrives {earliest.isoformat()} at the earliest"
                        if too_late
                        else ""
                    ),
                )
            )

    for s in facts.shipments:
        found.extend(_shipment_risks(s, promised, now, policy))
    return sorted(found, key=lambda r: (r.code.value, r.shipment_id))


def _hours(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 3600)


def _shipment_risks(s: ShipmentFacts, order_promise: dt.date | None, now: dt.datetime, policy: Policy):
    today = now.date()
    promised = s.promised_date or order_promise
    if s.status in IN_WAREHOUSE and s.ship_by is not None and now >= s.ship_by:
        # The day's last truck has gone without it: it leaves the next (working) day at the earliest.
        next_ship = policy.next_day(max(today, s.ship_by.date()))
        expected = None
        if s.transit_days is not None:
            expected = policy.add_days(next_ship, s.transit_days)
        elif s.deliver_by is not None:  # shipping's date from the missed ship day: as many days later
            expected, day = s.deliver_by, s.ship_by.date()
            while day < next_ship:
                day, expected = policy.next_day(day), policy.next_day(expected)
        yield _risk(
            RiskCode.NOT_PICKED_BY_CUTOFF,
            promised,
            expected or _not_before(promised, today, policy),
            f"shipment {s.shipment_id} is {s.status} after the cut-off "
            f"{s.ship_by.isoformat(timespec='minutes')} of its last ship date",
            s.shipment_id,
        )
    if s.status != "shipped":
        return
    heard = s.last_event_at or s.shipped_at
    if heard is not None and now - heard >= policy.carrier_silence:
        yield _risk(
            RiskCode.CARRIER_SILENT,
            promised,
            _not_before(promised, today, policy),
            f"no carrier event for shipment {s.shipment_id} since {heard.isoformat(timespec='minutes')} "
            f"({_hours(now - heard)} h; at most {_hours(policy.carrier_silence)} h)",
            s.shipment_id,
        )
    due = s.deliver_by
    if due is None and s.shipped_at is not None and s.transit_days is not None:
        due = policy.add_days(s.shipped_at.date(), s.transit_days)
    if s.shipped_at is not None and due is not None and today > due:
        lane = f"due {due.isoformat()}" if s.deliver_by is not None else f"the lane takes {s.transit_days}"
        yield _risk(
            RiskCode.TRANSIT_OVERDUE,
            promised,
            _not_before(promised, today, policy),
            f"shipment {s.shipment_id} shipped {s.shipped_at.date().isoformat()}, "
            f"{(today - s.shipped_at.date()).days} day(s) in transit; {lane}",
            s.shipment_id,
        )
    if s.last_event in CARRIER_TROUBLE and not (
        s.carrier_date is not None and promised is not None and s.carrier_date <= promised
    ):  # a delay the carrier says still meets the promise (or a promise moved to its date) endangers nothing
        expected = s.carrier_date or _not_before(promised, today, policy)
        said = f"; new date {s.carrier_date.isoformat()}" if s.carrier_date else ""
        yield _risk(
            RiskCode.CARRIER_PROBLEM,
            promised,
            expected,
            f"carrier reports {s.last_event.replace('_', ' ')} for shipment {s.shipment_id}{said}",
            s.shipment_id,
        )


def next_check(facts: OrderFacts, now: dt.datetime, policy: Policy = Policy()) -> dt.datetime | None:
    """When the passage of time alone could change the order's risks (the earliest threshold still ahead),
    at the latest `policy.recheck` from now; None for a settled order (only an event can reopen it)."""
    if facts.status not in OPEN:
        return None
    moments = [now + policy.recheck]
    midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=now.tzinfo)
    if facts.promised_date is not None and (facts.status in AWAITING_STOCK or facts.status == "on_hold"):
        moments.append(midnight)  # "today + lead time > promise" changes only at midnight
    if facts.status == "on_hold" and facts.held_since is not None:
        moments.append(facts.held_since + policy.max_hold)
    for s in facts.shipments:
        if s.status in IN_WAREHOUSE and s.ship_by is not None:
            moments.append(s.ship_by)
        if s.status == "shipped":
            heard = s.last_event_at or s.shipped_at
            if heard is not None:
                moments.append(heard + policy.carrier_silence)
            if s.shipped_at is not None and (s.transit_days is not None or s.deliver_by is not None):
                moments.append(midnight)
    ahead = [m for m in moments if m > now]
    return min(ahead) if ahead else now + policy.recheck


# --- what changed since the last assessment ---------------------------------------------------------
def key(risk: Risk) -> tuple[str, str]:
    return risk.code.value, risk.shipment_id


def compare(before: Iterable[Risk], now: Iterable[Risk]) -> tuple[list[Risk], list[Risk]]:
    """(raised, cleared): risks new or with another outlook (a new expected date) since `before`, and
    risks of `before` gone. A risk that stays as it was is in neither, so nobody hears it twice."""
    old = {key(r): r for r in before}
    new = {key(r): r for r in now}
    raised = [r for k, r in new.items() if k not in old or not r.same_as(old[k])]
    cleared = [r for k, r in old.items() if k not in new]
    return raised, cleared


# --- priority aging ------------------------------------------------------------------------------------
TIER_WIDTH = (
    100  # intake: priority = 100 x tier rank + within-tier urgency (services/intake/domain/priority.py)
)
TOP_TIER = 3  # strategic
URGENCY_HORIZON_DAYS = 90
URGENT_FLOOR = 91
TOP_WITHIN_TIER = 99
WAIT_POINTS_PER_DAY = 2  # an order with no date (or a far one) gains this much urgency per day it waits


def current_priority(
    priority: int,
    *,
    requested: dt.date | None,
    placed: dt.date | None,
    today: dt.date,
    urgent: bool = False,
) -> int:
    """The order's priority today: its tier stays, its urgency within the tier rises as time passes.

    urgency today = the highest of: the urgency it had (never lower), the date's urgency today
    (90 − days left to the requested date, as intake computes it at placement), and
    WAIT_POINTS_PER_DAY for each day since it was placed; at most 90. An urgent order keeps its
    band above every non-urgent one of its tier: 91 + urgency × 8 / 90 (at most 99), as intake does.
    So the priority never falls as time passes, never leaves the order's tier and never exceeds
    the top class (100 × 3 + 99). A priority outside intake's scheme (below 0, above the top class) is
    left as it is."""
    if not 0 <= priority <= TOP_TIER * TIER_WIDTH + TOP_WITHIN_TIER:
        return priority
    tier = priority // TIER_WIDTH
    within = priority - tier * TIER_WIDTH
    due = 0
    if requested is not None:
        due = max(URGENCY_HORIZON_DAYS - max((requested - today).days, 0), 0)
    waited = 0
    if placed is not None:
        waited = min(max((today - placed).days, 0) * WAIT_POINTS_PER_DAY, URGENCY_HORIZON_DAYS)
    urgency = max(due, waited)
    aged = URGENT_FLOOR + urgency * 8 // URGENCY_HORIZON_DAYS if urgent else urgency
    return tier * TIER_WIDTH + min(max(within, aged), TOP_WITHIN_TIER)
