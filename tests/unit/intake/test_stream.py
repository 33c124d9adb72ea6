"""SubmitOrderStream driven directly: ordering, the bound on orders taken at once (a chunk), one result per order."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from orderdesk import errors, logs, rpc
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake.api import IntakeApi
from services.intake.service import Submitted


class StubService:
    """Answers by customer id: "bad" -> InvalidArgument, "boom" -> a bug, "blocked" -> FailedPrecondition."""

    def __init__(self):
        self.in_flight = 0
        self.most_in_flight = 0
        self.channels: list[str] = []
        self.calls = 0
        self.groups: list[list[str]] = []  # the external refs of each submit_many call
        self.correlation_ids: list[list[str] | None] = []

    async def submit(self, s):
        self.calls += 1
        self.channels.append(s.channel)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(random.random() / 200)  # finish out of order
            if s.customer_id == "bad":
                raise errors.InvalidArgument(
                    "the order has problems",
                    [
                        errors.FieldViolation(
                            "lines[0].quantity", "must be a positive whole number", "not_positive"
                        ),
                        errors.FieldViolation("customer_id", "unknown customer", "unknown_customer"),
                    ],
                )
            if s.customer_id == "blocked":
                raise errors.FailedPrecondition("the customer is blocked", rule="customer_blocked")
            if s.customer_id == "boom":
                raise RuntimeError("database exploded at 10.0.0.7")
            order = orders_pb2.Order(
                order_id=f"ORD-{s.external_ref}",
                status="on_hold",
                priority=120,
                hold_reasons=[
                    common_pb2.Reason(code="price_mismatch", message="m", field="lines[0].unit_price")
                ],
            )
            return Submitted(order=order, replayed=s.idempotency_key == "seen")
        finally:
            self.in_flight -= 1

    async def submit_many(self, subs, correlation_ids=None):
        """As IntakeService.submit_many answers: one result per order, a refusal as its exception."""
        self.groups.append([s.external_ref for s in subs])
        self.correlation_ids.append(correlation_ids)
        return list(await asyncio.gather(*[self.submit(s) for s in subs], return_exceptions=True))


async def requests(items):
    for item in items:
        yield item
        await asyncio.sleep(0)


def order(n: int, customer: str = "C1", **kw) -> intake_pb2.SubmitOrderRequest:
    fields = {
        "partner_id": "P1",
        "idempotency_key": f"k{n}",
        "external_ref": str(n),
        "customer_id": customer,
        "lines": [intake_pb2.SubmitLine(sku="A", quantity=1, unit_price="1.00")],
        **kw,
    }
    return intake_pb2.SubmitOrderRequest(**fields)


def copy(request: intake_pb2.SubmitOrderRequest) -> intake_pb2.SubmitOrderRequest:
    return intake_pb2.SubmitOrderRequest.FromString(request.SerializeToString())


async def run(api: IntakeApi, items) -> list[intake_pb2.SubmitOrderResult]:
    return [r async for r in api.SubmitOrderStream(requests(items), None)]


async def test_results_come_back_in_the_order_sent_with_a_bound_on_orders_in_flight():
    service = StubService()
    results = await run(IntakeApi(service, in_flight=8), [order(n) for n in range(200)])
    assert [r.index for r in results] == list(range(200))
    assert [r.accepted.order_id for r in results] == [f"ORD-{n}" for n in range(200)]
    assert 1 < service.most_in_flight <= 8
    assert set(service.channels) == {"grpc"}


async def test_an_accepted_result_is_what_submit_order_answers():
    service = StubService()
    api = IntakeApi(service)
    single = await api.SubmitOrder(order(1, idempotency_key="seen"), None)
    [result] = await run(api, [order(1, idempotency_key="seen")])
    assert result.HasField("accepted") and result.accepted == single
    assert (single.order_id, single.status, single.priority, single.replayed) == (
        "ORD-1",
        "on_hold",
        120,
        True,
    )
    assert [r.code for r in single.hold_reasons] == ["price_mismatch"]


async def test_a_bad_order_refuses_only_itself():
    service = StubService()
    items = [order(0), order(1, "bad"), order(2), order(3, "blocked"), order(4, "boom"), order(5)]
    results = await run(IntakeApi(service), items)
    assert [r.HasField("accepted") for r in results] == [True, False, True, False, False, True]
    assert [r.error_code for r in results] == [
        "",
        "INVALID_ARGUMENT",
        "",
        "FAILED_PRECONDITION",
        "INTERNAL",
        "",
    ]
    bad = results[1]
    assert bad.error_message == "the order has problems"
    assert [(e.field, e.code, e.message) for e in bad.errors] == [
        ("lines[0].quantity", "not_positive", "must be a positive whole number"),
        ("customer_id", "unknown_customer", "unknown customer"),
    ]
    assert results[3].error_message == "the customer is blocked"
    assert "10.0.0.7" not in results[4].error_message  # a bug's text stays in our logs


async def test_the_channel_a_partner_sets_is_kept():
    service = StubService()
    await run(IntakeApi(service), [order(0, channel="batch"), order(1)])
    assert sorted(service.channels) == ["batch", "grpc"]


async def test_an_empty_stream_answers_nothing():
    assert await run(IntakeApi(StubService()), []) == []


class FailingRpc(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.NOT_FOUND

    def details(self):
        return "orders at 10.0.0.9 said no"

    def trailing_metadata(self):
        return ()


async def test_a_peer_refusal_is_that_order_s_error_without_transport_details():
    class Service(StubService):
        async def submit(self, s):
            if s.external_ref == "0":  # as IntakeService passes orders' refusal on
                raise rpc.passed_on(FailingRpc())
            raise FailingRpc()  # untranslated: what SubmitOrder's interceptor answers, INTERNAL

    translated, untranslated = await run(IntakeApi(Service()), [order(0), order(1)])
    assert translated.error_code == "NOT_FOUND"
    assert untranslated.error_code == "INTERNAL"
    assert "10.0.0.9" not in translated.error_message + untranslated.error_message


@pytest.mark.parametrize("in_flight", [1, 3])
async def test_a_slow_first_order_does_not_hold_back_the_others_beyond_the_bound(in_flight):
    class Service(StubService):
        async def submit(self, s):
            if s.external_ref == "0":
                await asyncio.sleep(0.05)
            return await super().submit(s)

    service = Service()
    results = await run(IntakeApi(service, in_flight=in_flight), [order(n) for n in range(10)])
    assert [r.index for r in results] == list(range(10))
    assert service.calls == 10


async def test_single_orders_arriving_meanwhile_are_entered_as_a_group_each_answered_on_its_own():
    service = StubService()
    api = IntakeApi(service)

    async def one(n: int, customer: str = "C1"):
        await asyncio.sleep(0.002 if n else 0)  # the first alone, the others while it is entered
        token = logs.correlation_id.set(f"cid-{n}")
        try:
            return await api.SubmitOrder(order(n, customer), None)
        except errors.DomainError as refused:
            return refused
        finally:
            logs.correlation_id.reset(token)

    answers = await asyncio.gather(*[one(n, "bad" if n == 3 else "C1") for n in range(6)])
    # The first goes at once, alone; the five that came while it was entered go together, in arrival order.
    assert service.groups == [["0"], ["1", "2", "3", "4", "5"]]
    assert service.correlation_ids == [["cid-0"], [f"cid-{n}" for n in range(1, 6)]]
    assert [a.order_id for n, a in enumerate(answers) if n != 3] == [f"ORD-{n}" for n in (0, 1, 2, 4, 5)]
    assert isinstance(answers[3], errors.InvalidArgument)  # its own refusal, the others entered
    assert set(service.channels) == {"api"}  # a single order keeps its own channel, not the stream's


@pytest.mark.parametrize("count", [0, 1, 7, 20])
async def test_a_batch_in_one_message_answers_what_the_stream_answers(count):
    """SubmitOrders (the gateway's batches): the same results as SubmitOrderStream for the same orders, taken
    in chunks of the bound."""
    kinds = ["C1", "bad", "C1", "blocked", "boom", "C1"]
    items = [order(n, kinds[n % len(kinds)], **({"channel": "batch"} if n % 2 else {})) for n in range(count)]
    streamed = await run(IntakeApi(StubService(), in_flight=3), [copy(i) for i in items])
    service = StubService()
    answer = await IntakeApi(service, in_flight=3).SubmitOrders(
        intake_pb2.SubmitOrdersRequest(orders=items), None
    )
    assert list(answer.results) == streamed
    assert all(len(group) <= 3 for group in service.groups)
    assert sum(map(len, service.groups)) == count
    assert sorted(service.channels) == sorted("batch" if n % 2 else "grpc" for n in range(count))
