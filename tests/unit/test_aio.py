"""orderdesk.aio.wait_event: a background loop's wait that never swallows a cancel."""

import asyncio

from orderdesk.aio import wait_event


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
