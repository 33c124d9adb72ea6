"""Small asyncio helpers every service's background loops share."""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Waits until `event` is set or `seconds` have passed; True if it was set.

    Not `asyncio.wait_for(event.wait(), seconds)`: on Python 3.11 that returns normally when the task
    is cancelled just as the event is set, swallowing the cancel, so a loop told to stop (shutdown, a
    lost lease) would run on. `asyncio.timeout` tells an outside cancel from its own."""
    try:
        async with asyncio.timeout(max(seconds, 0)):
            await event.wait()
        return True
    except TimeoutError:
        return False
