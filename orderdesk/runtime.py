"""A service process: database, NATS, outbox relay, consumers and one grpc.aio server.

Every service's __main__ reads like this:

    async def main():
        rt = ServiceRuntime("orders", MIGRATIONS)
        await rt.start()
        rt.add_servicer(orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersApi(...), "OrdersService")
        rt.subscribe(Subscription("orders-shipment-events", "orderdesk.shipment.>", handler))
        await rt.serve()

    run(main)

`serve()` runs until SIGTERM/SIGINT, then: health NOT_SERVING, stop the gRPC
server with a grace period, stop consumers and tasks, flush the outbox, drain
NATS, close the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from orderdesk import access, clock, errors, events, leases, logs, metrics, migrations, ports, rpc, tls
from orderdesk.aio import within
from orderdesk.config import NatsCredentials, Settings, grpc_target, nats_servers
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.db import Database
from orderdesk.heap import settle_heap
from orderdesk.outbox import OutboxRelay
from orderdesk.profiling import profiled

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.js import JetStreamContext

GRACE_SECONDS = 5.0
PACKAGE = "orderdesk.v1"
Job = Callable[[], Coroutine[Any, Any, None]]  # an async function run as a task of its own
T = TypeVar("T")


def _started(value: T | None, what: str) -> T:
    if value is None:
        raise RuntimeError(f"the runtime's {what} exists only after start()")
    return value


class ServiceRuntime:
    def __init__(self, name: str, migrations_dir: Path | None):
        self.name = name
        self.settings = Settings.from_env(name)
        clock.start_at(
            self.settings.clock_at, self.settings.clock_since
        )  # real time unless a test or demo set ORDERDESK_CLOCK_AT
        self.log = logs.setup(name)
        tls.announce(name, self.settings.tls, self.log)
        self.migrations_dir = migrations_dir
        # Made by start(); the properties below refuse to hand them out before.
        self._db: Database | None = None
        self._nc: Nats | None = None
        self._js: JetStreamContext | None = None
        self._relay: OutboxRelay | None = None
        self.server = grpc.aio.server(
            interceptors=[Authorize(name, self.settings.tls), ErrorsAndMetrics(name)],
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 * 1024 * 1024)],
        )
        self.health = health_async.HealthServicer()
        self._service_names: list[str] = []
        self._consumers: list[EventConsumer] = []
        self._tasks: list[Job] = []
        self._running: list[asyncio.Task] = []
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stop = asyncio.Event()
        self._closing = False
        self._after_reconnect: list[Callable[[], None]] = []
        self._health_server: grpc.aio.Server | None = None

    @property
    def db(self) -> Database:
        return _started(self._db, "database")

    @property
    def nc(self) -> Nats:
        return _started(self._nc, "NATS connection")

    @property
    def js(self) -> JetStreamContext:
        return _started(self._js, "JetStream context")

    @property
    def relay(self) -> OutboxRelay:
        return _started(self._relay, "outbox relay")

    # --- start-up ----------------------------------------------------------
    async def start(self) -> None:
        self._db = Database(self.settings.database_url)
        if self.migrations_dir is not None:
            await migrations.upgrade(self._db.engine, self.migrations_dir)
        await self.connect_nats()
        self._relay = OutboxRelay(self._db, self.js, self.name, nc=self.nc)
        # Pokes sent while NATS was away are lost and pull requests may be: the loops do not wait for their
        # safety-net polls (orderdesk/outbox.py, orderdesk/consumers.py) to notice.
        self.after_reconnect(self._relay.wakeup.poke)

    async def connect_nats(self) -> None:
        import nats

        async def _disconnected():
            if not self._closing:
                self.log.warning("nats disconnected")

        async def _reconnected():
            self.log.info("nats reconnected")
            for callback in self._after_reconnect:
                callback()

        self._nc = nc = await nats.connect(
            nats_servers(self.settings.nats_url),  # a cluster: every node, reconnecting to another
            name=f"orderdesk-{self.name}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            disconnected_cb=_disconnected,
            reconnected_cb=_reconnected,
            **NatsCredentials.from_env().connect_options(self.name),  # its own user (orderdesk/natsauth.py)
        )
        self._js = js = nc.jetstream(timeout=5)
        await events.ensure_streams(js)

    def channel(self, peer: str) -> grpc.aio.Channel:
        """A cached channel to another service (deadlines are set per call)."""
        if peer not in self._channels:
            target, options = grpc_target(self.settings.peers[peer])  # replicas: round robin over them
            self._channels[peer] = tls.aio_channel(
                target, self.settings.tls, peer=peer, options=[*options, ("grpc.enable_retries", 1)]
            )
        return self._channels[peer]

    def add_servicer(self, add_to_server, servicer, service_name: str) -> None:
        add_to_server(servicer, self.server)
        self._service_names.append(f"{PACKAGE}.{service_name}")

    def after_reconnect(self, callback: Callable[[], None]) -> None:
        """`callback()` whenever the NATS connection comes back: a loop woken by pokes over NATS (which may
        have been lost meanwhile) or a long poll (whose pull request may have been) does its work now."""
        self._after_reconnect.append(callback)

    def consumer(self, subscription: Subscription) -> EventConsumer:
        """A durable consumer the caller runs (e.g. under a lease); re-fetches after a NATS reconnect."""
        consumer = EventConsumer(self.db, self.js, subscription)
        self.after_reconnect(consumer.refetch)
        return consumer

    def subscribe(self, *subscriptions: Subscription) -> None:
        """Durable consumers for these subscriptions, started with the server."""
        self._consumers += [self.consumer(subscription) for subscription in subscriptions]

    def add_task(self, task: Job) -> None:
        """A background loop (e.g. the allocation worker) that runs until shutdown."""
        self._tasks.append(task)

    def add_singleton(self, job: str, task: Job, on_wake: Callable[[bytes], None]) -> leases.Wakeup:
        """A background loop that ONE replica runs at a time (the holder of lease `job`, see orderdesk.leases).

        Returns the job's Wakeup: `poke()` from any replica wakes the holder (`on_wake` runs there)."""
        lease = leases.for_database(self.settings.database_url, job)
        wakeup = leases.Wakeup(self.nc, job, on_wake, lease)

        async def singleton() -> None:
            await wakeup.start()
            await leases.run_while_held(lease, task, service=self.name)

        singleton.__name__ = job
        self._tasks.append(singleton)
        return wakeup

    # --- running -----------------------------------------------------------
    async def serve(self) -> None:
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if self.settings.grpc_reflection:  # off by default: the API is in protos/, not told to any caller
            reflection.enable_server_reflection(
                [
                    *self._service_names,
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                    reflection.SERVICE_NAME,
                ],
                self.server,
            )
        try:
            tls.add_port(self.server, self.settings.grpc_addr, self.settings.tls)
        except RuntimeError as exc:  # grpc says only "failed to bind": say what holds the port
            raise ports.bind_error(self.settings.grpc_addr, exc) from None
        self._health_server = await self._serve_health_alone()
        metrics.serve(self.settings.metrics_port)
        for consumer in self._consumers:
            await consumer.start()
        await self.server.start()
        self._running = [asyncio.create_task(self.relay.run(), name="outbox-relay")]
        self._running += [asyncio.create_task(c.run(), name=c.sub.durable) for c in self._consumers]
        self._running += [asyncio.create_task(t(), name=getattr(t, "__name__", "task")) for t in self._tasks]
        for name in ("", *self._service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        settle_heap()
        self.log.info(
            "serving",
            extra=logs.fields(addr=self.settings.grpc_addr, metrics_port=self.settings.metrics_port),
        )
        await self._stop.wait()
        await self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    async def _serve_health_alone(self) -> grpc.aio.Server | None:
        """ORDERDESK_HEALTH_PORT: the health service (the same answers) on a plaintext port of its own, for the
        kubelet's gRPC probes, which cannot speak mTLS. Nothing else is served there."""
        if not self.settings.health_port:
            return None
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        addr = f"{self.settings.grpc_addr.rpartition(':')[0] or '0.0.0.0'}:{self.settings.health_port}"
        try:  # plaintext on purpose: health alone, its answers tell nothing a probe may not know
            tls.add_port(server, addr, tls.TlsSettings())
        except RuntimeError as exc:
            raise ports.bind_error(addr, exc) from None
        await server.start()
        return server

    async def shutdown(self) -> None:
        self.log.info("shutting down")
        await self.health.enter_graceful_shutdown()
        await self.server.stop(GRACE_SECONDS)
        if self._health_server is not None:
            await self._health_server.stop(0)
        for consumer in self._consumers:
            consumer.stop()
        self.relay.stop()
        held = self.relay.may_flush
        for task in self._running:
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        try:  # one last flush so a clean stop leaves nothing behind (the lease holder's job under replicas)
            if held:
                await within(self.relay.publish_pending(), 5)
        except Exception as exc:
            self.log.warning("outbox not flushed at shutdown (the next start publishes it): %s", exc)
        for ch in self._channels.values():
            await ch.close()
        # Consumers are stopped and the outbox flushed: nothing left to drain, so just close.
        self._closing = True
        try:
            await within(self.nc.close(), 5)
        except Exception as exc:
            self.log.warning("nats close: %s", exc)
        await self.db.close()
        self.log.info("stopped")


class Authorize(grpc.aio.ServerInterceptor):
    """Under mTLS, lets a call through only when the caller's identity (its certificate's common name) may call
    the method by the one access table (orderdesk/access.py); otherwise PERMISSION_DENIED naming both, counted
    in orderdesk_rpc_denied_total. Without TLS there is no identity to check: every call passes (plaintext
    development and tests with fake servers; the process warned at start-up)."""

    def __init__(self, component: str, settings: tls.TlsSettings):
        self.enabled = settings.enabled
        self.log = logging.getLogger(f"{component}.grpc")

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or not self.enabled:
            return handler
        method = handler_call_details.method
        check = self._check
        if handler.unary_unary is not None or handler.stream_unary is not None:
            inner = handler.unary_unary or handler.stream_unary

            async def unary(request, context):
                await check(context, method)
                return await inner(request, context)

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary is not None
                else grpc.stream_unary_rpc_method_handler
            )
            return make(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        inner_stream = handler.unary_stream or handler.stream_stream

        async def stream(request, context):
            await check(context, method)
            answers = inner_stream(request, context)
            if inspect.isasyncgen(answers):
                async for answer in answers:
                    yield answer
            else:  # a handler that writes with context.write (the health service's Watch)
                await answers

        make_stream = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream is not None
            else grpc.stream_stream_rpc_method_handler
        )
        return make_stream(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _check(self, context, method: str) -> None:
        caller = tls.caller(context)
        if access.may_call(caller, method):
            return
        metrics.RPC_DENIED.labels(caller or "(no name)", method).inc()
        self.log.warning("refused %s to %r (orderdesk/access.py)", method, caller)
        await context.abort(
            grpc.StatusCode.PERMISSION_DENIED,
            f"identity {caller!r} may not call {method} (the access table, orderdesk/access.py)",
        )


class ErrorsAndMetrics(grpc.aio.ServerInterceptor):
    """Maps domain errors to rich gRPC status, times every call, carries the correlation id."""

    def __init__(self, service: str):
        self.service = service
        self.log = logging.getLogger(f"{service}.grpc")

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        metadata = dict(handler_call_details.invocation_metadata or ())
        cid = metadata.get("x-correlation-id", "")
        service, log = self.service, self.log
        if handler.stream_stream is not None:
            return self._stream_stream(handler, method, cid)
        if handler.unary_stream is not None:
            return self._unary_stream(handler, method, cid)
        if handler.unary_unary is None:
            return handler
        inner = handler.unary_unary

        async def wrapped(request, context):
            token = logs.correlation_id.set(cid or uuid.uuid4().hex)
            started = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except errors.DomainError as exc:
                code = exc.code
                await context.abort_with_status(rpc.to_status(exc))
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception as exc:
                if context.code() not in (None, grpc.StatusCode.OK):  # the servicer aborted on purpose
                    code = context.code().name
                    raise
                code = "INTERNAL"
                log.exception("unhandled error in %s", method)
                await context.abort(grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})")
            finally:
                metrics.GRPC_HANDLED.labels(service, method, code).inc()
                metrics.GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - started)
                logs.correlation_id.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary_stream(self, handler, method: str, cid: str):
        """Server streams (an export): a domain error, before or between messages, ends the stream with
        its status; time and count the whole stream."""
        return grpc.unary_stream_rpc_method_handler(
            self._observed_stream(handler.unary_stream, method, cid, abort_on_error=True),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _stream_stream(self, handler, method: str, cid: str):
        """Streams answer per message (errors travel inside the results); time and count the whole stream."""
        return grpc.stream_stream_rpc_method_handler(
            self._observed_stream(handler.stream_stream, method, cid, abort_on_error=False),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _observed_stream(self, inner, method: str, cid: str, *, abort_on_error: bool):
        """One timed, counted, correlated stream for both streaming kinds; `abort_on_error` ends the stream
        with the error's status (server streams) instead of raising it (bidirectional streams)."""
        service, log = self.service, self.log

        async def wrapped(request, context):
            token = logs.correlation_id.set(cid or uuid.uuid4().hex)
            started = time.perf_counter()
            code = "OK"
            try:
                async for answer in inner(request, context):
                    yield answer
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except Exception as exc:
                if abort_on_error and isinstance(exc, errors.DomainError):
                    code = exc.code
                    await context.abort_with_status(rpc.to_status(exc))
                elif abort_on_error and context.code() not in (None, grpc.StatusCode.OK):
                    code = context.code().name
                    raise
                else:
                    code = "INTERNAL"
                    log.exception("unhandled error in stream %s", method)
                    if not abort_on_error:
                        raise
                    await context.abort(grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__})")
            finally:
                metrics.GRPC_HANDLED.labels(service, method, code).inc()
                metrics.GRPC_LATENCY.labels(service, method).observe(time.perf_counter() - started)
                with contextlib.suppress(ValueError):  # a generator may be closed from another context
                    logs.correlation_id.reset(token)

        return wrapped


def run(main: Job) -> None:
    """Runs a process's main on uvloop. ORDERDESK_PROFILE=<dir> profiles it (orderdesk.profiling)."""
    with profiled():
        try:
            import uvloop

            uvloop.run(main())
        except ImportError:  # pragma: no cover - uvloop is a dependency, but stay runnable without it
            asyncio.run(main())
