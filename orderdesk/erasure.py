"""Erasure of a customer's personal data on request (GDPR art. 17), one way for every service holding some.

Where personal data lives (README "Personal data"): the ship-to address (name, street, city, postal code,
phone) on orders, in their change log and in every order event (the outbox rows, the partners' feeds), the
customer's master record and the stored order requests in intake. Shipping, returns and inventory hold
none (a shipment knows its order and warehouse, not where it goes). The rules are in
orderdesk/personal_data.py.

Each service runs its part in one transaction through `erase` below, which records it in the service's
register (the table `erasures`: request id, customer, scope, who, when, the report) and answers a repeated
request id with the first report; a refusal records nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, String, Table, or_, select, update
from sqlalchemy.exc import IntegrityError

from orderdesk import errors, events, metrics, usecase
from orderdesk.db import UtcDateTime, utcnow
from orderdesk.outbox import outbox_table
from orderdesk.personal_data import SCOPES, Kept, erase_message
from orderdesk.v1 import events_pb2

# --- the register and the one way every service runs its part -----------------------------------------
register_metadata = MetaData()

erasures_table = Table(
    "erasures",
    register_metadata,
    Column("request_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("report", JSON, nullable=False),  # what was done: Report.to_json()
    Index("ix_erasures_customer", "customer_id"),
)


def create_register(op) -> None:
    """For each service's migration that adds the register."""
    op.create_table(erasures_table.name, *[c._copy() for c in erasures_table.columns])
    op.create_index("ix_erasures_customer", "erasures", ["customer_id"])


def drop_register(op) -> None:
    op.drop_index("ix_erasures_customer", "erasures")
    op.drop_table("erasures")


@dataclass(frozen=True)
class Request:
    customer_id: str
    scope: str
    actor: str
    request_id: str
    order_ids: tuple[str, ...] = ()
    whole_customer: bool = False

    @classmethod
    def from_proto(cls, message) -> Request:
        """An EraseCustomerRequest, checked: every bad field reported together."""
        violations = [
            errors.FieldViolation(name, "required", "required")
            for name, value in (
                ("customer_id", message.customer_id),
                ("request_id", message.request_id),
                ("actor.id", message.actor.id),
            )
            if not value.strip()
        ]
        scope = message.scope or "all"
        if scope not in SCOPES:
            violations.append(errors.FieldViolation("scope", f"one of {', '.join(SCOPES)}", "unknown_scope"))
        for name, value, limit in (
            ("customer_id", message.customer_id, 64),
            ("request_id", message.request_id, 64),
        ):
            if len(value) > limit:
                violations.append(errors.FieldViolation(name, f"at most {limit} characters", "too_long"))
        if violations:
            raise errors.InvalidArgument("the erasure request is incomplete or wrong", violations)
        return cls(
            customer_id=message.customer_id,
            scope=scope,
            actor=message.actor.id[:200],
            request_id=message.request_id,
            order_ids=tuple(dict.fromkeys(message.order_ids)),
            whole_customer=message.whole_customer,
        )


@dataclass
class Outcome:
    """What one service's part did: rows changed by table, the orders erased, what stays."""

    erased: dict[str, int] = field(default_factory=dict)
    order_ids: Sequence[str] = ()
    kept: Sequence[Kept] = ()
    whole_customer: bool = False


@dataclass(frozen=True)
class Report:
    service: str
    request_id: str
    customer_id: str
    scope: str
    actor: str
    at: dt.datetime
    erased: dict[str, int]
    order_ids: tuple[str, ...]
    kept: tuple[Kept, ...]
    whole_customer: bool

    @property
    def changed(self) -> int:
        return sum(self.erased.values())

    def to_json(self) -> dict:
        return {
            "service": self.service,
            "request_id": self.request_id,
            "customer_id": self.customer_id,
            "scope": self.scope,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "erased": dict(self.erased),
            "order_ids": list(self.order_ids),
            "kept": [
                {
                    "order_id": k.order_id,
                    "status": k.status,
                    "reason": k.reason,
                    "until": k.until.isoformat() if k.until else None,
                }
                for k in self.kept
            ],
            "whole_customer": self.whole_customer,
        }

    @classmethod
    def from_json(cls, d: dict) -> Report:
        return cls(
            service=d["service"],
            request_id=d["request_id"],
            customer_id=d["customer_id"],
            scope=d["scope"],
            actor=d["actor"],
            at=dt.datetime.fromisoformat(d["at"]),
            erased={k: int(v) for k, v in d["erased"].items()},
            order_ids=tuple(d["order_ids"]),
            kept=tuple(
                Kept(
                    k["order_id"],
                    k["status"],
                    k["reason"],
                    dt.datetime.fromisoformat(k["until"]) if k["until"] else None,
                )
                for k in d["kept"]
            ),
            whole_customer=d["whole_customer"],
        )

    def to_proto(self):
        from orderdesk.v1 import common_pb2

        return common_pb2.ErasureReport(
            service=self.service,
            request_id=self.request_id,
            customer_id=self.customer_id,
            scope=self.scope,
            actor=self.actor,
            at=events.timestamp(self.at),
            erased=[common_pb2.ErasedRows(what=w, rows=n) for w, n in sorted(self.erased.items())],
            order_ids=list(self.order_ids),
            kept=[
                common_pb2.KeptOrder(
                    order_id=k.order_id,
                    status=k.status,
                    reason=k.reason,
                    until=events.timestamp(k.until) if k.until else None,
                )
                for k in self.kept
            ],
            whole_customer=self.whole_customer,
        )


Work = Callable[[Any, Request, dt.datetime], Awaitable[Outcome]]


async def erase(db: usecase.UnitsOfWork, service: str, request: Request, work: Work) -> Report:
    """Runs a service's part (`work(tx, request, now)`) in one transaction with its register row. The same
    request id again answers the first report and does nothing; a refusal (a domain error) records nothing."""

    async def attempt(tx) -> tuple[Report, bool]:
        row = (
            await tx.execute(
                select(erasures_table.c.report).where(erasures_table.c.request_id == request.request_id)
            )
        ).first()
        if row is not None:
            return Report.from_json(row.report), False
        now = utcnow()
        outcome = await work(tx, request, now)
        report = Report(
            service=service,
            request_id=request.request_id,
            customer_id=request.customer_id,
            scope=request.scope,
            actor=request.actor,
            at=now,
            erased={k: v for k, v in outcome.erased.items()},
            order_ids=tuple(outcome.order_ids),
            kept=tuple(outcome.kept),
            whole_customer=outcome.whole_customer,
        )
        try:
            await tx.execute(
                erasures_table.insert().values(
                    request_id=request.request_id,
                    customer_id=request.customer_id,
                    scope=request.scope,
                    actor=request.actor,
                    requested_at=now,
                    report=report.to_json(),
                )
            )
        except IntegrityError:  # the same request id at the same moment: read its report on a fresh try
            raise errors.Conflict("the same erasure request is being answered; retry") from None
        return report, True

    try:
        report, new = await usecase.retrying(db, attempt)
    except errors.FailedPrecondition:
        metrics.PERSONAL_DATA_ERASURES.labels(service, "refused").inc()
        raise
    if new:
        for what, rows in report.erased.items():
            metrics.PERSONAL_DATA_ERASED_ROWS.labels(service, what).inc(rows)
        metrics.PERSONAL_DATA_ERASURES.labels(service, "erased" if report.changed else "unchanged").inc()
    return report


# --- the outbox: every service's events of the orders erased ---------------------------------------
OUTBOX_CHUNK = 200  # order ids per statement


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def erase_outbox(tx, order_ids: Sequence[str], customer_id: str) -> int:
    """The service's outbox rows (published or pending) of these orders, their events erased in place
    (same event id, so a pending one is published erased). Returns the rows changed."""
    changed = 0
    wanted = set(order_ids)
    ids = list(wanted)
    for start in range(0, len(ids), OUTBOX_CHUNK):
        chunk = ids[start : start + OUTBOX_CHUNK]
        patterns = [
            outbox_table.c.subject.like(f"{events.SUBJECT_ROOT}.%.{_like(events._token(i))}.%", escape="\\")
            for i in chunk
        ]
        rows = (
            await tx.execute(select(outbox_table.c.id, outbox_table.c.payload).where(or_(*patterns)))
        ).all()
        for row in rows:
            event = events_pb2.Event.FromString(row.payload)
            if event.order_id not in wanted:
                continue
            if erase_message(event, customer_id):
                await tx.execute(
                    update(outbox_table)
                    .where(outbox_table.c.id == row.id)
                    .values(payload=event.SerializeToString())
                )
                changed += 1
    return changed
