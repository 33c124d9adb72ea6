"""Intake's messages <-> domain values, no I/O."""

from __future__ import annotations

from decimal import Decimal

from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake import domain
from services.intake.proto import create_order_request, submission_from_proto


def test_a_request_without_channel_or_ship_to_reads_as_api_with_an_empty_address():
    s = submission_from_proto(
        intake_pb2.SubmitOrderRequest(
            partner_id="P1",
            idempotency_key="k",
            customer_id="C1",
            lines=[intake_pb2.SubmitLine(sku="A", quantity=2, unit_price="1.50")],
        )
    )
    assert s.channel == "api"
    assert s.ship_to == {f: "" for f in domain.ADDRESS_FIELDS}
    assert s.lines == (domain.SubmittedLine("A", 2, "1.50"),)


def test_the_create_order_request_carries_the_decision():
    s = submission_from_proto(
        intake_pb2.SubmitOrderRequest(
            partner_id="P1",
            idempotency_key="k",
            channel="batch",
            external_ref="PO-9",
            customer_id="C1",
            ship_to=common_pb2.Address(name="N", line1="L", city="C", country="DE"),
            lines=[intake_pb2.SubmitLine(sku="A", quantity=2, unit_price="1.50")],
            requested_delivery_date="2026-07-01",
            payment_terms="net30",
        )
    )
    decision = domain.Decision(
        lines=(domain.OrderLine("A", 2, Decimal("1.50")),),
        ship_to=dict(s.ship_to),
        payment_terms="NET30",
        currency="USD",
        priority=142,
        hold_reasons=(domain.Reason("price_mismatch", "m", "lines[0].unit_price"),),
    )
    req = create_order_request("ORD-1", s, decision)
    again = orders_pb2.CreateOrderRequest.FromString(req.SerializeToString())
    assert again == req
    assert (req.order_id, req.partner_id, req.channel, req.external_ref, req.customer_id) == (
        "ORD-1",
        "P1",
        "batch",
        "PO-9",
        "C1",
    )
    assert [(line.sku, line.quantity, line.unit_price) for line in req.lines] == [("A", 2, "1.50")]
    assert (req.payment_terms, req.currency, req.priority, req.requested_delivery_date) == (
        "NET30",
        "USD",
        142,
        "2026-07-01",
    )
    assert req.ship_to.country == "DE"
    assert [(r.code, r.field) for r in req.hold_reasons] == [("price_mismatch", "lines[0].unit_price")]


def test_urgent_and_proposals_travel_to_orders():
    import datetime as dt

    s = submission_from_proto(
        intake_pb2.SubmitOrderRequest(
            partner_id="P1",
            idempotency_key="k",
            customer_id="C1",
            urgent=True,
            lines=[intake_pb2.SubmitLine(sku="A", quantity=3, unit_price="1.50")],
            requested_delivery_date="2026-06-05",
        )
    )
    assert s.urgent
    decision = domain.Decision(
        lines=(domain.OrderLine("A", 3, Decimal("1.50")),),
        ship_to={f: "" for f in domain.ADDRESS_FIELDS},
        payment_terms="NET30",
        currency="USD",
        priority=199,
        hold_reasons=(domain.Reason("delivery_date_infeasible", "m", "requested_delivery_date"),),
        proposals=(
            domain.Proposal("earliest_date", delivery_date=dt.date(2026, 6, 9)),
            domain.Proposal(
                "split",
                parts=(
                    domain.ProposalPart("A", 1, dt.date(2026, 6, 5)),
                    domain.ProposalPart("A", 2, dt.date(2026, 6, 9)),
                ),
            ),
        ),
        urgent=True,
    )
    req = create_order_request("ORD-2", s, decision)
    assert req.urgent and req.priority == 199
    assert [(p.kind, p.delivery_date) for p in req.proposals] == [
        ("earliest_date", "2026-06-09"),
        ("split", ""),
    ]
    assert [(p.sku, p.quantity, p.delivery_date) for p in req.proposals[1].parts] == [
        ("A", 1, "2026-06-05"),
        ("A", 2, "2026-06-09"),
    ]


def test_a_batch_refusal_is_the_status_submit_order_would_have_sent():
    """A gathered single order (and a stream's or batch's) gets what its own SubmitOrder call got: a domain
    error as it is, anything else (a peer's refusal intake does not translate) as the interceptor's INTERNAL."""
    import grpc
    from grpc.aio import AioRpcError, Metadata

    from orderdesk import errors
    from services.intake.api import refused_to_proto

    refused = refused_to_proto(
        3, errors.FailedPrecondition("customer C1 is blocked", rule="customer_blocked")
    )
    assert (refused.index, refused.error_code, refused.error_reason) == (
        3,
        "FAILED_PRECONDITION",
        "customer_blocked",
    )
    peer = AioRpcError(grpc.StatusCode.ALREADY_EXISTS, Metadata(), Metadata(), details="order ORD-1 exists")
    refused = refused_to_proto(0, peer)
    assert (refused.error_code, refused.error_message) == ("INTERNAL", "internal error (AioRpcError)")
    assert not refused.errors and not refused.error_reason
