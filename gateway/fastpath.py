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

DirectRoutes goes one step further for a route of a fixed path (POST /v1/orders): once the router has sent a
request of that method and path to such a route, the gateway's middleware sends the next ones straight to its
fast path, past the layers between (the exception middleware's per-request wrapping, the router's matching of
every route, the route's exit stacks): a fifth of the gateway's calls per order. What those layers do for such
a request is done here too: the route in the scope (the metrics' label), the app's own exception handlers for
an error (the same problem+json), and, when the fast path answers None, the whole app as before, the body it
read handed over again.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware

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


class DirectRoutes:
    """The fast paths of fixed-path routes, by (method, path), learnt from the router (`learn` after the app
    answered a request): a route is only ever reached here the way the router reached it. The routes are
    taken as fixed once the app serves (the gateway adds none later)."""

    def __init__(self, app):
        self.app = app  # what the middleware calls next: the exception middleware, the router
        self._routes: dict[tuple[str, str], tuple[APIRoute, FastHandler]] = {}
        self._handled = None  # the app's exception handlers around a direct request (built at the first)

    def get(self, scope):
        """The ASGI app for this request straight to its route's fast path; None: the whole app."""
        found = self._routes.get((scope["method"], scope["path"]))
        if found is None:
            return None
        if self._handled is None:
            fastapi_app = scope["app"]
            handlers = {k: v for k, v in fastapi_app.exception_handlers.items() if k not in (500, Exception)}
            self._handled = ExceptionMiddleware(self._direct, handlers=handlers, debug=fastapi_app.debug)
        scope["route"] = found[0]
        return self._handled

    def learn(self, scope) -> None:
        """After the app answered a request: its route, when that is a fixed path's route with a fast path."""
        route = scope.get("route")
        fast = getattr(getattr(route, "endpoint", None), "fast_path", None)
        if (  # (only fixed paths are kept: the table stays as small as the routes)
            fast is not None
            and isinstance(route, FastPathRoute)
            and route.path == scope["path"]
            and "{" not in route.path
            and scope["method"] in route.methods
            and not scope.get("root_path")
        ):
            self._routes[(scope["method"], scope["path"])] = (route, fast)

    async def _direct(self, scope, receive, send) -> None:
        received: list = []

        async def recorded():
            message = await receive()
            received.append(message)
            return message

        answer = await self._routes[(scope["method"], scope["path"])][1](Request(scope, recorded, send))
        if answer is not None:
            await answer(scope, receive, send)
            return

        async def replayed():  # what the fast path read, then the rest
            return received.pop(0) if received else await receive()

        await self.app(scope, replayed, send)


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
