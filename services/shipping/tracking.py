"""A carrier's tracking events: one normalised vocabulary and what each word does to a shipment.
Plain Python, no I/O.

Carriers and tracking aggregators say the same things in many words ("InTransit", "in-transit",
"ATTEMPT_FAIL"); `normalise` maps them onto one vocabulary (TrackingStatus), and a word it does not
know is `unknown` (kept with the carrier's own code, never refused: a carrier's feed is not ours to
reject). What each status does (Shipment.track in services.shipping.domain):

  delivered                                   completes the shipment, at the carrier's time
  picked_up, in_transit, out_for_delivery,    the parcel left: a picked or packed shipment is shipped
  available_for_pickup, delivery_attempted,   (at the carrier's time, with its tracking number)
  delayed, exception, returning_to_sender,
  returned
  delayed                                     shipment.delayed (with the carrier's new date, when given)
  delivery_attempted, exception,              shipment.<status>: orders opens the matching exception
  returning_to_sender                         (delivery_failed, carrier_exception, returning_to_sender)
  returned                                    shipment.returned (the watch counts it as trouble)
  anything else                               shipment.tracked: the timeline and the carrier's last word

Ordering: the timeline is kept in the carrier's time order whatever order the events arrive in; only
an event newer than the newest one recorded speaks for the shipment (its last word, the exceptions it
opens). A shipment never moves backwards: `delivered` completes it even when it arrives late, and
nothing after it changes it again.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum


class TrackingStatus(StrEnum):
    LABEL_CREATED = "label_created"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    DELAYED = "delayed"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNING_TO_SENDER = "returning_to_sender"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


VOCABULARY = tuple(s.value for s in TrackingStatus)

# Other carriers' and aggregators' words for the same things (after normalising case and separators).
ALIASES: dict[str, TrackingStatus] = {
    "info_received": TrackingStatus.LABEL_CREATED,
    "pre_transit": TrackingStatus.LABEL_CREATED,
    "label_printed": TrackingStatus.LABEL_CREATED,
    "shipment_created": TrackingStatus.LABEL_CREATED,
    "pickup": TrackingStatus.PICKED_UP,
    "collected": TrackingStatus.PICKED_UP,
    "accepted": TrackingStatus.PICKED_UP,
    "transit": TrackingStatus.IN_TRANSIT,
    "departed": TrackingStatus.IN_TRANSIT,
    "arrived": TrackingStatus.IN_TRANSIT,
    "delay": TrackingStatus.DELAYED,
    "late": TrackingStatus.DELAYED,
    "out_for_delivery_today": TrackingStatus.OUT_FOR_DELIVERY,
    "ready_for_pickup": TrackingStatus.AVAILABLE_FOR_PICKUP,
    "attempt_fail": TrackingStatus.DELIVERY_ATTEMPTED,
    "attempt_failed": TrackingStatus.DELIVERY_ATTEMPTED,
    "failed_attempt": TrackingStatus.DELIVERY_ATTEMPTED,
    "delivery_failed": TrackingStatus.DELIVERY_ATTEMPTED,
    "not_delivered": TrackingStatus.DELIVERY_ATTEMPTED,
    "failure": TrackingStatus.EXCEPTION,
    "expired": TrackingStatus.EXCEPTION,
    "return_to_sender": TrackingStatus.RETURNING_TO_SENDER,
    "returning": TrackingStatus.RETURNING_TO_SENDER,
    "rts": TrackingStatus.RETURNING_TO_SENDER,
    "returned_to_sender": TrackingStatus.RETURNED,
    "voided": TrackingStatus.CANCELLED,
    "canceled": TrackingStatus.CANCELLED,
    "label_cancelled": TrackingStatus.CANCELLED,
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalise(word: str) -> TrackingStatus:
    """A carrier's status word as the vocabulary's: "InTransit", "in-transit", "IN TRANSIT" and
    "in_transit" are in_transit; a known alias ("AttemptFail") is its status; anything else unknown."""
    key = _SEPARATORS.sub("_", _CAMEL.sub("_", word.strip()).lower()).strip("_")
    if key in VOCABULARY:
        return TrackingStatus(key)
    return ALIASES.get(key, TrackingStatus.UNKNOWN)


# The parcel is in the carrier's hands: a shipment still marked picked or packed has shipped.
LEFT_WAREHOUSE = frozenset(
    {
        TrackingStatus.PICKED_UP,
        TrackingStatus.IN_TRANSIT,
        TrackingStatus.DELAYED,
        TrackingStatus.OUT_FOR_DELIVERY,
        TrackingStatus.AVAILABLE_FOR_PICKUP,
        TrackingStatus.DELIVERY_ATTEMPTED,
        TrackingStatus.DELIVERED,
        TrackingStatus.EXCEPTION,
        TrackingStatus.RETURNING_TO_SENDER,
        TrackingStatus.RETURNED,
    }
)
# Published as shipment.<status>: the words that endanger the delivery.
TROUBLE = frozenset(
    {
        TrackingStatus.DELAYED,
        TrackingStatus.DELIVERY_ATTEMPTED,
        TrackingStatus.EXCEPTION,
        TrackingStatus.RETURNING_TO_SENDER,
        TrackingStatus.RETURNED,
    }
)
# shipment.<status> events orders opens an exception for (services.orders.consumers).
OPENS_EXCEPTION = frozenset(
    {TrackingStatus.DELIVERY_ATTEMPTED, TrackingStatus.EXCEPTION, TrackingStatus.RETURNING_TO_SENDER}
)


def event_name(status: TrackingStatus) -> str:
    """The shipment event a newest tracking word is published as (without a step of its own)."""
    return status.value if status in TROUBLE else "tracked"


class Outcome(StrEnum):
    """What became of one carrier event (the answer per event, and the metric's label)."""

    APPLIED = "applied"  # the newest word: recorded and published (and the shipment moved if it said so)
    RECORDED = "recorded"  # kept in the timeline only: older than the newest, or after delivery
    DUPLICATE = "duplicate"  # this carrier's event id was recorded before: nothing changed
    UNKNOWN_SHIPMENT = "unknown_shipment"  # no shipment of ours has that tracking number (or id)
    AMBIGUOUS = "ambiguous"  # several shipments have that tracking number: send the shipment id


@dataclass(frozen=True)
class TrackingEntry:
    """One carrier event as the timeline keeps it."""

    source: str  # the carrier or aggregator that sent it (its signing secret; the event id's namespace)
    event_id: str  # the sender's own id: a repeat changes nothing
    status: TrackingStatus
    occurred_at: dt.datetime  # the carrier's time
    carrier_status: str = ""  # the carrier's own code, as it sent it
    message: str = ""
    location: str = ""
    expected_delivery_date: str = ""  # a carrier's new date (delayed), YYYY-MM-DD
    carrier: str = ""  # the carrier that moves the parcel (an aggregator names it); default the source
    tracking_number: str = ""  # as the carrier named it
    received_at: dt.datetime | None = None

    @property
    def carrier_name(self) -> str:
        return self.carrier or self.source


def in_time_order(entries: list[TrackingEntry]) -> list[TrackingEntry]:
    """The timeline: the carrier's time, then arrival, then the event id (stable for equal times)."""
    return sorted(
        entries,
        key=lambda e: (e.occurred_at, e.received_at or e.occurred_at, e.event_id),
    )


def choose_shipment(candidates: list[tuple[str, str]], carrier: str) -> tuple[str, Outcome]:
    """(shipment id, its carrier) having one tracking number -> the one it belongs to: the only one, or
    the only one whose carrier is `carrier` (any case); else unknown (none) or ambiguous."""
    if len(candidates) == 1:
        return candidates[0][0], Outcome.APPLIED
    if not candidates:
        return "", Outcome.UNKNOWN_SHIPMENT
    same = [sid for sid, theirs in candidates if theirs.strip().lower() == carrier.strip().lower()]
    if len(same) == 1:
        return same[0], Outcome.APPLIED
    return "", Outcome.AMBIGUOUS


# A carrier's clock may run a little ahead; an event further ahead would silence every real one after it.
MAX_AHEAD = dt.timedelta(hours=1)
MAX_EVENTS = 500  # per request


@dataclass(frozen=True)
class Reported:
    """One event as a carrier sent it: the entry, and the shipment it names (by id or tracking number)."""

    entry: TrackingEntry
    shipment_id: str = ""


def check(reported: list[Reported], now: dt.datetime) -> list[tuple[str, str, str]]:
    """(field path, why, rule) for each bad field of a batch; empty when all are good. A bad batch
    records nothing."""
    problems: list[tuple[str, str, str]] = []
    if not reported:
        problems.append(("events", "send at least one event", "required"))
    if len(reported) > MAX_EVENTS:
        problems.append(("events", f"at most {MAX_EVENTS} events per request", "too_many"))
    for i, r in enumerate(reported):
        at = f"events[{i}]"
        if not r.entry.event_id.strip():
            problems.append((f"{at}.event_id", "the carrier's event id is required", "required"))
        if not (r.shipment_id.strip() or r.entry.tracking_number.strip()):
            problems.append(
                (f"{at}.tracking_number", "name the tracking number or the shipment id", "required")
            )
        if r.entry.occurred_at > now + MAX_AHEAD:
            problems.append((f"{at}.occurred_at", "more than an hour in the future", "in_future"))
        date = r.entry.expected_delivery_date
        if date:
            try:
                dt.date.fromisoformat(date)
            except ValueError:
                problems.append((f"{at}.expected_delivery_date", "a date YYYY-MM-DD", "invalid"))
    return problems
