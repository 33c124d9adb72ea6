"""Who may do what at the order desk: one table of role -> permissions, and the approval limit rule.

Plain Python, no I/O. The console checks every state-changing request against `ROLES` on the server
(`console.web.requires(Permission.X)` on each POST route); the pages only hide what this table would
refuse anyway. A refusal is a `Refusal` that says what is needed: a role, or an approval limit.

    viewer    reads everything
    clerk     + enters, amends and cancels orders, raises and resolves exceptions, authorises returns,
              records receipts, writes notes
    approver  + approves and rejects held orders up to the account's approval limit in the order's
              currency (a credit-limit hold needs a limit covering the order total), and authorises or
              refuses returns held by the return policy (the same permission, no limit)
    admin     reads everything; desk accounts, partners' API keys, master-data imports (separation of
              duties: an admin decides no orders unless also given an approver account)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    ENTER_ORDERS = "enter_orders"
    AMEND_ORDERS = "amend_orders"
    CANCEL_ORDERS = "cancel_orders"
    RAISE_EXCEPTIONS = "raise_exceptions"
    RESOLVE_EXCEPTIONS = "resolve_exceptions"
    AUTHORISE_RETURNS = "authorise_returns"
    RECORD_RECEIPTS = "record_receipts"
    WRITE_NOTES = "write_notes"
    DECIDE_HELD_ORDERS = (
        "decide_held_orders"  # approve or reject, within the approval limit; held returns too
    )
    MANAGE_ACCOUNTS = "manage_accounts"
    MANAGE_API_KEYS = "manage_api_keys"
    IMPORT_MASTER_DATA = "import_master_data"


_CLERK = frozenset(
    {
        Permission.READ,
        Permission.ENTER_ORDERS,
        Permission.AMEND_ORDERS,
        Permission.CANCEL_ORDERS,
        Permission.RAISE_EXCEPTIONS,
        Permission.RESOLVE_EXCEPTIONS,
        Permission.AUTHORISE_RETURNS,
        Permission.RECORD_RECEIPTS,
        Permission.WRITE_NOTES,
    }
)

# The one table. Order matters: from the least to the most trusted desk role (admin is apart).
ROLES: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.READ}),
    "clerk": _CLERK,
    "approver": _CLERK | {Permission.DECIDE_HELD_ORDERS},
    "admin": frozenset(
        {
            Permission.READ,
            Permission.MANAGE_ACCOUNTS,
            Permission.MANAGE_API_KEYS,
            Permission.IMPORT_MASTER_DATA,
        }
    ),
}


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused, for the person: the roles that may do it, or the limit it needs."""

    permission: Permission
    roles: tuple[str, ...] = ()  # the roles that have the permission (a role was missing)
    currency: str = ""  # an approval limit was missing or too low in this currency
    needed: Decimal | None = None  # ... the order total it has to cover
    limit: Decimal | None = None  # ... the account's limit (None: no limit in that currency)


def is_role(role: str) -> bool:
    return role in ROLES


def allows(role: str, permission: Permission) -> bool:
    return permission in ROLES.get(role, frozenset())


def roles_with(permission: Permission) -> tuple[str, ...]:
    return tuple(role for role, granted in ROLES.items() if permission in granted)


def check(role: str, permission: Permission) -> Refusal | None:
    """None when `role` may do it, else what it takes."""
    if allows(role, permission):
        return None
    return Refusal(permission, roles=roles_with(permission))


def parse_limits(pairs: Iterable[str]) -> dict[str, Decimal]:
    """["USD=5000", "EUR=2500.50"] -> {"USD": Decimal("5000"), "EUR": Decimal("2500.50")}; ValueError naming
    the bad pair (a currency is three letters, an amount a non-negative decimal)."""
    limits: dict[str, Decimal] = {}
    for pair in pairs:
        currency, sep, amount = pair.partition("=")
        currency = currency.strip().upper()
        if not sep or len(currency) != 3 or not currency.isalpha():
            raise ValueError(f"{pair!r}: write a limit as CURRENCY=AMOUNT, e.g. USD=5000")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            raise ValueError(f"{pair!r}: {amount.strip()!r} is not an amount") from None
        if not value.is_finite() or value < 0:
            raise ValueError(f"{pair!r}: the amount must be zero or more")
        limits[currency] = value
    return limits


def check_decision(
    role: str,
    limits: Mapping[str, Decimal],
    currency: str,
    total: Decimal,
) -> Refusal | None:
    """May this account approve or reject a held order of `total` in `currency`?

    It needs the permission, and an approval limit in the order's currency that covers the order
    total, whatever the hold (a credit-limit hold among them); no limit in the currency is no
    authority at all."""
    refused = check(role, Permission.DECIDE_HELD_ORDERS)
    if refused:
        return refused
    limit = limits.get(currency.upper())
    if limit is None or total > limit:
        return Refusal(Permission.DECIDE_HELD_ORDERS, currency=currency.upper(), needed=total, limit=limit)
    return None
