"""python -m console: the desk console on ORDERDESK_CONSOLE_ADDR (default 127.0.0.1:8090).

Prometheus /metrics on its own port (ORDERDESK_CONSOLE_METRICS_PORT, default 9107). Served as
orderdesk.asgi.serve does it: SIGTERM/SIGINT: stop accepting, finish the requests in flight, close the
channels and the store.
"""

from __future__ import annotations

from console.app import create_app
from orderdesk import asgi, clock, logs
from orderdesk.config import ConsoleSettings, Settings


def main() -> None:
    log = logs.setup("console")
    settings = Settings.from_env("console")
    console_settings = ConsoleSettings.from_env()
    clock.start_at(settings.clock_at, settings.clock_since)  # real time unless a test or demo set it
    asgi.serve(
        create_app(settings, console_settings),
        console_settings.addr,
        log=log,
        metrics_port=settings.metrics_port,
    )


if __name__ == "__main__":
    main()
