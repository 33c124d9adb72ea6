"""The shipment aggregate, its steps and the delivery promise: plain Python, no I/O.

    pending ──> picked ──> packed ──> shipped ──> delivered
                  └─────────────────────┘ (shipped may follow picked: pack-and-ship stations
                                           and carriers that pack at the dock report no "packed")
    cancelled: from pending, picked or packed (the order was cancelled before anything left)

A 3PL retries: reporting the step a shipment is already in returns it unchanged.
Going backwards, skipping a step (other than packed) or acting on a cancelled
shipment is refused with FailedPrecondition. Every change bumps the version;
`Shipment.changes` collects the ones not yet published.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from orderdesk import calendar
from orderdesk.calendar import CalendarBook
from orderdesk.domain import StatusChange
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.shipping.tracking import LEFT_WAREHOUSE, TrackingEntry, TrackingStatus, event_name


class Status(StrEnum):
    PENDING = "pending"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# The steps a warehouse or carrier reports, in their only order.
PROGRESS = (Status.PENDING, Status.PICKED, Status.PACKED, Status.SHIPPED, Status.DELIVERED)
STEPS = frozenset({Status.PICKED, Status.PACKED, Status.SHIPPED, Status.DELIVERED})
# Which status each reported step may follow (besides a repeat of itself).
STEP_FOLLOWS: dict[Status, frozenset[Status]] = {
    Status.PICKED: frozenset({Status.PENDING}),
    Status.PACKED: frozenset({Status.PICKED}),
    Status.SHIPPED: frozenset({Status.PICKED, Status.PACKED}),
    Status.DELIVERED: frozenset({Status.SHIPPED}),
}
# A carrier's tracking events on a shipped parcel: no status change, an exception for the order.
TRACKING = ("delayed", "lost")
# Before these, nothing has left the warehouse and a cancelled order still stops the shipment.
CANCELLABLE = frozenset({Status.PENDING, Status.PICKED, Status.PACKED})


# --- the delivery promise ------------------------------------------------------
def promised_delivery_date(
    *,
    allocated_at: dt.datetime,
    book: CalendarBook,
    warehouse: str,
    destination_country: str,
    requested_delivery_date: str = "",
) -> str:
    """The date promised to the customer (YYYY-MM-DD).

    The date the customer asked for is the promise when the order has one (on a day closed
    at the destination: the last working day before it, delivering *by* that date); else the
    warehouse's ship date (today before its local cut-off on a working day, else its next
    working day) plus the lane's transit working days on the destination's calendar
    (orderdesk.calendar: an unknown destination counts as international, an unknown
    warehouse ships the next working day with the default transit).
    """
    requested = parse_date(requested_delivery_date)
    if requested is not None:
        return book.deliver_by(requested, warehouse, destination_country).isoformat()
    return book.promise(allocated_at, warehouse, destination_country).delivery_date.isoformat()


@dataclass(frozen=True)
class Schedule:
    """When a shipment must be picked and where it should be: `pick_by`, the warehouse's cut-off (a UTC
    instant) on the last day it can leave and still arrive by the promise; `deliver_by` (YYYY-MM-DD),
    that ship date, or the day it actually left, plus the lane's transit working days at the destination."""

    pick_by: dt.datetime | None
    deliver_by: str


def schedule(
    book: CalendarBook,
    *,
    warehouse: str,
    destination_country: str,
    promised_delivery_date: str,
    carrier: str = "",
    shipped_at: dt.datetime | None = None,
) -> Schedule:
    """The promise watch's facts for a shipment (orders' not_picked_by_cutoff and transit_overdue):
    the last ship date is the latest working day of the warehouse from which the lane's transit still
    reaches the promise (orderdesk.calendar.latest_ship_date on the destination's calendar); a parcel
    that left is due its transit after the day it left (in the warehouse's time zone). An unknown
    warehouse has no cut-off: no pick-by."""
    promised = parse_date(promised_delivery_date)
    warehouse_calendar = book.warehouse(warehouse)
    transit = book.transit_days(warehouse, destination_country, carrier)
    destination = book.destination(destination_country, warehouse)
    if shipped_at is not None:
        left = calendar.local_date(shipped_at, book.time_zone(warehouse))
        return Schedule(None, calendar.delivery_date(left, transit, destination).isoformat())
    if promised is None or warehouse_calendar is None:
        return Schedule(None, "")
    last = calendar.latest_ship_date(promised, transit, destination)
    last = calendar.working_day_on_or_before(last, warehouse_calendar)
    # A day the warehouse works and the destination does not (a Saturday in Chicago for the US) arrives with
    # the destination's next working day: such a later day may still reach the promise.
    later = calendar.next_working_day(last, warehouse_calendar)
    while calendar.delivery_date(later, transit, destination) <= promised:
        last, later = later, calendar.next_working_day(later, warehouse_calendar)
    return Schedule(
        warehouse_calendar.cutoff_at(last),
        calendar.delivery_date(last, transit, destination).isoformat(),
    )


class Promises:
    """`promised_delivery_date` and `schedule` of new shipments on one calendar `book`, each worked out once
    per warehouse, destination and day: shipments made together (a batch, the few seconds a book is held)
    share a few, and the rules walk the calendars day by day. A promise depends on the moment of allocation
    only through the warehouse's ship date."""

    def __init__(self, book: CalendarBook):
        self.book = book
        self._promised: dict[tuple[str, str, dt.date | None, dt.date | None], str] = {}
        self._scheduled: dict[tuple[str, str, str], Schedule] = {}

    def promised_delivery_date(
        self,
        allocated_at: dt.datetime,
        warehouse: str,
        destination_country: str,
        requested_delivery_date: str,
    ) -> str:
        requested = parse_date(requested_delivery_date)
        ship = self.book.ship_date(allocated_at, warehouse) if requested is None else None
        key = (warehouse, destination_country, requested, ship)
        promised = self._promised.get(key)
        if promised is None:
            promised = self._promised[key] = promised_delivery_date(
                allocated_at=allocated_at,
                book=self.book,
                warehouse=warehouse,
                destination_country=destination_country,
                requested_delivery_date=requested_delivery_date,
            )
        return promised

    def schedule(self, warehouse: str, destination_country: str, promised_delivery_date: str) -> Schedule:
        """A new shipment's (no carrier yet, not left)."""
        key = (warehouse, destination_country, promised_delivery_date)
        planned = self._scheduled.get(key)
        if planned is None:
            planned = self._scheduled[key] = schedule(
                self.book,
                warehouse=warehouse,
                destination_country=destination_country,
                promised_delivery_date=promised_delivery_date,
            )
        return planned


def parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


# --- splitting an allocated order ------------------------------------------------
def shipment_id_for(order_id: str, warehouse: str) -> str:
    """Deterministic, so a redelivered allocation event finds the shipment it made before."""
    return f"SHP-{order_id.removeprefix('ORD-')}-{warehouse}"


def split_by_warehouse(allocations: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """(sku, warehouse, quantity) reservations -> {warehouse: {sku: quantity}}, in first-seen order."""
    plan: dict[str, dict[str, int]] = {}
    for sku, warehouse, quantity in allocations:
        if quantity <= 0:
            continue
        lines = plan.setdefault(warehouse, {})
        lines[sku] = lines.get(sku, 0) + quantity
    return plan


def still_to_ship(
    plan: dict[str, dict[str, int]], left: list[tuple[str, dict[str, int]]]
) -> dict[str, dict[str, int]]:
    """A partially shipped order's plan for the goods still in the warehouse: its allocations (which keep
    the shipped units, `split_by_warehouse`) less the lines of its shipments that left (warehouse, lines)."""
    gone: dict[tuple[str, str], int] = {}
    for warehouse, lines in left:
        for sku, qty in lines.items():
            gone[(warehouse, sku)] = gone.get((warehouse, sku), 0) + qty
    remaining: dict[str, dict[str, int]] = {}
    for warehouse, lines in plan.items():
        for sku, qty in lines.items():
            rest = qty - gone.get((warehouse, sku), 0)
            if rest > 0:
                remaining.setdefault(warehouse, {})[sku] = rest
    return remaining


# --- the aggregate -----------------------------------------------------------------
@dataclass(frozen=True)
class Change(StatusChange[Status]):
    """One status change, to publish as shipment.<status>."""

    event: str = ""  # a change that is not a step: updated | carrier_changed | delayed | lost | tracked …
    tracking: TrackingEntry | None = None  # the carrier event that made it (POST /v1/carriers/…/tracking)

    @property
    def event_name(self) -> str:
        """created for the new (pending) shipment, the event for a change that is not a step,
        else the status reached (the metrics' label)."""
        if self.event:
            return self.event
        return "created" if self.status is Status.PENDING else self.status.value

    @property
    def event_type(self) -> str:
        """The event it is published as: shipment.<event_name>."""
        return f"shipment.{self.event_name}"


CARRIER_CLAIM_OPEN = "open"
CARRIER_CLAIM_OPENED_EVENT = "carrier_claim_opened"


@dataclass(frozen=True)
class CarrierClaim:
    """A claim against the carrier for goods damaged in transit (issue 14): opened on a shipment that left
    with a carrier, for the damaged units it carried, when a customer's damaged-in-transit claim (an RMA of
    kind claim) is made; its id is derived from both, so a redelivery opens nothing new."""

    claim_id: str
    shipment_id: str
    rma_id: str
    carrier: str
    tracking_number: str
    lines: dict[str, int]
    reason: str = ""
    opened_by: str = ""
    opened_at: dt.datetime | None = None
    status: str = CARRIER_CLAIM_OPEN


def carrier_claim_id(rma_id: str, n: int) -> str:
    return f"CC-{rma_id.removeprefix('RMA-')}-{n}"


def plan_carrier_claims(
    damaged: dict[str, int], shipments: list[Shipment]
) -> list[tuple[Shipment, dict[str, int]]]:
    """The damaged units per shipment that left with a carrier and carried them, in shipment id order (each
    SKU's units taken from the first shipments first); shipments that carried none get no claim."""
    left = dict(damaged)
    plan: list[tuple[Shipment, dict[str, int]]] = []
    for shipment in sorted(shipments, key=lambda s: s.shipment_id):
        if shipment.status not in (Status.SHIPPED, Status.DELIVERED) or not shipment.carrier:
            continue
        taken = {}
        for sku, qty in shipment.lines.items():
            n = min(qty, left.get(sku, 0))
            if n > 0:
                taken[sku] = n
                left[sku] -= n
        if taken:
            plan.append((shipment, taken))
    return plan


@dataclass
class Shipment:
    shipment_id: str
    order_id: str
    partner_id: str
    warehouse: str
    lines: dict[str, int]
    promised_delivery_date: str
    status: Status = Status.PENDING
    carrier: str = ""
    tracking_number: str = ""
    delivered_on: str = ""
    on_time: bool | None = None
    expected_delivery_date: str = ""  # a carrier's revised date (tracking event "delayed")
    destination_country: str = ""  # the order's ship-to country: the lane and the delivery calendar
    pick_by: dt.datetime | None = None  # `schedule`: the cut-off of the last day it can leave
    deliver_by: str = ""  # `schedule`: when it should arrive, from its last ship date or the day it left
    tracking_status: str = ""  # the carrier's last word (services.shipping.tracking vocabulary)
    tracked_at: dt.datetime | None = None  # … and its time: the newest carrier event recorded
    version: int = 0
    created_at: dt.datetime | None = None
    # Not persisted: what changed since load, for the store and the outbox.
    changes: list[Change] = field(default_factory=list, repr=False)
    loaded_version: int = field(default=0, repr=False)

    @classmethod
    def create(cls, *, at: dt.datetime, reason: str = "order allocated", **fields) -> Shipment:
        """A new pending shipment; `reason` says why it was made (an allocation, a change, a reship)."""
        shipment = cls(**fields, created_at=at)
        shipment._change(Status.PENDING, at, "system", reason)
        return shipment

    def reschedule(self, book: CalendarBook, shipped_at: dt.datetime | None = None) -> None:
        """Pick-by and deliver-by from the promise (`schedule`); once it left (`shipped_at`), deliver-by
        from that day and the carrier's lane (the pick-by stays as it was)."""
        planned = schedule(
            book,
            warehouse=self.warehouse,
            destination_country=self.destination_country,
            promised_delivery_date=self.promised_delivery_date,
            carrier=self.carrier,
            shipped_at=shipped_at,
        )
        if shipped_at is None:
            self.pick_by = planned.pick_by
        self.deliver_by = planned.deliver_by

    def record(
        self,
        step: str,
        *,
        at: dt.datetime,
        actor: str,
        carrier: str = "",
        tracking_number: str = "",
        time_zone: str = "UTC",
        book: CalendarBook | None = None,
    ) -> bool:
        """A step reported by the warehouse or carrier; False when it repeats the current one.
        A delivery is on time by orderdesk.calendar's rule, its date taken in `time_zone` (the
        warehouse's); with the calendar `book`, a shipped parcel's deliver-by counts from `at`."""
        to = check_step(step, carrier, tracking_number)
        if self.status is Status.CANCELLED:
            raise self._refusal(
                f"shipment {self.shipment_id} was cancelled; nothing more can be recorded",
                "shipment_cancelled",
            )
        if to is self.status:
            return False  # a retry of the step already recorded
        if PROGRESS.index(to) < PROGRESS.index(self.status):
            raise self._refusal(
                f"shipment {self.shipment_id} is already {self.status}; it cannot go back to {to}",
                "shipment_step_backwards",
            )
        if self.status not in STEP_FOLLOWS[to]:
            allowed = " or ".join(sorted(STEP_FOLLOWS[to]))
            raise self._refusal(
                f"{to} must follow {allowed}; shipment {self.shipment_id} is {self.status}",
                "shipment_step_skipped",
            )
        if to is Status.SHIPPED:
            self.carrier, self.tracking_number = carrier.strip(), tracking_number.strip()
            if book is not None:
                self.reschedule(book, shipped_at=at)
        if to is Status.DELIVERED:
            self.delivered_on = calendar.local_date(at, time_zone).isoformat()
            self.on_time = calendar.delivered_on_time(
                at, dt.date.fromisoformat(self.promised_delivery_date), time_zone
            )
        self._change(to, at, actor or "unknown", _reason(to, self))
        return True

    def _refusal(self, message: str, rule: str) -> FailedPrecondition:
        """The refusal of a change this shipment's state forbids (`rule`), naming the shipment."""
        return FailedPrecondition(message, rule=rule, subject=self.shipment_id)

    @property
    def cancellable(self) -> bool:
        return self.status in CANCELLABLE

    def cancel(self, at: dt.datetime, actor: str, reason: str) -> bool:
        """Stops a shipment whose goods are still in the warehouse; False if already cancelled."""
        if self.status is Status.CANCELLED:
            return False
        if not self.cancellable:
            raise self._refusal(
                f"shipment {self.shipment_id} is {self.status}; goods that left cannot be cancelled",
                "cancel_before_shipment",
            )
        self._change(Status.CANCELLED, at, actor, reason or "order cancelled")
        return True

    # --- changes that are not steps (change requests, exception resolutions, tracking) ---------
    def revise(
        self,
        lines: dict[str, int],
        *,
        at: dt.datetime,
        actor: str,
        reason: str,
        promised_delivery_date: str = "",
        destination_country: str = "",
        book: CalendarBook | None = None,
    ) -> bool:
        """The order changed: the goods to ship from this warehouse are now `lines` (and, after a new
        address, the promise is `promised_delivery_date` to `destination_country`, rescheduled on
        `book`). Only while the goods are still in the warehouse; False when nothing changes."""
        lines = {sku: qty for sku, qty in lines.items() if qty > 0}
        promise = promised_delivery_date or self.promised_delivery_date
        country = destination_country or self.destination_country
        if (lines, promise, country) == (self.lines, self.promised_delivery_date, self.destination_country):
            return False
        if not self.cancellable:
            raise self._refusal(
                f"shipment {self.shipment_id} is {self.status}; its lines can no longer change",
                "shipment_left_warehouse",
            )
        self.lines, self.promised_delivery_date = lines, promise
        self.destination_country = country
        if book is not None:
            self.reschedule(book)
        self._note("updated", at, actor, reason)
        return True

    def change_carrier(self, carrier: str, tracking_number: str, *, at: dt.datetime, actor: str) -> bool:
        """Another carrier takes the parcel (the desk's resolution of a carrier exception)."""
        require_carrier(carrier, tracking_number)
        if self.status in (Status.DELIVERED, Status.CANCELLED):
            raise self._refusal(
                f"shipment {self.shipment_id} is {self.status}; its carrier cannot change",
                "carrier_change_not_possible",
            )
        if (self.carrier, self.tracking_number) == (carrier.strip(), tracking_number.strip()):
            return False
        before = f"{self.carrier} {self.tracking_number}".strip() or "none"
        self.carrier, self.tracking_number = carrier.strip(), tracking_number.strip()
        self._note("carrier_changed", at, actor, f"{before} -> {self.carrier} {self.tracking_number}")
        return True

    def repromise(
        self, date: str, *, at: dt.datetime, actor: str, reason: str, book: CalendarBook | None = None
    ) -> bool:
        """The customer accepted a later date (the desk's accept_delay): it is the promise now, so the
        delivery is on time against it (and, with `book`, still in the warehouse, its pick-by and
        deliver-by move with it). Until delivered; False when nothing changes."""
        if (
            self.status in (Status.DELIVERED, Status.CANCELLED)
            or not parse_date(date)
            or date == self.promised_delivery_date
        ):
            return False
        before, self.promised_delivery_date = self.promised_delivery_date, date
        if book is not None and self.cancellable:
            self.reschedule(book)
        self._note("updated", at, actor, f"{reason}: promised {before} -> {date}")
        return True

    def report(
        self, kind: str, *, at: dt.datetime, actor: str, cause: str, expected_delivery_date: str = ""
    ) -> bool:
        """A carrier's tracking event on a shipped parcel: delayed (with the new date) or lost."""
        if self.status is not Status.SHIPPED:
            raise self._refusal(
                f"only a shipped parcel can be {kind}; shipment {self.shipment_id} is {self.status}",
                "tracking_needs_shipped",
            )
        if kind == "delayed":
            if not parse_date(expected_delivery_date):
                raise InvalidArgument(
                    "a delay needs the new expected date",
                    [
                        FieldViolation(
                            "expected_delivery_date", "required for delayed: YYYY-MM-DD", "required"
                        )
                    ],
                )
            if expected_delivery_date == self.expected_delivery_date:
                return False  # the same delay reported again
            self.expected_delivery_date = expected_delivery_date
        self._note(kind, at, actor, cause.strip() or kind)
        return True

    def track(
        self, entry: TrackingEntry, *, actor: str, time_zone: str = "UTC", book: CalendarBook | None = None
    ) -> bool:
        """A carrier's tracking event (services.shipping.tracking): False when it only joins the timeline
        (older than the newest one recorded, after delivery, or on a cancelled shipment). The newest word
        becomes the shipment's `tracking_status` and is published; a parcel in the carrier's hands ships a
        picked or packed shipment, and `delivered` completes it at the carrier's time, also when it
        arrives after a newer word. Never backwards."""
        if self.status in (Status.CANCELLED, Status.DELIVERED):
            return False
        status, at = entry.status, entry.occurred_at
        newest = self.tracked_at is None or at >= self.tracked_at
        if not newest and status is not TrackingStatus.DELIVERED:
            return False
        if status in LEFT_WAREHOUSE and self.status in (Status.PICKED, Status.PACKED):
            carrier = self.carrier or entry.carrier_name
            tracking_number = self.tracking_number or entry.tracking_number
            if carrier and tracking_number:
                self.record(
                    "shipped", at=at, actor=actor, carrier=carrier, tracking_number=tracking_number, book=book
                )
        if status is TrackingStatus.DELIVERED and self.status is Status.SHIPPED:
            self.record("delivered", at=at, actor=actor, time_zone=time_zone, book=book)
            self.tracking_status = status.value  # the last word whatever came later in the carrier's time
            self.tracked_at = at if self.tracked_at is None else max(self.tracked_at, at)
            self._tag(entry)
            return True
        if not newest:
            return False
        self.tracking_status, self.tracked_at = status.value, at
        if status is TrackingStatus.DELAYED and parse_date(entry.expected_delivery_date):
            self.expected_delivery_date = entry.expected_delivery_date
        reason = entry.message.strip() or entry.carrier_status.strip() or status.value
        self._note(event_name(status), at, actor, reason[:500])
        self._tag(entry)
        return True

    def _tag(self, entry: TrackingEntry) -> None:
        """The last change recorded came from this carrier event (its payload carries it)."""
        last = self.changes[-1]
        self.changes[-1] = Change(
            last.status, last.version, last.at, last.actor, last.reason, last.event, entry
        )

    def open_carrier_claim(self, claim: CarrierClaim, at: dt.datetime, actor: str) -> None:
        """Records on the shipment's history that a carrier claim was opened (shipment.carrier_claim_opened)."""
        self._note(
            CARRIER_CLAIM_OPENED_EVENT,
            at,
            actor,
            f"carrier claim {claim.claim_id} opened with {claim.carrier} for return {claim.rma_id}",
        )

    def _note(self, event: str, at: dt.datetime, actor: str, reason: str) -> None:
        self.version += 1
        self.changes.append(Change(self.status, self.version, at, actor or "unknown", reason, event))

    def _change(self, to: Status, at: dt.datetime, actor: str, reason: str) -> None:
        self.status = to
        self.version += 1
        self.changes.append(Change(to, self.version, at, actor, reason))


def check_step(step: str, carrier: str = "", tracking_number: str = "") -> Status:
    """The reported step as a status; bad input is refused before any state is looked at."""
    to = parse_step(step)
    if to is Status.SHIPPED:
        require_carrier(carrier, tracking_number)
    return to


def parse_step(step: str) -> Status:
    status = next((reported for reported in STEPS if reported.value == step), None)
    if status is None:
        raise InvalidArgument(
            f"unknown shipment event type {step!r}",
            [FieldViolation("type", "must be one of picked, packed, shipped, delivered", "unknown_type")],
        )
    return status


def require_carrier(carrier: str, tracking_number: str) -> None:
    violations = [
        FieldViolation(name, "required when the shipment is shipped", "required")
        for name, value in (("carrier", carrier), ("tracking_number", tracking_number))
        if not value.strip()
    ]
    if violations:
        raise InvalidArgument("a shipped event needs the carrier and the tracking number", violations)


def _reason(to: Status, shipment: Shipment) -> str:
    if to is Status.SHIPPED:
        return f"{shipment.carrier} {shipment.tracking_number}"
    if to is Status.DELIVERED:
        return f"delivered {shipment.delivered_on} ({'on time' if shipment.on_time else 'late'})"
    return to.value
