"""The console in-process (uvicorn on a free port) with its real store on SQLite and PostgreSQL, for the
session, CSRF and role rules. No service answers behind it: these pages need none (the browser tests
run the console with the whole suite)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
import uuid

import aiohttp
import pytest
import uvicorn

from console import accounts
from console.app import create_app
from devtools import localservers
from devtools.http import client_session
from devtools.localservers import create_postgres_database, drop_postgres_database
from orderdesk import clock
from orderdesk.config import SERVICES, ConsoleSettings, Settings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DEMO = {role: (email, password) for email, _, role, password, _ in accounts.DEMO_ACCOUNTS}


class Browser:
    """A person's browser, roughly: a cookie jar, no redirects followed, forms with the page's token."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url
        self.last_page = ""

    async def get(self, path: str):
        async with self.session.get(self.url + path, allow_redirects=False) as resp:
            self.last_page = await resp.text()
            return resp.status, self.last_page, resp.headers

    async def post(self, path: str, data: dict, *, token: str | None = "page"):
        """POSTs a form; `token="page"` sends the CSRF token of the last page seen, None sends none."""
        form = dict(data)
        if token == "page":
            form["csrf_token"] = csrf_of(self.last_page)
        elif token is not None:
            form["csrf_token"] = token
        async with self.session.post(self.url + path, data=form, allow_redirects=False) as resp:
            return resp.status, await resp.text(), resp.headers

    async def sign_in(self, role_or_email: str, password: str | None = None):
        email, default = DEMO.get(role_or_email, (role_or_email, ""))
        await self.get("/signin")
        return await self.post("/signin", {"email": email, "password": password or default})


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


@dataclasses.dataclass
class RunningConsole:
    url: str
    database_url: str
    settings: ConsoleSettings

    async def browser(self):
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        return client_session(cookie_jar=jar, total=20)


@pytest.fixture
async def database_url(backend, tmp_path, request):
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
        return
    admin = request.getfixturevalue("postgres_admin_url")
    name = f"odt_{uuid.uuid4().hex[:16]}"
    yield await create_postgres_database(admin, name)
    await drop_postgres_database(admin, name)


DEFAULTS = ConsoleSettings(
    addr="",
    session_idle_seconds=1800,
    session_max_seconds=43200,
    secure_cookies="auto",
    signin_window_seconds=300,
    signin_account_limit=5,
    signin_address_limit=30,
    lock_after=10,
    lock_seconds=900,
)


@pytest.fixture
def moved_clock():
    """moved_clock(delta): the clock the console reads (orderdesk.clock, this process's) moves on by
    delta, so expiry is tested without sleeping; real time again after the test."""
    moved = dt.timedelta(0)

    def move(delta: dt.timedelta) -> None:
        nonlocal moved
        moved += delta
        clock.start_at(dt.datetime.now(dt.UTC) + moved)

    yield move
    clock.start_at(None)


@pytest.fixture
async def start_console(database_url):
    """`await start_console(**console_settings)`: the console running with the demo accounts."""
    servers: list[tuple[uvicorn.Server, asyncio.Task]] = []
    unused = f"127.0.0.1:{localservers.free_port()}"  # no service behind it

    async def start(**overrides) -> RunningConsole:
        settings = Settings(
            component="console",
            database_url=database_url,
            nats_url="",
            grpc_addr="",
            metrics_port=0,
            rpc_timeout=0.5,
            peers={name: unused for name in SERVICES},
        )
        async with accounts.opened(database_url) as store:
            await accounts.ensure_demo_accounts(store)
        console_settings = dataclasses.replace(DEFAULTS, **overrides)
        port = localservers.free_port()
        config = uvicorn.Config(
            create_app(settings, console_settings),
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            http="httptools",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        return RunningConsole(f"http://127.0.0.1:{port}", database_url, console_settings)

    yield start
    for server, task in servers:
        server.should_exit = True
        await task


@pytest.fixture
async def console(start_console):
    return await start_console()


@pytest.fixture
async def browser_of():
    """`await browser_of(console)`: a new browser (its own cookies) on that console."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(target: RunningConsole) -> Browser:
        session = await target.browser()
        sessions.append(session)
        return Browser(session, target.url)

    yield make
    for session in sessions:
        await session.close()
