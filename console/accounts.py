"""Desk accounts: the one way in for `orderdesk users …` and the Accounts screen, so neither reaches into
the store or the password hashing itself. A refusal is an InvalidArgument whose violations name the field,
with a gettext id as the description (the screen translates it, the CLI prints it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from console import rules
from console.i18n import N_
from console.store import Account, ConsoleStore
from orderdesk import clock
from orderdesk.errors import FieldViolation, InvalidArgument

# `make run` creates these (devtools/devstack.py), documented in the README's "Console" section.
DEMO_LIMITS = {"USD": Decimal("5000")}  # 5,000 in each demo currency (the demo data is in USD)
DEMO_ACCOUNTS = (
    ("viewer@demo.example", "Demo viewer", "viewer", "viewer-demo-pass", {}),
    ("clerk@demo.example", "Demo clerk", "clerk", "clerk-demo-pass", {}),
    ("approver@demo.example", "Demo approver", "approver", "approver-demo-pass", DEMO_LIMITS),
    ("admin@demo.example", "Demo admin", "admin", "admin-demo-pass", {}),
)


def _now() -> dt.datetime:
    return clock.now()


def _refuse(found: dict[str, str]) -> None:
    if found:
        raise InvalidArgument(
            "the account was not saved",
            [FieldViolation(f, m) for f, m in found.items()],
        )


opened = ConsoleStore.opened  # the console's store at a URL, migrated, closed on leaving


async def create(
    store: ConsoleStore,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    limits: dict[str, Decimal] | None = None,
    locale: str = "",
) -> Account:
    email = rules.normal_email(email)
    found = rules.account_errors(email=email, name=name, role=role, locale=locale, limits=limits)
    if problem := rules.password_error(password):
        found["password"] = problem
    _refuse(found)
    password_hash = await asyncio.to_thread(rules.hash_password, password)
    return await store.create_account(
        email=email,
        name=name.strip(),
        role=role,
        password_hash=password_hash,
        limits=dict(limits or {}),
        locale=locale,
        now=_now(),
    )


async def change(
    store: ConsoleStore,
    email: str,
    *,
    name: str | None = None,
    role: str | None = None,
    limits: dict[str, Decimal] | None = None,
    locale: str | None = None,
    disabled: bool | None = None,
) -> Account:
    """Changes what is given (a new role or disabling ends the account's sessions)."""
    current = await store.account(rules.normal_email(email))
    if current is None:
        raise InvalidArgument(f"no account for {email}", [FieldViolation("email", N_("No such account."))])
    new_role = role if role is not None else current.role
    new_limits = limits if limits is not None else (current.limits if new_role == "approver" else {})
    _refuse(
        rules.account_errors(
            email=current.email,
            name=name if name is not None else current.name,
            role=new_role,
            locale=locale if locale is not None else current.locale,
            limits=new_limits,
        )
    )
    return await store.update_account(
        current.email,
        _now(),
        name=name.strip() if name is not None else None,
        role=role,
        limits=new_limits,
        locale=locale,
        disabled=disabled,
    )


async def reset_password(store: ConsoleStore, email: str, password: str) -> None:
    """A new password; unlocks the account and ends its sessions."""
    if problem := rules.password_error(password):
        raise InvalidArgument(problem, [FieldViolation("password", problem)])
    password_hash = await asyncio.to_thread(rules.hash_password, password)
    await store.set_password(rules.normal_email(email), password_hash, _now())


async def ensure_demo_accounts(store: ConsoleStore) -> list[str]:
    """Creates the documented demo accounts that are missing; the e-mails created."""
    made = []
    for email, name, role, password, limits in DEMO_ACCOUNTS:
        if await store.account(email) is None:
            await create(store, email=email, name=name, role=role, password=password, limits=limits)
            made.append(email)
    return made
