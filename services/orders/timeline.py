"""One timeline of an order for the desk: status history, accepted change requests (each field before and
after), exceptions opened and resolved, and the desk's notes, each with who and when, oldest first.
Plain Python. It holds internal notes: the desk's only (OrdersService.GetOrderTimeline), never a partner's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.orders.changes import FieldChange, describe
from services.orders.domain import Order


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    actor: str
    kind: str  # status | change | exception_opened | exception_resolved | note | message | exchange | replacement
    summary: str  # one line for a person
    reason: str = (
        ""  # the status change's reason, the change's reason, the exception's cause, the resolution's note
    )
    status: str = ""  # status: the status entered
    changes: tuple[FieldChange, ...] = ()  # change: each field before and after
    exception_id: str = ""
    exception_type: str = ""
    action: str = ""  # exception_resolved
    expected_date: str = ""  # exception_opened: the date it announced
    details: dict[str, str] = field(default_factory=dict)
    note_id: str = ""  # note | message
    text: str = ""
    version: int = 0  # the order's version the entry made, when recorded


# An exchange's replacement order (issue 14): entered by the returns service with this channel and the
# RMA id as its external_ref (services/returns/policy.py EXCHANGE_CHANNEL).
EXCHANGE_CHANNEL = "exchange"


def timeline(order: Order) -> list[Entry]:
    """Every recorded step of the order, by time; steps of the same instant in the order they were made
    (status history first, then changes, exceptions and notes, each in its own order). A replacement
    order of an exchange begins with the return it replaces (kind `exchange`, `details` rma_id); the
    original order shows each replacement entered for its returns and claims (kind `replacement`,
    `details` rma_id, order_id and rma_kind)."""
    entries: list[Entry] = []
    if order.channel == EXCHANGE_CHANNEL and order.external_ref and order.history:
        first = order.history[0]
        entries.append(
            Entry(
                first.at,
                first.actor,
                "exchange",
                f"replacement for return {order.external_ref}",
                details={"rma_id": order.external_ref},
            )
        )
    entries += [
        Entry(h.at, h.actor, "status", f"status {h.status.value}", reason=h.reason, status=h.status.value)
        for h in order.history
    ]
    entries += [
        Entry(
            c.at,
            c.actor,
            "change",
            f"changed {', '.join(c.kinds)}: {describe(c.changes)}",
            reason=c.reason,
            changes=tuple(c.changes),
            version=c.version,
        )
        for c in order.change_log
    ]
    for e in order.exceptions:
        entries.append(
            Entry(
                e.opened_at,
                e.opened_by,
                "exception_opened",
                f"exception {e.type.value} opened",
                reason=e.cause,
                exception_id=e.exception_id,
                exception_type=e.type.value,
                expected_date=e.expected_date,
            )
        )
        if e.resolution is not None:
            r = e.resolution
            entries.append(
                Entry(
                    r.at,
                    r.actor,
                    "exception_resolved",
                    f"exception {e.type.value} resolved: {r.action.value}",
                    reason=r.note,
                    exception_id=e.exception_id,
                    exception_type=e.type.value,
                    action=r.action.value,
                    details=dict(r.details),
                )
            )
    entries += [
        Entry(
            r.at,
            r.actor,
            "replacement",
            f"replacement order {r.order_id} for {'claim' if r.kind == 'claim' else 'return'} {r.rma_id}",
            details={"rma_id": r.rma_id, "order_id": r.order_id, "rma_kind": r.kind},
        )
        for r in order.replacements
    ]
    entries += [
        Entry(
            n.at,
            n.actor,
            "message" if n.visibility.value == "customer" else "note",
            "message to the customer" if n.visibility.value == "customer" else "internal note",
            note_id=n.note_id,
            text=n.text,
            version=n.version,
        )
        for n in order.notes
    ]
    return sorted(entries, key=lambda entry: entry.at)  # stable: same-instant entries keep their order
