"""Rules about orders that several services apply alike: plain Python, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# A ship-to address, the same fields on the wire (common.proto's Address), in intake's
# checks, on the order and in a change request.
ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country", "phone")
REQUIRED_ADDRESS_FIELDS = ("name", "line1", "city", "country")


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
