"""A fast path for the partner API's hottest routes (POST /v1/orders, GET /v1/orders/{order_id}).

FastAPI answers a request by solving the route's dependency tree, validating every parameter through
pydantic field by field and re-validating the answer against the response model: about 500 Python calls a
request, two thirds of the gateway's CPU per order. A route whose endpoint names a `fast_path` takes the
common, well-formed request without that: the principal the middleware authenticated, the headers and the
body read directly, the body validated once by its model, the answer a prebuilt Response.

The fast path only ever *accepts*: anything it does not take for certain (no principal or not the scope,
a header or parameter missing or odd, an unusual media type, a body that is not JSON or not valid) makes it
answer None, and the route's own FastAPI handler answers the request exactly as without it, with the same
problem+json and its fields (the body already read is kept by the request, so nothing is read twice).
The OpenAPI document is FastAPI's, from the endpoint, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from gateway.auth import Principal

FastHandler = Callable[[Request], Awaitable[Response | None]]
JSON_MEDIA_TYPE = "application/json"
M = TypeVar("M", bound=BaseModel)


class FastPathRoute(APIRoute):
    """An APIRoute whose endpoint may carry `fast_path` (fast_path(...) below): tried first, FastAPI's
    handler when it answers None."""

    def get_route_handler(self):
        slow = super().get_route_handler()
        fast: FastHandler | None = getattr(self.endpoint, "fast_path", None)
        if fast is None:
            return slow

        async def handler(request: Request) -> Response:
            answer = await fast(request)
            return answer if answer is not None else await slow(request)

        return handler


def fast_path(fast: FastHandler):
    """Decorator for an endpoint (under the route decorator): `fast` tries the request first."""

    def mark(endpoint):
        endpoint.fast_path = fast
        return endpoint

    return mark


def principal(request: Request, needed: Iterable[str]) -> Principal | None:
    """The caller the middleware authenticated, when it may use a route needing `needed`; else None (the
    route's dependency then answers 401 or 403)."""
    state = request.scope.get("state")
    who = state.get("principal") if state else None
    return who if who is not None and who.allows(needed) else None


async def json_body(request: Request, model: type[M]) -> M | None:
    """The body as `model`, when it is plain `application/json` and valid; else None."""
    media_type = request.headers.get("content-type")
    if not media_type or media_type.partition(";")[0].strip().lower() != JSON_MEDIA_TYPE:
        return None
    try:
        body = await request.body()
    except HTTPException:
        raise  # the body limit's 413, as FastAPI's handler raises it
    except Exception:
        return None
    if not body:
        return None
    try:
        return model.model_validate(json.loads(body))
    except Exception:  # not JSON, not valid (or too deep): FastAPI's handler says which, as ever
        return None


def json_response(
    answer: BaseModel, status_code: int = 200, headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """`answer` as FastAPI sends a response model (its JSON by alias), built once: no re-validation. `headers`
    after content-length and content-type, where FastAPI puts a handler's own."""
    response = Response(answer.model_dump_json(by_alias=True), status_code, media_type=JSON_MEDIA_TYPE)
    response.raw_headers.extend((name.encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    return response
