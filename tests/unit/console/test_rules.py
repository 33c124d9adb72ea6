"""The console's own rules (console/rules.py): accounts, passwords, sign-in throttling and lock-out, sessions."""

import datetime as dt

from console import rules
from console.rules import SigninPolicy, Verdict

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
POLICY = SigninPolicy(
    window=dt.timedelta(minutes=5),
    account_limit=5,
    address_limit=30,
    lock_after=10,
    lock_for=dt.timedelta(minutes=15),
)


def verdict(account=0, address=0, locked_until=None):
    return rules.before_signin(
        POLICY, NOW, account_failures=account, address_failures=address, locked_until=locked_until
    )


def test_failures_within_the_limits_let_the_password_be_checked():
    assert verdict(account=4, address=29) is Verdict.ALLOWED


def test_too_many_failures_for_an_account_or_from_an_address_throttle():
    assert verdict(account=5) is Verdict.THROTTLED
    assert verdict(address=30) is Verdict.THROTTLED


def test_a_lock_holds_until_it_runs_out():
    assert verdict(locked_until=NOW + dt.timedelta(seconds=1)) is Verdict.LOCKED
    assert verdict(locked_until=NOW) is Verdict.ALLOWED


def test_a_session_ends_when_idle_or_too_old():
    idle, absolute = dt.timedelta(minutes=30), dt.timedelta(hours=12)

    def live(created_ago, seen_ago):
        return rules.session_live(
            NOW, created_at=NOW - created_ago, last_seen_at=NOW - seen_ago, idle=idle, absolute=absolute
        )

    assert live(dt.timedelta(hours=1), dt.timedelta(minutes=29))
    assert not live(dt.timedelta(hours=1), dt.timedelta(minutes=30))
    assert not live(dt.timedelta(hours=12), dt.timedelta(seconds=1))


def test_account_details_are_checked_field_by_field():
    ok = dict(email="ann@acme.example", name="Ann", role="approver", locale="zh_Hans")
    assert rules.account_errors(**ok) == {}
    assert rules.account_errors(**{**ok, "locale": ""}) == {}
    bad = rules.account_errors(email="ann (x)@acme", name=" ", role="boss", locale="fr")
    assert set(bad) == {"email", "name", "role", "locale"}
    from decimal import Decimal

    assert "limits" in rules.account_errors(**{**ok, "role": "clerk"}, limits={"USD": Decimal(1)})


def test_passwords_are_long_and_hashed_with_argon2():
    assert rules.password_error("eleven-char") is not None
    assert rules.password_error("twelve-chars") is None
    hashed = rules.hash_password("twelve-chars")
    assert hashed.startswith("$argon2id$")
    assert rules.verify_password(hashed, "twelve-chars")
    assert not rules.verify_password(hashed, "twelve-chars!")
    assert not rules.verify_password(None, "twelve-chars")
    assert not rules.verify_password("not a hash", "twelve-chars")
