"""Returns' receive and inspect use cases against a fake unit of work: saved, published with the
RMA, counted after commit, without a database (the storage is tested in tests/integration/returns)."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from orderdesk import errors
from services.returns.domain import Inspection, OrderedSku, RequestedLine, Return, Status
from services.returns.service import ReturnsService
from services.returns.store import ReturnRepository
from tests.unit.fakes import FakeDatabase

T0 = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 12, 14, 11, 0, tzinfo=dt.UTC)


class FakeReturns:
    """ReturnRepository in memory (the methods receive and inspect use), saves guarded by version."""

    def __init__(self, *rmas: Return):
        self.rows = {r.rma_id: self._stored(r) for r in rmas}

    @staticmethod
    def _stored(ret: Return) -> Return:
        stored = copy.deepcopy(ret)
        stored.changes = []
        return stored

    async def get(self, rma_id: str, partner_id: str = "") -> Return | None:
        found = self.rows.get(rma_id)
        if found is None or (partner_id and found.partner_id != partner_id):
            return None
        loaded = copy.deepcopy(found)
        loaded.loaded_version = loaded.version
        return loaded

    async def save(self, ret: Return) -> None:
        if self.rows[ret.rma_id].version != ret.loaded_version:
            raise errors.Conflict(f"return {ret.rma_id} was changed concurrently; retry")
        self.rows[ret.rma_id] = self._stored(ret)


def authorised_rma() -> Return:
    return Return.authorize(
        rma_id="RMA-1",
        order_id="ORD-1",
        partner_id="P1",
        ordered={"A": OrderedSku("A", delivered=3, unit_price=Decimal("12.50"), warehouse="WH-HAM")},
        authorised={},
        requested=[RequestedLine("A", 2, "damaged")],
        resolution="refund",
        at=T0,
        actor="P1",
    )


def setup() -> tuple[ReturnsService, FakeDatabase, FakeReturns]:
    rmas = FakeReturns(authorised_rma())
    db = FakeDatabase({ReturnRepository: rmas})
    return ReturnsService(db, orders=None, timeout=1.0, clock=lambda: LATER), db, rmas


def counted(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_receive_then_inspect_publishes_each_step_with_the_rma_and_counts_the_refund():
    service, db, rmas = setup()
    refunded_before = counted("orderdesk_refunded_amount_total")
    steps_before = counted("orderdesk_return_steps_total", {"step": "refunded"})

    await service.receive("RMA-1", "P1", "WH-HAM")
    await service.inspect(
        "RMA-1", "P1", [Inspection("A", 1, "restock"), Inspection("A", 1, "scrap")], "WH-HAM"
    )

    stored = rmas.rows["RMA-1"]
    assert (
        stored.status is Status.REFUNDED and stored.refund_amount == Decimal("25.00") and stored.version == 3
    )
    assert [(line.restocked, line.scrapped) for line in stored.lines] == [(1, 1)]
    assert [(e.type, e.aggregate_version, e.order_id, e.actor) for e in db.events] == [
        ("return.received", 2, "ORD-1", "WH-HAM"),
        ("return.refunded", 3, "ORD-1", "WH-HAM"),
    ]
    refunded = getattr(getattr(db.events[1], "return"), "return")  # Event.return.return: the RMA as it now is
    assert (refunded.status, refunded.refund_amount, refunded.version) == ("refunded", "25.00", 3)
    assert counted("orderdesk_return_steps_total", {"step": "refunded"}) == steps_before + 1
    assert counted("orderdesk_refunded_amount_total") == pytest.approx(refunded_before + 25.0)


async def test_receiving_twice_publishes_once():
    service, db, _ = setup()

    await service.receive("RMA-1", "P1", "WH-HAM")
    await service.receive("RMA-1", "P1", "WH-HAM")

    assert [e.type for e in db.events] == ["return.received"]


async def test_another_partners_rma_is_not_found_and_nothing_is_published():
    service, db, rmas = setup()

    with pytest.raises(errors.NotFound):
        await service.receive("RMA-1", "P-OTHER", "WH-HAM")
    assert db.events == [] and rmas.rows["RMA-1"].status is Status.AUTHORIZED
