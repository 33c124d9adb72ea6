"""The gateway's middleware around every request (orderdesk.asgi.RequestMiddleware: correlation id, body size
limit, metrics, last-resort 500) with authentication, rate limits and stream caps.

Every /v1 request is authenticated here, from its headers, before a byte of its body is read: an unknown key
costs no body and no parsing. The Principal goes to the route in `scope["state"]` (gateway.routing.scoped
checks its scopes). Then the key's token bucket for the route class (gateway.ratelimit) and, for a long
poll or SSE, one of the partner's stream slots; refusals are 429 problem+json with Retry-After. Every
answer to a limited request carries the RateLimit-Limit/-Remaining/-Reset/-Policy header fields.
"""

from __future__ import annotations

import json
import logging

from gateway import csv_orders, fastpath, ratelimit
from gateway.problems import PROBLEM_MEDIA_TYPE, Problem, internal, rate_limited, too_many_streams
from orderdesk import logs, metrics
from orderdesk.asgi import RequestMiddleware, header, send_body
from orderdesk.logs import correlation_id_from  # noqa: F401  (re-exported: the gateway's tests use it)

JSON_BODY_LIMIT = 1024 * 1024  # 1 MiB: far above any real order
CSV_BODY_LIMIT = 20 * 1024 * 1024  # 20 MiB: a full master data file
ORDERS_CSV_BODY_LIMIT = csv_orders.MAX_CSV_BYTES  # 2 MiB: an orders CSV (rows and orders capped too)
BATCH_BODY_LIMIT = 8 * 1024 * 1024  # 8 MiB: 1,000 orders of a few lines each
CSV_PATH_PREFIX = "/v1/admin/import/"
ORDERS_CSV_PATH = "/v1/orders/csv"
ORDERS_BATCH_PATH = "/v1/orders/batch"
API_PREFIX = "/v1/"  # every route under it needs a key; /healthz, /livez and the documents do not


def body_limit_for(path: str) -> int:
    if path == ORDERS_CSV_PATH:
        return ORDERS_CSV_BODY_LIMIT
    if path.startswith(CSV_PATH_PREFIX):
        return CSV_BODY_LIMIT
    return BATCH_BODY_LIMIT if path == ORDERS_BATCH_PATH else JSON_BODY_LIMIT


class GatewayMiddleware(RequestMiddleware):
    log = logging.getLogger("gateway.http")
    requests = metrics.HTTP_REQUESTS
    latency = metrics.HTTP_LATENCY
    methods = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, app):
        super().__init__(app)
        self.direct = fastpath.DirectRoutes(app)  # POST /v1/orders straight to its fast path

    def body_limit(self, path: str) -> int:
        return body_limit_for(path)

    def failure(self) -> tuple[str, bytes]:
        return _problem(internal())

    async def handle(self, scope, receive, send, headers):
        if not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        request_headers = scope.get("headers") or []
        edge = scope["app"].state
        stream_of = ""  # the partner holding a stream slot for this request
        try:
            try:
                principal = await edge.authenticator.authenticate(header(request_headers, b"authorization"))
                scope.setdefault("state", {})["principal"] = principal
                decision = edge.limiter.take(
                    (principal.partner_id, principal.key_name),
                    ratelimit.route_class(scope["method"], scope["path"]),
                )
                if decision is not None:
                    headers.extend(decision.headers())
                    if not decision.allowed:
                        metrics.HTTP_RATE_LIMITED.labels("rate").inc()
                        raise rate_limited(decision.retry_after)
                accept = header(request_headers, b"accept") or ""
                if ratelimit.is_stream(scope["method"], scope["path"], scope["query_string"], accept):
                    if not edge.streams.acquire(principal.partner_id):
                        metrics.HTTP_RATE_LIMITED.labels("streams").inc()
                        raise too_many_streams(edge.streams.per_partner)
                    stream_of = principal.partner_id
            except Problem as refused:
                headers.extend((k.lower().encode(), v.encode()) for k, v in refused.headers.items())
                await send_body(send, refused.status, *_problem(refused))
                return
            direct = self.direct.get(scope)
            if direct is not None:
                await direct(scope, receive, send)
            else:
                await self.app(scope, receive, send)
                self.direct.learn(scope)
        finally:
            if stream_of:
                edge.streams.release(stream_of)


def _problem(problem: Problem) -> tuple[str, bytes]:
    return PROBLEM_MEDIA_TYPE, json.dumps(problem.body(logs.correlation_id.get())).encode()
