"""Accounts (admin): desk accounts, their role, approval limits and language; disable, enable, reset a password.

Every route requires MANAGE_ACCOUNTS. An administrator cannot disable their own account or take away its
admin role (the console would be left without one); a changed role or a disabled account signs out
everywhere, a reset password also unlocks the account.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from console import accounts, web
from console.i18n import N_
from console.store import Account
from console.web import Desk, FormErrors, NavEntry, requires
from orderdesk import errors, roles
from orderdesk.roles import Permission

router = APIRouter()
NAV = NavEntry(N_("Accounts"), "/accounts", Permission.MANAGE_ACCOUNTS, order=90)
MANAGE = Permission.MANAGE_ACCOUNTS

LIMITS_FORMAT = N_("Write limits as CURRENCY=AMOUNT separated by spaces, e.g. USD=5000 EUR=2500.")
EXISTS = N_("An account with this e-mail address exists already.")
NOT_YOURSELF = N_("You cannot disable your own account or take away its administrator role.")
DONE = {
    "created": N_("The account was created."),
    "changed": N_("The account was changed."),
    "password": N_("The password was reset; the account is unlocked and signed out everywhere."),
}


def limits_text(account: Account | None) -> str:
    if account is None:
        return ""
    return " ".join(f"{currency}={amount}" for currency, amount in sorted(account.limits.items()))


def parse_limits(text: str, found: FormErrors) -> dict:
    try:
        return roles.parse_limits(text.replace(",", " ").split())
    except ValueError:
        found.fields["limits"] = LIMITS_FORMAT
        return {}


def _field(form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _account_or_404(request: Request, account_id: int) -> Account:
    account = await web.store(request).account_by_id(account_id)
    if account is None:
        raise web.NotFoundPage()
    return account


@router.get("/accounts")
async def list_accounts(request: Request, done: str = "", desk: Desk = requires(MANAGE)):
    listed = await web.store(request).list_accounts()
    return web.render(request, "accounts/list.html", {"accounts": listed, "done": DONE.get(done, "")})


@router.get("/accounts/new")
async def new_account_form(request: Request, desk: Desk = requires(MANAGE)):
    return web.render(request, "accounts/new.html", {"values": {}, "errors": FormErrors()})


@router.post("/accounts/new")
async def create_account(request: Request, desk: Desk = requires(MANAGE)):
    form = await request.form()
    values = {name: _field(form, name) for name in ("email", "name", "role", "limits", "locale")}
    found = FormErrors()
    limits = parse_limits(values["limits"], found)
    password = form.get("password", "")
    if not found:
        try:
            await accounts.create(
                web.store(request),
                email=values["email"],
                name=values["name"],
                role=values["role"],
                password=password if isinstance(password, str) else "",
                limits=limits,
                locale=values["locale"],
            )
            return web.see_other("/accounts?done=created")
        except errors.InvalidArgument as refused:
            found.fields.update({v.field: v.description for v in refused.violations})
        except errors.AlreadyExists:
            found.fields["email"] = EXISTS
    return web.render(request, "accounts/new.html", {"values": values, "errors": found}, status=422)


@router.get("/accounts/{account_id}")
async def account_form(request: Request, account_id: int, done: str = "", desk: Desk = requires(MANAGE)):
    account = await _account_or_404(request, account_id)
    return web.render(request, "accounts/edit.html", _edit_context(account, FormErrors(), done=done))


def _edit_context(account: Account, found: FormErrors, *, values: dict | None = None, done: str = "") -> dict:
    return {
        "account": account,
        "values": values
        or {
            "name": account.name,
            "role": account.role,
            "limits": limits_text(account),
            "locale": account.locale,
            "disabled": account.disabled,
        },
        "errors": found,
        "done": DONE.get(done, ""),
    }


@router.post("/accounts/{account_id}")
async def change_account(request: Request, account_id: int, desk: Desk = requires(MANAGE)):
    account = await _account_or_404(request, account_id)
    form = await request.form()
    values = {name: _field(form, name) for name in ("name", "role", "limits", "locale")}
    disabled = form.get("disabled") == "yes"
    found = FormErrors()
    limits = parse_limits(values["limits"], found)
    if account.account_id == desk.account.account_id and (disabled or values["role"] != "admin"):
        found.general = NOT_YOURSELF
    if not found:
        try:
            await accounts.change(
                web.store(request),
                account.email,
                name=values["name"],
                role=values["role"],
                limits=limits,
                locale=values["locale"],
                disabled=disabled,
            )
            return web.see_other(f"/accounts/{account_id}?done=changed")
        except errors.InvalidArgument as refused:
            found.fields.update({v.field: v.description for v in refused.violations})
    return web.render(
        request,
        "accounts/edit.html",
        _edit_context(account, found, values={**values, "disabled": disabled}),
        status=422,
    )


@router.post("/accounts/{account_id}/password")
async def reset_password(request: Request, account_id: int, desk: Desk = requires(MANAGE)):
    account = await _account_or_404(request, account_id)
    form = await request.form()
    password = form.get("password", "")
    try:
        await accounts.reset_password(
            web.store(request), account.email, password if isinstance(password, str) else ""
        )
    except errors.InvalidArgument as refused:
        found = FormErrors({v.field: v.description for v in refused.violations})
        return web.render(request, "accounts/edit.html", _edit_context(account, found), status=422)
    return web.see_other(f"/accounts/{account_id}?done=password")
