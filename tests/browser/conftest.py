"""Browser tests: Playwright (sync API) driving Debian's Chromium against the whole suite as processes
(devtools.devstack: services, gateway, console, demo data and demo accounts), started once per session
with its own NATS (a user per service, as `make run`).

Without /usr/bin/chromium the tests skip, saying how to install it; with CI set they fail instead (CI must
not pass by skipping them: .ci/run installs chromium). JavaScript is blocked in every page unless a test
asks for it (`page_with_js`): the console must work without it. Each test leaves a screenshot in
var/screenshots/<test>.png (`shot(page, "name")` takes more along the way), and the page it ends on is
checked for controls without an accessible name and tables without headers (`assert_accessible`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from pathlib import Path

import pytest

from devtools.devstack import Stack
from tests.browser.desk import SCREENSHOTS, assert_accessible, file_name

CHROMIUM = Path(os.environ.get("ORDERDESK_TEST_CHROMIUM", "/usr/bin/chromium"))
WITHOUT_BROWSER = (
    f"no Chromium at {CHROMIUM}: install Debian's package (sudo apt-get install chromium) or point "
    "ORDERDESK_TEST_CHROMIUM at one; Playwright's own browser download is not used"
)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail(WITHOUT_BROWSER + " (CI is set: the browser tests must run)")
        pytest.skip(WITHOUT_BROWSER)
    return CHROMIUM


def run_apart(coroutine):
    """Runs a coroutine to its end on a thread of its own: Playwright's sync API keeps an event loop running
    in this thread once a browser is up (the `page` fixture starts it before the suite), so asyncio.run
    cannot be used here."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="package")  # gone before the tests after it: its event loop would break theirs
def suite(chromium_path, tmp_path_factory, request):
    """The suite with the console, on SQLite (ORDERDESK_TEST_E2E_BACKEND=postgresql: on PostgreSQL)."""
    from devtools.localservers import create_postgres_database, drop_postgres_database

    folder = tmp_path_factory.mktemp("browser-suite")
    database_urls: dict[str, str] = {}
    admin = None
    if os.environ.get("ORDERDESK_TEST_E2E_BACKEND") == "postgresql":
        admin = request.getfixturevalue("postgres_admin_url")
        if admin is None:
            pytest.skip("ORDERDESK_TEST_E2E_BACKEND=postgresql but no PostgreSQL is available")
        run = uuid.uuid4().hex[:8]
        for name in (
            "intake",
            "orders",
            "inventory",
            "shipping",
            "returns",
            "notifier",
            "gateway",
            "console",
        ):
            database_urls[name] = run_apart(create_postgres_database(admin, f"odb_{run}_{name}"))
    # Its own NATS, started and stopped with it (after the skip: no server left running).
    stack = Stack(data_dir=folder / "stack", database_urls=database_urls, console=True)
    try:
        stack.start()
        stack.load_demo_data()
        yield stack
    finally:
        stack.stop()
        for url in database_urls.values():
            run_apart(drop_postgres_database(admin, url.rsplit("/", 1)[-1]))


@pytest.fixture(scope="package")  # Playwright's sync API runs an event loop in this thread while up
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        args = (
            ["--no-sandbox"] if os.geteuid() == 0 else []
        )  # as root, Chromium runs only without its sandbox
        launched = playwright.chromium.launch(executable_path=str(chromium_path), args=args, headless=True)
        yield launched
        launched.close()


def _page(browser, suite, request, *, javascript: bool):
    context = browser.new_context(
        base_url=suite.console_url,
        java_script_enabled=javascript,
        locale="en-GB",
        viewport={"width": 1280, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{file_name(request.node.name)}.png"), full_page=True)
        if page.url.startswith(suite.console_url):
            assert_accessible(page)  # whatever page a test ends on: named controls, tables with headers
    finally:
        context.close()


@pytest.fixture
def page(browser, suite, request):
    """A fresh browser (no cookies) on the console, JavaScript blocked."""
    yield from _page(browser, suite, request, javascript=False)


@pytest.fixture
def page_with_js(browser, suite, request):
    yield from _page(browser, suite, request, javascript=True)
