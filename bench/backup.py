"""The backup's duration and size for 100,000 orders (SQLite), and the restore's.

    python -m bench.backup [--orders 100000]

How the 100,000 orders are made: real ones first, a sample placed through the gateway by concurrent
partners and left to settle (each then has what the suite keeps for an allocated order: the order, its lines
and history, intake's record, the reservation, the shipment, the events in the outboxes and the inboxes).
Then every row of those orders is copied in each database, table by table (INSERT … SELECT, the keys given a
suffix), until there are 100,000: the same rows, indexes and page fill as real orders, without waiting an hour
for the suite to accept them one by one. Outbox rows are not copied (the relay deletes published ones after an
hour: a backup holds the last hour's). Then `orderdesk backup` runs against the running suite,
as an operator would; the suite is stopped and `orderdesk restore` times the way back.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from devtools.devstack import COMPONENTS, ROOT, Stack

GROWING = ("order_id", "event_id")  # a table with one of these columns grows with the orders


def clone_rows(path: Path, copies: int) -> dict[str, int]:
    """Copies every row of the order-bound tables `copies` times, string keys suffixed (-c1, -c2, …)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    grown = {}
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version'"
            )
        ]
        conn.execute("BEGIN IMMEDIATE")
        for table in tables:
            columns = conn.execute(
                f'PRAGMA table_info("{table}")'
            ).fetchall()  # cid, name, type, notnull, dflt, pk
            names = [c[1] for c in columns]
            if table == "outbox" or not any(g in names for g in GROWING):  # published rows go after an hour
                continue
            keyed = {c[1] for c in columns if c[5]}
            for index in conn.execute(f'PRAGMA index_list("{table}")').fetchall():  # seq, name, unique, …
                if index[2]:
                    keyed |= {r[2] for r in conn.execute(f'PRAGMA index_info("{index[1]}")')}
            rowid_alias = (
                [c[1] for c in columns if c[5] and c[2].upper() == "INTEGER"]
                if len([c for c in columns if c[5]]) == 1
                else []
            )
            last = conn.execute(f'SELECT max(rowid) FROM "{table}"').fetchone()[0] or 0
            kept = [n for n in names if n not in rowid_alias]
            for copy in range(1, copies + 1):
                values = []
                for c in columns:
                    if c[1] in rowid_alias:
                        continue
                    integer = "INT" in c[2].upper()
                    if c[1] in keyed or c[1] in GROWING:
                        values.append(
                            f'"{c[1]}" + {copy * (last + 1)}' if integer else f"\"{c[1]}\" || '-c{copy}'"
                        )
                    else:
                        values.append(f'"{c[1]}"')
                conn.execute(
                    f'INSERT INTO "{table}" ({", ".join(chr(34) + n + chr(34) for n in kept)}) '
                    f'SELECT {", ".join(values)} FROM "{table}" WHERE rowid <= {last}'
                )
            grown[table] = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return grown


def cli(stack: Stack, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=stack.env(), cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"orderdesk {' '.join(args)}: {done.stderr}")
    return time.perf_counter() - started, done.stdout


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import bench_suite, drive, order_body, run_allocated

    parser = argparse.ArgumentParser(prog="python -m bench.backup")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--sample-seconds", type=float, default=5.0, help="real orders placed for this long")
    args = parser.parse_args(argv)
    with bench_suite("orderdesk-bench-backup-") as (folder, stack):
        sample = run_allocated(
            stack, drive(stack.gateway_url, "demo-shop-key", args.sample_seconds, 16, order_body)
        )
        time.sleep(3)  # shipments created, outboxes drained
        real = sample["accepted"]
        copies = max(0, math.ceil(args.orders / max(real, 1)) - 1)
        started = time.perf_counter()
        orders_rows = 0
        for component in COMPONENTS:
            grown = clone_rows(stack.data_dir / f"{component}.db", copies)
            orders_rows = grown.get("orders", orders_rows)
        filled = time.perf_counter() - started
        backup_seconds, _ = cli(stack, "backup", str(folder / "backup"))
        manifest = json.loads((folder / "backup" / "manifest.json").read_text())
        stack.stop_processes()  # as an operator restores: the suite stopped, NATS up (the stream is reset)
        restore_seconds, _ = cli(stack, "restore", str(folder / "backup"))
        print()
        print(
            f"orderdesk backup: {orders_rows:,} orders ({real} placed through the gateway, their rows copied "
            f"{copies} times in {filled:.0f}s), SQLite, 7 databases"
        )
        print(
            f"backup   {backup_seconds:>6.1f}s  {manifest['bytes'] / 1e6:>8.1f} MB  writes paused "
            f"{manifest['writes_paused_seconds'] * 1000:.0f} ms  (the orderdesk backup process, start to end)"
        )
        print(
            f"restore  {restore_seconds:>6.1f}s  (stopped suite: checksums, copy, outbox re-armed, stream reset)"
        )
        for component, entry in manifest["databases"].items():
            print(f"  {component:<10}{entry['bytes'] / 1e6:>8.1f} MB  {entry['seconds']:.2f}s")
        return 0


if __name__ == "__main__":
    sys.exit(main())
