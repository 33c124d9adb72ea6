"""Bodies of change requests and exceptions (issue 4), and their parts of the order answer.

Self-contained (gateway.models imports the response parts for OrderOut)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from orderdesk.v1 import orders_pb2

Text = Annotated[str, Field(max_length=200)]
Note = Annotated[str, Field(max_length=1000)]
Quantity = Annotated[int, Field(strict=True, description="a whole number of units")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddressIn(_Request):
    name: Text = ""
    line1: Text = ""
    city: Text = ""
    postal_code: Text = ""
    country: Text = Field("", description="ISO 3166-1 alpha-2, e.g. DE")
    phone: Text = ""


class LineQuantity(_Request):
    sku: Text
    quantity: Quantity = Field(description="the line's new quantity; 0 removes the line")


class NewLineIn(_Request):
    sku: Text
    quantity: Quantity
    unit_price: Annotated[str, Field(max_length=32, description='decimal string, e.g. "12.50"')]


class OrderPatch(_Request):
    """A change request. Send `If-Match` with the order's version (its ETag)."""

    ship_to: AddressIn | None = Field(None, description="the whole new ship-to address")
    lines: list[LineQuantity] = Field([], max_length=500, description="new quantities of existing lines (by SKU)")
    add_lines: list[NewLineIn] = Field([], max_length=500)
    remove_lines: list[Text] = Field([], max_length=500, description="SKUs of lines to remove")
    reason: Note = ""


class CancelLineIn(_Request):
    sku: Text
    quantity: Quantity = Field(description="units of this line to cancel")


class ExceptionIn(_Request):
    type: Literal["production_delay", "stock_shortage_at_pick", "carrier_delay", "lost_parcel", "quality_rework"]
    cause: Note
    expected_date: str = Field("", max_length=10, description="the new expected delivery date, YYYY-MM-DD")
    sku: Text = ""
    warehouse: Text = Field("", description="stock_shortage_at_pick: where the units are missing")
    quantity: Quantity = Field(0, description="stock_shortage_at_pick: units missing")
    shipment_id: Text = Field("", description="carrier_delay, lost_parcel: the shipment concerned")


class ResolutionIn(_Request):
    action: Literal["reallocate", "change_carrier", "reship", "substitute", "split_delivery", "accept_delay"]
    note: Note = ""
    details: dict[Annotated[str, Field(max_length=40)], Text] = Field(
        {}, max_length=20,
        description="change_carrier: carrier, tracking_number (shipment_id); substitute: substitute_sku, "
                    "customer_consent (how the customer agreed)")


def _instant(ts) -> dt.datetime | None:
    return ts.ToDatetime(tzinfo=dt.UTC) if ts.seconds or ts.nanos else None


class FieldChangeOut(BaseModel):
    field: str
    before: str
    after: str


class ChangeEntryOut(BaseModel):
    version: int
    at: dt.datetime | None
    actor: str
    kinds: list[str]
    reason: str
    changes: list[FieldChangeOut]

    @classmethod
    def from_proto(cls, c: orders_pb2.ChangeEntry) -> ChangeEntryOut:
        return cls(version=c.version, at=_instant(c.at), actor=c.actor, kinds=list(c.kinds), reason=c.reason,
                   changes=[FieldChangeOut(field=x.field, before=x.before, after=x.after) for x in c.changes])


class ResolutionOut(BaseModel):
    action: str
    at: dt.datetime | None
    actor: str
    note: str
    details: dict[str, str]


class ExceptionOut(BaseModel):
    exception_id: str
    type: str
    cause: str
    status: Literal["open", "resolved"]
    expected_date: str
    opened_at: dt.datetime | None
    opened_by: str
    source: str
    sku: str
    warehouse: str
    quantity: int
    shipment_id: str
    resolution: ResolutionOut | None

    @classmethod
    def from_proto(cls, e: orders_pb2.OrderException) -> ExceptionOut:
        r = e.resolution if e.HasField("resolution") else None
        return cls(
            exception_id=e.exception_id, type=e.type, cause=e.cause, status=e.status, expected_date=e.expected_date,
            opened_at=_instant(e.opened_at), opened_by=e.opened_by, source=e.source, sku=e.sku,
            warehouse=e.warehouse, quantity=e.quantity, shipment_id=e.shipment_id,
            resolution=None if r is None else ResolutionOut(action=r.action, at=_instant(r.at), actor=r.actor,
                                                            note=r.note, details=dict(r.details)))
