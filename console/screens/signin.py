"""Signing in and out, and the language switch (signed in: saved on the account; else a cookie).

Public routes (no `requires`): GET/POST /signin and POST /language; their forms carry the pre-session
CSRF token (double submit: a cookie and the form's field must match).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from console import i18n, rules, web
from console.i18n import N_
from console.web import Desk, FormErrors, requires
from orderdesk import clock, metrics
from orderdesk.roles import Permission

log = logging.getLogger("console.signin")
router = APIRouter()

WRONG = N_("The e-mail address or the password is not right.")
THROTTLED = N_("Too many failed sign-ins. Wait a few minutes, then try again.")
LOCKED = N_(
    "This account is locked after repeated failed sign-ins. Try again later, or ask an administrator "
    "to reset your password."
)
DISABLED = N_("This account is disabled. Ask an administrator.")


def _signin_page(request: Request, *, email: str = "", next_path: str = "/", errors: FormErrors, status: int):
    return web.render(
        request, "signin/form.html", {"email": email, "next": next_path, "errors": errors}, status=status
    )


def _check_signin_csrf(request: Request, sent: object) -> None:
    expected = request.cookies.get(web.SIGNIN_CSRF_COOKIE, "")
    web.check_csrf(sent if isinstance(sent, str) else "", expected)


@router.get("/signin")
async def signin_form(request: Request, next: str = "/"):
    if await web.current_session(request):
        return web.see_other(web.safe_next(next))
    return _signin_page(request, next_path=web.safe_next(next), errors=FormErrors(), status=200)


@router.post("/signin")
async def signin(request: Request):
    form = await request.form()
    _check_signin_csrf(request, form.get(web.CSRF_FIELD))
    email = rules.normal_email(str(form.get("email", "")))
    password = str(form.get("password", ""))
    next_path = web.safe_next(str(form.get("next", "/")))
    address = request.client.host if request.client else "unknown"
    conf = web.settings(request)
    policy = rules.SigninPolicy.of(conf)
    store = web.store(request)
    now = clock.now()

    def refuse(message: str, outcome: str, status: int):
        metrics.CONSOLE_SIGNINS.labels(outcome).inc()
        log.info("sign-in refused", extra={"fields": {"outcome": outcome, "address": address}})
        return _signin_page(
            request, email=email, next_path=next_path, errors=FormErrors(general=message), status=status
        )

    if not email or not password:
        errors = FormErrors()
        if not email:
            errors.fields["email"] = N_("Enter your e-mail address.")
        if not password:
            errors.fields["password"] = N_("Enter your password.")
        return _signin_page(request, email=email, next_path=next_path, errors=errors, status=422)
    account_failures, address_failures = await store.failures_since(email, address, now - policy.window)
    found = await store.credentials(email)
    verdict = rules.before_signin(
        policy,
        now,
        account_failures=account_failures,
        address_failures=address_failures,
        locked_until=found[0].locked_until if found else None,
    )
    if verdict is rules.Verdict.LOCKED:
        return refuse(LOCKED, "locked", 403)
    if verdict is rules.Verdict.THROTTLED:
        return refuse(THROTTLED, "throttled", 429)
    ok = await asyncio.to_thread(rules.verify_password, found[1] if found else None, password)
    if not ok:
        locked = await store.record_failure(
            email,
            address,
            now,
            lock_after=policy.lock_after,
            lock_until=now + policy.lock_for,
            forget_before=now - policy.window,
        )
        if locked:
            return refuse(LOCKED, "locked", 403)
        return refuse(WRONG, "failed", 401)
    assert found is not None  # a password verified: the account exists
    account, password_hash = found
    if account.disabled:
        return refuse(DISABLED, "disabled", 403)
    if rules.needs_rehash(password_hash):
        await store.replace_hash(
            account.account_id, password_hash, await asyncio.to_thread(rules.hash_password, password)
        )
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = clock.now()  # the session starts now, after the (slow) password check
    await store.start_session(
        account.account_id,
        web.token_hash(token),
        csrf,
        now,
        started_before=now - dt.timedelta(seconds=conf.session_max_seconds),
        idle_since=now - dt.timedelta(seconds=conf.session_idle_seconds),
    )
    metrics.CONSOLE_SIGNINS.labels("signed_in").inc()
    log.info("signed in", extra={"fields": {"role": account.role, "address": address}})
    response = web.see_other(next_path)
    web.set_cookie(response, request, web.SESSION_COOKIE, token)
    response.delete_cookie(web.SIGNIN_CSRF_COOKIE, path="/")
    return response


@router.post("/signout")
async def signout(request: Request, desk: Desk = requires(Permission.READ)):
    session = request.state.session
    await web.store(request).end_session(session.token_hash)
    response = web.see_other("/signin")
    response.delete_cookie(web.SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def language(request: Request) -> RedirectResponse:
    form = await request.form()
    sent = form.get(web.CSRF_FIELD)
    chosen = str(form.get("locale", ""))
    back = web.safe_next(str(form.get("next", "/")))
    session = await web.current_session(request)
    if session is not None:
        web.check_csrf(sent if isinstance(sent, str) else "", session.csrf_token)
    else:
        _check_signin_csrf(request, sent)
    if chosen not in i18n.LOCALES:
        return web.see_other(back)
    if session is not None and session.account.locale != chosen:
        await web.store(request).update_account(session.account.email, clock.now(), locale=chosen)
    response = web.see_other(back)
    web.set_cookie(response, request, i18n.COOKIE, chosen, max_age=365 * 86400)
    return response
