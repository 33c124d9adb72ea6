"""orderdesk.asgi: the middleware every ASGI process wraps its app in (here around a bare ASGI app), and the
listening address."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from orderdesk import asgi

REGISTRY = CollectorRegistry()


class Middleware(asgi.RequestMiddleware):
    log = logging.getLogger("test.http")
    requests = Counter("t_requests", "", ["method", "route", "status"], registry=REGISTRY)
    latency = Histogram("t_latency", "", ["method", "route"], registry=REGISTRY)
    methods = frozenset({"GET", "POST"})

    def body_limit(self, path: str) -> int:
        return 10

    def failure(self) -> tuple[str, bytes]:
        return "text/plain", b"failed"

    def response_headers(self, scope):
        return [(b"x-process", b"test")]


def call(app, method="POST", body=b"", headers=()):
    """The answer's status, headers and body, and what the app read of the request."""
    sent: list[dict] = []
    read: list[object] = []
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return chunks.pop(0)

    async def send(message):
        sent.append(message)

    async def reading_app(scope, receive, send):
        try:
            read.append((await receive())["body"])
        except asgi.BodyTooLarge as exc:
            read.append(exc.status_code)
        await app(scope, receive, send)

    scope = {"type": "http", "method": method, "path": "/x", "headers": list(headers), "query_string": b""}
    asyncio.run(Middleware(reading_app)(scope, receive, send))
    start, answer = sent
    return start["status"], dict(start["headers"]), answer["body"], read


async def ok(scope, receive, send):
    await asgi.send_body(send, 200, "text/plain", b"ok")


async def broken(scope, receive, send):
    raise RuntimeError("a bug")


def count(method: str, status: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "t_requests_total", {"method": method, "route": asgi.UNMATCHED_ROUTE, "status": status}
        )
        or 0.0
    )


def test_an_answer_carries_the_callers_correlation_id_and_the_process_headers():
    status, headers, body, read = call(ok, body=b"small", headers=[(b"x-correlation-id", b"abc-1")])
    assert (status, body, read) == (200, b"ok", [b"small"])
    assert headers[b"x-correlation-id"] == b"abc-1" and headers[b"x-process"] == b"test"


def test_a_body_over_the_limit_is_refused_declared_or_not():
    declared = [(b"content-length", b"11")]
    assert call(ok, body=b"0123456789a", headers=declared)[3] == [413]  # not a byte read
    assert call(ok, body=b"0123456789a")[3] == [413]
    assert call(ok, body=b"0123456789")[3] == [b"0123456789"]


def test_an_unhandled_error_is_the_processs_500_and_counted(caplog):
    before = count("OTHER", "500")
    with caplog.at_level(logging.ERROR, "test.http"):
        status, headers, body, _ = call(broken, method="PATCH")
    assert (status, body, headers[b"content-type"]) == (500, b"failed", b"text/plain")
    assert b"x-correlation-id" in headers and "unhandled error" in caplog.text
    assert count("OTHER", "500") == before + 1


@pytest.mark.parametrize(
    ("addr", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:9", ("::1", 9)), (":8090", ("0.0.0.0", 8090))],
)
def test_listen_address(addr, expected):
    assert asgi.listen_address(addr) == expected


async def test_the_lifespan_puts_start_up_s_heap_out_of_the_collector_s_sight():
    """Once the app has started, what start-up made is frozen (gc.freeze): the gateway's full collections
    no longer walk it; the lifespan's end still closes what it opened."""
    import gc
    from types import SimpleNamespace

    closed: list[str] = []

    class Closing:
        def __init__(self, name: str) -> None:
            self.name, self.tls = name, SimpleNamespace(enabled=False)

        async def close(self) -> None:
            closed.append(self.name)

    gc.unfreeze()
    run = asgi.lifespan(
        "test", {}, store=lambda: asyncio.sleep(0, Closing("store")), services=lambda: Closing("clients")
    )
    app = SimpleNamespace(state=SimpleNamespace())
    try:
        async with run(app):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert closed == ["clients", "store"]
