"""The console's store on SQLite and PostgreSQL: failed sign-ins counted by the database (all of them, at
the same moment too), the lock they set, and the count starting again once a lock has run out."""

from __future__ import annotations

import asyncio
import datetime as dt

from console import accounts

NOW = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
LOCK = dt.timedelta(minutes=15)


async def test_failures_in_a_row_lock_the_account_and_start_again_after(database_url):
    async with accounts.opened(database_url) as store:
        await accounts.ensure_demo_accounts(store)

        async def fail(at: dt.datetime) -> bool:
            return await store.record_failure(
                "clerk@demo.example",
                "10.0.0.1",
                at,
                lock_after=10,
                lock_until=at + LOCK,
                forget_before=at - dt.timedelta(minutes=5),
            )

        locked = await asyncio.gather(*(fail(NOW) for _ in range(9)))  # at the same moment: all count
        assert not any(locked)
        assert (await store.account("clerk@demo.example")).failures_in_a_row == 9
        assert await fail(NOW)
        account = await store.account("clerk@demo.example")
        assert (account.failures_in_a_row, account.locked_until) == (10, NOW + LOCK)

        later = NOW + LOCK + dt.timedelta(seconds=1)
        assert not await fail(later)  # the lock ran out: one failure is one, not eleven
        assert (await store.account("clerk@demo.example")).failures_in_a_row == 1
        assert await store.failures_since(
            "clerk@demo.example", "10.0.0.1", later - dt.timedelta(minutes=5)
        ) == (
            1,
            1,
        )  # the failures of the old window were pruned on the way


async def test_an_unknown_email_is_counted_for_the_throttle_only(database_url):
    async with accounts.opened(database_url) as store:
        locked = await store.record_failure(
            "nobody@acme.example",
            "10.0.0.2",
            NOW,
            lock_after=1,
            lock_until=NOW + LOCK,
            forget_before=NOW - dt.timedelta(minutes=5),
        )
        assert not locked
        assert await store.failures_since("nobody@acme.example", "10.0.0.2", NOW) == (1, 1)
        assert await store.account("nobody@acme.example") is None


async def test_a_hash_made_with_old_parameters_is_made_again_at_sign_in(start_console, browser_of):
    from argon2 import PasswordHasher

    from console import rules

    console = await start_console()
    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash("clerk-demo-pass")
    async with accounts.opened(console.database_url) as store:
        account = await store.account("clerk@demo.example")
        _, current = await store.credentials("clerk@demo.example")
        await store.replace_hash(account.account_id, current, old)
    assert rules.needs_rehash(old)
    browser = await browser_of(console)
    assert (await browser.sign_in("clerk"))[0] == 303
    async with accounts.opened(console.database_url) as store:
        _, renewed = await store.credentials("clerk@demo.example")
    assert renewed != old and not rules.needs_rehash(renewed)
    assert rules.verify_password(renewed, "clerk-demo-pass")
