"""Intake's messages <-> domain values."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orderdesk.domain import address_dict
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake.customers import CustomerView
from services.intake.domain import (
    DEFAULT_CHANNEL,
    Decision,
    Proposal,
    Reason,
    Submission,
    SubmittedLine,
)

if TYPE_CHECKING:
    from services.intake.quotes import LineQuote


def submission_from_proto(req: intake_pb2.SubmitOrderRequest) -> Submission:
    return Submission(
        partner_id=req.partner_id,
        idempotency_key=req.idempotency_key,
        channel=req.channel or DEFAULT_CHANNEL,
        external_ref=req.external_ref,
        customer_id=req.customer_id,
        ship_to=address_dict(req.ship_to),
        lines=tuple(SubmittedLine(line.sku, line.quantity, line.unit_price) for line in req.lines),
        requested_delivery_date=req.requested_delivery_date,
        payment_terms=req.payment_terms,
        urgent=req.urgent,
        actor=req.actor,
    )


def reason_to_proto(reason: Reason) -> common_pb2.Reason:
    return common_pb2.Reason(code=reason.code, message=reason.message, field=reason.field)


def proposal_to_proto(proposal: Proposal) -> common_pb2.DeliveryProposal:
    return common_pb2.DeliveryProposal(
        kind=proposal.kind,
        delivery_date=proposal.delivery_date.isoformat() if proposal.delivery_date else "",
        parts=[
            common_pb2.ProposalPart(sku=p.sku, quantity=p.quantity, delivery_date=p.delivery_date.isoformat())
            for p in proposal.parts
        ],
    )


def create_order_request(order_id: str, s: Submission, d: Decision) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id=s.partner_id,
        channel=s.channel,
        external_ref=s.external_ref,
        customer_id=s.customer_id,
        ship_to=common_pb2.Address(**d.ship_to),
        lines=[
            orders_pb2.OrderLine(sku=line.sku, quantity=line.quantity, unit_price=str(line.unit_price))
            for line in d.lines
        ],
        requested_delivery_date=s.requested_delivery_date,
        payment_terms=d.payment_terms,
        hold_reasons=[reason_to_proto(r) for r in d.hold_reasons],
        priority=d.priority,
        currency=d.currency,
        proposals=[proposal_to_proto(p) for p in d.proposals],
        urgent=d.urgent,
        actor=common_pb2.Actor(id=s.actor or s.partner_id),
    )


def customer_to_proto(view: CustomerView) -> intake_pb2.CustomerDetail:
    c = view.customer
    return intake_pb2.CustomerDetail(
        customer_id=c.customer_id,
        name=c.name,
        tier=c.tier,
        status=c.status,
        credit_limit=str(c.credit_limit),
        currency=c.currency,
        payment_terms=list(c.payment_terms),
        email=c.email,
        phone=c.phone,
        ship_to=common_pb2.Address(
            name=c.name,
            line1=c.ship_to_line1,
            city=c.ship_to_city,
            postal_code=c.ship_to_postal_code,
            country=c.ship_to_country,
            phone=c.phone,
        ),
        open_exposure=str(view.open_exposure),
        available_credit=str(view.available_credit),
        open_orders=view.open_orders,
    )


def line_quote_to_proto(f: LineQuote) -> intake_pb2.LineQuote:
    p = f.product
    return intake_pb2.LineQuote(
        sku=p.sku if p else "",
        name=p.name if p else "",
        unit_price=str(f.unit_price) if p and f.unit_price is not None else "",
        currency=p.currency if p else "",
        available=f.available if p else 0,
        earliest_date=f.earliest,
        matches=[intake_pb2.ProductMatch(sku=m.sku, name=m.name) for m in f.matches],
        status=p.status if p else "",
    )
