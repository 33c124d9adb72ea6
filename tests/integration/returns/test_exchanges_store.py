"""Exchanges on a real database (SQLite and PostgreSQL): the exchanged line stored and read back, the
replacement asked of intake once and linked once, return.exchange_created in the outbox with the link."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc
import pytest

from orderdesk import errors
from orderdesk.v1 import intake_pb2, returns_pb2
from services.returns.domain import Inspection
from services.returns.policy import PolicySettings
from services.returns.service import ReturnsService
from tests.integration.returns.test_return_policy_store import CUSTOMERS
from tests.integration.returns.test_returns_store import MIGRATIONS, NOW, FakeOrders, return_events


class FakeIntake:
    """QuoteLines from a price list; SubmitOrder answers one idempotency key with one order, as intake does."""

    PRICES = {"A": ("12.50", "active"), "A-L": ("15.00", "active"), "GONE": ("1.00", "discontinued")}

    def __init__(self):
        self.submitted: list[intake_pb2.SubmitOrderRequest] = []
        self.orders: dict[str, str] = {}

    async def QuoteLines(self, request, timeout=None, metadata=None):  # noqa: ASYNC109
        lines = []
        for q in request.lines:
            price, status = self.PRICES.get(q.product, ("", ""))
            lines.append(
                intake_pb2.LineQuote(
                    sku=q.product if price else "", unit_price=price, currency="USD", status=status
                )
            )
        return intake_pb2.QuoteLinesResponse(lines=lines)

    async def SubmitOrder(self, request, timeout=None, metadata=None):  # noqa: ASYNC109
        await asyncio.sleep(0)
        self.submitted.append(request)
        order_id = self.orders.setdefault(request.idempotency_key, f"ORD-R{len(self.orders) + 1}")
        return intake_pb2.SubmitOrderResponse(order_id=order_id, status="approved")


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


def exchange(order_id: str, **line) -> returns_pb2.CreateReturnRequest:
    return returns_pb2.CreateReturnRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        resolution="exchange",
        lines=[returns_pb2.ReturnLine(sku="A", quantity=2, reason="too small", **line)],
    )


async def test_an_exchange_for_another_size_is_stored_linked_once_and_published(returns, orders, intake):
    order_id = orders.add()
    ret = await returns.create(exchange(order_id, exchange_sku="A-L"))
    stored = await returns.get(ret.rma_id, "P-SHOP")
    (line,) = stored.lines
    assert (line.resolution, line.exchange_sku, line.exchange_quantity, str(line.exchange_unit_price)) == (
        "exchange",
        "A-L",
        2,
        "15.00",
    )
    assert str(stored.to_charge) == "5.00" and stored.exchange_status == "awaiting_receipt"

    assert (await returns.make_exchange(ret.rma_id)).exchange_order_id == ""  # not received: nothing asked
    assert intake.submitted == []
    await returns.receive(ret.rma_id, "P-SHOP", "dock")
    await returns.inspect(ret.rma_id, "P-SHOP", [Inspection("A", 2, "restock")], "dock")
    await asyncio.gather(*(returns.make_exchange(ret.rma_id) for _ in range(3)))  # redeliveries at once
    await returns.make_exchange(ret.rma_id)

    linked = await returns.get(ret.rma_id, "P-SHOP")
    assert linked.exchange_order_id == "ORD-R1" and linked.refund_amount == 0
    assert {r.idempotency_key for r in intake.submitted} == {f"exchange-{ret.rma_id}"}
    events = await return_events(returns, order_id)
    assert [e.type for e in events].count("return.exchange_created") == 1
    created = getattr(getattr(events[-1], "return"), "return")
    assert (events[-1].type, created.exchange_order_id, created.order_id) == (
        "return.exchange_created",
        "ORD-R1",
        order_id,
    )


@pytest.mark.parametrize(
    "line, field, reason",
    [
        ({"exchange_sku": "NOPE"}, "lines[0].exchange_sku", "unknown"),
        ({"exchange_sku": "GONE"}, "lines[0].exchange_sku", "not_exchangeable"),
        ({"exchange_sku": "A-L", "exchange_quantity": 3}, "lines[0].exchange_quantity", "exceeds_returned"),
    ],
)
async def test_a_bad_exchange_stores_nothing(returns, orders, line, field, reason):
    order_id = orders.add()
    with pytest.raises(errors.InvalidArgument) as err:
        await returns.create(exchange(order_id, **line))
    assert [(v.field, v.reason) for v in err.value.violations] == [(field, reason)]
    assert await returns.list_for_order(order_id, "P-SHOP") == []


async def test_intake_down_when_pricing_is_unavailable(returns, orders, intake):
    async def down(*args, **kwargs):
        raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())

    intake.QuoteLines = down
    with pytest.raises(errors.Unavailable):
        await returns.create(exchange(orders.add(), exchange_sku="A-L"))


async def test_an_advance_exchange_ships_at_once_and_late_goods_are_charged_once(
    make_database, orders, intake
):
    now = [NOW]
    service = ReturnsService(
        await make_database(MIGRATIONS),
        orders,
        timeout=2.5,
        clock=lambda: now[0],
        policy=PolicySettings(advance_exchange_tiers=frozenset({"key"}), advance_exchange_days=14),
        intake=intake,
    )
    await service.import_csv("customers", CUSTOMERS)
    late, in_time = orders.add(), orders.add()
    for order_id in (late, in_time):
        orders.orders[order_id].customer_id = "C-KEY"
    rmas = [await service.create(exchange(order_id, exchange_sku="A-L")) for order_id in (late, in_time)]
    assert {r.exchange_mode for r in rmas} == {"advance"}
    for rma in rmas:  # the return.authorized consumer's call
        linked = await service.make_exchange(rma.rma_id)
        assert linked.exchange_order_id and str(linked.return_due_on) == "2026-12-24"
    await service.receive(rmas[1].rma_id, "P-SHOP", "dock")

    now[0] = NOW + dt.timedelta(days=14)
    assert await service.charge_overdue() == 0  # the last day still counts
    now[0] = NOW + dt.timedelta(days=15)
    assert await service.charge_overdue() == 1
    assert await service.charge_overdue() == 0
    charged = await service.get(rmas[0].rma_id, "")
    assert str(charged.unreturned_charge) == "25.00"  # 2 x 12.50 paid
    assert str((await service.get(rmas[1].rma_id, "")).unreturned_charge) == "0.00"
    types = [e.type for e in await return_events(service, late)]
    assert types == ["return.authorized", "return.exchange_created", "return.unreturned_charged"]
