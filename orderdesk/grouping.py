"""Group commit: concurrent single requests share one run (one transaction, one downstream call).

A request that finds nothing in flight starts a run at once (the event loop's next turn), with whatever else
has arrived by then: at low load nothing waits. Requests that arrive while a run is in flight queue and go
together as the next run, as many as came (up to `limit`): under load the groups grow by themselves to what
arrives during one run. No timer decides anything. Each caller
gets its own answer, or its own exception; an exception that breaks the run as a whole reaches every caller
in it.

`in_flight` > 1 lets a full group (`limit` queued) go at once while a run is in flight, up to that many runs
at a time, rather than wait for the run's end: on a busy downstream the runs overlap, and each still carries a
full group. A run that finds another in flight takes only full groups, so overlapping never splits the queue
into small runs (that costs more per item than it gains: measured, README "CPU per order").

Runs go in tasks of their own, so a caller that gives up (its deadline, its client gone)
leaves the others' run untouched; what it asked for may still be done, as with any request whose answer was
lost (the caller's idempotency key makes the retry safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from orderdesk import metrics

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[list[R | BaseException]]],
        limit: int = 100,
        *,
        name: str = "",
        in_flight: int = 1,
    ):
        """`run(items)` answers every item, in order: its result or the exception that is its answer.
        `name`: its runs and their items are counted under it (orderdesk_group_runs_total, _items_total).
        `in_flight`: runs at a time at most, the second and later for full groups only."""
        self._run = run
        self._limit = limit
        self._name = name
        self._in_flight = in_flight
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._runners: set[asyncio.Task] = set()
        self.runs = 0  # how many runs so far (the tests read it: items per run)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        runners = self._runners
        if not runners or (len(self._queued) >= self._limit and len(runners) < self._in_flight):
            runners.add(asyncio.create_task(self._run_queued()))
        return await future

    def _takes_next(self) -> bool:
        """Whether a runner goes on with what is queued: anything when it is the only run, else a full group."""
        return bool(self._queued) and (len(self._runners) == 1 or len(self._queued) >= self._limit)

    async def _run_queued(self) -> None:
        try:
            while self._takes_next():
                group, self._queued = self._queued[: self._limit], self._queued[self._limit :]
                self.runs += 1
                if self._name:
                    metrics.child(metrics.GROUP_RUNS, self._name).inc()
                    metrics.child(metrics.GROUP_ITEMS, self._name).inc(len(group))
                try:
                    answers = await self._run([item for item, _ in group])
                    if len(answers) != len(group):
                        raise RuntimeError(f"a group of {len(group)} got {len(answers)} answers")
                except asyncio.CancelledError:
                    for _, future in group:
                        future.cancel()
                    raise
                except Exception as broke:  # the run as a whole: every caller in it hears of it
                    answers = [broke] * len(group)
                for (_, future), answer in zip(group, answers, strict=True):
                    if future.done():  # its caller gave up
                        continue
                    if isinstance(answer, BaseException):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:
            self._runners.discard(asyncio.current_task())
            if not self._runners:  # stopped while others waited (shutdown): they hear of it
                for _, future in self._queued:
                    future.cancel()
                self._queued = []
