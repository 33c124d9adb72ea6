"""An ASGI process of orderdesk (the partner API, the desk console): the middleware around every request,
the start-up that opens its store and its channels to the services, its readiness check, and how uvicorn
serves it. Each process adds only what is its own (the gateway's keys and rate limits, the console's pages).

Plain ASGI middleware (not BaseHTTPMiddleware) because it runs on the hot path and must not copy the
request. It sits outside routing, so it reads the matched route's *template* after the app has routed
("/v1/orders/{order_id}"), never the raw path: the metrics' labels stay bounded.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException

from orderdesk import logs, metrics, tls
from orderdesk.aio import wait_event
from orderdesk.clients import Services
from orderdesk.heap import settle_heap
from orderdesk.logs import correlation_id_from
from orderdesk.parsing import whole_number
from orderdesk.profiling import profiled

UNMATCHED_ROUTE = "unmatched"  # bounded label for paths no route serves
GRACE_SECONDS = 10  # SIGTERM: the requests in flight may finish for this long
Headers = list[tuple[bytes, bytes]]


class BodyTooLarge(HTTPException):
    """A request body over the path's limit (413). Starlette's HTTPException, so FastAPI re-raises it as is
    while reading a body (any other error there becomes a 400) and the app's handler answers it."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit} bytes")


class RequestMiddleware:
    """Around every HTTP request: the correlation id (the caller's X-Correlation-Id, or a new one) in the
    logs and on the answer, the path's body limit (a declared length over it is refused before a byte is
    read), the process's request metrics by route template, and a last-resort 500 for an unhandled error.

    A process subclasses it and names `log`, `requests`, `latency`, `methods`, `body_limit`, `failure`;
    `response_headers` for headers every answer carries, and `handle` to act before the app (the gateway
    authenticates there, and adds headers to `headers`, which every answer then carries)."""

    log: logging.Logger
    requests: Counter  # labels: method, route, status
    latency: Histogram  # labels: method, route
    methods: frozenset[str]  # every other method is counted as OTHER
    # True: every answer says its time so far in `Server-Timing: app;dur=<ms>` (the console's pages are sent
    # whole, so it is all of it; read by `make bench`, bench/console.py). A duration only.
    server_timing = False

    def __init__(self, app):
        self.app = app
        # The metrics' children by their labels (bounded, as the labels are): labels() validates and locks on
        # every call, twice a request.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    def body_limit(self, path: str) -> int:
        raise NotImplementedError

    def failure(self) -> tuple[str, bytes]:
        """The last-resort answer's media type and body (status 500)."""
        raise NotImplementedError

    def response_headers(self, scope) -> Headers:
        return []

    async def handle(self, scope, receive, send, headers: Headers) -> None:
        await self.app(scope, receive, send)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = scope.get("headers") or []
        cid = correlation_id_from(request_headers)
        token = logs.correlation_id.set(cid)
        started = time.perf_counter()
        limit = self.body_limit(scope["path"])
        declared = whole_number(header(request_headers, b"content-length") or "")
        state = {
            "status": 500,
            "started": False,
            "received": 0,
            "over": declared is not None and declared > limit,
        }

        async def limited_receive():
            if state["over"]:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    raise BodyTooLarge(limit)
            return message

        extra_headers: Headers = [*self.response_headers(scope), (b"x-correlation-id", cid.encode())]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
                if self.server_timing:
                    took = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                    message["headers"].append((b"server-timing", took.encode()))
            await send(message)

        try:
            await self.handle(scope, limited_receive, send_with_headers, extra_headers)
        except Exception:
            self.log.exception(
                "unhandled error", extra=logs.fields(method=scope["method"], route=_route(scope))
            )
            if state["started"]:
                raise
            await send_body(send_with_headers, 500, *self.failure())
        finally:
            route = _route(scope)
            method = scope["method"] if scope["method"] in self.methods else "OTHER"  # labels stay bounded
            counted = (method, route, str(state["status"]))
            if (counter := self._counted.get(counted)) is None:
                counter = self._counted[counted] = self.requests.labels(*counted)
            counter.inc()
            if (timer := self._timed.get(counted[:2])) is None:
                timer = self._timed[counted[:2]] = self.latency.labels(method, route)
            timer.observe(time.perf_counter() - started)
            logs.correlation_id.reset(token)


def header(headers: Headers, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k == name), None)


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


async def send_body(send, status: int, media_type: str, body: bytes) -> None:
    """A whole answer at once, from a middleware (no response object there)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- start-up and readiness --------------------------------------------------------------------------------------
def lifespan(
    name: str,
    peers: Mapping[str, str],
    *,
    store: Callable[[], Awaitable[Any]],
    services: Callable[[], Services],
    started: Callable[[Any], Awaitable[Callable[[], Awaitable[Any]] | None]] | None = None,
):
    """The app's lifespan: its own store (`store()`, an orderdesk.db.OwnStore) in app.state.store, its
    channels to the services (`services()`) in app.state.services, `await started(app.state)` once both
    are there (it may return what to await at the end: its own servers or channels to close); all of it
    closed at the end, in reverse."""
    log = logging.getLogger(name)

    @asynccontextmanager
    async def run(app) -> AsyncIterator[None]:
        own_store = await store()
        clients = services()
        tls.announce(name, clients.tls, log)
        app.state.store = own_store
        app.state.services = clients
        stop = await started(app.state) if started is not None else None
        settle_heap()  # the gateway's full collections walked start-up's objects: ~13% of its CPU under load
        log.info(f"{name} ready", extra=logs.fields(peers=peers))
        try:
            yield
        finally:
            if stop is not None:
                await stop()
            await clients.close()
            await own_store.close()

    return run


async def readiness(state) -> tuple[bool, dict[str, str]]:
    """Whether the process is ready (/healthz), and each check's answer: every service's gRPC health
    (SERVING, NOT_SERVING, UNKNOWN or UNREACHABLE) and, as "store", the process's own database."""
    checks = await state.services.health()
    try:
        await state.store.ping()
        checks["store"] = "SERVING"
    except Exception:
        checks["store"] = "UNREACHABLE"
    return all(v == "SERVING" for v in checks.values()), checks


# --- serving -----------------------------------------------------------------------------------------------------
def listen_address(addr: str) -> tuple[str, int]:
    """ "host:port" ("[::1]:8080" for IPv6; ":8080" for every address) as uvicorn takes it."""
    host, _, port = addr.rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port)


class Server(uvicorn.Server):
    """uvicorn's server, waking once a second (to keep its Date header current) instead of ten times: its main
    loop looks for the exit signal every 0.1 s, here the signal itself wakes it."""

    TICK_SECONDS = 1.0

    _exit: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._exit = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # a multiple of 10: the Date header is refreshed every tick
            await wait_event(self._exit, self.TICK_SECONDS)
            counter = (counter + 10) % 864000

    def handle_exit(self, sig: int, frame) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._exit is not None:  # from a signal handler: the thread-safe way
            self._loop.call_soon_threadsafe(self._exit.set)


def serve(app, addr: str, *, log: logging.Logger, metrics_port: int, **options) -> None:
    """Serves the app on `addr` until SIGTERM/SIGINT: uvicorn with uvloop and httptools; on the signal it
    stops accepting and lets the requests in flight finish (up to GRACE_SECONDS), then the lifespan closes
    the channels and the store. Prometheus /metrics on its own port. `options`: more of uvicorn.Config's."""
    host, port = listen_address(addr)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,  # it would log query strings; the metrics count requests
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        **options,
    )
    # uvicorn handles SIGTERM/SIGINT itself and re-raises the signal once it has shut down;
    # these no-op handlers make that final re-raise a clean exit (status 0) instead of a kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    metrics.serve(metrics_port)
    log.info("listening", extra=logs.fields(addr=f"{host}:{port}", metrics_port=metrics_port))
    with profiled():  # ORDERDESK_PROFILE=<dir>: the gateway's or the console's profile too
        Server(config).run()
    log.info("stopped")
