"""Start-up JetStream requests while a cluster elects a leader or is slow (orderdesk.events.while_jetstream_settles)."""

import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import NoStreamResponseError

from orderdesk import events


async def test_a_request_that_times_out_is_made_again_until_it_answers():
    calls = []

    async def create():
        calls.append(1)
        if len(calls) < 3:
            raise NatsTimeout if len(calls) == 1 else NoStreamResponseError
        return "created"

    assert await events.while_jetstream_settles("consumer x", create, pause=0) == "created"
    assert len(calls) == 3


async def test_it_gives_up_with_the_last_error_after_its_time():
    async def never():
        raise NatsTimeout

    with pytest.raises(NatsTimeout):
        await events.while_jetstream_settles("consumer x", never, within=0.05, pause=0.01)


async def test_any_other_error_is_raised_at_once():
    calls = []

    async def refused():
        calls.append(1)
        raise ValueError("stream name already in use with a different configuration")

    with pytest.raises(ValueError, match="already in use"):
        await events.while_jetstream_settles("stream x", refused, pause=0)
    assert calls == [1]
