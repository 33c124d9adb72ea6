"""Rules about orders that several services apply alike: plain Python, no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=StrEnum)

# A ship-to address, the same fields on the wire (common.proto's Address), in intake's
# checks, on the order and in a change request.
ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "country")
# Why goods come back: the return policy's vocabulary (services/returns/policy.py decides who pays) and
# the KPI report's classes of returned units.
RETURN_REASONS = (
    "damaged",
    "defective",
    "wrong_item",
    "not_as_described",
    "no_longer_needed",
    "late_delivery",
    "other",
)


def address_dict(address: Any) -> dict[str, str]:
    """The address fields of a mapping or of an object with those attributes (a protobuf Address)."""
    if isinstance(address, Mapping):
        return {f: address.get(f, "") for f in ADDRESS_FIELDS}
    return {f: getattr(address, f, "") for f in ADDRESS_FIELDS}


def units_per_sku(
    lines: Iterable[Any], quantity: Callable[[Any], int] = lambda line: line.quantity
) -> dict[str, int]:
    """Units per SKU over `lines`, in the order the SKUs first appear (an order may list one SKU twice).

    `quantity` picks which of a line's quantities to add (ordered, delivered, restocked, ...)."""
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + quantity(line)
    return units


@dataclass(frozen=True)
class StatusChange(Generic[S]):
    """A status change an aggregate recorded about itself (a shipment's, a return's): what it reached,
    its version then, when, who and why. Each service's `Change` adds its event type
    (`orderdesk.usecase.Recorded`)."""

    status: S
    version: int
    at: dt.datetime
    actor: str
    reason: str
