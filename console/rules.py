"""The console's own rules, plain Python (no I/O): desk accounts, passwords, sign-in throttling and
lock-out, session expiry. Messages are gettext ids (`N_`): the pages show them translated, the CLI
in English.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.i18n import LOCALES, N_
from orderdesk import roles
from orderdesk.config import ConsoleSettings

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work one request can ask for
_EMAIL = re.compile(r"^[^@\s()]+@[^@\s()]+\.[^@\s()]+$")  # no spaces or brackets: it is part of the actor

# argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane): about 0.2 s of one core per
# sign-in on a loaded 2-core machine, where argon2-cffi's defaults (64 MiB, 3 passes, 4 lanes) took 1.2 s.
# Hashes made with other parameters still verify, and are made again at the next sign-in (needs_rehash).
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when the e-mail is unknown, so an unknown account costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


# --- accounts --------------------------------------------------------------------------------------------
def normal_email(email: str) -> str:
    return email.strip().lower()


def account_errors(
    *, email: str, name: str, role: str, locale: str, limits: Mapping[str, Decimal] | None = None
) -> dict[str, str]:
    """Field -> message for what is wrong with an account's details; empty when all is well."""
    found: dict[str, str] = {}
    if not _EMAIL.match(normal_email(email)) or len(email) > 254:
        found["email"] = N_("Enter an e-mail address such as ann@example.com.")
    if not name.strip() or len(name) > 200:
        found["name"] = N_("Enter a name (at most 200 characters).")
    if not roles.is_role(role):
        found["role"] = N_("Choose one of the roles.")
    if locale and locale not in LOCALES:  # "": follow the browser
        found["locale"] = N_("Choose one of the languages.")
    if limits and role != "approver":
        found["limits"] = N_("Only an approver has approval limits.")
    return found


def password_error(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return N_("A password has at least 12 characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        return N_("A password has at most 1024 characters.")
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def verify_password(password_hash: str | None, password: str) -> bool:
    """argon2 verification (tens of milliseconds: call it off the event loop). None: an unknown account,
    checked against a dummy hash so it takes as long as a known one."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# --- signing in ------------------------------------------------------------------------------------------
class Verdict(StrEnum):
    ALLOWED = "allowed"  # check the password
    THROTTLED = "throttled"  # too many failures lately, from this address or for this account: wait
    LOCKED = "locked"  # too many failures in a row: locked for a while (or until a password reset)


@dataclass(frozen=True)
class SigninPolicy:
    window: dt.timedelta
    account_limit: int
    address_limit: int
    lock_after: int
    lock_for: dt.timedelta

    @classmethod
    def of(cls, settings: ConsoleSettings) -> SigninPolicy:
        return cls(
            window=dt.timedelta(seconds=settings.signin_window_seconds),
            account_limit=settings.signin_account_limit,
            address_limit=settings.signin_address_limit,
            lock_after=settings.lock_after,
            lock_for=dt.timedelta(seconds=settings.lock_seconds),
        )


def before_signin(
    policy: SigninPolicy,
    now: dt.datetime,
    *,
    account_failures: int,
    address_failures: int,
    locked_until: dt.datetime | None,
) -> Verdict:
    """Whether a sign-in attempt is looked at at all (failures counted over the policy's window)."""
    if locked_until is not None and locked_until > now:
        return Verdict.LOCKED
    if account_failures >= policy.account_limit or address_failures >= policy.address_limit:
        return Verdict.THROTTLED
    return Verdict.ALLOWED


# --- sessions --------------------------------------------------------------------------------------------
def session_live(
    now: dt.datetime,
    *,
    created_at: dt.datetime,
    last_seen_at: dt.datetime,
    idle: dt.timedelta,
    absolute: dt.timedelta,
) -> bool:
    """A session ends when unused for `idle`, and `absolute` after signing in whatever happens."""
    return now - last_seen_at < idle and now - created_at < absolute
