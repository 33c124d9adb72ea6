"""python -m gateway: the partner REST API on ORDERDESK_GATEWAY_ADDR (default 127.0.0.1:8080).

Prometheus /metrics is served on its own port (ORDERDESK_GATEWAY_METRICS_PORT, default 9100), like the
services', never on the partners' port.

uvicorn with uvloop and httptools. SIGTERM/SIGINT: stop accepting, finish the
requests in flight (up to GRACE_SECONDS), close the gRPC channels and the database.
"""

from __future__ import annotations

import signal

import uvicorn

from gateway.app import create_app
from orderdesk import clock, logs, metrics
from orderdesk.config import GatewayEdgeSettings, Settings, env

GRACE_SECONDS = 10


def listen_address() -> tuple[str, int]:
    host, _, port = env("ORDERDESK_GATEWAY_ADDR", "127.0.0.1:8080").rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def main() -> None:
    log = logs.setup("gateway")
    settings = Settings.from_env("gateway")
    edge = GatewayEdgeSettings.from_env()
    clock.start_at(
        settings.clock_at, settings.clock_since
    )  # real time unless a test or demo set ORDERDESK_CLOCK_AT
    host, port = listen_address()
    config = uvicorn.Config(
        create_app(settings, edge=edge),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        # Beyond this many connections and requests at once uvicorn answers 503 rather than queue without
        # bound; an idle keep-alive connection is closed after keepalive_seconds. (h11/httptools close a
        # connection whose request headers exceed their limits; the body is bounded per route by the
        # middleware, and partners' streams by their cap.)
        limit_concurrency=edge.limit_concurrency or None,
        timeout_keep_alive=edge.keepalive_seconds,
    )
    # uvicorn handles SIGTERM/SIGINT itself and re-raises the signal once it has shut down;
    # these no-op handlers make that final re-raise a clean exit (status 0) instead of a kill.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    metrics.serve(settings.metrics_port)
    log.info("listening", extra=logs.fields(addr=f"{host}:{port}", metrics_port=settings.metrics_port))
    uvicorn.Server(config).run()
    log.info("stopped")


if __name__ == "__main__":
    main()
