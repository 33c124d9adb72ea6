"""Today's queues as the console asks for them (no server): each queue's ListOrders request, what the address
may carry, every count by the key the page marks it with, and how long one count serves."""

from __future__ import annotations

import asyncio

import pytest

from console.screens.today import QUEUES, Asked, FreshCounts, counted
from orderdesk.v1 import orders_pb2


def test_each_queue_asks_the_orders_service_for_its_own_orders():
    asked = Asked(customer="C0001", channel="api", warehouse="WH-LYON")
    held = QUEUES["held"].request(Asked(reason="price_mismatch"), "")
    assert (held.status, held.hold_reason, held.order_by) == ("on_hold", "price_mismatch", "priority")
    exceptions = QUEUES["exceptions"].request(
        Asked(queue="exceptions", reason="lost_parcel", sort="newest"), ""
    )
    assert exceptions.open_exception and exceptions.exception_type == "lost_parcel"
    assert exceptions.order_by == "newest"
    at_risk = QUEUES["at_risk"].request(Asked(queue="at_risk", reason="supply_late"), "u2026-12-01.1.7")
    assert at_risk.at_risk and at_risk.risk == "supply_late" and at_risk.cursor == "u2026-12-01.1.7"
    backorders = QUEUES["backorders"].request(asked, "")
    assert (backorders.status, backorders.order_by) == ("scheduled", "expected")
    assert (backorders.customer_id, backorders.channel, backorders.warehouse) == ("C0001", "api", "WH-LYON")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"queue": "held", "reason": "lost_parcel"}, "reason"),  # an exception type is no hold reason
        ({"queue": "at_risk", "sort": "oldest"}, "sort"),
        ({"channel": "pigeon"}, "channel"),
        ({"queue": "backorders", "reason": "price_mismatch"}, "reason"),
    ],
)
def test_what_a_queue_cannot_take_is_named(query, field):
    assert list(Asked.of(query).check().fields) == [field]


def test_an_unknown_queue_is_said_above_the_form():
    found = Asked.of({"queue": "sideways"}).check()
    assert found.general == "There is no such work queue. Choose one of the tabs." and not found.fields


def test_an_address_without_a_queue_is_the_held_queue_trimmed():
    asked = Asked.of({"customer": " C0001 "})
    assert asked.queue == "held" and asked.customer == "C0001" and not asked.check()
    assert asked.given() == {"queue": "held", "customer": "C0001"} and asked.filtered()


def test_every_count_by_its_key():
    counts = orders_pb2.QueueCounts(
        held=3,
        held_by_reason=[orders_pb2.QueueCount(code="price_mismatch", count=2)],
        exceptions=1,
        exceptions_by_type=[orders_pb2.QueueCount(code="lost_parcel", count=1)],
        at_risk_by_risk=[],
        backorders=4,
    )
    assert counted(counts) == {
        "held": 3,
        "exceptions": 1,
        "at_risk": 0,
        "backorders": 4,
        "held.price_mismatch": 2,
        "exceptions.lost_parcel": 1,
    }


class Asker:
    """CountQueues as FreshCounts sees it: each ask takes `delay` seconds and answers held=<asks so far>."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.asks = delay, 0

    async def __call__(self) -> orders_pb2.QueueCounts:
        self.asks += 1
        answer = orders_pb2.QueueCounts(held=self.asks)
        await asyncio.sleep(self.delay)
        return answer


async def test_desks_asking_at_once_share_one_count_and_reuse_it_while_fresh():
    counts, ask = FreshCounts(fresh_seconds=60), Asker(delay=0.05)
    answers = await asyncio.gather(*(counts.get(ask) for _ in range(5)))
    assert ask.asks == 1 and {a.held for a in answers} == {1}
    assert (await counts.get(ask)).held == 1 and ask.asks == 1


async def test_a_stale_count_is_asked_again():
    counts, ask = FreshCounts(fresh_seconds=0.05), Asker()
    await counts.get(ask)
    await asyncio.sleep(0.06)
    assert (await counts.get(ask)).held == 2


async def test_a_change_here_forgets_the_count_and_one_asked_before_it_is_not_kept():
    counts, ask = FreshCounts(fresh_seconds=60), Asker(delay=0.05)
    await counts.get(ask)
    counts.forget()
    assert (await counts.get(ask)).held == 2
    counts.forget()
    under_way = asyncio.ensure_future(counts.get(ask))  # asked before the change, answered after it
    await asyncio.sleep(0.01)
    counts.forget()
    assert (await under_way).held == 3
    assert (await counts.get(ask)).held == 4 and ask.asks == 4


async def test_a_failed_ask_is_every_askers_error_and_the_next_asks_again():
    counts, ask = FreshCounts(fresh_seconds=60), Asker()

    async def failing():
        raise RuntimeError("orders did not answer")

    results = await asyncio.gather(counts.get(failing), counts.get(failing), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert (await counts.get(ask)).held == 1
