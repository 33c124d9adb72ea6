"""Bodies of the order routes (gateway.orders, gateway.changes, gateway.batches): submissions, decisions,
and the order answer with its change log and exceptions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from gateway.bodies import (
    Address,
    ChangeQuantity,
    DeliveryProposal,
    HoldReason,
    Money,
    Note,
    Quantity,
    RequestBody,
    Text,
    instant,
)
from orderdesk import statuslinks
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2


# --- requests ----------------------------------------------------------------------------
class OrderLineIn(RequestBody):
    sku: Text
    quantity: Quantity
    unit_price: Money


class OrderSubmission(RequestBody):
    external_ref: Text = Field("", description="the partner's own reference, e.g. its PO number")
    customer_id: Text
    ship_to: Address | None = Field(None, description="default: the customer's address")
    lines: list[OrderLineIn]
    requested_delivery_date: str = Field("", description="YYYY-MM-DD", max_length=10)
    payment_terms: Text = ""
    urgent: Annotated[bool, Field(strict=True, description="ask for expedited handling")] = False

    def to_proto(
        self, partner_id: str, idempotency_key: str, channel: str = "api", actor: str = ""
    ) -> intake_pb2.SubmitOrderRequest:
        return intake_pb2.SubmitOrderRequest(
            partner_id=partner_id,
            actor=actor,
            idempotency_key=idempotency_key,
            channel=channel,
            external_ref=self.external_ref,
            customer_id=self.customer_id,
            ship_to=common_pb2.Address(**self.ship_to.model_dump()) if self.ship_to else None,
            lines=[
                intake_pb2.SubmitLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                for line in self.lines
            ],
            requested_delivery_date=self.requested_delivery_date,
            payment_terms=self.payment_terms,
            urgent=self.urgent,
        )


MAX_BATCH_ORDERS = 1000


class BatchOrder(OrderSubmission):
    idempotency_key: str = Field(
        min_length=1,
        max_length=200,
        description="your unique id for this order; the same batch again creates nothing",
    )


class BatchSubmission(RequestBody):
    # Raw objects: each order is validated on its own (BatchOrder), so a bad one refuses only itself.
    orders: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH_ORDERS,
        description=f"up to {MAX_BATCH_ORDERS} orders, each a POST /v1/orders body "
        "(OrderSubmission) plus a required idempotency_key",
    )


class CancelLineIn(RequestBody):
    sku: Text
    quantity: ChangeQuantity = Field(description="units of this line to cancel")


class CancelRequest(RequestBody):
    reason: Note = ""
    lines: list[CancelLineIn] | None = Field(
        None,
        max_length=500,
        description="cancel only these units (by SKU); absent: the whole order. Honours If-Match when sent",
    )


class ApproveRequest(RequestBody):
    note: Note = Field("", description="why the desk approves; kept in the order's history")
    accept_proposal: Literal["earliest_date", "split"] | None = Field(
        None,
        description="accept the order's proposal of this kind: the whole order on the earliest date, or a "
        "split (this order keeps what arrives by the requested date; each later date becomes an "
        "order of its own, linked by split_from/split_into)",
    )
    acknowledge: list[Annotated[str, Field(max_length=64)]] = Field(
        [],
        max_length=20,
        description="reason codes the approver accepts knowingly when the re-check of stock and "
        "credit finds them (otherwise such a finding refuses the approval with 409)",
    )


class RejectRequest(RequestBody):
    reason: Note = ""


class StatusLinkRequest(RequestBody):
    expires_in_days: Annotated[int, Field(strict=True, ge=1, le=statuslinks.MAX_DAYS)] | None = Field(
        None,
        description=f"how long the link works, 1 to {statuslinks.MAX_DAYS} days "
        f"(default {statuslinks.DEFAULT_DAYS})",
    )


# --- answers -----------------------------------------------------------------------------
class StatusLink(BaseModel):
    url: str = Field(
        description="the order's status page for the end customer; whoever holds it sees the "
        "status, the expected delivery date and the parcels with tracking, nothing else"
    )
    expires_at: dt.datetime


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    hold_reasons: list[HoldReason]
    proposals: list[DeliveryProposal] = Field(description="when the requested delivery date cannot be met")
    priority: int
    replayed: bool = Field(
        description="true when this Idempotency-Key was seen before: the first answer again"
    )


class BatchError(BaseModel):
    field: str = Field(description='e.g. "orders[3].lines[0].quantity" or "row 7.quantity"')
    message: str


class BatchResult(BaseModel):
    index: int = Field(
        description="position of the order in the batch (CSV: in order of first appearance), from 0"
    )
    external_ref: str | None = Field(None, description="CSV uploads: the order's external_ref")
    status: Literal["accepted", "refused"]
    order_id: str = ""
    order_status: str = Field("", description="accepted orders: confirmed, on_hold, ...")
    replayed: bool = Field(False, description="the idempotency key was seen before: the first answer again")
    hold_reasons: list[HoldReason] = []
    error_code: str = Field("", description='refused orders: e.g. "INVALID_ARGUMENT"')
    errors: list[BatchError] = Field([], description="refused orders: each offending field")


class BatchAnswer(BaseModel):
    results: list[BatchResult]
    accepted: int
    refused: int


class OrderLineOut(BaseModel):
    sku: str
    quantity: int
    unit_price: Money
    allocated_quantity: int
    shipped_quantity: int
    delivered_quantity: int
    returned_quantity: int


class ShipmentSummary(BaseModel):
    shipment_id: str
    warehouse: str
    status: str
    carrier: str
    tracking_number: str


class StatusChange(BaseModel):
    status: str
    at: dt.datetime | None = Field(description="RFC 3339, UTC")
    actor: str
    reason: str


class AllocationOut(BaseModel):
    sku: str
    warehouse: str
    quantity: int


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
        return cls(
            version=c.version,
            at=instant(c.at),
            actor=c.actor,
            kinds=list(c.kinds),
            reason=c.reason,
            changes=[FieldChangeOut(field=x.field, before=x.before, after=x.after) for x in c.changes],
        )


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
            exception_id=e.exception_id,
            type=e.type,
            cause=e.cause,
            status=e.status,
            expected_date=e.expected_date,
            opened_at=instant(e.opened_at),
            opened_by=e.opened_by,
            source=e.source,
            sku=e.sku,
            warehouse=e.warehouse,
            quantity=e.quantity,
            shipment_id=e.shipment_id,
            resolution=None
            if r is None
            else ResolutionOut(
                action=r.action, at=instant(r.at), actor=r.actor, note=r.note, details=dict(r.details)
            ),
        )


RiskCodeName = Literal[
    "not_allocatable_in_time",
    "supply_late",
    "not_picked_by_cutoff",
    "carrier_silent",
    "transit_overdue",
    "carrier_problem",
    "hold_too_long",
]


class RiskOut(BaseModel):
    code: RiskCodeName = Field(description='why the promised date is in danger (README "Promise watch")')
    expected_date: str = Field(description="the delivery date to expect now (YYYY-MM-DD); empty when unknown")
    slip_days: int = Field(description="days after the promised date")
    evidence: str = Field(description="what the watch saw")
    shipment_id: str = Field("", description="the shipment concerned, for a shipment's risk")
    since: dt.datetime | None = Field(None, description="when the watch first saw it")

    @classmethod
    def from_proto(cls, r: orders_pb2.OrderRisk) -> RiskOut:
        return cls(
            code=r.code,  # type: ignore[arg-type]
            expected_date=r.expected_date,
            slip_days=r.slip_days,
            evidence=r.evidence,
            shipment_id=r.shipment_id,
            since=instant(r.since),
        )


class ReplacementOut(BaseModel):
    rma_id: str = Field(description="the return (an exchange) or claim the replacement order was entered for")
    order_id: str = Field(description="the replacement order (channel exchange, external_ref the RMA id)")
    kind: Literal["return", "claim"] = Field(description="what the RMA is")
    at: dt.datetime | None = Field(None, description="when the replacement order was entered")

    @classmethod
    def from_proto(cls, r: orders_pb2.OrderReplacement) -> ReplacementOut:
        return cls(
            rma_id=r.rma_id,
            order_id=r.order_id,
            kind="claim" if r.kind == "claim" else "return",
            at=instant(r.at),
        )


class OrderOut(BaseModel):
    order_id: str
    partner_id: str
    channel: str
    external_ref: str
    customer_id: str
    status: str = Field(
        description="received | on_hold | confirmed | scheduled | allocated | partially_shipped | "
        "shipped | completed | cancelled | rejected"
    )
    version: int
    priority: int
    urgent: bool
    currency: str
    total_amount: Money
    payment_terms: str
    requested_delivery_date: str
    ship_to: Address
    lines: list[OrderLineOut]
    hold_reasons: list[HoldReason]
    proposals: list[DeliveryProposal]
    shipments: list[ShipmentSummary]
    allocations: list[AllocationOut]
    history: list[StatusChange]
    # Change requests and exceptions (gateway.changes)
    changes: list[ChangeEntryOut] = Field(
        [], description="accepted change requests: who, when, before and after"
    )
    exceptions: list[ExceptionOut] = Field([], description="exceptions, open and resolved")
    at_risk: bool = Field(
        False, description="true while an exception is open or the promise watch sees a risk (`risks`)"
    )
    risks: list[RiskOut] = Field(
        [], description="what endangers the promised date now (the promise watch); empty when on track"
    )
    exception_expected_date: str = Field(
        "", description="the delivery date an exception announced (YYYY-MM-DD)"
    )
    expected_ship_date: str = Field(
        "",
        description="scheduled (backordered): when the missing units are due "
        "in a warehouse (YYYY-MM-DD); empty when allocated or unknown",
    )
    expected_delivery_date: str = Field(
        "", description="scheduled: the delivery date that gives (ship date + transit)"
    )
    split_from: str = Field("", description="an accepted split: the order this later delivery was split from")
    split_into: list[str] = Field([], description="an accepted split: the orders of the later deliveries")
    replacements: list[ReplacementOut] = Field(
        [],
        description="exchanges and claims: the replacement orders entered for this order's returns and claims "
        "(each replacement names its RMA as external_ref)",
    )
    archived: bool = Field(
        False,
        description="true when the order is read from the archive: closed (completed, cancelled, rejected) "
        'and unchanged for a long time (README "Archive"); everything else about it is as it was',
    )

    @classmethod
    def from_proto(cls, o: orders_pb2.Order) -> OrderOut:
        return cls(
            order_id=o.order_id,
            partner_id=o.partner_id,
            channel=o.channel,
            external_ref=o.external_ref,
            customer_id=o.customer_id,
            status=o.status,
            version=o.version,
            priority=o.priority,
            urgent=o.urgent,
            currency=o.currency,
            expected_ship_date=o.expected_ship_date,
            expected_delivery_date=o.expected_delivery_date,
            total_amount=o.total_amount,
            payment_terms=o.payment_terms,
            requested_delivery_date=o.requested_delivery_date,
            ship_to=Address.from_proto(o.ship_to),
            lines=[
                OrderLineOut(
                    sku=x.sku,
                    quantity=x.quantity,
                    unit_price=x.unit_price,
                    allocated_quantity=x.allocated_quantity,
                    shipped_quantity=x.shipped_quantity,
                    delivered_quantity=x.delivered_quantity,
                    returned_quantity=x.returned_quantity,
                )
                for x in o.lines
            ],
            hold_reasons=[HoldReason.from_proto(r) for r in o.hold_reasons],
            proposals=[DeliveryProposal.from_proto(p) for p in o.proposals],
            shipments=[
                ShipmentSummary(
                    shipment_id=s.shipment_id,
                    warehouse=s.warehouse,
                    status=s.status,
                    carrier=s.carrier,
                    tracking_number=s.tracking_number,
                )
                for s in o.shipments
            ],
            allocations=[
                AllocationOut(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity) for a in o.allocations
            ],
            history=[
                StatusChange(status=h.status, at=instant(h.at), actor=h.actor, reason=h.reason)
                for h in o.history
            ],
            changes=[ChangeEntryOut.from_proto(c) for c in o.changes],
            exceptions=[ExceptionOut.from_proto(e) for e in o.exceptions],
            at_risk=o.at_risk,
            risks=[RiskOut.from_proto(r) for r in o.risks],
            exception_expected_date=o.exception_expected_date,
            split_from=o.split_from,
            split_into=list(o.split_into),
            replacements=[ReplacementOut.from_proto(r) for r in o.replacements],
            archived=o.archived,
        )


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")
