"""What every screen uses: the signed-in person (`Desk`), permissions on routes (`requires`), pages
(`render`), calls to the services (`call`), form errors, and the refusals that become pages.

    @router.post("/orders/{order_id}/notes")
    async def add_note(request: Request, order_id: str, desk: Desk = requires(Permission.WRITE_NOTES)):
        form = await request.form()
        ...
        order = await call(request, services(request).orders.AddNote, ...(actor=desk.actor(note)))
        return see_other(f"/orders/{order_id}")

`requires(P)` is the one dependency of every route but the public ones (sign-in, health): it answers a
person who is not signed in (or whose session ended) with the sign-in page, refuses a role without P
with 403 and a page saying which roles may, and on every POST checks the form's CSRF token first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import grpc
import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from console import i18n, rules, words
from console.i18n import N_
from console.middleware import body_limit_for
from console.store import Account, ConsoleStore, Session
from orderdesk import actors, clock, roles, rpc
from orderdesk.clients import Services
from orderdesk.config import ConsoleSettings
from orderdesk.roles import Permission, Refusal
from orderdesk.v1 import common_pb2

log = logging.getLogger("console.web")

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "console_session"
SIGNIN_CSRF_COOKIE = "console_csrf"  # before signing in: the sign-in form's token (double submit)
CSRF_FIELD = "csrf_token"
TOUCH_EVERY = dt.timedelta(seconds=60)  # a session's last use is written at most this often


# --- errors that become pages ---------------------------------------------------------------------------------
class NotSignedIn(Exception):
    """No live session: the sign-in page, then back here."""


class NotFoundPage(Exception):
    """404: the page of something that does not exist."""


class Forbidden(Exception):
    """403: a role or a limit is missing (refusal), or the form was forged (no refusal)."""

    def __init__(self, refusal: Refusal | None = None, message: str = ""):
        super().__init__(message or (refusal.permission if refusal else "forbidden"))
        self.refusal = refusal
        self.message = message


class ServiceRefusal(Exception):
    """A service refused or failed a call: a screen may catch it to show the fields it names; uncaught it
    is a page with the service's own message (domain errors only) and the matching status."""

    STATUS = {
        grpc.StatusCode.INVALID_ARGUMENT: 422,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.FAILED_PRECONDITION: 409,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.PERMISSION_DENIED: 403,
    }

    def __init__(self, failure: rpc.RpcFailure):
        super().__init__(failure.message)
        self.failure = failure

    @property
    def status(self) -> int:
        return self.STATUS.get(self.failure.code, 503)

    @property
    def message(self) -> str:
        # Only a message our own services wrote (it carries a reason); never a transport's text.
        if self.failure.reason and self.status < 500:
            return self.failure.message
        return N_("A service did not answer in time. Try again in a moment.")

    def field_errors(self, aliases: Mapping[str, str] | None = None) -> dict[str, str]:
        """The service's field path -> its description; `aliases` renames a path to the form's field name
        ({"ship_to.city": "city"}). The descriptions are the service's English: where a reason code has
        words of your own (`reasons()`), show those instead."""
        aliases = aliases or {}
        return {aliases.get(v.field, v.field): v.description for v in self.failure.violations}

    def reasons(self, aliases: Mapping[str, str] | None = None) -> dict[str, str]:
        """The service's field path (or its alias) -> the violation's reason code."""
        aliases = aliases or {}
        return {aliases.get(v.field, v.field): v.reason for v in self.failure.violations}


# --- who is signed in -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Desk:
    """The signed-in person: their account, their session's CSRF token, what they may do."""

    account: Account
    csrf_token: str

    @property
    def email(self) -> str:
        return self.account.email

    @property
    def role(self) -> str:
        return self.account.role

    def may(self, permission: Permission) -> bool:
        return roles.allows(self.role, permission)

    def actor(self, reason: str = "") -> common_pb2.Actor:
        """The `Actor` of every gRPC call made for this person: `desk:<email> (<role>)` and why."""
        return common_pb2.Actor(id=actors.desk(self.email, self.role), reason=reason)

    def check_decision(self, currency: str, total: Decimal | str) -> None:
        """Raises Forbidden unless this account may approve or reject a held order of this value."""
        refused = roles.check_decision(self.role, self.account.limits, currency, Decimal(str(total)))
        if refused:
            raise Forbidden(refused)


def store(request: Request) -> ConsoleStore:
    return request.app.state.store


def services(request: Request) -> Services:
    return request.app.state.services


def settings(request: Request) -> ConsoleSettings:
    return request.app.state.console_settings


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current_session(request: Request) -> Session | None:
    """The live session of this request (expired ones are ended on the way), once per request."""
    if hasattr(request.state, "session"):
        return request.state.session
    request.state.session = None
    token = request.cookies.get(SESSION_COOKIE, "")
    if token:
        found = await store(request).session(token_hash(token))
        now = clock.now()
        conf = settings(request)
        if found is not None and (
            found.account.disabled
            or not rules.session_live(
                now,
                created_at=found.created_at,
                last_seen_at=found.last_seen_at,
                idle=dt.timedelta(seconds=conf.session_idle_seconds),
                absolute=dt.timedelta(seconds=conf.session_max_seconds),
            )
        ):
            await store(request).end_session(found.token_hash)
            found = None
        touch_every = min(TOUCH_EVERY, dt.timedelta(seconds=conf.session_idle_seconds) / 4)
        if found is not None and now - found.last_seen_at >= touch_every:
            await store(request).touch_session(found.token_hash, now)
        request.state.session = found
    if request.state.session is not None:
        i18n.current.set(
            i18n.choose(
                request.state.session.account.locale,
                request.cookies.get(i18n.COOKIE, ""),
                request.headers.get("accept-language", ""),
            )
        )
    return request.state.session


def check_csrf(sent: str, expected: str) -> None:
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(
            message=N_(
                "This form has expired or did not come from this console, so nothing was changed. "
                "Reload the page and try again."
            )
        )


def requires(permission: Permission):
    """The dependency every route declares: `desk: Desk = requires(Permission.X)`."""

    async def dependency(request: Request) -> Desk:
        session = await current_session(request)
        if session is None:
            raise NotSignedIn()
        if request.method not in ("GET", "HEAD"):
            # Parsed once here (the route's own request.form() gets the same); a file may be as large
            # as the path's body limit (console/middleware.py UPLOAD_LIMITS).
            form = await request.form(max_part_size=body_limit_for(request.url.path))
            sent = form.get(CSRF_FIELD)
            check_csrf(sent if isinstance(sent, str) else "", session.csrf_token)
        refused = roles.check(session.account.role, permission)
        if refused:
            raise Forbidden(refused)
        return Desk(session.account, session.csrf_token)

    dependency.permission = permission  # type: ignore[attr-defined]  # read by the route check test
    return Depends(dependency)


# --- calling the services ---------------------------------------------------------------------------------------
async def call(request: Request, method, message, *, timeout: float | None = None):
    """`await call(request, services(request).orders.GetOrder, orders_pb2.GetOrderRequest(...))`: the answer,
    or ServiceRefusal raised."""
    try:
        return await services(request).invoke(method, message, timeout=timeout)
    except grpc.RpcError as exc:
        failure = rpc.describe(exc)
        if failure.code not in ServiceRefusal.STATUS:
            log.warning("gRPC call failed: %s %s", failure.code.name, failure.message)
        raise ServiceRefusal(failure) from None


# --- pages ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NavEntry:
    """A screen's entry in the navigation: shown to roles with `permission`, in `order`."""

    label: str  # N_("…")
    path: str
    permission: Permission = Permission.READ
    order: int = 50


class QueryForm:
    """Base of a GET form's dataclass (a search, a queue's filters): its fields as the address carries them,
    each a trimmed string."""

    @classmethod
    def of(cls, query):
        return cls(**{f.name: str(query.get(f.name, "")).strip() for f in fields(cls)})  # type: ignore[arg-type]

    def given(self) -> dict[str, str]:
        """The fields given (not empty), as the address carries them."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}  # type: ignore[arg-type]


@dataclass
class FormErrors:
    """Field -> message id, shown beside the field in the person's language; `general` above the form."""

    fields: dict[str, str] = field(default_factory=dict)
    general: str = ""

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    extensions=["jinja2.ext.i18n"],
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
environment.filters.update(
    datetime=i18n.format_datetime,
    timestamp=i18n.format_timestamp,  # a protobuf Timestamp
    date=i18n.format_date,
    number=i18n.format_number,
    money=i18n.format_money,
    age=i18n.format_age,
)
words.register(environment)
environment.globals.update(
    from_timestamp=i18n.from_timestamp,
    LANGUAGE_NAMES=i18n.LANGUAGE_NAMES,
    LOCALES=i18n.LOCALES,
    CSRF_FIELD=CSRF_FIELD,
)


def secure_cookies(request: Request) -> bool:
    mode = settings(request).secure_cookies
    return mode == "true" or (mode == "auto" and request.url.scheme == "https")


def set_cookie(response, request: Request, name: str, value: str, *, max_age: int | None = None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def signin_csrf(request: Request) -> str:
    """The token of a form shown before signing in (kept in a cookie until then)."""
    if not hasattr(request.state, "signin_csrf"):
        request.state.signin_csrf = request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    return request.state.signin_csrf


def render(
    request: Request, template: str, context: Mapping | None = None, *, status: int = 200
) -> HTMLResponse:
    """A page from console/templates in the person's language, with the layout's needs (nav, CSRF token)."""
    session: Session | None = getattr(request.state, "session", None)
    desk = Desk(session.account, session.csrf_token) if session else None
    if desk is None:
        i18n.current.set(
            i18n.choose("", request.cookies.get(i18n.COOKIE, ""), request.headers.get("accept-language", ""))
        )
    csrf = desk.csrf_token if desk else signin_csrf(request)
    nav = [entry for entry in request.app.state.nav if desk and desk.may(entry.permission)]
    page = environment.get_template(template).render(
        request=request,
        desk=desk,
        csrf_token=csrf,
        nav=nav,
        **_page_language(),
        now=clock.now(),
        **(context or {}),
    )
    response = HTMLResponse(page, status_code=status)
    if desk is None and request.cookies.get(SIGNIN_CSRF_COOKIE) != csrf:
        set_cookie(response, request, SIGNIN_CSRF_COOKIE, csrf)
    return response


def render_public(
    request: Request, template: str, context: Mapping | None = None, *, status: int = 200
) -> HTMLResponse:
    """A page for someone who is not a desk person (the end customer's status page): in the visitor's language
    (the language cookie, else Accept-Language), never the desk's session, no form token, no cookie set."""
    i18n.current.set(
        i18n.choose("", request.cookies.get(i18n.COOKIE, ""), request.headers.get("accept-language", ""))
    )
    page = environment.get_template(template).render(
        request=request, **_page_language(), now=clock.now(), **(context or {})
    )
    return HTMLResponse(page, status_code=status)


def _page_language() -> dict[str, str]:
    locale = i18n.current.get()
    return {"locale": locale, "html_lang": "zh-Hans" if locale == "zh_Hans" else "en"}


def see_other(path: str) -> RedirectResponse:
    """After a POST that changed something: the page to show next (303, so a reload does not post again)."""
    return RedirectResponse(path, status_code=303)


def signin_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/"
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str) -> str:
    """Only a path of this console (never another site) is followed after signing in."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"
