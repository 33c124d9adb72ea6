"""The fault suite's cluster mode, short: a three-node JetStream cluster (streams R3), one process per service
on SQLite, a light partner load; kill -9 of the stream's leader node and back, then of another node and back;
then the books must balance and no acknowledged order may be lost. The full form is
`make faults NATS_CLUSTER=1`."""

from __future__ import annotations

import pytest

from devtools import localservers
from tests.faults.cluster import cluster_plan, run_cluster_suite
from tests.faults.suite import report

pytestmark = [pytest.mark.e2e]


@pytest.mark.skipif(localservers.nats_server_binary() is None, reason="needs the nats-server binary")
@pytest.mark.timeout(300)
async def test_books_balance_when_nats_nodes_are_killed_one_after_another():
    plan = cluster_plan(replicas=1, short=True)
    faults, tally, books, figures = await run_cluster_suite(plan, log=print)
    print(report(faults, tally, books, figures, plan.replicas))
    assert [f.name for f in faults] == [
        "kill -9 NATS node (stream leader), 2s",
        "kill -9 another NATS node (most clients), 2s",
    ]
    assert all(f.recovered == f.recovered for f in faults), (
        "no new order was allocated after a node came back"
    )
    assert books.acknowledged > 20, "too little load to show anything"
    assert figures["nats_disconnects"] > 0, (
        "no process was connected to a killed node: the kills were not felt"
    )
    assert not books.lost and not books.duplicated, (books.lost, books.duplicated)
    assert not books.problems, books.problems
    assert not tally.refused, tally.refused[:5]
    # A request that failed was retried with its Idempotency-Key; every one was answered in the end.
    assert sum(f.acknowledged for f in faults) > 0 and all(f.requests >= f.acknowledged for f in faults)
