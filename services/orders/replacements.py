"""The replacement orders entered for an order's returns and claims (issue 14). Plain Python.

The returns service enters a replacement as an order of its own (channel `exchange`, external_ref the RMA
id) and publishes return.exchange_created on the original order; orders records it here, so the original
shows its replacements (the API's `replacements`, the desk's timeline) as the replacement shows its RMA.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Replacement:
    rma_id: str  # the return or claim
    order_id: str  # the replacement order
    kind: str  # return (an exchange) | claim
    at: dt.datetime  # when the replacement was entered
    actor: str

    def to_json(self) -> dict:
        return {
            "rma_id": self.rma_id,
            "order_id": self.order_id,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "actor": self.actor,
        }

    @classmethod
    def from_json(cls, data: dict) -> Replacement:
        return cls(
            rma_id=data["rma_id"],
            order_id=data["order_id"],
            kind=data["kind"],
            at=dt.datetime.fromisoformat(data["at"]),
            actor=data["actor"],
        )
