"""Fixtures of the runtime's integration tests."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from devtools.localservers import _asyncpg_dsn, create_postgres_database, drop_postgres_database


@pytest.fixture
async def fresh_postgres(postgres_admin_url):
    """A new, empty PostgreSQL database of its own: its name and a connection to it (dropped afterwards)."""
    if postgres_admin_url is None:
        pytest.skip("no PostgreSQL: set ORDERDESK_TEST_POSTGRES_URL, run Docker, or install PostgreSQL")
    name = f"odt_{uuid.uuid4().hex[:16]}"
    url = await create_postgres_database(postgres_admin_url, name)
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        yield name, conn
    finally:
        await conn.close()
        await drop_postgres_database(postgres_admin_url, name)
