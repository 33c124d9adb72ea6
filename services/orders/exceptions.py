"""Exceptions on an order (what went wrong in supply or delivery) and how the desk resolves them. Plain Python.

    open ──resolve(action)──> resolved

An order with an open exception is at risk. Each type allows the resolutions that make
sense for it (RESOLUTIONS); the resolution is recorded with who, when, the action and
its details (e.g. the customer's consent for a substitute SKU). The order records and resolves
its exceptions itself (Order.record_exception, Order.resolve_exception).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound


class ExceptionType(StrEnum):
    PRODUCTION_DELAY = "production_delay"
    STOCK_SHORTAGE_AT_PICK = "stock_shortage_at_pick"
    CARRIER_DELAY = "carrier_delay"
    LOST_PARCEL = "lost_parcel"
    QUALITY_REWORK = "quality_rework"
    # From a carrier's tracking events (POST /v1/carriers/{carrier}/tracking, README "Carriers"):
    DELIVERY_FAILED = "delivery_failed"  # delivery_attempted: nobody took the parcel
    CARRIER_EXCEPTION = "carrier_exception"  # exception: damaged, address problem, customs, …
    RETURNING_TO_SENDER = "returning_to_sender"  # the carrier is sending the parcel back


class Action(StrEnum):
    REALLOCATE = "reallocate"  # release at the short warehouse, reserve elsewhere
    CHANGE_CARRIER = "change_carrier"  # a shipment not yet delivered goes with another carrier
    RESHIP = "reship"  # send the units again (a lost parcel)
    SUBSTITUTE = "substitute"  # an equivalent SKU, with the customer's consent
    SPLIT_DELIVERY = "split_delivery"  # deliver what is there now, the rest later
    ACCEPT_DELAY = "accept_delay"  # the customer accepts the new expected date


# Resolutions of a shortage: move the stock, change what is delivered, or when.
_SUPPLY = frozenset({Action.REALLOCATE, Action.SUBSTITUTE, Action.SPLIT_DELIVERY, Action.ACCEPT_DELAY})
RESOLUTIONS: dict[ExceptionType, frozenset[Action]] = {
    ExceptionType.PRODUCTION_DELAY: _SUPPLY,
    ExceptionType.STOCK_SHORTAGE_AT_PICK: _SUPPLY,
    ExceptionType.CARRIER_DELAY: frozenset({Action.CHANGE_CARRIER, Action.ACCEPT_DELAY}),
    ExceptionType.LOST_PARCEL: frozenset({Action.RESHIP, Action.CHANGE_CARRIER}),
    ExceptionType.QUALITY_REWORK: _SUPPLY,
    ExceptionType.DELIVERY_FAILED: frozenset({Action.CHANGE_CARRIER, Action.RESHIP, Action.ACCEPT_DELAY}),
    ExceptionType.CARRIER_EXCEPTION: frozenset({Action.CHANGE_CARRIER, Action.RESHIP, Action.ACCEPT_DELAY}),
    ExceptionType.RETURNING_TO_SENDER: frozenset({Action.RESHIP, Action.CHANGE_CARRIER}),
}
# What each type must name, so a resolution has something to act on.
NEEDS: dict[ExceptionType, tuple[str, ...]] = {
    ExceptionType.STOCK_SHORTAGE_AT_PICK: ("sku", "warehouse", "quantity"),
    ExceptionType.LOST_PARCEL: ("shipment_id",),
    ExceptionType.CARRIER_DELAY: ("shipment_id",),
    ExceptionType.DELIVERY_FAILED: ("shipment_id",),
    ExceptionType.CARRIER_EXCEPTION: ("shipment_id",),
    ExceptionType.RETURNING_TO_SENDER: ("shipment_id",),
}
ACTION_NEEDS: dict[Action, tuple[str, ...]] = {
    Action.CHANGE_CARRIER: ("carrier", "tracking_number"),
    Action.SUBSTITUTE: ("substitute_sku", "customer_consent"),
}


def parse_date(value: str, path: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat() if value else ""
    except ValueError:
        raise InvalidArgument(
            f"{path} must be YYYY-MM-DD", [FieldViolation(path, "a date YYYY-MM-DD")]
        ) from None


@dataclass
class Resolution:
    action: Action
    at: dt.datetime
    actor: str
    note: str = ""
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class OrderException:
    exception_id: str
    type: ExceptionType
    cause: str
    opened_at: dt.datetime
    opened_by: str
    source: str = "desk"  # desk | warehouse | shipping
    expected_date: str = ""  # the new expected delivery date, when known
    sku: str = ""
    warehouse: str = ""
    quantity: int = 0
    shipment_id: str = ""
    resolution: Resolution | None = None

    @property
    def open(self) -> bool:
        return self.resolution is None

    @classmethod
    def create(
        cls,
        *,
        exception_id: str,
        type: str,
        cause: str,
        at: dt.datetime,
        actor: str,
        source: str = "desk",
        expected_date: str = "",
        sku: str = "",
        warehouse: str = "",
        quantity: int = 0,
        shipment_id: str = "",
    ) -> OrderException:
        violations: list[FieldViolation] = []
        kind: ExceptionType | None = None
        try:
            kind = ExceptionType(type)
        except ValueError:
            violations.append(
                FieldViolation("type", "one of " + ", ".join(t.value for t in ExceptionType), "unknown_type")
            )
        if not cause.strip():
            violations.append(FieldViolation("cause", "required: what happened", "required"))
        if quantity < 0:
            violations.append(FieldViolation("quantity", "0 or more"))
        given = {"sku": sku, "warehouse": warehouse, "quantity": quantity, "shipment_id": shipment_id}
        for name in NEEDS.get(kind, ()) if kind is not None else ():
            if not given[name]:
                violations.append(FieldViolation(name, f"required for {type}", "required"))
        try:
            expected = parse_date(expected_date, "expected_date")
        except InvalidArgument as exc:
            violations.extend(exc.violations)
            expected = ""
        if violations or kind is None:
            raise InvalidArgument("invalid exception; nothing was recorded", violations)
        return cls(
            exception_id=exception_id,
            type=kind,
            cause=cause.strip(),
            opened_at=at,
            opened_by=actor,
            source=source,
            expected_date=expected,
            sku=sku,
            warehouse=warehouse,
            quantity=quantity,
            shipment_id=shipment_id,
        )

    def check_resolution(self, action: str, details: dict[str, str]) -> Action:
        """The action as an Action if this exception can be resolved with it (else a precise error)."""
        if self.resolution is not None:
            raise FailedPrecondition(
                f"exception {self.exception_id} is already resolved ({self.resolution.action})",
                rule="exception_already_resolved",
                subject=self.exception_id,
            )
        try:
            chosen = Action(action)
        except ValueError:
            raise InvalidArgument(
                f"unknown action {action!r}",
                [FieldViolation("action", "one of " + ", ".join(a.value for a in Action), "unknown_action")],
            ) from None
        if chosen not in RESOLUTIONS[self.type]:
            allowed = ", ".join(sorted(a.value for a in RESOLUTIONS[self.type]))
            raise FailedPrecondition(
                f"a {self.type} exception is resolved by {allowed}, not {chosen}",
                rule=f"resolution_not_for_{self.type}",
                subject=self.exception_id,
            )
        missing = [
            FieldViolation(name, f"required for {chosen}", "required")
            for name in ACTION_NEEDS.get(chosen, ())
            if not details.get(name, "").strip()
        ]
        if chosen is Action.SUBSTITUTE and details.get("customer_consent", "").strip().lower() in (
            "false",
            "no",
            "0",
        ):
            missing.append(
                FieldViolation(
                    "customer_consent", "the customer must consent to a substitute", "consent_required"
                )
            )
        if missing:
            raise InvalidArgument(f"{chosen} needs more details", missing)
        return chosen

    def resolve(
        self, action: Action, *, at: dt.datetime, actor: str, note: str, details: dict[str, str]
    ) -> None:
        self.check_resolution(action.value, details)
        self.resolution = Resolution(action, at, actor, note, dict(details))

    # --- storage --------------------------------------------------------------------------
    def to_json(self) -> dict:
        r = self.resolution
        return {
            "exception_id": self.exception_id,
            "type": self.type.value,
            "cause": self.cause,
            "opened_at": self.opened_at.isoformat(),
            "opened_by": self.opened_by,
            "source": self.source,
            "expected_date": self.expected_date,
            "sku": self.sku,
            "warehouse": self.warehouse,
            "quantity": self.quantity,
            "shipment_id": self.shipment_id,
            "resolution": None
            if r is None
            else {
                "action": r.action.value,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "note": r.note,
                "details": r.details,
            },
        }

    @classmethod
    def from_json(cls, d: dict) -> OrderException:
        r = d.get("resolution")
        return cls(
            exception_id=d["exception_id"],
            type=ExceptionType(d["type"]),
            cause=d["cause"],
            opened_at=dt.datetime.fromisoformat(d["opened_at"]),
            opened_by=d["opened_by"],
            source=d["source"],
            expected_date=d["expected_date"],
            sku=d["sku"],
            warehouse=d["warehouse"],
            quantity=d["quantity"],
            shipment_id=d["shipment_id"],
            resolution=None
            if r is None
            else Resolution(
                Action(r["action"]), dt.datetime.fromisoformat(r["at"]), r["actor"], r["note"], r["details"]
            ),
        )


def find(exceptions: list[OrderException], exception_id: str) -> OrderException:
    for e in exceptions:
        if e.exception_id == exception_id:
            return e
    raise NotFound(f"exception {exception_id} not found")


# --- on the order (Order.record_exception, Order.resolve_exception) ------------------------------------
# Resolutions after which the date the exception announced still holds (the goods still come late).
# Not a split delivery: the order then ships what it has, the late units are a linked order's.
DATE_STANDS = frozenset({Action.ACCEPT_DELAY})


def accepted_date(exception: OrderException, details: dict[str, str]) -> str:
    """The date an accept_delay makes the promise: the one the exception announced, else
    details.expected_date (a delay recorded without a date)."""
    date = exception.expected_date or parse_date(
        details.get("expected_date", "").strip(), "details.expected_date"
    )
    if not date:
        raise InvalidArgument(
            "accept_delay needs the new date the customer accepts",
            [
                FieldViolation(
                    "details.expected_date", "required: the exception names no new date", "required"
                )
            ],
        )
    return date


def expected_date(exceptions: list[OrderException]) -> str:
    """The delivery date the customer should now expect: the latest one announced by an exception
    that is open or was resolved by accepting the delay; "" when no exception moved it."""
    dates = [
        e.expected_date
        for e in exceptions
        if e.expected_date and (e.resolution is None or e.resolution.action in DATE_STANDS)
    ]
    return max(dates, default="")
