"""The console's session, CSRF and role rules through real HTTP, on its real store (SQLite and PostgreSQL):
a forged form is refused and changes nothing, an expired session is sent to sign in, a viewer's POST is
refused by the server, sign-ins are throttled and accounts locked, and nothing secret reaches the logs."""

from __future__ import annotations

import datetime as dt
import logging

from yarl import URL

from console import accounts
from orderdesk import metrics
from tests.integration.console.conftest import csrf_of

NEW_ACCOUNT = {
    "email": "new.clerk@acme.example",
    "name": "New Clerk",
    "role": "clerk",
    "limits": "",
    "locale": "",
    "password": "a-good-long-password",
}


async def account(console, email: str):
    async with accounts.opened(console.database_url) as store:
        return await store.account(email)


async def test_signing_in_sets_a_session_cookie_that_scripts_cannot_read(console, browser_of):
    browser = await browser_of(console)
    status, _, headers = await browser.sign_in("clerk")
    assert (status, headers["Location"]) == (303, "/")
    cookie = next(c for c in headers.getall("Set-Cookie") if c.startswith("console_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    status, page, headers = await browser.get("/")
    assert status == 503 and "Signed in as Demo clerk" in page  # signed in; no orders service behind it
    assert (
        headers["Cache-Control"] == "no-store"
        and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    )


async def test_cookies_are_secure_when_the_console_is_served_over_https(start_console, browser_of):
    console = await start_console(secure_cookies="true")
    browser = await browser_of(console)  # a browser would not send Secure cookies back over http: by hand
    _, page, headers = await browser.get("/signin")
    signin_cookie = headers["Set-Cookie"]
    assert signin_cookie.startswith("console_csrf=") and "Secure" in signin_cookie
    token = csrf_of(page)
    async with browser.session.post(
        console.url + "/signin",
        data={"email": "clerk@demo.example", "password": "clerk-demo-pass", "csrf_token": token},
        headers={"Cookie": f"console_csrf={token}"},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
        cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith("console_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_a_forged_form_is_refused_and_changes_nothing(console, browser_of):
    admin, other = await browser_of(console), await browser_of(console)
    await admin.sign_in("admin")
    await other.sign_in("approver")
    await admin.get("/accounts/new")
    await other.get("/")
    for token in (None, "forged", other_token := _token(other)):
        status, page, _ = await admin.post("/accounts/new", NEW_ACCOUNT, token=token)
        assert status == 403, token
        assert "did not come from this console, so nothing was changed" in page
    assert await account(console, NEW_ACCOUNT["email"]) is None
    assert other_token  # another person's valid token is still a forged form here
    status, _, headers = await admin.post("/accounts/new", NEW_ACCOUNT)
    assert (status, headers["Location"]) == (303, "/accounts?done=created")
    made = await account(console, NEW_ACCOUNT["email"])
    assert (made.name, made.role) == ("New Clerk", "clerk")


def _token(browser) -> str:
    return csrf_of(browser.last_page)


async def test_the_sign_in_form_needs_its_own_token(console, browser_of):
    browser = await browser_of(console)
    status, page, _ = await browser.post(
        "/signin", {"email": "clerk@demo.example", "password": "clerk-demo-pass"}, token="made-up"
    )
    assert status == 403 and "console_session" not in str(
        browser.session.cookie_jar.filter_cookies(URL(console.url))
    )


async def test_an_idle_session_is_sent_to_sign_in(start_console, browser_of, moved_clock):
    console = await start_console(session_idle_seconds=60)
    browser = await browser_of(console)
    await browser.sign_in("viewer")
    assert (await browser.get("/accounts"))[0] == 403  # signed in (a viewer: no accounts)
    moved_clock(dt.timedelta(seconds=61))
    status, _, headers = await browser.get("/accounts")
    assert (status, headers["Location"]) == (303, "/signin?next=%2Faccounts")


async def test_a_session_ends_after_the_absolute_expiry_even_in_use(start_console, browser_of, moved_clock):
    console = await start_console(session_max_seconds=600, session_idle_seconds=300)
    browser = await browser_of(console)
    assert (await browser.sign_in("admin"))[0] == 303
    for _ in range(3):  # in use every 200 s: never idle, yet the absolute expiry comes
        assert (await browser.get("/accounts"))[0] == 200
        moved_clock(dt.timedelta(seconds=200))
    moved_clock(dt.timedelta(seconds=1))
    status, _, headers = await browser.get("/accounts")
    assert status == 303 and headers["Location"].startswith("/signin")


async def test_a_viewers_post_is_refused_by_the_server_saying_which_role_it_needs(console, browser_of):
    viewer = await browser_of(console)
    await viewer.sign_in("viewer")
    await viewer.get("/")  # a page of its own: a valid token for its session
    status, page, _ = await viewer.post("/accounts/new", NEW_ACCOUNT)
    assert status == 403
    assert "To manage desk accounts you need one of these roles: Administrator. Nothing was changed." in page
    assert await account(console, NEW_ACCOUNT["email"]) is None
    status, page, _ = await viewer.get("/accounts")
    assert status == 403 and "Administrator" in page


async def test_sign_out_ends_the_session_on_the_server(console, browser_of):
    browser = await browser_of(console)
    await browser.sign_in("admin")
    await browser.get("/accounts")
    stolen = browser.session.cookie_jar.filter_cookies(URL(console.url))["console_session"].value
    status, _, headers = await browser.post("/signout", {})
    assert (status, headers["Location"]) == (303, "/signin")
    thief = await browser_of(console)
    thief.session.cookie_jar.update_cookies({"console_session": stolen})
    assert (await thief.get("/accounts"))[0] == 303  # the old cookie opens nothing


async def test_failed_sign_ins_are_throttled_per_account(start_console, browser_of):
    console = await start_console(signin_account_limit=3, lock_after=100)
    browser = await browser_of(console)
    for _ in range(3):
        assert (await browser.sign_in("clerk", "wrong-password-1"))[0] == 401
    status, page, _ = await browser.sign_in("clerk")  # the right password, but too soon
    assert status == 429 and "Too many failed sign-ins" in page
    assert (await browser.sign_in("viewer"))[0] == 303  # another account from the same address still can


async def test_failed_sign_ins_are_throttled_per_address(start_console, browser_of):
    console = await start_console(signin_address_limit=3, lock_after=100)
    browser = await browser_of(console)
    for role in ("clerk", "viewer", "approver"):
        assert (await browser.sign_in(role, "wrong-password-1"))[0] == 401
    status, _, _ = await browser.sign_in("admin")
    assert status == 429


async def test_repeated_failures_lock_the_account_until_its_password_is_reset(start_console, browser_of):
    console = await start_console(lock_after=3)
    browser = await browser_of(console)
    before = metrics.CONSOLE_SIGNINS.labels("locked")._value.get()
    assert (await browser.sign_in("clerk", "wrong-password-1"))[0] == 401
    assert (await browser.sign_in("clerk", "wrong-password-2"))[0] == 401
    status, page, _ = await browser.sign_in("clerk", "wrong-password-3")
    assert status == 403 and "This account is locked" in page
    assert (await browser.sign_in("clerk"))[0] == 403  # the right password does not open it
    assert metrics.CONSOLE_SIGNINS.labels("locked")._value.get() == before + 2
    async with accounts.opened(console.database_url) as store:
        await accounts.reset_password(store, "clerk@demo.example", "a-brand-new-password")
    assert (await browser.sign_in("clerk", "a-brand-new-password"))[0] == 303


async def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(console, browser_of):
    browser = await browser_of(console)
    await browser.sign_in("clerk")
    async with accounts.opened(console.database_url) as store:
        await accounts.change(store, "clerk@demo.example", disabled=True)
    assert (await browser.get("/"))[0] == 303
    status, page, _ = await browser.sign_in("clerk")
    assert status == 403 and "This account is disabled" in page


async def test_nothing_secret_reaches_the_logs(console, browser_of, caplog):
    caplog.set_level(logging.DEBUG)
    browser = await browser_of(console)
    await browser.sign_in("clerk", "wrong-password-1")
    await browser.sign_in("clerk")
    token = browser.session.cookie_jar.filter_cookies(URL(console.url))["console_session"].value
    await browser.get("/accounts/new")  # a page with the session's CSRF token
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert "signed in" in logged and "sign-in refused" in logged
    for secret in ("wrong-password-1", "clerk-demo-pass", token, _token(browser)):
        assert secret not in logged


async def test_a_session_in_use_outlives_the_idle_limit(start_console, browser_of, moved_clock):
    console = await start_console(session_idle_seconds=60)
    browser = await browser_of(console)
    await browser.sign_in("admin")
    for _ in range(8):  # 4 minutes in all, never 60 s unused
        assert (await browser.get("/accounts"))[0] == 200
        moved_clock(dt.timedelta(seconds=30))


async def test_ended_sessions_are_pruned_when_someone_signs_in(start_console, browser_of, moved_clock):
    import sqlalchemy as sa

    from console.store import sessions

    console = await start_console(session_idle_seconds=60)
    for role in ("viewer", "clerk"):
        await (await browser_of(console)).sign_in(role)
    moved_clock(dt.timedelta(seconds=61))
    await (await browser_of(console)).sign_in("admin")
    async with accounts.opened(console.database_url) as store:
        async with store.db.read() as conn:
            left = (await conn.execute(sa.select(sa.func.count()).select_from(sessions))).scalar_one()
    assert left == 1  # the admin's; the two idle ones are gone
