"""Small asyncio helpers every service's background loops share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


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


async def woken(event: asyncio.Event, seconds: float, linger: float) -> bool:
    """`wait_event`, then, if `event` was set, `linger` seconds more: a loop woken by one commit takes what
    else commits meanwhile in the same pass (the outbox relay, the allocator). True if it was set."""
    if not await wait_event(event, seconds):
        return False
    await asyncio.sleep(linger)
    return True


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """`await awaitable`, raising TimeoutError after `seconds`: `asyncio.wait_for` without its 3.11 flaw.

    There, a task cancelled in the turn its awaitable finishes gets the awaitable's result (or exception)
    instead of the cancel: a lease check that fails just as its replica is stopped would go on to take the
    lease again, and whoever awaits the cancelled task would wait forever."""
    async with asyncio.timeout(max(seconds, 0)):
        return await awaitable
