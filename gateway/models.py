"""Request and response bodies of the partner API (the OpenAPI document is generated from these).

Requests check shape and type only (a quantity is a whole number, a price is a
decimal *string*, no unknown fields); the business rules live in the services,
which answer with field paths the partner recognises ("lines[0].quantity").
Responses are built from the services' protobuf messages by the from_proto
constructors below.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from gateway.change_models import CancelLineIn, ChangeEntryOut, ExceptionOut
from orderdesk.v1 import common_pb2, intake_pb2, inventory_pb2, orders_pb2, returns_pb2, shipping_pb2

Text = Annotated[str, Field(max_length=200)]
Note = Annotated[str, Field(max_length=1000)]
# int64 on the wire: a bigger number is refused here (the services decide what is sensible).
Quantity = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1, description="a whole number of units")]
Money = Annotated[str, Field(description='decimal string, e.g. "12.50"', examples=["12.50"])]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value):
        """JSON can carry lone surrogates ("\\ud800") that no UTF-8 message can: refuse them with the field's path."""
        for text in (value if isinstance(value, list) else [value]):
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("text must be valid Unicode (a lone surrogate was sent)") from None
        return value


# --- requests ----------------------------------------------------------------------------
class Address(Request):
    name: Text = ""
    line1: Text = ""
    city: Text = ""
    postal_code: Text = ""
    country: Text = Field("", description="ISO 3166-1 alpha-2, e.g. DE")
    phone: Text = ""

    @classmethod
    def from_proto(cls, a: common_pb2.Address) -> Address:
        return cls(name=a.name, line1=a.line1, city=a.city, postal_code=a.postal_code, country=a.country,
                   phone=a.phone)


class OrderLineIn(Request):
    sku: Text
    quantity: Quantity
    unit_price: Money


class OrderSubmission(Request):
    external_ref: Text = Field("", description="the partner's own reference, e.g. its PO number")
    customer_id: Text
    ship_to: Address | None = Field(None, description="default: the customer's address")
    lines: list[OrderLineIn]
    requested_delivery_date: str = Field("", description="YYYY-MM-DD", max_length=10)
    payment_terms: Text = ""
    urgent: Annotated[bool, Field(strict=True, description="ask for expedited handling")] = False

    def to_proto(self, partner_id: str, idempotency_key: str, channel: str = "api") -> intake_pb2.SubmitOrderRequest:
        return intake_pb2.SubmitOrderRequest(
            partner_id=partner_id, idempotency_key=idempotency_key, channel=channel,
            external_ref=self.external_ref, customer_id=self.customer_id,
            ship_to=common_pb2.Address(**self.ship_to.model_dump()) if self.ship_to else None,
            lines=[intake_pb2.SubmitLine(sku=line.sku, quantity=line.quantity, unit_price=line.unit_price)
                   for line in self.lines],
            requested_delivery_date=self.requested_delivery_date, payment_terms=self.payment_terms,
            urgent=self.urgent,
        )


MAX_BATCH_ORDERS = 1000


class BatchOrder(OrderSubmission):
    idempotency_key: str = Field(min_length=1, max_length=200,
                                 description="your unique id for this order; the same batch again creates nothing")


class BatchSubmission(Request):
    # Raw objects: each order is validated on its own (BatchOrder), so a bad one refuses only itself.
    orders: list[Any] = Field(min_length=1, max_length=MAX_BATCH_ORDERS,
                              description=f"up to {MAX_BATCH_ORDERS} orders, each a POST /v1/orders body "
                                          "(OrderSubmission) plus a required idempotency_key")


class CancelRequest(Request):
    reason: Note = ""
    lines: list[CancelLineIn] | None = Field(
        None, max_length=500, description="cancel only these units (by SKU); absent: the whole order. "
                                          "Honours If-Match when sent")


class ApproveRequest(Request):
    note: Note = Field("", description="why the desk approves; kept in the order's history")
    accept_proposal: Literal["earliest_date", "split"] | None = Field(
        None, description="accept the order's proposal of this kind: the whole order on the earliest date, or a "
                          "split (this order keeps what arrives by the requested date; each later date becomes an "
                          "order of its own, linked by split_from/split_into)")
    acknowledge: list[Annotated[str, Field(max_length=64)]] = Field(
        [], max_length=20, description="reason codes the approver accepts knowingly when the re-check of stock and "
                                       "credit finds them (otherwise such a finding refuses the approval with 409)")


class RejectRequest(Request):
    reason: Note = ""


class ShipmentEventIn(Request):
    type: Literal["picked", "packed", "shipped", "delivered", "delayed", "lost"] = Field(
        description="a step, or a carrier's tracking event on a shipped parcel (delayed, lost: the order gets an "
                    "exception and is at risk)")
    carrier: Text = Field("", description="required when type is shipped")
    tracking_number: Text = Field("", description="required when type is shipped")
    cause: Note = Field("", description="delayed, lost: what the carrier reported")
    expected_delivery_date: str = Field("", max_length=10, description="delayed: the new date, YYYY-MM-DD")
    occurred_at: AwareDatetime | None = Field(None, description="RFC 3339; default: now")


class ReturnLineIn(Request):
    sku: Text
    quantity: Quantity
    reason: Note = ""


class ReturnRequest(Request):
    lines: list[ReturnLineIn]
    resolution: Literal["refund"] = "refund"


class InspectionLineIn(Request):
    sku: Text
    quantity: Quantity
    outcome: Literal["restock", "scrap"]


class InspectionRequest(Request):
    lines: list[InspectionLineIn]


# --- responses ---------------------------------------------------------------------------
def _instant(ts) -> dt.datetime | None:
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
        return cls(kind=p.kind, delivery_date=p.delivery_date,
                   parts=[ProposalPart(sku=x.sku, quantity=x.quantity, delivery_date=x.delivery_date)
                          for x in p.parts])


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    hold_reasons: list[HoldReason]
    proposals: list[DeliveryProposal] = Field(description="when the requested delivery date cannot be met")
    priority: int
    replayed: bool = Field(description="true when this Idempotency-Key was seen before: the first answer again")


class BatchError(BaseModel):
    field: str = Field(description='e.g. "orders[3].lines[0].quantity" or "row 7.quantity"')
    message: str


class BatchResult(BaseModel):
    index: int = Field(description="position of the order in the batch (CSV: in order of first appearance), from 0")
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


class OrderOut(BaseModel):
    order_id: str
    partner_id: str
    channel: str
    external_ref: str
    customer_id: str
    status: str = Field(description="received | on_hold | confirmed | scheduled | allocated | partially_shipped | "
                                    "shipped | completed | cancelled | rejected")
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
    # Change requests and exceptions (gateway/change_models.py)
    changes: list[ChangeEntryOut] = Field([], description="accepted change requests: who, when, before and after")
    exceptions: list[ExceptionOut] = Field([], description="exceptions, open and resolved")
    at_risk: bool = Field(False, description="true while an exception is open")
    exception_expected_date: str = Field("", description="the delivery date an exception announced (YYYY-MM-DD)")
    expected_ship_date: str = Field("", description="scheduled (backordered): when the missing units are due "
                                                    "in a warehouse (YYYY-MM-DD); empty when allocated or unknown")
    expected_delivery_date: str = Field("", description="scheduled: the delivery date that gives (ship date + transit)")
    split_from: str = Field("", description="an accepted split: the order this later delivery was split from")
    split_into: list[str] = Field([], description="an accepted split: the orders of the later deliveries")

    @classmethod
    def from_proto(cls, o: orders_pb2.Order) -> OrderOut:
        return cls(
            order_id=o.order_id, partner_id=o.partner_id, channel=o.channel, external_ref=o.external_ref,
            customer_id=o.customer_id, status=o.status, version=o.version, priority=o.priority, urgent=o.urgent,
            currency=o.currency, expected_ship_date=o.expected_ship_date,
            expected_delivery_date=o.expected_delivery_date,
            total_amount=o.total_amount, payment_terms=o.payment_terms,
            requested_delivery_date=o.requested_delivery_date, ship_to=Address.from_proto(o.ship_to),
            lines=[OrderLineOut(sku=x.sku, quantity=x.quantity, unit_price=x.unit_price,
                                allocated_quantity=x.allocated_quantity, shipped_quantity=x.shipped_quantity,
                                delivered_quantity=x.delivered_quantity, returned_quantity=x.returned_quantity)
                   for x in o.lines],
            hold_reasons=[HoldReason.from_proto(r) for r in o.hold_reasons],
            proposals=[DeliveryProposal.from_proto(p) for p in o.proposals],
            shipments=[ShipmentSummary(shipment_id=s.shipment_id, warehouse=s.warehouse, status=s.status,
                                       carrier=s.carrier, tracking_number=s.tracking_number) for s in o.shipments],
            allocations=[AllocationOut(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity) for a in o.allocations],
            history=[StatusChange(status=h.status, at=_instant(h.at), actor=h.actor, reason=h.reason)
                     for h in o.history],
            changes=[ChangeEntryOut.from_proto(c) for c in o.changes],
            exceptions=[ExceptionOut.from_proto(e) for e in o.exceptions], at_risk=o.at_risk,
            exception_expected_date=o.exception_expected_date,
            split_from=o.split_from, split_into=list(o.split_into),
        )


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class ShipmentLineOut(BaseModel):
    sku: str
    quantity: int


class ShipmentOut(BaseModel):
    shipment_id: str
    order_id: str
    warehouse: str
    status: str = Field(description="pending | picked | packed | shipped | delivered | cancelled")
    carrier: str
    tracking_number: str
    lines: list[ShipmentLineOut]
    promised_delivery_date: str
    delivered_on: str
    on_time: bool | None = Field(description="null until delivered")
    version: int
    created_at: dt.datetime | None
    expected_delivery_date: str = Field("", description="the carrier's revised date after a delay")

    @classmethod
    def from_proto(cls, s: shipping_pb2.Shipment) -> ShipmentOut:
        return cls(
            shipment_id=s.shipment_id, order_id=s.order_id, warehouse=s.warehouse, status=s.status,
            carrier=s.carrier, tracking_number=s.tracking_number,
            lines=[ShipmentLineOut(sku=x.sku, quantity=x.quantity) for x in s.lines],
            promised_delivery_date=s.promised_delivery_date, delivered_on=s.delivered_on,
            on_time=s.on_time if s.status == "delivered" else None, version=s.version,
            created_at=_instant(s.created_at), expected_delivery_date=s.expected_delivery_date,
        )


class ShipmentList(BaseModel):
    items: list[ShipmentOut]


class ReturnLineOut(BaseModel):
    sku: str
    quantity: int
    reason: str
    unit_price: Money
    warehouse: str
    restocked_quantity: int
    scrapped_quantity: int


class ReturnOut(BaseModel):
    rma_id: str
    order_id: str
    status: str = Field(description="authorized | received | refunded")
    resolution: str
    lines: list[ReturnLineOut]
    refund_amount: Money
    version: int

    @classmethod
    def from_proto(cls, r: returns_pb2.Return) -> ReturnOut:
        return cls(
            rma_id=r.rma_id, order_id=r.order_id, status=r.status, resolution=r.resolution,
            lines=[ReturnLineOut(sku=x.sku, quantity=x.quantity, reason=x.reason, unit_price=x.unit_price,
                                 warehouse=x.warehouse, restocked_quantity=x.restocked_quantity,
                                 scrapped_quantity=x.scrapped_quantity) for x in r.lines],
            refund_amount=r.refund_amount, version=r.version,
        )


class WarehouseStockOut(BaseModel):
    warehouse: str
    on_hand: int
    reserved: int
    available: int


class StockLevelOut(BaseModel):
    sku: str
    warehouses: list[WarehouseStockOut]

    @classmethod
    def from_proto(cls, s: inventory_pb2.StockLevel) -> StockLevelOut:
        return cls(sku=s.sku, warehouses=[
            WarehouseStockOut(warehouse=w.warehouse, on_hand=w.on_hand, reserved=w.reserved, available=w.available)
            for w in s.warehouses])


class ImportResult(BaseModel):
    kind: Literal["customers", "products", "stock", "warehouses", "partners"]
    rows: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    services: dict[str, str] = Field(description="per backend: SERVING, NOT_SERVING, UNKNOWN or UNREACHABLE; "
                                                 "'store' is the gateway's own database")


class Live(BaseModel):
    status: Literal["ok"] = "ok"


# --- the desk's numbers (GET /v1/reports/kpis) -------------------------------------------------
Rate = Annotated[float | None, Field(description="a share from 0 to 1; null when its denominator is 0")]


def _rate(message, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


class KpiMoney(BaseModel):
    currency: str
    amount: Money


class KpiHeadline(BaseModel):
    key: str = Field(description='the group: "" for the whole period, else a day (2026-11-26), ISO week (2026-W48), '
                                 "month (2026-11), customer id or channel")
    orders_received: int
    order_value: list[KpiMoney] = Field(description="sum of the received orders' totals, per currency")
    lines_first_allocated: int
    lines_filled: int
    units_first_allocated: int
    units_filled: int
    line_fill_rate: Rate
    unit_fill_rate: Rate
    orders_delivered: int
    orders_on_time: int
    on_time_rate: Rate
    orders_cancelled: int
    cancellation_rate: Rate
    orders_held: int
    hold_rate: Rate

    @classmethod
    def from_proto(cls, h: orders_pb2.KpiHeadline) -> KpiHeadline:
        return cls(
            key=h.key, orders_received=h.orders_received,
            order_value=[KpiMoney(currency=m.currency, amount=m.amount) for m in h.order_value],
            lines_first_allocated=h.lines_first_allocated, lines_filled=h.lines_filled,
            units_first_allocated=h.units_first_allocated, units_filled=h.units_filled,
            line_fill_rate=_rate(h, "line_fill_rate"), unit_fill_rate=_rate(h, "unit_fill_rate"),
            orders_delivered=h.orders_delivered, orders_on_time=h.orders_on_time, on_time_rate=_rate(h, "on_time_rate"),
            orders_cancelled=h.orders_cancelled, cancellation_rate=_rate(h, "cancellation_rate"),
            orders_held=h.orders_held, hold_rate=_rate(h, "hold_rate"),
        )


class KpiCycleTime(BaseModel):
    stage: Literal["received_to_confirmed", "confirmed_to_shipped", "shipped_to_delivered", "received_to_delivered"]
    count: int
    average_seconds: float | None
    p90_seconds: float | None = Field(description="nearest-rank 90th percentile; null without samples")


class KpiReasonCount(BaseModel):
    reason: str
    orders: int
    units: int


class KpiSkuRate(BaseModel):
    sku: str
    units: int = Field(description="cancelled or returned units")
    base_units: int = Field(description="ordered units (cancellations) or delivered units (returns)")
    rate: Rate


class KpiSkuSales(BaseModel):
    sku: str
    currency: str
    units: int
    value: Money


def _reasons(rows) -> list[KpiReasonCount]:
    return [KpiReasonCount(reason=x.reason, orders=x.orders, units=x.units) for x in rows]


def _sku_rates(rows) -> list[KpiSkuRate]:
    return [KpiSkuRate(sku=x.sku, units=x.units, base_units=x.base_units, rate=_rate(x, "rate")) for x in rows]


def _sales(rows) -> list[KpiSkuSales]:
    return [KpiSkuSales(sku=x.sku, currency=x.currency, units=x.units, value=x.value) for x in rows]


class KpiReportOut(BaseModel):
    from_: dt.datetime = Field(alias="from", description="start of the period (included), UTC")
    to: dt.datetime = Field(description="end of the period (excluded), UTC")
    group_by: str
    total: KpiHeadline
    groups: list[KpiHeadline]
    cycle_times: list[KpiCycleTime]
    cancellations_by_reason: list[KpiReasonCount]
    cancellations_by_sku: list[KpiSkuRate]
    holds_by_reason: list[KpiReasonCount]
    best_sellers: list[KpiSkuSales]
    slow_sellers: list[KpiSkuSales] = Field(description="SKUs ever ordered that sold nothing in the period first, "
                                                        "then the lowest sellers")
    returns_by_sku: list[KpiSkuRate]
    returns_by_reason: list[KpiReasonCount]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @classmethod
    def from_proto(cls, r: orders_pb2.KpiReport) -> KpiReportOut:
        return cls(
            **{"from": getattr(r, "from")}, to=r.to, group_by=r.group_by, total=KpiHeadline.from_proto(r.total),
            groups=[KpiHeadline.from_proto(g) for g in r.groups],
            cycle_times=[KpiCycleTime(stage=c.stage, count=c.count, average_seconds=_rate(c, "average_seconds"),
                                      p90_seconds=_rate(c, "p90_seconds")) for c in r.cycle_times],
            cancellations_by_reason=_reasons(r.cancellations_by_reason),
            cancellations_by_sku=_sku_rates(r.cancellations_by_sku), holds_by_reason=_reasons(r.holds_by_reason),
            best_sellers=_sales(r.best_sellers), slow_sellers=_sales(r.slow_sellers),
            returns_by_sku=_sku_rates(r.returns_by_sku), returns_by_reason=_reasons(r.returns_by_reason),
        )


# --- problem+json (documentation of the error body) ---------------------------------------
class ProblemField(BaseModel):
    field: str = Field(description='path of the offending input, e.g. "lines[0].quantity" or "Idempotency-Key"')
    message: str
    reason: str | None = None


class ProblemDocument(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None
    rule: str | None = Field(None, description="on 409 for a state that forbids the change: the rule that refused")
    correlation_id: str | None = None
