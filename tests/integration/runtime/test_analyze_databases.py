"""devtools.localservers.analyze_databases, which the bench runs after its warm-up on PostgreSQL: a fresh
database has no statistics, and until it has them the planner takes a lookup by a list of keys to match a
large share of the table (and on the suite's wide tables scans it all)."""

from __future__ import annotations

import re

from devtools.localservers import (
    analyze_databases,
)

ORDERS, LINES_PER_ORDER = 10_000, 3
LOOKUP = "SELECT * FROM lines WHERE order_id = ANY($1::text[])"


async def _estimate(conn, keys: list[str]) -> tuple[int, str]:
    """The planner's estimate of the lookup's rows, and its plan."""
    plan = "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {LOOKUP}", keys))
    return int(re.search(r"rows=(\d+)", plan).group(1)), plan


async def test_a_fresh_tables_key_lookup_is_estimated_right_once_analyzed(postgres_admin_url, fresh_postgres):
    name, conn = fresh_postgres
    await conn.execute("CREATE TABLE lines (order_id text NOT NULL, line_no int NOT NULL, sku text NOT NULL)")
    await conn.execute("CREATE INDEX ix_lines_order ON lines (order_id)")
    await conn.execute(
        "INSERT INTO lines SELECT 'ORD-' || o, n, 'SKU-' || (o % 200) "
        f"FROM generate_series(1, {ORDERS}) o, generate_series(1, {LINES_PER_ORDER}) n"
    )
    keys = [f"ORD-{o}" for o in range(1, 35)]  # a batch of 34 orders, as a consumer's read gathers them
    matching = 34 * LINES_PER_ORDER
    assert len(await conn.fetch(LOOKUP, keys)) == matching
    assert await conn.fetchval("SELECT count(*) FROM pg_stats WHERE tablename = 'lines'") == 0
    guessed, _ = await _estimate(conn, keys)
    assert guessed > 10 * matching  # 0.5% of the table per key

    assert await analyze_databases(postgres_admin_url, [name]) == [name]

    assert await conn.fetchval("SELECT count(*) FROM pg_stats WHERE tablename = 'lines'") == 3  # its columns
    estimated, plan = await _estimate(conn, keys)
    assert matching / 3 <= estimated <= matching * 3
    assert "ix_lines_order" in plan and "Seq Scan" not in plan
