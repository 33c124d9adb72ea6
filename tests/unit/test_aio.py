"""orderdesk.aio.wait_event and within: a background loop's waits that never swallow a cancel."""

import asyncio

import pytest

from orderdesk.aio import wait_event, within


async def test_it_answers_whether_the_event_came():
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 10) is True


async def test_a_cancel_as_the_event_is_set_stops_the_loop():
    """The race that asyncio.wait_for loses on Python 3.11: the event set and the task cancelled in the
    same turn of the loop. The loop must end, every time."""
    for _ in range(200):
        event = asyncio.Event()
        rounds = 0

        async def loop(event: asyncio.Event):
            nonlocal rounds
            while True:
                rounds += 1
                await wait_event(event, 10)
                event.clear()

        task = asyncio.create_task(loop(event))
        await asyncio.sleep(0)  # the loop waits now
        event.set()
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), 1)
        except asyncio.CancelledError:
            pass
        assert task.cancelled(), f"the loop ran on after the cancel ({rounds} rounds)"


async def test_within_answers_or_times_out():
    assert await within(asyncio.sleep(0, "done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await within(asyncio.sleep(10), 0.01)


@pytest.mark.parametrize("outcome", ["result", "exception"])
async def test_a_cancel_as_the_awaited_call_ends_stops_the_loop(outcome):
    """The lease check's race: its query ends (answers or fails: the connection just killed) in the turn
    its replica is stopped. asyncio.wait_for on 3.11 hands the loop that outcome and the loop runs on."""
    for _ in range(200):
        call = asyncio.get_running_loop().create_future()
        rounds = 0

        async def loop(call: asyncio.Future):
            nonlocal rounds
            while True:
                rounds += 1
                try:
                    await within(call, 10)
                except ConnectionError:
                    pass  # a failed check: the job tries again after a pause
                await asyncio.sleep(0.001)

        task = asyncio.create_task(loop(call))
        await asyncio.sleep(0)  # the loop waits now
        if outcome == "result":
            call.set_result(1)
        else:
            call.set_exception(ConnectionError("connection was closed"))
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), 1)
        except (asyncio.CancelledError, TimeoutError):
            pass
        assert task.cancelled(), f"the loop ran on after the cancel ({rounds} rounds)"
