"""Returns' domain rules: returnable quantities, authorisation, receipt, inspection and refund arithmetic."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.errors import FailedPrecondition, InvalidArgument
from services.returns.domain import (
    Inspection,
    OrderedSku,
    RequestedLine,
    Return,
    Status,
    new_rma_id,
    refund_amount,
    request_hash,
    returnable,
    summarise_order,
)

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
ORDERED = {
    "A": OrderedSku("A", delivered=4, unit_price=Decimal("12.50"), warehouse="WH-HAM"),
    "B": OrderedSku("B", delivered=2, unit_price=Decimal("3.33"), warehouse="WH-CHI"),
    "C": OrderedSku("C", delivered=0, unit_price=Decimal("1.00"), warehouse="WH-CHI"),
}


def authorize(requested, *, ordered=ORDERED, authorised=None, resolution="refund") -> Return:
    return Return.authorize(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P1",
        ordered=ordered,
        authorised=authorised or {},
        requested=requested,
        resolution=resolution,
        at=T0,
        actor="P1",
    )


def fields(err) -> list[str]:
    return [v.field for v in err.value.violations]


def received(requested) -> Return:
    ret = authorize(requested)
    ret.receive(T0, "dock")
    return ret


# --- the order's facts ------------------------------------------------------------------
def test_summary_adds_delivered_units_and_keeps_the_first_price_and_warehouse():
    summary = summarise_order(
        [("A", 2, Decimal("10")), ("B", 1, Decimal("5")), ("A", 3, Decimal("11"))],
        [("A", "WH-HAM"), ("A", "WH-CHI"), ("B", "WH-SHA")],
    )
    assert summary["A"] == OrderedSku("A", 5, Decimal("10"), "WH-HAM")
    assert summary["B"] == OrderedSku("B", 1, Decimal("5"), "WH-SHA")
    assert summarise_order([("X", 1, Decimal("1"))], [])["X"].warehouse == ""


def test_returnable_is_delivered_minus_authorised_never_negative():
    assert returnable(ORDERED, {"A": 3, "B": 5}) == {"A": 1, "B": 0, "C": 0}


def test_rma_ids_are_prefixed_uppercase_hex():
    ids = {new_rma_id() for _ in range(50)}
    assert len(ids) == 50 and all(re.fullmatch(r"RMA-[0-9A-F]{20}", i) for i in ids)


# --- authorisation ------------------------------------------------------------------------
def test_authorize_copies_price_and_warehouse_from_the_order():
    ret = authorize([RequestedLine("A", 3, "damaged"), RequestedLine("B", 1, "")])
    assert ret.status is Status.AUTHORIZED and ret.version == 1 and ret.partner_id == "P1"
    assert [(x.sku, x.quantity, x.unit_price, x.warehouse) for x in ret.lines] == [
        ("A", 3, Decimal("12.50"), "WH-HAM"),
        ("B", 1, Decimal("3.33"), "WH-CHI"),
    ]
    assert [c.status for c in ret.changes] == [Status.AUTHORIZED]
    assert ret.refund_amount == Decimal("0.00")


def test_bad_lines_are_named_by_path():
    with pytest.raises(InvalidArgument) as err:
        authorize(
            [
                RequestedLine("", 1),
                RequestedLine("Z", 1),
                RequestedLine("A", 0),
                RequestedLine("B", -2),
                RequestedLine("A", 1, "x" * 1001),
            ],
            resolution="swap",
        )
    assert fields(err) == [
        "resolution",
        "lines[0].sku",
        "lines[1].sku",
        "lines[2].quantity",
        "lines[3].quantity",
        "lines[4].reason",
    ]


def test_no_lines_is_invalid():
    with pytest.raises(InvalidArgument) as err:
        authorize([])
    assert fields(err) == ["lines"]


def test_nothing_delivered_is_a_failed_precondition():
    nothing = {sku: OrderedSku(sku, 0, o.unit_price, o.warehouse) for sku, o in ORDERED.items()}
    with pytest.raises(FailedPrecondition) as err:
        authorize([RequestedLine("A", 1)], ordered=nothing)
    assert err.value.rule == "nothing_delivered"


def test_more_than_delivered_is_invalid_on_the_line_quantity():
    with pytest.raises(InvalidArgument) as err:
        authorize([RequestedLine("A", 5)])
    assert fields(err) == ["lines[0].quantity"]
    assert err.value.violations[0].reason == "exceeds_returnable"
    with pytest.raises(InvalidArgument) as err:
        authorize([RequestedLine("C", 1)])  # C itself was not delivered, though A and B were
    assert err.value.violations[0].reason == "exceeds_returnable"


def test_lines_of_one_sku_add_up_against_what_is_left():
    with pytest.raises(InvalidArgument) as err:
        authorize([RequestedLine("A", 1), RequestedLine("B", 1), RequestedLine("A", 1)], authorised={"A": 3})
    assert fields(err) == ["lines[2].quantity"]
    assert len(authorize([RequestedLine("A", 1)], authorised={"A": 3}).lines) == 1


@given(st.lists(st.tuples(st.sampled_from("AB"), st.integers(1, 4)), max_size=10))
def test_a_sequence_of_returns_never_takes_back_more_than_was_delivered(asks):
    """Each ask is a new RMA against what the earlier ones authorised; the total never exceeds delivered."""
    authorised: dict[str, int] = {}
    for sku, qty in asks:
        left = ORDERED[sku].delivered - authorised.get(sku, 0)
        try:
            ret = authorize([RequestedLine(sku, qty)], authorised=authorised)
        except InvalidArgument:
            assert qty > left
            continue
        assert qty <= left
        for sku_, q in ret.authorised_by_sku().items():
            authorised[sku_] = authorised.get(sku_, 0) + q
    assert all(authorised.get(s, 0) <= o.delivered for s, o in ORDERED.items())


# --- receipt ----------------------------------------------------------------------------------
def test_receive_once_then_repeats_change_nothing():
    ret = authorize([RequestedLine("A", 1)])
    assert ret.receive(T0, "dock") is True
    assert (ret.status, ret.version) == (Status.RECEIVED, 2)
    assert ret.receive(T0, "dock") is False and ret.version == 2


def test_receive_after_refund_is_refused():
    ret = received([RequestedLine("A", 1)])
    ret.inspect([Inspection("A", 1, "restock")], T0, "qa")
    with pytest.raises(FailedPrecondition) as err:
        ret.receive(T0, "dock")
    assert err.value.rule == "receive_only_when_authorized"


# --- inspection and refund -------------------------------------------------------------------------
def test_inspection_splits_restock_and_scrap_and_refunds_every_unit():
    ret = received([RequestedLine("A", 3, "damaged")])
    assert ret.inspect([Inspection("A", 2, "restock"), Inspection("A", 1, "scrap")], T0, "qa")
    assert (ret.lines[0].restocked, ret.lines[0].scrapped) == (2, 1)
    assert ret.refund_amount == Decimal("37.50") and str(ret.refund_amount) == "37.50"
    assert ret.status is Status.REFUNDED and ret.version == 3
    assert [c.status for c in ret.changes] == [Status.AUTHORIZED, Status.RECEIVED, Status.REFUNDED]


def test_inspection_before_receipt_is_refused():
    ret = authorize([RequestedLine("A", 1)])
    with pytest.raises(FailedPrecondition) as err:
        ret.inspect([Inspection("A", 1, "restock")], T0, "qa")
    assert err.value.rule == "inspect_only_when_received"


def test_the_same_inspection_again_is_a_no_op_and_a_different_one_is_refused():
    ret = received([RequestedLine("A", 2)])
    ret.inspect([Inspection("A", 2, "restock")], T0, "qa")
    assert ret.inspect([Inspection("A", 1, "restock"), Inspection("A", 1, "restock")], T0, "qa") is False
    with pytest.raises(FailedPrecondition):
        ret.inspect([Inspection("A", 2, "scrap")], T0, "qa")


B_SCRAPPED = Inspection("B", 1, "scrap")


@pytest.mark.parametrize(
    ("inspections", "paths"),
    [
        ([], ["lines"]),
        ([Inspection("A", 2, "restock"), B_SCRAPPED], ["lines[0].quantity"]),  # one unit unaccounted for
        ([Inspection("A", 2, "restock"), B_SCRAPPED, Inspection("A", 2, "scrap")], ["lines[0].quantity"]),
        ([Inspection("A", 3, "restock")], ["lines"]),  # B never inspected
        ([Inspection("Z", 1, "restock")], ["lines[0].sku"]),
        ([Inspection("A", 0, "restock")], ["lines[0].quantity"]),
        ([Inspection("A", 3, "resell")], ["lines[0].outcome"]),
    ],
)
def test_inspections_must_account_for_exactly_the_authorised_units(inspections, paths):
    ret = received([RequestedLine("A", 3), RequestedLine("B", 1)])
    with pytest.raises(InvalidArgument) as err:
        ret.inspect(inspections, T0, "qa")
    assert fields(err) == paths
    assert ret.status is Status.RECEIVED


def test_lines_of_one_sku_fill_in_order_restocked_first():
    ret = received([RequestedLine("A", 2, "wrong size"), RequestedLine("A", 2, "damaged")])
    ret.inspect([Inspection("A", 1, "scrap"), Inspection("A", 3, "restock")], T0, "qa")
    assert [(x.restocked, x.scrapped) for x in ret.lines] == [(2, 0), (1, 1)]


def test_refund_rounds_half_up_to_cents():
    ret = received([RequestedLine("B", 2)])
    ret.inspect([Inspection("B", 2, "scrap")], T0, "qa")
    assert str(ret.refund_amount) == "6.66"
    line = ret.lines[0]
    line.unit_price, line.scrapped = Decimal("0.125"), 1
    line.restocked = 0
    assert refund_amount([line]) == Decimal("0.13")


@given(
    lines=st.lists(st.tuples(st.sampled_from("AB"), st.integers(1, 3)), min_size=1, max_size=5),
    restock_share=st.lists(st.integers(0, 3), min_size=2, max_size=2),
)
def test_refund_is_every_authorised_unit_at_its_price_whatever_the_split(lines, restock_share):
    ordered = {s: OrderedSku(s, 100, p, "W") for s, p in (("A", Decimal("12.50")), ("B", Decimal("3.33")))}
    ret = authorize([RequestedLine(s, q) for s, q in lines], ordered=ordered)
    ret.receive(T0, "dock")
    inspections = []
    for n, (sku, total) in enumerate(sorted(ret.authorised_by_sku().items())):
        restock = min(restock_share[n], total)
        inspections += [
            Inspection(sku, q, o) for q, o in ((restock, "restock"), (total - restock, "scrap")) if q
        ]
    ret.inspect(inspections, T0, "qa")
    assert ret.refund_amount == sum((ordered[s].unit_price * q for s, q in lines), Decimal("0"))
    assert all(x.restocked + x.scrapped == x.quantity for x in ret.lines)
    for sku in ret.authorised_by_sku():
        restocked = sum(x.restocked for x in ret.lines if x.sku == sku)
        assert restocked == sum(i.quantity for i in inspections if i.sku == sku and i.outcome == "restock")


def test_request_hash_changes_with_the_body_only():
    a = request_hash("ORD-1", [RequestedLine("A", 1, "damaged")], "refund")
    assert a == request_hash("ORD-1", [RequestedLine("A", 1, "damaged")], "refund")
    assert a != request_hash("ORD-1", [RequestedLine("A", 2, "damaged")], "refund")
    assert a != request_hash("ORD-2", [RequestedLine("A", 1, "damaged")], "refund")


def test_request_hash_is_the_one_stored_keys_were_made_with():
    """Keys stored before the hash moved to orderdesk.idempotency must still replay: the same bytes."""
    lines = [RequestedLine("A", 1, "damaged"), RequestedLine("B", 2, "größe falsch")]
    assert (
        request_hash("ORD-1", lines, "refund")
        == "b2e71aa57fbffe2b2a5045189e888c6b8172ffbfb2e2ec87c788d1c8a68fdce7"
    )
