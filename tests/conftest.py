"""Shared fixtures: real NATS, real databases (SQLite and PostgreSQL).

Servers come from environment URLs when set (ORDERDESK_TEST_NATS_URL,
ORDERDESK_TEST_POSTGRES_URL: an admin URL such as postgresql://postgres@127.0.0.1:5432/postgres),
else from testcontainers when a Docker engine answers, else from local binaries
started in a temporary folder. PostgreSQL tests are skipped, saying why, only
when none of the three is possible.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import settings

from devtools import localservers
from devtools.localservers import create_postgres_database, drop_postgres_database
from orderdesk import migrations
from orderdesk.db import Database

# Property tests check rules, not speed: no per-example deadline (a loaded CI machine would
# otherwise turn a slow example into a failure).
settings.register_profile("orderdesk", deadline=None)
settings.load_profile("orderdesk")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory):
    url = os.environ.get("ORDERDESK_TEST_NATS_URL")
    if url:
        yield url
        return
    if localservers.docker_available():
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.waiting_utils import wait_for_logs

        container = DockerContainer("nats:2.10").with_command("-js").with_exposed_ports(4222)
        container.start()
        wait_for_logs(container, "Server is ready")
        yield f"nats://{container.get_container_host_ip()}:{container.get_exposed_port(4222)}"
        container.stop()
        return
    server = localservers.LocalNats(tmp_path_factory.mktemp("nats")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory):
    url = os.environ.get("ORDERDESK_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    if localservers.docker_available():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(
            "postgres:16", username="postgres", password="postgres", dbname="postgres"
        )
        container.start()
        yield container.get_connection_url(driver=None)
        container.stop()
        return
    if localservers.postgres_bin_dir() is None:
        yield None
        return
    # Not under pytest's tmp dir: its parents are private to the user, and the
    # server may have to run as the 'postgres' user.
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-pg-"))
    server = localservers.LocalPostgres(folder)
    try:
        server.start()
    except Exception as exc:  # e.g. no 'postgres' user to run as
        print(f"local PostgreSQL could not start: {exc}")
        yield None
        return
    yield server.url
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql" and request.getfixturevalue("postgres_admin_url") is None:
        pytest.skip("no PostgreSQL: set ORDERDESK_TEST_POSTGRES_URL, run Docker, or install PostgreSQL")
    return request.param


@pytest.fixture
async def make_database(backend, tmp_path, request):
    """`await make_database(migrations_dir)`: a fresh, migrated Database on this test's backend."""
    made: list[tuple[Database, str | None]] = []
    admin = request.getfixturevalue("postgres_admin_url") if backend == "postgresql" else None

    async def factory(migrations_dir: Path) -> Database:
        if backend == "sqlite":
            url, name = f"sqlite+aiosqlite:///{tmp_path / f'db{len(made)}.db'}", None
        else:
            name = f"odt_{uuid.uuid4().hex[:16]}"
            url = await create_postgres_database(admin, name)
        db = Database(url)
        made.append((db, name))
        await migrations.upgrade(db.engine, Path(migrations_dir))
        return db

    yield factory
    for db, name in made:
        await db.close()
        if name:
            await drop_postgres_database(admin, name)
