"""The fault suite's short form (CI): two replicas of every service on a private PostgreSQL and NATS, a steady
partner load, and kill -9 of orders and of the gateway, NATS down, PostgreSQL restarted, a consumer failing its
first deliveries, one at a time; then the books must balance. The full form is `make faults`."""

from __future__ import annotations

import pytest

from devtools import localservers
from tests.faults.__main__ import short_plan
from tests.faults.suite import report, run_suite

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.mark.skipif(
    localservers.postgres_bin_dir() is None, reason="needs PostgreSQL binaries (a private cluster)"
)
@pytest.mark.timeout(600)
async def test_books_balance_after_faults_with_two_replicas():
    plan = short_plan(replicas=2)
    faults, tally, books, figures = await run_suite(plan, log=print)
    print(report(faults, tally, books, figures, plan.replicas))
    assert [f.name for f in faults] == [
        "kill -9 orders-1",
        "kill -9 gateway",
        "NATS down 3s",
        "PostgreSQL restart (1s down)",
        "shipping-order-allocated fails 2 deliveries",
    ]
    assert all(f.recovered == f.recovered for f in faults), "the suite did not work again after a fault"
    assert books.acknowledged > 100 and len(tally.delivered) > 10 and tally.returned
    assert not books.problems, books.problems
    # Every refund decided became one credit note, and there were refunds to check.
    assert books.credit_notes == books.refunds_decided and books.credit_notes[0] > 0, books.credit_notes
    assert not tally.refused
    # The load's own deadline may cut a few shipments short on a loaded machine; most must get through.
    assert len(tally.operator_gave_up) <= max(2, len(tally.delivered) // 10), tally.operator_gave_up
    assert sum(1 for _, outcome in tally.attempts if outcome == "error") > 0, (
        "the faults were not felt at all"
    )
