"""The console's middleware around every request (orderdesk.asgi.RequestMiddleware: correlation id, body size
limit, metrics by route template, last-resort 500 page) with the security headers of every page (and Server-Timing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from orderdesk import metrics
from orderdesk.asgi import RequestMiddleware

BODY_LIMIT = 1024 * 1024  # 1 MiB: any form of the console
UPLOAD_LIMITS: dict[str, int] = {  # path prefix -> limit, for screens that take a file (add yours here)
    "/orders/upload": 3
    * 1024
    * 1024,  # a customer's order sheet (2 MiB, order_entry.MAX_SHEET_BYTES) and the form
}
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    # Everything comes from the console itself: no CDN, no inline script.
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
]
NO_STORE = (b"cache-control", b"no-store")  # pages show what one person may see: never cached
ERROR_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Error</title>"
    b"<h1>Something went wrong</h1><p>The request failed; try again. If it keeps failing, "
    b"tell your administrator the time it happened.</p></html>"
)
TOO_LARGE_PAGE = b"<!doctype html><title>Too large</title><p>Too large."
HTML = "text/html; charset=utf-8"


def body_limit_for(path: str) -> int:
    return next((limit for prefix, limit in UPLOAD_LIMITS.items() if path.startswith(prefix)), BODY_LIMIT)


class ConsoleMiddleware(RequestMiddleware):
    log = logging.getLogger("console.http")
    requests = metrics.CONSOLE_REQUESTS
    latency = metrics.CONSOLE_LATENCY
    methods = frozenset({"GET", "HEAD", "POST"})
    server_timing = True

    def __init__(self, app, after_change: Callable[[], None] = lambda: None):
        super().__init__(app)
        self.after_change = after_change  # told before the answer to any POST leaves (today.FreshCounts)

    async def handle(self, scope, receive, send, headers) -> None:
        if scope["method"] in ("GET", "HEAD"):  # reading changes nothing
            await self.app(scope, receive, send)
            return

        async def told_first(message):
            if message["type"] == "http.response.start":
                self.after_change()
            await send(message)

        await self.app(scope, receive, told_first)

    def body_limit(self, path: str) -> int:
        return body_limit_for(path)

    def failure(self) -> tuple[str, bytes]:
        return HTML, ERROR_PAGE

    def response_headers(self, scope) -> list[tuple[bytes, bytes]]:
        static = scope["path"].startswith("/static/")
        return [*HEADERS] if static else [*HEADERS, NO_STORE]
