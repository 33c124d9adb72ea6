"""create_app(settings, console_settings): the desk console as an ASGI app (FastAPI + Jinja2 pages), wired to
the services (gRPC, orderdesk.clients) and its own store (accounts, sessions)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from console import i18n, operations, web
from console.middleware import TOO_LARGE_PAGE, ConsoleMiddleware
from console.screens import SCREENS
from console.screens.today import FreshCounts
from console.store import ConsoleStore
from orderdesk import asgi, tls
from orderdesk.clients import Services
from orderdesk.config import ConsoleSettings, Settings, StatusLinkSettings
from orderdesk.v1 import apikeys_pb2_grpc

STATIC = web.TEMPLATES.parent / "static"


def create_app(settings: Settings, console_settings: ConsoleSettings) -> FastAPI:
    i18n.load_all()

    async def started(state):
        # Partners' API keys: the gateway's gRPC admin service (gateway/keyservice.py), never its database.
        if not console_settings.gateway_keys:
            state.apikeys = None
            return None
        keys_channel = tls.aio_channel(console_settings.gateway_keys, settings.tls, peer="gateway")
        state.apikeys = apikeys_pb2_grpc.ApiKeysServiceStub(keys_channel)
        return keys_channel.close

    app = FastAPI(
        title="orderdesk console",
        lifespan=asgi.lifespan(
            "console",
            settings.peers,
            store=lambda: ConsoleStore.open(settings.database_url),
            services=lambda: Services(settings),
            started=started,
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console_settings = console_settings
    # The key the end customer's status links are checked with (console/screens/status.py).
    app.state.status_links = StatusLinkSettings.from_env()
    app.state.nav = sorted((s.NAV for s in SCREENS if getattr(s, "NAV", None)), key=lambda e: e.order)
    app.include_router(operations.router)
    for screen in SCREENS:
        app.include_router(screen.router)
    # A screen's fixed path (/orders/new) wins over another screen's pattern (/orders/{order_id}), whatever
    # the order the screens were included in (a stable sort: otherwise as included).
    app.router.routes.sort(key=lambda route: "{" in getattr(route, "path", ""))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.queue_counts = FreshCounts()  # Today's counts, shared by every desk of this console
    app.add_middleware(ConsoleMiddleware, after_change=app.state.queue_counts.forget)

    @app.exception_handler(web.NotSignedIn)
    async def _not_signed_in(request: Request, exc: web.NotSignedIn):
        return web.signin_redirect(request)

    @app.exception_handler(web.Forbidden)
    async def _forbidden(request: Request, exc: web.Forbidden):
        return web.render(
            request, "errors/forbidden.html", {"refusal": exc.refusal, "message": exc.message}, status=403
        )

    @app.exception_handler(web.NotFoundPage)
    async def _not_found(request: Request, exc: web.NotFoundPage):
        return web.render(request, "errors/http.html", {"status": 404}, status=404)

    @app.exception_handler(web.ServiceRefusal)
    async def _refused(request: Request, exc: web.ServiceRefusal):
        return web.render(request, "errors/service.html", {"refusal": exc}, status=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _unreadable(request: Request, exc: RequestValidationError):
        # A path that names nothing (/accounts/abc) is not found; another unreadable parameter is 400.
        status = 404 if any(error["loc"][:1] == ("path",) for error in exc.errors()) else 400
        return web.render(request, "errors/http.html", {"status": status}, status=status)

    @app.exception_handler(asgi.BodyTooLarge)
    async def _too_large(request: Request, exc: asgi.BodyTooLarge) -> HTMLResponse:
        return HTMLResponse(TOO_LARGE_PAGE, status_code=413)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return web.render(request, "errors/http.html", {"status": exc.status_code}, status=exc.status_code)

    return app
