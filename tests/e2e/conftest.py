"""The whole suite as real processes: five services, the gateway, NATS, real databases.

The `stack` runs on a nats-server of its own with a user per service (devtools.devstack.secured_nats), as
`make run` does: never on the shared test NATS (ORDERDESK_TEST_NATS_URL), whose stream another test's
restore could delete. Tests reach its NATS as the admin: `nats.connect(stack.nats_url,
**stack.nats_connect_options())` (the `nc` fixture)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import nats
import pytest

from devtools.devstack import Stack
from devtools.http import client_session
from devtools.localservers import create_postgres_database, drop_postgres_database

COMPONENTS_WITH_DB = ("intake", "orders", "inventory", "shipping", "returns", "notifier", "gateway")
# Webhook retries in tenths of seconds, so a parked delivery is seen within the test (production: seconds to minutes).
WEBHOOK_ENV = {
    "ORDERDESK_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "ORDERDESK_WEBHOOK_MAX_BACKOFF_SECONDS": "1",
    "ORDERDESK_WEBHOOK_MAX_ATTEMPTS": "4",
    "ORDERDESK_WEBHOOK_TIMEOUT_SECONDS": "3",
}
# A closed order's personal data may be erased 2 seconds after it closed (production: years; tests/e2e/test_erasure.py).
ERASURE_ENV = {"ORDERDESK_PERSONAL_DATA_RETENTION_DAYS": repr(2 / 86400)}
# Exchanges (issue 14): key customers' replacements ship at once (tests/e2e/test_exchanges.py).
EXCHANGE_ENV = {"ORDERDESK_RETURN_ADVANCE_EXCHANGE_TIERS": "key"}
KEYS = {"shop": "demo-shop-key", "edi": "demo-edi-key", "3pl": "demo-3pl-key", "admin": "demo-admin-key"}


@contextlib.asynccontextmanager
async def running_stack(
    request, make: Callable[[dict[str, str]], Stack], *, prefix: str = "odt"
) -> AsyncIterator[Stack]:
    """A stack's whole life for e2e tests: SQLite files by default; ORDERDESK_TEST_E2E_BACKEND=postgresql
    puts every database on PostgreSQL (created here as `<prefix>_<run>_<component>`, dropped afterwards).
    `make` builds the Stack from those database URLs (empty for SQLite); it is started, given the demo
    data, and stopped at the end. NATS: the stack's own, secured (see above)."""
    database_urls: dict[str, str] = {}
    admin = None
    if os.environ.get("ORDERDESK_TEST_E2E_BACKEND") == "postgresql":
        admin = request.getfixturevalue("postgres_admin_url")
        if admin is None:
            pytest.skip("ORDERDESK_TEST_E2E_BACKEND=postgresql but no PostgreSQL is available")
        run = uuid.uuid4().hex[:8]
        for name in COMPONENTS_WITH_DB:
            database_urls[name] = await create_postgres_database(admin, f"{prefix}_{run}_{name}")
    suite = make(database_urls)
    try:
        await asyncio.to_thread(suite.start)
        await asyncio.to_thread(suite.load_demo_data)
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)
        for url in database_urls.values():
            await drop_postgres_database(admin, url.rsplit("/", 1)[-1])


@pytest.fixture(scope="session")
async def stack(tmp_path_factory, request):
    """The suite shared by the e2e tests (`running_stack`)."""
    folder = tmp_path_factory.mktemp("stack")
    async with running_stack(
        request,
        lambda urls: Stack(
            data_dir=folder, database_urls=urls, extra_env={**WEBHOOK_ENV, **ERASURE_ENV, **EXCHANGE_ENV}
        ),
    ) as suite:
        yield suite


class Partner:
    """A partner system talking to the gateway with its API key. A `patient` partner, told 429, waits as
    long as Retry-After says and asks again, as a well-behaved client does (the suite's own partners: the
    tests poll, the gateway's real limits stay on); the limits themselves are seen by impatient ones."""

    RETRIES_AFTER_429 = 20

    def __init__(self, session: aiohttp.ClientSession, base: str, key: str, *, patient: bool = False):
        self.session, self.base, self.key, self.patient = session, base, key, patient

    async def request(self, method: str, path: str, *, json=None, data=None, headers=None):
        h = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        attempts = self.RETRIES_AFTER_429 + 1 if self.patient else 1
        for attempt in range(1, attempts + 1):
            async with self.session.request(
                method, self.base + path, json=json, data=data, headers=h
            ) as resp:
                if resp.status != 429 or attempt == attempts:
                    body = await resp.json(content_type=None) if resp.content_length != 0 else None
                    return resp.status, body, resp.headers
                wait = float(resp.headers.get("Retry-After") or 1)
            await asyncio.sleep(min(wait, 5.0))
        raise AssertionError("unreachable")

    async def get(self, path: str):
        return await self.request("GET", path)

    async def post(self, path: str, json=None, **kw):
        return await self.request("POST", path, json=json, **kw)


@pytest.fixture(scope="session")
async def http():
    async with client_session(total=30) as session:
        yield session


# The fixture name of each demo partner, and its key.
PARTNER_KEYS = {"shop": "shop", "edi": "edi", "warehouse_operator": "3pl", "admin": "admin"}


def partner_fixtures(scope: str) -> tuple:
    """The demo partners (patient, on `stack`'s gateway) as fixtures of `scope`, in PARTNER_KEYS' order:
    the session's here, and a module's whose `stack` is its own (a session fixture cannot use it)."""

    def partner(key: str, name: str):
        def fixture(stack, http):
            return Partner(http, stack.gateway_url, KEYS[key], patient=True)

        return pytest.fixture(scope=scope, name=name)(fixture)

    return tuple(partner(key, name) for name, key in PARTNER_KEYS.items())


shop, edi, warehouse_operator, admin = partner_fixtures("session")


@pytest.fixture(scope="session")
async def nc(stack):
    conn = await nats.connect(stack.nats_url, **stack.nats_connect_options())
    yield conn
    await conn.drain()


async def _eventually(check, timeout: float = 30.0, interval: float = 0.1, max_interval: float = 1.0):
    """Polls an async `check` until it returns a truthy value; returns that value. The pause between two
    checks grows from `interval` to `max_interval`, so a long wait polls within a partner's rate limits."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, max_interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture(scope="session")
def eventually():
    """`await eventually(async_check)`: polls until the check returns something truthy."""
    return _eventually
