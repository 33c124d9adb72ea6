"""The leased jobs' loop (orderdesk.leases.PeriodicPasses): a pass on wake, a failed pass retried sooner."""

import asyncio
import contextlib
import logging

from orderdesk.leases import PeriodicPasses


class Counting(PeriodicPasses):
    what = "counting"
    logger = logging.getLogger("tests.counting")
    FIRST_PASS_SECONDS = 60.0
    RETRY_SECONDS = 0.01

    def __init__(self, failures: int):
        super().__init__()
        self.failures, self.passes = failures, 0

    def interval_seconds(self) -> float:
        return 60.0

    async def one_pass(self) -> int:
        self.passes += 1
        if self.passes <= self.failures:
            raise RuntimeError("database away")
        return self.passes


async def _until(condition) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


async def test_a_wake_runs_a_pass_now_and_a_failed_pass_is_retried_sooner(caplog):
    job = Counting(failures=2)
    task = asyncio.create_task(job.run())
    try:
        await asyncio.sleep(0.05)
        assert job.passes == 0  # the first pass waits (60 s) unless woken
        with caplog.at_level(logging.WARNING, logger="tests.counting"):
            job.wake()
            await _until(lambda: job.passes == 3)  # two failures, each retried after RETRY_SECONDS
        assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["counting pass failed"] * 2
        await asyncio.sleep(0.05)
        assert job.passes == 3  # after a good pass: the interval (60 s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
