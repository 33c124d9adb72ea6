"""create_app(settings): the partner REST API as an ASGI app (FastAPI), wired to the services and the key store."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import (
    admin,
    carriers,
    changes,
    customers,
    finance,
    keyservice,
    openapi_links,
    operations,
    orders,
    problems,
    reports,
    returns,
    shipments,
    supply,
    webhooks,
)
from gateway.auth import Authenticator, KeyCache
from gateway.backends import Backends
from gateway.middleware import GatewayMiddleware
from gateway.ratelimit import RateLimiter, StreamSlots, parse_limits
from gateway.store import PartnerStore
from orderdesk import asgi, logs
from orderdesk.config import CarrierSettings, GatewayEdgeSettings, Settings, StatusLinkSettings
from orderdesk.errors import DomainError

DESCRIPTION = """\
The partner API of orderdesk. Authenticate with `Authorization: Bearer <api key>`.
Scopes: `orders` and `returns` (sales channels: only the orders they submitted; others' are 404),
`fulfillment` (every order's shipments and returns), `admin` (everything).
Errors are `application/problem+json` (RFC 9457) with `errors[].field` naming each offending input.
Every response carries `X-Correlation-Id` (yours, if you sent one).
"""


def problem_response(problem: problems.Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(logs.correlation_id.get()),
        status_code=problem.status,
        media_type=problems.PROBLEM_MEDIA_TYPE,
        headers=problem.headers or None,
    )


def _document_bearer_auth(app: FastAPI) -> None:
    """The API key scheme in the OpenAPI document: every operation needs it except those that say otherwise."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {})["securitySchemes"] = {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer <api key>",
                }
            }
            document["security"] = [{"apiKey": []}]
            app.openapi_schema = openapi_links.add_links(document)
        return app.openapi_schema

    app.openapi = openapi


def create_app(
    settings: Settings, *, key_cache: KeyCache | None = None, edge: GatewayEdgeSettings | None = None
) -> FastAPI:
    edge = edge or GatewayEdgeSettings.from_env()
    try:
        limits = parse_limits(edge.rate_limits)
    except ValueError as exc:
        raise ValueError(f"ORDERDESK_RATE_LIMITS: {exc}") from None

    async def started(state):
        state.authenticator = Authenticator(
            state.store.principal, state.store.pepper, key_cache or KeyCache()
        )
        # The console's way to partners' keys (gateway/keyservice.py): gRPC, never this database.
        if not edge.keys_addr:
            return None
        key_admin = await keyservice.serve(
            edge.keys_addr, state.store, state.authenticator.cache, settings.tls
        )
        return lambda: key_admin.stop(grace=1)

    app = FastAPI(
        # No OpenTelemetry here (the metrics are Prometheus'): off, FastAPI asks for no providers per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="orderdesk partner API",
        version="1.0",
        description=DESCRIPTION,
        lifespan=asgi.lifespan(
            "gateway",
            settings.peers,
            store=lambda: PartnerStore.open(settings.database_url),
            services=lambda: Backends(settings),
            started=started,
        ),
    )
    app.state.limiter = RateLimiter(limits)  # per key and route class (gateway.ratelimit)
    app.state.streams = StreamSlots(edge.streams_per_partner)
    app.state.status_links = StatusLinkSettings.from_env()  # POST /v1/orders/{id}/status-link
    app.state.carriers = CarrierSettings.from_env()  # POST /v1/carriers/{carrier}/tracking: their secrets
    # One router per resource; this order is the order of the paths in the OpenAPI document.
    for resource in (
        orders,
        shipments,
        carriers,
        returns,
        admin,
        customers,
        finance,
        reports,
        operations,
        supply,
        webhooks,
        changes,
    ):
        app.include_router(resource.router)
    app.add_middleware(GatewayMiddleware)
    _document_bearer_auth(app)

    @app.exception_handler(problems.Problem)
    async def _problem(request: Request, exc: problems.Problem):
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return problem_response(problems.from_validation_errors(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        problem = problems.http_status(exc.status_code, str(exc.detail))
        problem.headers.update(exc.headers or {})
        return problem_response(problem)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return problem_response(problems.from_domain_error(exc))

    @app.exception_handler(ValueError)
    async def _unencodable(request: Request, exc: ValueError):
        # Backstop for input the models let through but no protobuf message can carry (a number beyond int64,
        # a lone surrogate): the caller's input, so 422 rather than a 500. Any other ValueError is a bug: 500.
        if isinstance(exc, UnicodeEncodeError) or str(exc).startswith("Value out of range"):
            return problem_response(
                problems.validation(
                    [problems.FieldError("body", "a number is too large or a text is not valid Unicode")]
                )
            )
        raise exc

    return app
