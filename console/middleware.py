"""One plain ASGI middleware around every console request: correlation id, body size limit, metrics by route
template, the security headers of every page, and a last-resort 500 page.
"""

from __future__ import annotations

import logging
import time

from orderdesk import logs, metrics
from orderdesk.logs import correlation_id_from
from orderdesk.parsing import whole_number

log = logging.getLogger("console.http")

BODY_LIMIT = 1024 * 1024  # 1 MiB: any form of the console
UPLOAD_LIMITS: dict[str, int] = {  # path prefix -> limit, for screens that take a file (add yours here)
    "/orders/upload": 3
    * 1024
    * 1024,  # a customer's order sheet (2 MiB, order_entry.MAX_SHEET_BYTES) and the form
}
UNMATCHED_ROUTE = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST"})
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


def body_limit_for(path: str) -> int:
    return next((limit for prefix, limit in UPLOAD_LIMITS.items() if path.startswith(prefix)), BODY_LIMIT)


class TooLarge(Exception):
    pass


class ConsoleMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        cid = correlation_id_from(headers)
        token = logs.correlation_id.set(cid)
        started = time.perf_counter()
        limit = body_limit_for(scope["path"])
        declared = whole_number(
            next((v for k, v in headers if k == b"content-length"), b"").decode("latin-1")
        )
        state = {"status": 500, "started": False, "received": 0}
        static = scope["path"].startswith("/static/")

        async def limited_receive():
            if declared is not None and declared > limit:
                raise TooLarge()
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    raise TooLarge()
            return message

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                extra = [*HEADERS, (b"x-correlation-id", cid.encode())]
                if not static:
                    extra.append(NO_STORE)
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except TooLarge:
            if not state["started"]:
                await _send_page(
                    send_with_headers, 413, b"<!doctype html><title>Too large</title><p>Too large."
                )
        except Exception:
            log.exception("unhandled error", extra=logs.fields(method=scope["method"], route=_route(scope)))
            if state["started"]:
                raise
            await _send_page(send_with_headers, 500, ERROR_PAGE)
        finally:
            route = _route(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            metrics.CONSOLE_REQUESTS.labels(method, route, str(state["status"])).inc()
            metrics.CONSOLE_LATENCY.labels(method, route).observe(time.perf_counter() - started)
            logs.correlation_id.reset(token)


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


async def _send_page(send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
