"""Claims on a real database (SQLite and PostgreSQL): the claim stored and read back with its reason,
evidence, decider and lines, its units counted against the order's like a return's, a key replayed, the
replacement asked of intake once, and return.claim_opened / claim_resolved in the outbox."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk import errors
from orderdesk.v1 import returns_pb2
from services.returns.service import ReturnsService
from tests.integration.returns.test_exchanges_store import FakeIntake
from tests.integration.returns.test_returns_store import MIGRATIONS, NOW, FakeOrders, return_events


@pytest.fixture
async def orders():
    return FakeOrders()


@pytest.fixture
async def intake():
    return FakeIntake()


@pytest.fixture
async def returns(make_database, orders, intake):
    db = await make_database(MIGRATIONS)
    return ReturnsService(db, orders, timeout=2.5, clock=lambda: NOW, intake=intake)


def claim(
    order_id: str, *lines: returns_pb2.ReturnLine, reason="wrong_item", key=""
) -> returns_pb2.CreateClaimRequest:
    return returns_pb2.CreateClaimRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        reason=reason,
        evidence="photo of the label",
        lines=list(lines),
        idempotency_key=key,
        actor="key:shop",
    )


async def test_a_claim_is_stored_replayed_and_replaced_once(returns, orders, intake):
    order_id = orders.add()
    req = claim(
        order_id,
        returns_pb2.ReturnLine(sku="A", quantity=1, resolution="replace", sent_sku="B"),
        returns_pb2.ReturnLine(sku="A", quantity=2, resolution="refund", sent_sku="B"),
        key="k-1",
    )
    made = await returns.create_claim(req)
    assert (await returns.create_claim(req)).rma_id == made.rma_id  # the key replays
    stored = await returns.get(made.rma_id, "P-SHOP")
    assert (stored.kind, stored.claim_reason, stored.goods_back, stored.evidence, stored.decided_by) == (
        "claim",
        "wrong_item",
        False,
        "photo of the label",
        "key:shop",
    )
    replaced, refunded = stored.lines
    assert (replaced.resolution, replaced.exchange_sku, replaced.sent_sku, replaced.claimed) == (
        "replace",
        "A",
        "B",
        True,
    )
    assert str(refunded.refund) == "25.00" and str(stored.refund_amount) == "25.00"
    assert stored.status.value == "refunded" and stored.exchange_due

    # four delivered, three claimed: one is left for a return or another claim
    with pytest.raises(errors.InvalidArgument) as err:
        await returns.create_claim(
            claim(order_id, returns_pb2.ReturnLine(sku="A", quantity=2, resolution="refund", sent_sku="B"))
        )
    assert [(v.field, v.reason) for v in err.value.violations] == [("lines[0].quantity", "exceeds_delivered")]

    await asyncio.gather(*(returns.make_exchange(made.rma_id) for _ in range(3)))  # redeliveries at once
    linked = await returns.get(made.rma_id, "P-SHOP")
    assert linked.exchange_order_id == "ORD-R1"
    (submitted,) = {r.idempotency_key: r for r in intake.submitted}.values()
    assert submitted.idempotency_key == f"exchange-{made.rma_id}"
    assert [(x.sku, x.quantity, x.unit_price) for x in submitted.lines] == [("A", 1, "12.50")]
    types = [e.type for e in await return_events(returns, order_id)]
    assert types == ["return.claim_opened", "return.claim_resolved", "return.exchange_created"]


async def test_a_key_reused_for_another_claim_is_refused(returns, orders):
    order_id = orders.add()
    line = returns_pb2.ReturnLine(sku="A", quantity=1, resolution="refund")
    await returns.create_claim(claim(order_id, line, reason="missing_items", key="k-2"))
    with pytest.raises(errors.InvalidArgument):
        await returns.create_claim(claim(order_id, line, reason="damaged_in_transit", key="k-2"))
