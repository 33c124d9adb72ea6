"""`orderdesk users …` as an operator runs it, on the console's database (SQLite and PostgreSQL): passwords
come from stdin or a prompt, never the command line, and are never printed; what it changes reads back."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

from console import accounts, rules
from devtools.devstack import ROOT

PASSWORD = "a-secret-nobody-sees"


def users(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORDERDESK_CONSOLE_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "cli", "users", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


async def test_an_operator_creates_lists_disables_and_resets_an_account(database_url):
    made = users(
        database_url,
        *("create", "--email", "Ann@Acme.example", "--name", "Ann Lee", "--role", "approver"),
        *("--limit", "USD=5000", "--limit", "eur=2500.50", "--locale", "zh_Hans", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created ann@acme.example (approver)"
    async with accounts.opened(database_url) as store:
        found = await store.credentials("ann@acme.example")
    assert found is not None
    account, password_hash = found
    assert account.limits == {"USD": Decimal("5000"), "EUR": Decimal("2500.50")}
    assert (account.name, account.locale) == ("Ann Lee", "zh_Hans")
    assert rules.verify_password(password_hash, PASSWORD) and PASSWORD not in password_hash

    listed = users(database_url, "list")
    assert listed.returncode == 0
    row = next(line for line in listed.stdout.splitlines() if line.startswith("ann@acme.example"))
    assert "approver" in row and "EUR=2500.50 USD=5000" in row and "active" in row
    assert "argon2" not in listed.stdout

    assert users(database_url, "disable", "--email", "ann@acme.example").returncode == 0
    assert "disabled" in users(database_url, "list").stdout

    reset = users(
        database_url, "reset-password", "--email", "ann@acme.example", "--password-stdin", stdin="x" * 20
    )
    assert reset.returncode == 0, reset.stderr
    async with accounts.opened(database_url) as store:
        _, password_hash = await store.credentials("ann@acme.example")
    assert rules.verify_password(password_hash, "x" * 20)

    for run in (made, listed, reset):
        assert PASSWORD not in run.stdout + run.stderr


async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(database_url):
    short = users(
        database_url,
        *("create", "--email", "bo@acme.example", "--name", "Bo", "--role", "clerk", "--password-stdin"),
        stdin="short\n",
    )
    assert short.returncode == 1 and "password: A password has at least 12 characters." in short.stderr
    limits = users(
        database_url,
        *("create", "--email", "bo@acme.example", "--name", "Bo", "--role", "clerk", "--limit", "USD=100"),
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert limits.returncode == 1 and "limits: Only an approver has approval limits." in limits.stderr
    no_terminal = users(
        database_url, "create", "--email", "bo@acme.example", "--name", "Bo", "--role", "clerk"
    )
    assert no_terminal.returncode == 1 and "--password-stdin" in no_terminal.stderr
    assert "bo@acme.example" not in users(database_url, "list").stdout
    missing = users(database_url, "disable", "--email", "nobody@acme.example")
    assert missing.returncode == 1 and "no account for nobody@acme.example" in missing.stderr


async def test_the_demo_accounts_are_made_once(database_url):
    first = users(database_url, "demo")
    assert first.returncode == 0 and "4 created" in first.stdout
    again = users(database_url, "demo")
    assert again.returncode == 0 and "0 created" in again.stdout
