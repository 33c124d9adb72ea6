"""`orderdesk users …`: desk accounts of the console, in the console's own database
(ORDERDESK_CONSOLE_DATABASE_URL, default SQLite var/console.db), through console.accounts.

    orderdesk users create --email ann@acme.example --name "Ann Lee" --role approver --limit USD=5000 [--locale zh_Hans]
    orderdesk users list
    orderdesk users disable --email ann@acme.example   (--enable to undo)
    orderdesk users reset-password --email ann@acme.example   (also unlocks it and ends its sessions)
    orderdesk users demo                                   the documented demo accounts, when missing

A password is asked for twice at the terminal, or read from the first line of stdin with
--password-stdin (for scripts); never from the command line, never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from orderdesk import roles
from orderdesk.config import database_url


def _opened():
    from console import accounts

    return accounts.opened(database_url("console"))


def _read_password(args: argparse.Namespace) -> str:
    from cli.main import CliError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on stdin")
        return password
    if not sys.stdin.isatty():
        raise CliError("give the password at a terminal, or pipe it in with --password-stdin")
    first = getpass.getpass("New password: ")
    if first != getpass.getpass("The same password again: "):
        raise CliError("the two passwords differ; nothing was changed")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    from cli.main import CliError
    from console import accounts

    try:
        limits = roles.parse_limits(args.limit or [])
    except ValueError as exc:
        raise CliError(str(exc)) from None
    password = _read_password(args)

    async def create():
        async with _opened() as store:
            return await accounts.create(
                store,
                email=args.email,
                name=args.name,
                role=args.role,
                password=password,
                limits=limits,
                locale=args.locale,
            )

    account = asyncio.run(create())
    print(f"created {account.email} ({account.role})")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    from cli.main import table

    async def listed():
        async with _opened() as store:
            return await store.list_accounts()

    rows = [
        (
            a.email,
            a.name,
            a.role,
            " ".join(f"{c}={v}" for c, v in sorted(a.limits.items())) or "-",
            a.locale or "browser",
            "disabled" if a.disabled else ("locked" if a.locked_until else "active"),
        )
        for a in asyncio.run(listed())
    ]
    print(table(("EMAIL", "NAME", "ROLE", "APPROVAL LIMITS", "LANGUAGE", "STATE"), rows))
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from console import accounts

    async def change():
        async with _opened() as store:
            return await accounts.change(store, args.email, disabled=not args.enable)

    account = asyncio.run(change())
    print(f"{account.email} is {'disabled (its sessions ended)' if account.disabled else 'enabled'}")
    return 0


def cmd_users_reset_password(args: argparse.Namespace) -> int:
    from console import accounts

    password = _read_password(args)

    async def reset():
        async with _opened() as store:
            await accounts.reset_password(store, args.email, password)

    asyncio.run(reset())
    print(f"new password set for {args.email}; its sessions ended and it is unlocked")
    return 0


def cmd_users_demo(args: argparse.Namespace) -> int:
    from console import accounts

    async def demo():
        async with _opened() as store:
            return await accounts.ensure_demo_accounts(store)

    made = asyncio.run(demo())
    print(f"demo accounts: {len(made)} created ({', '.join(made) or 'all there already'})")
    return 0


def register(sub) -> None:
    users = sub.add_parser("users", help="desk accounts of the console").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    create = users.add_parser("create", help="a new desk account (the password is asked for)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=tuple(roles.ROLES))
    create.add_argument(
        "--limit",
        action="append",
        metavar="CUR=AMOUNT",
        help="an approver's approval limit in one currency, e.g. USD=5000 (repeatable)",
    )
    create.add_argument("--locale", default="", choices=("", "en", "zh_Hans"), help="default: the browser's")
    create.set_defaults(run=cmd_users_create)
    listing = users.add_parser("list", help="every account (never a password or its hash)")
    listing.set_defaults(run=cmd_users_list)
    disable = users.add_parser("disable", help="disable an account: it cannot sign in, its sessions end")
    disable.add_argument("--email", required=True)
    disable.add_argument("--enable", action="store_true", help="enable it again instead")
    disable.set_defaults(run=cmd_users_disable)
    reset = users.add_parser("reset-password", help="a new password (unlocks the account, ends its sessions)")
    reset.add_argument("--email", required=True)
    reset.set_defaults(run=cmd_users_reset_password)
    for action in (create, reset):
        action.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of stdin"
        )
    demo = users.add_parser("demo", help="create the documented demo accounts that are missing")
    demo.set_defaults(run=cmd_users_demo)
