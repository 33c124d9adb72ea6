"""The planner settings a deployment's PostgreSQL runs with (devtools.localservers.PLANNER_SETTINGS, the
same in deploy/k8s/components/postgres/cluster.yaml): a lookup by key prepared while its table was a few
pages must keep using the key's index as the table grows. A prepared statement's generic plan is made once
and kept until its table is analyzed again, so a plan made small is the plan for a while."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

from devtools import localservers
from devtools.localservers import (
    PLANNER_SETTINGS,
    _asyncpg_dsn,
    create_postgres_database,
    drop_postgres_database,
)

# intake's update of an order's exposure row (services/intake/store.py), on a table of its shape
TABLE = (
    "CREATE TABLE order_exposure (order_id varchar(40) PRIMARY KEY, customer_id varchar(64) NOT NULL, "
    "amount_micros bigint NOT NULL, open boolean NOT NULL, version int NOT NULL, updated_at timestamptz NOT NULL)"
)
ROWS = "SELECT 'ORD-' || n, 'CUST-' || (n % 60), 1000000, true, 1, now() FROM generate_series($1::int, $2::int) n"
UPDATE = "UPDATE order_exposure SET version = version + 1 WHERE order_id = $1"


@pytest.fixture
async def conn(postgres_admin_url):
    if postgres_admin_url is None:
        pytest.skip("no PostgreSQL: set ORDERDESK_TEST_POSTGRES_URL, run Docker, or install PostgreSQL")
    name = f"odt_{uuid.uuid4().hex[:16]}"
    url = await create_postgres_database(postgres_admin_url, name)
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        yield connection
    finally:
        await connection.close()
        await drop_postgres_database(postgres_admin_url, name)


async def _generic_plan_after_growth(conn) -> str:
    """The update's generic plan, prepared when the table held 250 rows (analyzed), run at 20,000."""
    await conn.execute(TABLE)
    await conn.execute(f"INSERT INTO order_exposure {ROWS}", 1, 250)
    await conn.execute("ANALYZE order_exposure")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    await conn.execute(f"PREPARE exposure_update(varchar) AS {UPDATE}")
    await conn.execute("EXECUTE exposure_update('ORD-3')")  # its generic plan made now, at 250 rows
    await conn.execute(f"INSERT INTO order_exposure {ROWS}", 251, 20_000)
    plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN EXECUTE exposure_update('ORD-7')"))
    updated = await conn.execute("EXECUTE exposure_update('ORD-7')")
    assert updated == "UPDATE 1"
    assert await conn.fetchval("SELECT version FROM order_exposure WHERE order_id = 'ORD-7'") == 2
    return plan


async def test_a_key_lookup_prepared_on_a_small_table_uses_its_index_with_the_settings(conn):
    for name, value in PLANNER_SETTINGS.items():
        await conn.execute(f"SET {name} = {value}")
    plan = await _generic_plan_after_growth(conn)
    assert "Index Scan using order_exposure_pkey" in plan and "Seq Scan" not in plan, plan


async def test_without_the_settings_the_same_lookup_keeps_a_sequential_scan(conn):
    """What the settings are for: PostgreSQL's defaults plan the same statement as a scan of the table."""
    await conn.execute("SET random_page_cost = 4")  # PostgreSQL's default
    assert set(PLANNER_SETTINGS) == {"random_page_cost"}  # a new setting needs its own "without" here
    plan = await _generic_plan_after_growth(conn)
    assert "Seq Scan on order_exposure" in plan, plan


async def test_a_local_cluster_runs_with_the_settings():
    """The bench's, the fault suite's and `make run`'s PostgreSQL (LocalPostgres) plan as a deployment's."""
    if localservers.postgres_bin_dir() is None:
        pytest.skip("no PostgreSQL binaries to start a cluster with")
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-pg-settings-"))
    server = localservers.LocalPostgres(folder)
    try:
        server.start()
        connection = await asyncpg.connect(server.url)
        try:
            for name, value in PLANNER_SETTINGS.items():
                assert await connection.fetchval(f"SHOW {name}") == value
        finally:
            await connection.close()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
