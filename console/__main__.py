"""python -m console: the desk console on ORDERDESK_CONSOLE_ADDR (default 127.0.0.1:8090).

Prometheus /metrics on its own port (ORDERDESK_CONSOLE_METRICS_PORT, default 9107). uvicorn with uvloop
and httptools; SIGTERM/SIGINT: stop accepting, finish the requests in flight, close the channels and the store.
"""

from __future__ import annotations

import signal

import uvicorn

from console.app import create_app
from orderdesk import logs, metrics
from orderdesk.config import ConsoleSettings, Settings

GRACE_SECONDS = 10


def listen_address(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return (host.strip("[]") or "0.0.0.0"), int(port)


def main() -> None:
    log = logs.setup("console")
    settings = Settings.from_env("console")
    console_settings = ConsoleSettings.from_env()
    host, port = listen_address(console_settings.addr)
    config = uvicorn.Config(
        create_app(settings, console_settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,  # the access log would carry the sign-in page's query strings; metrics count requests
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    metrics.serve(settings.metrics_port)
    log.info("listening", extra=logs.fields(addr=f"{host}:{port}", metrics_port=settings.metrics_port))
    uvicorn.Server(config).run()
    log.info("stopped")


if __name__ == "__main__":
    main()
