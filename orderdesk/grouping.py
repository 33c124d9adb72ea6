"""Group commit: concurrent single requests share one run (one transaction, one downstream call).

A request that finds nothing in flight starts a run at once (the event loop's next turn), with whatever else
has arrived by then: at low load nothing waits. Requests that arrive while a run is in flight queue and go
together as the next run, as many as came (up to `limit`): under load the groups grow by themselves to what
arrives during one run. No timer decides anything. Each caller
gets its own answer, or its own exception; an exception that breaks the run as a whole reaches every caller
in it.

Runs go one after another in a task of their own, so a caller that gives up (its deadline, its client gone)
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
    ):
        """`run(items)` answers every item, in order: its result or the exception that is its answer.
        `name`: its runs and their items are counted under it (orderdesk_group_runs_total, _items_total)."""
        self._run = run
        self._limit = limit
        self._name = name
        self._queued: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task | None = None
        self.runs = 0  # how many runs so far (the tests read it: items per run)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run_queued())
        return await future

    async def _run_queued(self) -> None:
        try:
            while self._queued:
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
            self._runner = None
            for _, future in self._queued:  # stopped while others waited (shutdown): they hear of it
                future.cancel()
            self._queued = []
