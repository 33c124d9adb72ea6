"""The archive job's rate, and the hot path before and after archiving a year of closed orders (SQLite).

    python -m bench.archive [--orders 50000] [--seconds 10]

How the year is made: real orders first, a sample placed through the gateway and left to settle (each
then has its row, lines, history and ledger row in orders' database). Their rows are then copied, table by
table, into 50,000 closed orders (70 % completed, 20 % cancelled, 10 % rejected) whose creation and last
change are spread evenly over the past year: what a year of trade leaves in the hot tables without
waiting a year. Then, on the running suite: partners place orders for a while (orders/s end to end) and
the desk lists its cancelled orders (`GET /v1/orders?status=cancelled`, a query that walks the hot
table); `orderdesk archive run --after-days 30` moves the closed orders older than a month, as the job
does (a batch per transaction); and the same load and listing again.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

from bench.backup import cli

CLOSED = ("completed",) * 7 + ("cancelled",) * 2 + ("rejected",)
CHILDREN = ("order_lines", "order_history", "order_facts")


def _stamp(at: dt.datetime, like: str) -> str:
    """A time as SQLite holds orders' timestamps (the format of an existing value)."""
    text = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    return text + like[26:] if len(like) > 26 else text


def make_a_year(path: Path, orders: int) -> int:
    """Copies the settled sample's rows into `orders` closed orders spread over the past year."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        sample = [dict(r) for r in conn.execute("SELECT * FROM orders WHERE status = 'allocated'")]
        if not sample:
            raise RuntimeError("no allocated order to copy: did the sample settle?")
        children = {
            t: [
                dict(r)
                for r in conn.execute(f'SELECT * FROM "{t}" WHERE order_id IN (SELECT order_id FROM orders)')
            ]
            for t in CHILDREN
        }
        by_order = {t: {} for t in CHILDREN}
        for t, rows in children.items():
            for r in rows:
                by_order[t].setdefault(r["order_id"], []).append(r)
        like = sample[0]["updated_at"]
        now = dt.datetime.now(dt.UTC)
        year = dt.timedelta(days=365)
        new_orders, new_children = [], {t: [] for t in CHILDREN}
        for n in range(orders):
            source = sample[n % len(sample)]
            order_id = f"{source['order_id']}-Y{n}"
            created = now - year + year * (n / orders)
            closed = created + dt.timedelta(days=3)
            row = {k: v for k, v in source.items() if k != "seq"}
            row.update(
                order_id=order_id,
                external_ref=f"{source['external_ref']}-Y{n}",
                status=CLOSED[n % len(CLOSED)],
                created_at=_stamp(created, like),
                updated_at=_stamp(min(closed, now - dt.timedelta(hours=1)), like),
            )
            new_orders.append(row)
            for t in CHILDREN:
                for child in by_order[t].get(source["order_id"], []):
                    new_children[t].append({**child, "order_id": order_id})
        conn.execute("BEGIN IMMEDIATE")
        for table, rows in (("orders", new_orders), *new_children.items()):
            if not rows:
                continue
            names = list(rows[0])
            conn.executemany(
                f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" for _ in names)})',
                [[r[n] for n in names] for r in rows],
            )
        conn.execute("COMMIT")
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]
    finally:
        conn.close()


async def list_cancelled(url: str, key: str, times: int) -> float:
    """The median time of the desk's `GET /v1/orders?status=cancelled&limit=50`, in ms."""
    import aiohttp

    from bench import percentile

    took = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        for _ in range(times):
            started = time.perf_counter()
            async with http.get(f"{url}/v1/orders", params={"status": "cancelled", "limit": "50"}) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()
            took.append(time.perf_counter() - started)
    return percentile(took, 50) * 1000


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import bench_suite, drive, order_body, run_allocated, warm_up

    parser = argparse.ArgumentParser(prog="python -m bench.archive")
    parser.add_argument("--orders", type=int, default=50_000, help="closed orders spread over the past year")
    parser.add_argument("--seconds", type=float, default=10.0, help="each hot-path run")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    with bench_suite("orderdesk-bench-archive-") as (_folder, stack):
        sample = run_allocated(stack, drive(stack.gateway_url, "demo-shop-key", 3, 16, order_body))
        started = time.perf_counter()
        total = make_a_year(stack.data_dir / "orders.db", args.orders)
        filled = time.perf_counter() - started

        def hot_path() -> tuple[dict, float]:
            run = run_allocated(
                stack, drive(stack.gateway_url, "demo-shop-key", args.seconds, args.concurrency, order_body)
            )
            return run, asyncio.run(list_cancelled(stack.gateway_url, "demo-admin-key", 50))

        warm_up(stack)
        first, list_before = hot_path()
        wall, out = cli(stack, "archive", "run", "--after-days", "30", "--json")
        done = json.loads(out)
        second, list_after = hot_path()
        print()
        print(
            f"orderdesk archive: {args.orders:,} closed orders over the past year ({total:,} orders in the hot "
            f"tables, made from {sample['accepted']} placed through the gateway in {filled:.0f}s), SQLite"
        )
        print(
            f"archive run (--after-days 30): {done['archived']:,} orders in {done['seconds']:.1f}s, "
            f"{done['batches']} batches: {done['archived'] / max(done['seconds'], 1e-9):,.0f} orders/s "
            f"(the command, start to end: {wall:.1f}s)"
        )
        print(f"{'hot path':<34}{'before':>12}{'after':>12}")
        print(f"{'orders accepted/s (gateway)':<34}{first['rate']:>12.0f}{second['rate']:>12.0f}")
        print(f"{'  p50 ms':<34}{first['p50']:>12.1f}{second['p50']:>12.1f}")
        print(f"{'  p99 ms':<34}{first['p99']:>12.1f}{second['p99']:>12.1f}")
        print(f"{'list status=cancelled p50 ms':<34}{list_before:>12.1f}{list_after:>12.1f}")
        return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
