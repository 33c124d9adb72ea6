"""Returns on a real database (SQLite and PostgreSQL), with a fake orders stub in place of the orders service."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from orderdesk import errors
from orderdesk.outbox import outbox_table
from orderdesk.v1 import events_pb2, orders_pb2, returns_pb2
from services.returns.api import ReturnsApi
from services.returns.domain import Inspection
from services.returns.service import ReturnsService

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "returns" / "migrations"
NOW = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


class FakeOrders:
    """Answers GetOrder like the orders service: NOT_FOUND for unknown ids and for another partner's order."""

    def __init__(self):
        self.orders: dict[str, orders_pb2.Order] = {}
        self.calls: list[tuple[orders_pb2.GetOrderRequest, float | None]] = []
        self.down = False

    def add(
        self, *, partner: str = "P-SHOP", lines=(("A", 4, 4, "12.50"),), allocations=(("A", "WH-HAM", 4),)
    ) -> str:
        """lines: (sku, quantity, delivered, unit_price)."""
        order_id = f"ORD-T{uuid.uuid4().hex[:12].upper()}"
        self.orders[order_id] = orders_pb2.Order(
            order_id=order_id,
            partner_id=partner,
            status="completed",
            lines=[
                orders_pb2.OrderLine(
                    sku=s, quantity=q, delivered_quantity=d, shipped_quantity=d, unit_price=p
                )
                for s, q, d, p in lines
            ],
            allocations=[orders_pb2.Allocation(sku=s, warehouse=w, quantity=q) for s, w, q in allocations],
        )
        return order_id

    async def GetOrder(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the stub's signature)
        self.calls.append((request, timeout))
        await asyncio.sleep(0)  # a real call yields to the loop; let concurrent callers interleave
        if self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details="connection refused",
            )
        order = self.orders.get(request.order_id)
        if order is None or (request.partner_id and order.partner_id != request.partner_id):
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.NOT_FOUND,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                details=f"order {request.order_id} not found",
            )
        return order


@pytest.fixture
async def orders():
    return FakeOrders()


@pytest.fixture
async def returns(make_database, orders):
    db = await make_database(MIGRATIONS)
    return ReturnsService(db, orders, timeout=2.5, clock=lambda: NOW)


def request(order_id: str, *lines, partner: str = "P-SHOP", key: str = "", resolution: str = "refund"):
    return returns_pb2.CreateReturnRequest(
        order_id=order_id,
        partner_id=partner,
        resolution=resolution,
        idempotency_key=key,
        lines=[returns_pb2.ReturnLine(sku=s, quantity=q, reason="damaged") for s, q in lines],
    )


async def return_events(service: ReturnsService, order_id: str) -> list[events_pb2.Event]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(outbox_table.c.payload)
            .where(outbox_table.c.subject.like(f"orderdesk.return.{order_id}.%"))
            .order_by(outbox_table.c.id)
        )
        return [events_pb2.Event.FromString(r.payload) for r in rows]


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_authorise_receive_inspect_refund(returns, orders):
    order_id = orders.add(
        lines=[("A", 4, 4, "12.50"), ("B", 1, 1, "3.00")],
        allocations=[("A", "WH-HAM", 3), ("A", "WH-CHI", 1), ("B", "WH-CHI", 1)],
    )
    refunded_before = metric("orderdesk_refunded_amount_total")
    steps_before = metric("orderdesk_return_steps_total", step="refunded")

    rma = await returns.create(request(order_id, ("A", 3)))
    assert rma.rma_id.startswith("RMA-") and rma.status.value == "authorized" and rma.partner_id == "P-SHOP"
    assert (rma.lines[0].unit_price, rma.lines[0].warehouse) == (Decimal("12.50"), "WH-HAM")
    assert (
        orders.calls[-1][0].partner_id == "P-SHOP" and orders.calls[-1][1] == 2.5
    )  # scoped, with a deadline

    received = await returns.receive(rma.rma_id, "", "dock")
    assert (received.status.value, received.version) == ("received", 2)
    assert (await returns.receive(rma.rma_id, "", "dock")).version == 2  # a repeat changes nothing

    refunded = await returns.inspect(
        rma.rma_id, "", [Inspection("A", 2, "restock"), Inspection("A", 1, "scrap")], "qa"
    )
    assert (refunded.status.value, refunded.version, str(refunded.refund_amount)) == ("refunded", 3, "37.50")
    stored = await returns.get(rma.rma_id, "P-SHOP")
    assert str(stored.refund_amount) == "37.50"
    assert [(x.restocked, x.scrapped) for x in stored.lines] == [(2, 1)]

    published = await return_events(returns, order_id)
    assert [(e.type, e.aggregate_version) for e in published] == [
        ("return.authorized", 1),
        ("return.received", 2),
        ("return.refunded", 3),
    ]
    last = getattr(published[-1], "return")
    line = getattr(last, "return").lines[0]
    assert (line.sku, line.warehouse, line.restocked_quantity, line.scrapped_quantity) == (
        "A",
        "WH-HAM",
        2,
        1,
    )
    assert getattr(last, "return").refund_amount == "37.50"
    assert metric("orderdesk_refunded_amount_total") == pytest.approx(refunded_before + 37.5)
    assert metric("orderdesk_return_steps_total", step="refunded") == steps_before + 1

    with pytest.raises(errors.FailedPrecondition):
        await returns.receive(rma.rma_id, "", "dock")


async def test_returns_never_exceed_what_was_delivered(returns, orders):
    order_id = orders.add(lines=[("A", 4, 3, "10.00")])  # 4 ordered, 3 delivered so far
    with pytest.raises(errors.InvalidArgument) as err:
        await returns.create(request(order_id, ("A", 4)))
    assert [(v.field, v.reason) for v in err.value.violations] == [
        ("lines[0].quantity", "exceeds_returnable")
    ]
    await returns.create(request(order_id, ("A", 2)))
    with pytest.raises(errors.InvalidArgument):
        await returns.create(request(order_id, ("A", 2)))  # only 1 left after the first RMA
    await returns.create(request(order_id, ("A", 1)))
    assert [e.type for e in await return_events(returns, order_id)] == ["return.authorized"] * 2


async def test_an_undelivered_order_and_bad_lines(returns, orders):
    order_id = orders.add(lines=[("A", 4, 0, "10.00")])
    with pytest.raises(errors.FailedPrecondition) as err:
        await returns.create(request(order_id, ("A", 1)))
    assert err.value.rule == "nothing_delivered"
    with pytest.raises(errors.InvalidArgument) as bad:
        await returns.create(request(order_id, ("Z", 1), ("A", 0), resolution="swap"))
    assert [v.field for v in bad.value.violations] == ["resolution", "lines[0].sku", "lines[1].quantity"]
    assert await return_events(returns, order_id) == []


async def test_orders_answers_pass_through(returns, orders):
    with pytest.raises(errors.NotFound):
        await returns.create(request("ORD-NOPE", ("A", 1)))
    order_id = orders.add(partner="P-SHOP")
    with pytest.raises(errors.NotFound):  # another partner's order does not exist for this caller
        await returns.create(request(order_id, ("A", 1), partner="P-OTHER"))
    orders.down = True
    with pytest.raises(errors.Unavailable):
        await returns.create(request(order_id, ("A", 1)))


async def test_partners_reach_only_their_own_returns(returns, orders):
    order_id = orders.add(partner="P-SHOP")
    rma = await returns.create(request(order_id, ("A", 1), partner=""))  # made by an admin: still the shop's
    assert rma.partner_id == "P-SHOP"
    assert (await returns.get(rma.rma_id, "P-SHOP")).rma_id == rma.rma_id
    for call in (
        returns.get(rma.rma_id, "P-OTHER"),
        returns.receive(rma.rma_id, "P-OTHER", "x"),
        returns.inspect(rma.rma_id, "P-OTHER", [Inspection("A", 1, "scrap")], "x"),
    ):
        with pytest.raises(errors.NotFound):
            await call


async def test_inspection_rules_on_the_stored_return(returns, orders):
    order_id = orders.add()
    rma = await returns.create(request(order_id, ("A", 2)))
    with pytest.raises(errors.FailedPrecondition) as err:
        await returns.inspect(rma.rma_id, "", [Inspection("A", 2, "restock")], "qa")
    assert err.value.rule == "inspect_only_when_received"
    await returns.receive(rma.rma_id, "", "dock")
    with pytest.raises(errors.InvalidArgument) as bad:
        await returns.inspect(rma.rma_id, "", [Inspection("A", 1, "restock")], "qa")
    assert [v.field for v in bad.value.violations] == ["lines[0].quantity"]
    assert (await returns.get(rma.rma_id, "")).status.value == "received"
    done = await returns.inspect(rma.rma_id, "", [Inspection("A", 2, "scrap")], "qa")
    again = await returns.inspect(rma.rma_id, "", [Inspection("A", 2, "scrap")], "qa")
    assert done.version == again.version == 3 and str(again.refund_amount) == "25.00"
    assert [e.type for e in await return_events(returns, order_id)].count("return.refunded") == 1


async def test_an_idempotency_key_returns_the_first_return(returns, orders):
    order_id = orders.add()
    first = await returns.create(request(order_id, ("A", 1), key="k-1"))
    calls = len(orders.calls)
    again = await returns.create(request(order_id, ("A", 1), key="k-1"))
    assert again.rma_id == first.rma_id and len(orders.calls) == calls  # a replay does not ask orders again
    with pytest.raises(errors.InvalidArgument) as err:
        await returns.create(request(order_id, ("A", 2), key="k-1"))
    assert err.value.violations[0].reason == "idempotency_key_reused"
    other = await returns.create(
        request(order_id, ("A", 1), key="k-1", partner="")
    )  # another caller's key space
    assert other.rma_id != first.rma_id
    # Sent twice at once: one RMA, both callers get it.
    a, b = await asyncio.gather(
        returns.create(request(order_id, ("A", 2), key="k-2")),
        returns.create(request(order_id, ("A", 2), key="k-2")),
    )
    assert a.rma_id == b.rma_id
    assert len(await return_events(returns, order_id)) == 3


async def test_concurrent_returns_never_exceed_what_was_delivered(returns, orders):
    order_id = orders.add(
        lines=[("A", 10, 7, "5.00"), ("B", 2, 2, "1.00")],
        allocations=[("A", "WH-HAM", 10), ("B", "WH-HAM", 2)],
    )
    attempts = [request(order_id, ("A", 2)) for _ in range(6)] + [
        request(order_id, ("A", 1), ("B", 1)) for _ in range(4)
    ]
    results = await asyncio.gather(*(returns.create(r) for r in attempts), return_exceptions=True)
    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, errors.InvalidArgument) for r in refused), refused
    made = [r for r in results if not isinstance(r, Exception)]
    authorised = {"A": 0, "B": 0}
    for rma in made:
        for line in rma.lines:
            authorised[line.sku] += line.quantity
    assert authorised["A"] <= 7 and authorised["B"] <= 2
    assert authorised["A"] >= 6  # it is not refusing for nothing: at most one unit of A can be left over
    assert len(await return_events(returns, order_id)) == len(made)


async def test_the_api_speaks_protobuf(returns, orders):
    api = ReturnsApi(returns)
    order_id = orders.add()
    created = await api.CreateReturn(request(order_id, ("A", 1)), None)
    assert created.status == "authorized" and created.refund_amount == "0.00"
    assert created.lines[0].unit_price == "12.50" and created.lines[0].warehouse == "WH-HAM"
    received = await api.ReceiveReturn(
        returns_pb2.ReturnActionRequest(rma_id=created.rma_id, actor="dock"), None
    )
    assert received.status == "received"
    inspected = await api.InspectReturn(
        returns_pb2.InspectReturnRequest(
            rma_id=created.rma_id, lines=[returns_pb2.InspectionLine(sku="A", quantity=1, outcome="restock")]
        ),
        None,
    )
    assert (inspected.status, inspected.refund_amount, inspected.lines[0].restocked_quantity) == (
        "refunded",
        "12.50",
        1,
    )
    with pytest.raises(errors.InvalidArgument):
        await api.CreateReturn(returns_pb2.CreateReturnRequest(), None)


async def test_an_orders_returns_are_listed_oldest_first_within_the_partners_scope(returns, orders):
    api = ReturnsApi(returns)
    order_id = orders.add(lines=(("A", 4, 4, "12.50"), ("B", 2, 2, "3.00")))
    other = orders.add()
    first = await api.CreateReturn(request(order_id, ("A", 1)), None)
    by_desk = request(order_id, ("B", 2), partner="")
    by_desk.actor = "desk:ann@acme.example (clerk)"
    returns.clock = lambda: NOW + dt.timedelta(minutes=1)
    second = await api.CreateReturn(by_desk, None)
    await api.CreateReturn(request(other, ("A", 1)), None)

    listed = await api.ListReturns(returns_pb2.ListReturnsRequest(order_id=order_id), None)
    assert [r.rma_id for r in listed.items] == [first.rma_id, second.rma_id]
    assert [(r.lines[0].sku, r.lines[0].quantity) for r in listed.items] == [("A", 1), ("B", 2)]
    scoped = await api.ListReturns(
        returns_pb2.ListReturnsRequest(order_id=order_id, partner_id="P-SHOP"), None
    )
    assert len(scoped.items) == 2
    assert not (
        await api.ListReturns(returns_pb2.ListReturnsRequest(order_id=order_id, partner_id="P-OTHER"), None)
    ).items
    with pytest.raises(errors.InvalidArgument):
        await api.ListReturns(returns_pb2.ListReturnsRequest(), None)
