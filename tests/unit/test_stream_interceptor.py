"""Both streaming kinds go through one observed stream (orderdesk.runtime.ErrorsAndMetrics._observed_stream):
counted and timed with their outcome; a server stream ends with the error's status, a bidirectional one raises."""

import grpc
import pytest

from orderdesk import errors, metrics
from orderdesk.runtime import ErrorsAndMetrics


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self):
        self.aborted_with = None

    def code(self):
        return None

    async def abort_with_status(self, status):
        self.aborted_with = status.code
        raise Aborted

    async def abort(self, code, details):
        self.aborted_with = code
        raise Aborted


def handled(method: str, code: str) -> float:
    return metrics.GRPC_HANDLED.labels("unit-streams", method, code)._value.get()


async def answers_then(error: Exception):
    yield "first"
    raise error


async def drain(stream) -> list:
    got = []
    async for answer in stream:
        got.append(answer)
    return got


async def test_a_server_stream_ends_with_the_domain_errors_status_and_counts_it():
    wrapped = ErrorsAndMetrics("unit-streams")._observed_stream(
        lambda request, context: answers_then(errors.NotFound("no such archive")),
        "ExportOne",
        "",
        abort_on_error=True,
    )
    context, before = FakeContext(), handled("ExportOne", "NOT_FOUND")
    got = []
    with pytest.raises(Aborted):
        async for answer in wrapped(None, context):
            got.append(answer)
    assert got == ["first"] and context.aborted_with == grpc.StatusCode.NOT_FOUND
    assert handled("ExportOne", "NOT_FOUND") == before + 1


async def test_a_server_streams_unexpected_error_is_internal():
    wrapped = ErrorsAndMetrics("unit-streams")._observed_stream(
        lambda request, context: answers_then(RuntimeError("bug")), "ExportTwo", "", abort_on_error=True
    )
    context, before = FakeContext(), handled("ExportTwo", "INTERNAL")
    with pytest.raises(Aborted):
        await drain(wrapped(None, context))
    assert context.aborted_with == grpc.StatusCode.INTERNAL
    assert handled("ExportTwo", "INTERNAL") == before + 1


async def test_a_bidirectional_streams_error_is_raised_and_counted_internal():
    wrapped = ErrorsAndMetrics("unit-streams")._observed_stream(
        lambda requests, context: answers_then(errors.NotFound("x")), "Both", "", abort_on_error=False
    )
    context, before = FakeContext(), handled("Both", "INTERNAL")
    with pytest.raises(errors.NotFound):
        await drain(wrapped(iter(()), context))
    assert context.aborted_with is None
    assert handled("Both", "INTERNAL") == before + 1
