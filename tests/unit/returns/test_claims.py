"""Claims (issue 14): an RMA of kind claim on delivered goods; its validation, what each reason asks for,
per-line resolutions (replace and refund in one claim), who decided, and its events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from orderdesk.errors import InvalidArgument
from services.returns.domain import (
    CLAIM_KIND,
    CLAIM_OPENED_EVENT,
    CLAIM_RESOLVED_EVENT,
    EXCHANGE_CREATED,
    EXCHANGE_DUE,
    Inspection,
    OrderedSku,
    RequestedLine,
    Return,
    Status,
    claim_hash,
)
from services.returns.proto import return_to_proto

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
ORDERED = {
    "MUG": OrderedSku("MUG", delivered=2, unit_price=Decimal("12.00"), warehouse="WH-HAM"),
    "PLATE": OrderedSku("PLATE", delivered=3, unit_price=Decimal("9.50"), warehouse="WH-HAM"),
    "BOWL": OrderedSku("BOWL", delivered=0, unit_price=Decimal("7.00"), warehouse="WH-HAM"),
}


def claim(lines, *, reason="missing_items", goods_back=False, ordered=ORDERED, authorised=None) -> Return:
    return Return.open_claim(
        rma_id="RMA-C1",
        order_id="ORD-1",
        partner_id="P1",
        ordered=ordered,
        authorised=authorised or {},
        requested=lines,
        reason=reason,
        evidence="photos 1-3",
        goods_back=goods_back,
        at=T0,
        actor="desk:ana",
        currency="USD",
    )


def fields(err) -> list[tuple[str, str]]:
    return [(v.field, v.reason) for v in err.value.violations]


# --- validation -----------------------------------------------------------------------------
def test_an_unknown_reason_is_refused_naming_the_field():
    with pytest.raises(InvalidArgument) as err:
        claim([RequestedLine("MUG", 1, resolution="refund")], reason="lost_in_space")
    assert fields(err) == [("reason", "unknown_reason")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (RequestedLine("NOPE", 1, resolution="refund"), ("lines[0].sku", "not_on_order")),
        (RequestedLine("MUG", 0, resolution="refund"), ("lines[0].quantity", "not_positive")),
        (RequestedLine("MUG", 1, resolution="exchange"), ("lines[0].resolution", "unsupported_resolution")),
        (
            RequestedLine("MUG", 1, resolution="replace", exchange_sku="PLATE"),
            ("lines[0].exchange_sku", "not_an_exchange"),
        ),
        (
            RequestedLine("MUG", 1, resolution="refund", sent_sku="PLATE"),
            ("lines[0].sent_sku", "not_a_wrong_item"),
        ),
    ],
)
def test_a_bad_line_is_refused_naming_its_field(line, expected):
    with pytest.raises(InvalidArgument) as err:
        claim([line])
    assert fields(err) == [expected]


def test_a_wrong_item_names_another_sku_sent():
    with pytest.raises(InvalidArgument) as err:
        claim(
            [
                RequestedLine("MUG", 1, resolution="replace"),
                RequestedLine("PLATE", 1, resolution="replace", sent_sku="PLATE"),
            ],
            reason="wrong_item",
        )
    assert fields(err) == [("lines[0].sent_sku", "required"), ("lines[1].sent_sku", "same_sku")]


def test_nothing_delivered_is_refused_naming_the_order():
    nothing = {"BOWL": ORDERED["BOWL"]}
    with pytest.raises(InvalidArgument) as err:
        claim([RequestedLine("BOWL", 1, resolution="refund")], ordered=nothing)
    assert fields(err) == [("order_id", "not_delivered")]


def test_more_than_delivered_less_what_returns_took_is_refused():
    with pytest.raises(InvalidArgument) as err:
        claim([RequestedLine("PLATE", 2, resolution="refund")], authorised={"PLATE": 2})
    assert fields(err) == [("lines[0].quantity", "exceeds_delivered")]
    with pytest.raises(InvalidArgument) as err:  # two lines of one SKU add up
        claim([RequestedLine("MUG", 1, resolution="refund"), RequestedLine("MUG", 2, resolution="replace")])
    assert fields(err) == [("lines[1].quantity", "exceeds_delivered")]


def test_the_hash_differs_by_reason_and_lines():
    lines = [RequestedLine("MUG", 1, resolution="refund")]
    assert claim_hash("O", lines, "missing_items", "", False) == claim_hash(
        "O", lines, "missing_items", "", False
    )
    assert claim_hash("O", lines, "missing_items", "", False) != claim_hash(
        "O", lines, "wrong_item", "", False
    )
    other = [RequestedLine("MUG", 1, resolution="replace")]
    assert claim_hash("O", lines, "missing_items", "", False) != claim_hash(
        "O", other, "missing_items", "", False
    )


# --- resolution ------------------------------------------------------------------------------
def test_without_goods_back_it_is_decided_and_resolved_at_once_per_line():
    c = claim([RequestedLine("MUG", 2, resolution="replace"), RequestedLine("PLATE", 3, resolution="refund")])
    assert (c.kind, c.claim_reason, c.decided_by, c.evidence) == (
        CLAIM_KIND,
        "missing_items",
        "desk:ana",
        "photos 1-3",
    )
    assert c.status is Status.REFUNDED
    assert [(ch.event_type, ch.status) for ch in c.changes] == [
        (CLAIM_OPENED_EVENT, Status.AUTHORIZED),
        (CLAIM_RESOLVED_EVENT, Status.REFUNDED),
    ]
    assert c.refund_amount == Decimal("28.50")  # the plates in full, nothing kept back
    mug, plate = c.lines
    assert (mug.exchange_sku, mug.exchange_quantity, mug.exchange_unit_price, mug.refund) == (
        "MUG",
        2,
        Decimal("12.00"),
        Decimal("0.00"),
    )
    assert plate.refund == Decimal("28.50") and plate.restocking_fee == Decimal("0.00")
    assert (c.to_charge, c.to_credit) == (Decimal("0.00"), Decimal("0.00"))  # the same goods again
    assert c.exchange_status == EXCHANGE_DUE and c.exchange_due


def test_the_replacement_is_linked_once():
    c = claim([RequestedLine("MUG", 1, resolution="replace")])
    assert c.record_exchange("ORD-2", T0, "system")
    assert not c.record_exchange("ORD-2", T0, "system")
    assert c.exchange_status == EXCHANGE_CREATED and c.changes[-1].event_type == "return.exchange_created"


def test_a_refund_only_claim_has_no_replacement():
    c = claim([RequestedLine("PLATE", 1, resolution="refund")], reason="damaged_in_transit")
    assert c.exchange_status == "" and not c.exchange_due
    assert c.refund_amount == Decimal("9.50") and c.lines[0].reason_code == "damaged"


def test_a_wrong_item_keeps_what_was_sent():
    c = claim([RequestedLine("MUG", 1, resolution="replace", sent_sku="PLATE")], reason="wrong_item")
    assert c.lines[0].sent_sku == "PLATE" and c.lines[0].reason_code == "wrong_item"
    snapshot = return_to_proto(c)
    assert (snapshot.kind, snapshot.claim_reason, snapshot.lines[0].sent_sku) == (
        "claim",
        "wrong_item",
        "PLATE",
    )
    assert (snapshot.decided_by, snapshot.lines[0].resolution) == ("desk:ana", "replace")


def test_with_goods_back_it_waits_for_receipt_then_refunds_in_full():
    c = claim([RequestedLine("PLATE", 2, resolution="refund")], reason="damaged_in_transit", goods_back=True)
    assert c.status is Status.AUTHORIZED and [ch.event_type for ch in c.changes] == [CLAIM_OPENED_EVENT]
    c.receive(T0, "dock")
    c.inspect([Inspection("PLATE", 2, "scrap_customer_fault")], T0, "dock")  # the carrier's, not theirs
    assert c.status is Status.REFUNDED and c.refund_amount == Decimal("19.00")
