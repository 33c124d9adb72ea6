"""The backup scenario's short form (CI): SQLite, one process per service, a backup under load, every
database deleted, restored, started; the books balance and the orders after the point are the reported
loss. The longer form: python -m tests.faults.backup_restore [--postgres]."""

from __future__ import annotations

import pytest

from tests.faults.backup_restore import report, run_scenario

pytestmark = [pytest.mark.e2e]


@pytest.mark.timeout(300)
async def test_books_balance_after_a_restore_into_destroyed_databases():
    outcome = await run_scenario(rate=6.0, before=8.0, after=4.0, log=print)
    print(report(outcome))
    assert not outcome.problems, outcome.problems
    assert outcome.before > 20, "too little load before the backup to prove anything"
    assert outcome.after > 5 and outcome.expected_loss, "the orders after the point must be the reported loss"
    assert outcome.after == outcome.kept_after + len(outcome.expected_loss)
    assert int(outcome.rearmed.split("; ")[1].split()[0]) > 0, outcome.rearmed  # events published again
