"""Group commit: the first request runs at once, those arriving meanwhile go together, each answered on its own."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk.grouping import GroupCommit


class Recorder:
    def __init__(self, delay: float = 0.01):
        self.groups: list[list[int]] = []
        self.delay = delay
        self.broken = False
        self.running = self.most_at_once = 0

    async def run(self, items: list[int]) -> list[int | BaseException]:
        self.groups.append(items)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        if self.broken:
            raise RuntimeError("the database went away")
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]


async def later(group: GroupCommit, item: int, after: float):
    await asyncio.sleep(after)
    return await group.submit(item)


async def test_a_run_starts_at_once_and_those_arriving_meanwhile_go_together_next():
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    answers = await asyncio.gather(group.submit(0), *[later(group, i, 0.002) for i in (2, 4, 6)])
    assert answers == [0, 20, 40, 60]
    assert recorder.groups == [[0], [2, 4, 6]]
    assert group.runs == 2
    assert await group.submit(8) == 80  # nothing in flight: alone again, at once
    assert recorder.groups[-1] == [8]


async def test_each_caller_gets_its_own_exception_and_a_broken_run_reaches_everyone_in_it():
    recorder = Recorder()
    group = GroupCommit(recorder.run)
    answers = await asyncio.gather(*[group.submit(i) for i in (0, 1, 2)], return_exceptions=True)
    assert answers[0] == 0 and answers[2] == 20
    assert isinstance(answers[1], ValueError) and str(answers[1]) == "odd 1"
    recorder.broken = True
    broken = await asyncio.gather(*[group.submit(i) for i in (4, 6)], return_exceptions=True)
    assert all(isinstance(b, RuntimeError) for b in broken)
    recorder.broken = False
    assert await group.submit(10) == 100  # the next run is not held up by the broken one


async def test_a_group_is_at_most_the_limit():
    recorder = Recorder()
    group = GroupCommit(recorder.run, limit=3)
    await asyncio.gather(group.submit(0), *[later(group, i * 2, 0.002) for i in range(1, 8)])
    assert [len(g) for g in recorder.groups] == [1, 3, 3, 1]


async def test_a_caller_that_gives_up_leaves_the_others_run_alone():
    recorder = Recorder(delay=0.05)
    group = GroupCommit(recorder.run)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    impatient = asyncio.create_task(group.submit(2))
    patient = asyncio.create_task(group.submit(4))
    await asyncio.sleep(0.01)
    impatient.cancel()
    assert await first == 0 and await patient == 40
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert recorder.groups == [[0], [2, 4]]  # what it asked for was still done (its retry is a replay)


async def test_a_named_group_counts_its_runs_and_their_requests():
    from orderdesk import metrics

    def counted() -> tuple[float, float]:
        runs = metrics.GROUP_RUNS.labels("test-group")._value.get()
        return runs, metrics.GROUP_ITEMS.labels("test-group")._value.get()

    recorder = Recorder()
    group = GroupCommit(recorder.run, name="test-group")
    runs, items = counted()
    await asyncio.gather(group.submit(0), *[later(group, i, 0.002) for i in (2, 4, 6)])
    assert recorder.groups == [[0], [2, 4, 6]]
    assert counted() == (runs + 2, items + 4)  # 2 requests per run: what bench.backends prints


async def test_with_two_in_flight_a_full_group_goes_at_once_and_a_partial_one_waits():
    recorder = Recorder(delay=0.05)
    group = GroupCommit(recorder.run, limit=3, in_flight=2)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0.005)
    full = [asyncio.create_task(group.submit(i)) for i in (2, 4, 6)]  # a full group: a second run, now
    await asyncio.sleep(0.005)
    assert recorder.groups == [[0], [2, 4, 6]] and recorder.running == 2
    partial = [asyncio.create_task(group.submit(i)) for i in (8, 10)]  # waits for a run to end
    await asyncio.sleep(0.005)
    assert recorder.groups == [[0], [2, 4, 6]]
    assert await first == 0
    # The first run's end left the second in flight: a runner that is not alone takes only full groups, so
    # the two wait for the second run's end rather than go as a small run beside it.
    await asyncio.sleep(0)
    assert recorder.groups == [[0], [2, 4, 6]]
    assert await asyncio.gather(*full, *partial) == [20, 40, 60, 80, 100]
    assert recorder.groups == [[0], [2, 4, 6], [8, 10]]
    assert recorder.most_at_once == 2


async def test_runs_in_flight_never_exceed_the_bound_and_every_item_is_answered_once():
    recorder = Recorder(delay=0.01)
    group = GroupCommit(recorder.run, limit=4, in_flight=2)
    items = list(range(0, 80, 2))
    answers = await asyncio.gather(*[later(group, i, 0.0005 * n) for n, i in enumerate(items)])
    assert answers == [i * 10 for i in items]
    assert sorted(i for g in recorder.groups for i in g) == items
    assert recorder.most_at_once == 2
    assert all(len(g) <= 4 for g in recorder.groups)


async def test_one_in_flight_is_the_default():
    recorder = Recorder(delay=0.01)
    group = GroupCommit(recorder.run, limit=2)
    await asyncio.gather(*[later(group, i, 0.0005 * n) for n, i in enumerate(range(0, 40, 2))])
    assert recorder.most_at_once == 1
