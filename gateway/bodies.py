"""What every request and answer body of the partner API shares (the OpenAPI document is generated from them).

Requests check shape and type only (a quantity is a whole number, a price is a
decimal *string*, no unknown fields); the business rules live in the services,
which answer with field paths the partner recognises ("lines[0].quantity").
Answers are built from the services' protobuf messages by from_proto constructors.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orderdesk.parsing import text_problem
from orderdesk.v1 import common_pb2

Text = Annotated[str, Field(max_length=200)]
Note = Annotated[str, Field(max_length=1000)]
# int64 on the wire: a bigger number is refused here (the services decide what is sensible).
Quantity = Annotated[
    int, Field(strict=True, ge=-(2**63), le=2**63 - 1, description="a whole number of units")
]
# Change requests: a number beyond int64 is refused (422) when the request is encoded for the orders service.
ChangeQuantity = Annotated[int, Field(strict=True, description="a whole number of units")]
Money = Annotated[str, Field(description='decimal string, e.g. "12.50"', examples=["12.50"])]


class ProtoNamedOut(BaseModel):
    """An answer whose every field is its protobuf message's field of the same name: copied by name once here,
    instead of field by field in each model."""

    @classmethod
    def from_proto(cls, message) -> Self:
        return cls(**{name: getattr(message, name) for name in cls.model_fields})


class RequestBody(BaseModel):
    """A request body: no unknown fields, and every text valid Unicode without control characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value):
        """Every text field, in lists and mappings too, passes text_problem; refused with the field's path."""
        if isinstance(value, str):  # the usual field first, and a number or a nested body costs no list
            texts = (value,)
        elif isinstance(value, dict):
            texts = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            texts = value
        else:
            return value
        for text in texts:
            if isinstance(text, str) and (why := text_problem(text)):
                raise ValueError(why)
        return value


class Address(RequestBody):
    name: Text = ""
    line1: Text = ""
    city: Text = ""
    postal_code: Text = ""
    country: Text = Field("", description="ISO 3166-1 alpha-2, e.g. DE")
    phone: Text = ""

    @classmethod
    def from_proto(cls, a: common_pb2.Address) -> Address:
        return cls(
            name=a.name,
            line1=a.line1,
            city=a.city,
            postal_code=a.postal_code,
            country=a.country,
            phone=a.phone,
        )


def instant(ts) -> dt.datetime | None:
    """A protobuf Timestamp as an aware datetime; unset (zero) is None."""
    return ts.ToDatetime(tzinfo=dt.UTC) if ts.seconds or ts.nanos else None


class HoldReason(BaseModel):
    code: str = Field(description='machine-readable, e.g. "price_mismatch"')
    message: str
    field: str = Field(description='path of the offending field, e.g. "lines[0].unit_price"')

    @classmethod
    def from_proto(cls, r: common_pb2.Reason) -> HoldReason:
        return cls(code=r.code, message=r.message, field=r.field)


class ProposalPart(BaseModel):
    sku: str
    quantity: int
    delivery_date: str


class DeliveryProposal(BaseModel):
    kind: str = Field(description="earliest_date | split")
    delivery_date: str = Field(description="earliest_date: the date for the whole order")
    parts: list[ProposalPart] = Field(description="split: deliveries by date")

    @classmethod
    def from_proto(cls, p: common_pb2.DeliveryProposal) -> DeliveryProposal:
        return cls(
            kind=p.kind,
            delivery_date=p.delivery_date,
            parts=[
                ProposalPart(sku=x.sku, quantity=x.quantity, delivery_date=x.delivery_date) for x in p.parts
            ],
        )


# --- problem+json (documentation of the error body) ---------------------------------------
class ProblemField(BaseModel):
    field: str = Field(
        description='path of the offending input, e.g. "lines[0].quantity" or "Idempotency-Key"'
    )
    message: str
    reason: str | None = None


class ProblemDocument(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None
    rule: str | None = Field(
        None, description="on 409 for a state that forbids the change: the rule that refused"
    )
    correlation_id: str | None = None
