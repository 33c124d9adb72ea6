"""One plain ASGI middleware around every request: correlation id, authentication, rate limits and stream
caps, body size limit, metrics, last-resort 500.

Every /v1 request is authenticated here, from its headers, before a byte of its body is read: an unknown key
costs no body and no parsing. The Principal goes to the route in `scope["state"]` (gateway.routing.scoped
checks its scopes). Then the key's token bucket for the route class (gateway.ratelimit) and, for a long
poll or SSE, one of the partner's stream slots; refusals are 429 problem+json with Retry-After. Every
answer to a limited request carries the RateLimit-Limit/-Remaining/-Reset/-Policy header fields.

Plain ASGI (not BaseHTTPMiddleware) because it runs on the hot path and must not
copy the request. It sits outside routing, so it reads the matched route's
*template* after the app has routed ("/v1/orders/{order_id}"), never the raw path.
"""

from __future__ import annotations

import json
import logging
import time

from fastapi import HTTPException

from gateway import csv_orders, ratelimit
from gateway.problems import PROBLEM_MEDIA_TYPE, Problem, internal, rate_limited, too_many_streams
from orderdesk import logs, metrics
from orderdesk.logs import correlation_id_from  # noqa: F401  (re-exported: the gateway's tests use it)
from orderdesk.parsing import whole_number

log = logging.getLogger("gateway.http")

JSON_BODY_LIMIT = 1024 * 1024  # 1 MiB: far above any real order
CSV_BODY_LIMIT = 20 * 1024 * 1024  # 20 MiB: a full master data file
ORDERS_CSV_BODY_LIMIT = csv_orders.MAX_CSV_BYTES  # 2 MiB: an orders CSV (rows and orders capped too)
BATCH_BODY_LIMIT = 8 * 1024 * 1024  # 8 MiB: 1,000 orders of a few lines each
CSV_PATH_PREFIX = "/v1/admin/import/"
ORDERS_CSV_PATH = "/v1/orders/csv"
ORDERS_BATCH_PATH = "/v1/orders/batch"
API_PREFIX = "/v1/"  # every route under it needs a key; /healthz, /livez and the documents do not
UNMATCHED_ROUTE = "unmatched"  # bounded label for paths no route serves
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def body_limit_for(path: str) -> int:
    if path == ORDERS_CSV_PATH:
        return ORDERS_CSV_BODY_LIMIT
    if path.startswith(CSV_PATH_PREFIX):
        return CSV_BODY_LIMIT
    return BATCH_BODY_LIMIT if path == ORDERS_BATCH_PATH else JSON_BODY_LIMIT


def too_large(limit: int) -> HTTPException:
    # fastapi's HTTPException: FastAPI re-raises it as is while reading a body (any other error becomes a 400).
    return HTTPException(413, f"the request body is larger than {limit} bytes")


class GatewayMiddleware:
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
        state = {
            "status": 500,
            "started": False,
            "received": 0,
            "over": declared is not None and declared > limit,
        }

        async def limited_receive():
            # A declared length over the limit is refused before a byte is read.
            if state["over"]:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    state["over"] = True
                    raise too_large(limit)
            return message

        extra_headers: list[tuple[bytes, bytes]] = [(b"x-correlation-id", cid.encode())]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        stream_of = ""  # the partner holding a stream slot for this request
        try:
            if scope["path"].startswith(API_PREFIX):
                edge = scope["app"].state
                try:
                    principal = await edge.authenticator.authenticate(_header(headers, b"authorization"))
                    scope.setdefault("state", {})["principal"] = principal
                    decision = edge.limiter.take(
                        (principal.partner_id, principal.key_name),
                        ratelimit.route_class(scope["method"], scope["path"]),
                    )
                    if decision is not None:
                        extra_headers.extend(decision.headers())
                        if not decision.allowed:
                            metrics.HTTP_RATE_LIMITED.labels("rate").inc()
                            raise rate_limited(decision.retry_after)
                    accept = _header(headers, b"accept") or ""
                    if ratelimit.is_stream(scope["method"], scope["path"], scope["query_string"], accept):
                        if not edge.streams.acquire(principal.partner_id):
                            metrics.HTTP_RATE_LIMITED.labels("streams").inc()
                            raise too_many_streams(edge.streams.per_partner)
                        stream_of = principal.partner_id
                except Problem as refused:
                    extra_headers.extend((k.lower().encode(), v.encode()) for k, v in refused.headers.items())
                    await _send_problem(send_with_id, refused.status, refused.body(cid))
                    return
            await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra=logs.fields(method=scope["method"], route=_route(scope)))
            if state["started"]:
                raise
            await _send_problem(send_with_id, internal().status, internal().body(cid))
        finally:
            if stream_of:
                scope["app"].state.streams.release(stream_of)
            route = _route(scope)
            method = scope["method"] if scope["method"] in METHODS else "OTHER"  # labels stay bounded
            metrics.HTTP_REQUESTS.labels(method, route, str(state["status"])).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
            logs.correlation_id.reset(token)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k == name), None)


def _route(scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED_ROUTE


async def _send_problem(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
