"""python -m gateway: the partner REST API on ORDERDESK_GATEWAY_ADDR (default 127.0.0.1:8080).

Prometheus /metrics is served on its own port (ORDERDESK_GATEWAY_METRICS_PORT, default 9100), like the
services', never on the partners' port.

Served as orderdesk.asgi.serve does it (uvicorn with uvloop and httptools). SIGTERM/SIGINT: stop accepting,
finish the requests in flight (up to orderdesk.asgi.GRACE_SECONDS), close the gRPC channels and the database.
"""

from __future__ import annotations

from gateway.app import create_app
from orderdesk import asgi, clock, logs
from orderdesk.config import GatewayEdgeSettings, Settings, env


def main() -> None:
    log = logs.setup("gateway")
    settings = Settings.from_env("gateway")
    edge = GatewayEdgeSettings.from_env()
    clock.start_at(
        settings.clock_at, settings.clock_since
    )  # real time unless a test or demo set ORDERDESK_CLOCK_AT
    asgi.serve(
        create_app(settings, edge=edge),
        env("ORDERDESK_GATEWAY_ADDR", "127.0.0.1:8080"),
        log=log,
        metrics_port=settings.metrics_port,
        # Beyond this many connections and requests at once uvicorn answers 503 rather than queue without
        # bound; an idle keep-alive connection is closed after keepalive_seconds. (h11/httptools close a
        # connection whose request headers exceed their limits; the body is bounded per route by the
        # middleware, and partners' streams by their cap.)
        limit_concurrency=edge.limit_concurrency or None,
        timeout_keep_alive=edge.keepalive_seconds,
    )


if __name__ == "__main__":
    main()
