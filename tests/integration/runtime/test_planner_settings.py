"""The planner settings a deployment's PostgreSQL runs with (devtools.localservers.PLANNER_SETTINGS, the
same in deploy/k8s/components/postgres/cluster.yaml): a lookup by key prepared while its table was a few
pages must keep using the key's index as the table grows. A prepared statement's generic plan is made once
and kept until its table is analyzed again, so a plan made small is the plan for a while (a new database,
the bench's run after its warm-up)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.schema import CreateTable

from devtools import localservers
from devtools.localservers import PLANNER_SETTINGS
from orderdesk.db import listed
from services.intake.store import _exposure_statements, order_exposure
from services.notifier.store import _BATCH_READS, order_partners
from tests.integration.plans import plan_nodes

DIALECT = asyncpg_dialect.dialect()
SMALL, GROWN = 250, 20_000


@dataclass(frozen=True)
class Lookup:
    """A statement a service prepares, on its table: how rows n..m are made, what it is run with."""

    table: Table
    rows: str  # SELECT of the table's columns for n in generate_series($1, $2)
    statement: str
    args: tuple
    index: str

    async def run(self, conn) -> str:
        """The statement's generic plan, made when the table held SMALL rows (analyzed), read at GROWN;
        then the statement run once more, its effect read back."""
        await conn.execute(str(CreateTable(self.table).compile(dialect=DIALECT)))
        await conn.execute(f"INSERT INTO {self.table.name} {self.rows}", 1, SMALL)
        await conn.execute(f"ANALYZE {self.table.name}")
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        await conn.execute(f"PREPARE lookup AS {self.statement}")  # as asyncpg prepares it, by name
        execute = f"EXECUTE lookup({', '.join(map(_literal, self.args))})"
        await conn.execute(execute)  # its generic plan made now, at SMALL rows
        await conn.execute(f"INSERT INTO {self.table.name} {self.rows}", SMALL + 1, GROWN)
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {execute}")
        await conn.execute("DEALLOCATE lookup")
        return _nodes(plan)


def _literal(arg: str | list[str]) -> str:
    return "'{" + ",".join(arg) + "}'" if isinstance(arg, list) else f"'{arg}'"


def _nodes(plan: str) -> str:
    """The plan's nodes as "Node Type on relation using index" lines."""
    return "\n".join(
        f"{n['Node Type']} on {n.get('Relation Name', '')} using {n.get('Index Name', '')}"
        for n in plan_nodes(plan)
    )


EXPOSURE_UPDATE = Lookup(  # intake's update of an order's exposure row (ExposureRepository.record_many)
    order_exposure,
    "(order_id, customer_id, amount_micros, open, version, updated_at) "
    "SELECT 'ORD-' || n, 'CUST-' || (n % 60), 1000000, true, 1, now() FROM generate_series($1::int, $2::int) n",
    # the store's statement, setting the version (the WHERE, all the plan depends on, is the store's)
    str(
        _exposure_statements("postgresql").update_orders.template.compile(
            dialect=DIALECT, column_keys=["version"]
        )
    ),
    ("2", "ORD-7"),
    "order_exposure_pkey",
)
PARTNERS_READ = Lookup(  # the notifier's read of a batch's orders (NotifierRepository.order_counters)
    # the order ids' and partners' shape of the suite's, so that the table has as many pages
    order_partners,
    "SELECT 'ORD-0193f8a2-7c1d-7e3a-9f2b-' || lpad(n::text, 12, '0'), 'BENCH-' || (n % 64), 1 "
    "FROM generate_series($1::int, $2::int) n",
    str(_BATCH_READS["postgresql"][0][0].compile(dialect=DIALECT)),
    # the keys as the store gives them (a key twice: its row once)
    (_BATCH_READS["postgresql"][0][1]([f"ORD-0193f8a2-7c1d-7e3a-9f2b-{n:012}" for n in (7, 9, 19999, 9)]),),
    "order_partners_pkey",
)
EXPOSURE_ROWS = Lookup(  # intake's read of a batch's exposure rows, locked (ExposureRepository.record_many)
    order_exposure,
    EXPOSURE_UPDATE.rows,
    str(_exposure_statements("postgresql").order_rows[0].compile(dialect=DIALECT)),
    (_exposure_statements("postgresql").order_rows[1](["ORD-19999", "ORD-7", "ORD-9"]),),
    "order_exposure_pkey",
)
LOOKUPS = {"exposure update": EXPOSURE_UPDATE, "partners read": PARTNERS_READ, "exposure rows": EXPOSURE_ROWS}


@pytest.fixture
def conn(fresh_postgres):
    return fresh_postgres[1]


async def _with_settings(conn) -> None:
    for name, value in PLANNER_SETTINGS.items():
        await conn.execute(f"SET {name} = {value}")


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
async def test_a_key_lookup_prepared_on_a_small_table_uses_its_index_with_the_settings(conn, lookup):
    await _with_settings(conn)
    plan = await lookup.run(conn)
    assert f"Index Scan on {lookup.table.name} using {lookup.index}" in plan and "Seq Scan" not in plan, plan


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
async def test_without_the_settings_the_same_lookup_keeps_a_sequential_scan(conn, lookup):
    """What the settings are for: PostgreSQL's defaults plan the same statement as a scan of the table."""
    await conn.execute("SET random_page_cost = 4")  # PostgreSQL's default
    assert set(PLANNER_SETTINGS) == {"random_page_cost"}  # a new setting needs its own "without" here
    plan = await lookup.run(conn)
    assert f"Seq Scan on {lookup.table.name}" in plan, plan


async def test_the_lookups_read_and_change_what_they_name(conn):
    await _with_settings(conn)
    await EXPOSURE_UPDATE.run(conn)
    assert await conn.fetchval("SELECT version FROM order_exposure WHERE order_id = 'ORD-7'") == 2
    assert await conn.execute(EXPOSURE_UPDATE.statement, 3, "ORD-7") == "UPDATE 1"
    assert await conn.fetchval("SELECT version FROM order_exposure WHERE order_id = 'ORD-7'") == 3
    rows = await conn.fetch(EXPOSURE_ROWS.statement, *EXPOSURE_ROWS.args)  # the same table
    assert [r["order_id"] for r in rows] == ["ORD-19999", "ORD-7", "ORD-9"]  # each once, as given
    await PARTNERS_READ.run(conn)
    rows = await conn.fetch(PARTNERS_READ.statement, *PARTNERS_READ.args)
    assert sorted((r["order_id"][-5:], r["partner_id"]) for r in rows) == [
        ("00007", "BENCH-7"),
        ("00009", "BENCH-9"),
        ("19999", "BENCH-31"),
    ]


async def test_a_semi_join_against_unnest_scans_the_table_even_with_the_settings(conn):
    """Why db.by_unique_keys probes the key per key: the same read as `order_id IN (SELECT unnest(...))`,
    the form the notifier used before, keeps a hash join over the whole table as its generic plan."""
    await _with_settings(conn)
    values, _encode = listed("postgresql", "keys")
    query = select(order_partners).where(order_partners.c.order_id.in_(select(values)))
    semi_join = Lookup(**{**PARTNERS_READ.__dict__, "statement": str(query.compile(dialect=DIALECT))})
    plan = await semi_join.run(conn)
    assert "Seq Scan on order_partners" in plan, plan


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


async def test_the_orders_reads_by_ids_probe_each_id_as_their_tables_grow(conn):
    """The orders service's reads of a batch's orders and of their lines and history (db.by_unique_keys,
    db.by_keys: the ids as one parameter, one statement for any number of them): generic plans made at
    SMALL orders (one line, three history entries each) probe the tables' keys at GROWN, and read what
    they name."""
    from services.orders import store

    await _with_settings(conn)
    for table in (store.orders, store.order_lines, store.order_history):
        await conn.execute(str(CreateTable(table).compile(dialect=DIALECT)))
    fill = [
        "INSERT INTO orders SELECT n, 'ORD-' || n, 'P', 'api', 'PO-' || n, 'C', '{}', '', '', 'EUR', 1, 'allocated',"
        " 3, '[]', '[]', '[]', '1.00', '[]', false, '[]', '[]', '', '', '', '[]', '[]', '[]', '[]', '', 0, NULL,"
        " '', '', '', '', '', now(), now() FROM generate_series($1::int, $2::int) n",
        "INSERT INTO order_lines SELECT 'ORD-' || n, 0, 'SKU-' || (n % 200), 3, '1.00', 3, 0, 0, 0"
        " FROM generate_series($1::int, $2::int) n",
        "INSERT INTO order_history SELECT 'ORD-' || n, v, 'received', now(), 'a', ''"
        " FROM generate_series($1::int, $2::int) n, generate_series(1, 3) v",
    ]
    reads = {
        "orders": store._ORDERS_OF["postgresql"],
        "children": store._CHILDREN[False, "postgresql"],
        "versions": store._VERSIONS_FOR_UPDATE["postgresql"],  # save_many's, locked
    }
    ids = ["ORD-7", "ORD-19999", "ORD-9", "ORD-7"]
    for sql in fill:
        await conn.execute(sql, 1, SMALL)
    await conn.execute("ANALYZE")
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    for name, (query, encode) in reads.items():
        await conn.execute(f"PREPARE {name} AS {query.compile(dialect=DIALECT)}")
        await conn.execute(f"EXECUTE {name}({_literal(encode(ids))})")  # its generic plan, at SMALL
    for sql in fill:
        await conn.execute(sql, SMALL + 1, GROWN)
    plans = {
        name: _nodes(await conn.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({_literal(encode(ids))})"))
        for name, (_query, encode) in reads.items()
    }
    assert "Index Scan on orders using orders_order_id_key" in plans["orders"], plans
    assert "Index Scan on orders using orders_order_id_key" in plans["versions"], plans
    assert "Index Scan on order_lines using order_lines_pkey" in plans["children"], plans
    assert "using order_history_pkey" in plans["children"], plans  # an index scan, or a bitmap one
    assert "Seq Scan" not in "".join(plans.values()), plans
    orders_read = await conn.fetch(f"EXECUTE orders({_literal(store._ORDERS_OF['postgresql'][1](ids))})")
    assert sorted(r["order_id"] for r in orders_read) == ["ORD-19999", "ORD-7", "ORD-9"]
    versions = await conn.fetch(
        f"EXECUTE versions({_literal(store._VERSIONS_FOR_UPDATE['postgresql'][1](ids))})"
    )
    assert [(r["order_id"], r["version"]) for r in versions] == [("ORD-7", 3), ("ORD-19999", 3), ("ORD-9", 3)]
    children = await conn.fetch(f"EXECUTE children({_literal(encode(ids))})")
    assert [(r["order_id"], r["kind"], r["n"]) for r in children if r["order_id"] == "ORD-9"] == [
        ("ORD-9", 0, 0),
        ("ORD-9", 1, 1),
        ("ORD-9", 1, 2),
        ("ORD-9", 1, 3),
    ]
    assert len(children) == 3 * 4
