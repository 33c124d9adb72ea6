"""The statements one order costs, per process: `python -m bench.trace_one [--orders N] [--postgresql]`.

Starts the bench's suite with ORDERDESK_SQL_TRACE, warms it up, then sends N orders one at a time (each
waits for the suite to drain) and prints, per process, the statements and commits the N orders cost
(divided by N) and, with --show, the statements themselves. A diagnostic beside `make bench`, which
counts the same per order under load (where batching makes them fewer)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.trace_one")
    parser.add_argument("--orders", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="print each process's statements too")
    parser.add_argument("--postgresql", action="store_true", help="on a throw-away PostgreSQL cluster")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-trace-"))
    os.environ["ORDERDESK_SQL_TRACE"] = str(folder)
    from bench import UNTHROTTLED, wait_drained
    from bench.__main__ import bench_suite, drive, order_body

    with bench_suite("orderdesk-trace-suite-", extra_env=UNTHROTTLED, postgresql=args.postgresql) as (
        _folder,
        stack,
    ):
        asyncio.run(drive(stack.gateway_url, "demo-shop-key", 2, 4, order_body))
        wait_drained(stack)
        marks = {f: f.stat().st_size for f in folder.glob("*.sql")}
        for _ in range(args.orders):
            asyncio.run(drive(stack.gateway_url, "demo-shop-key", 0.001, 1, order_body))
            wait_drained(stack)
    per_process: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.sql")):
        with path.open() as f:
            f.seek(marks.get(path, 0))
            per_process.setdefault(path.stem.rsplit("-", 1)[0], []).extend(f.read().splitlines())
    print(f"per order, {args.orders} orders one at a time (relays and consumers not batched):")
    for name, lines in per_process.items():
        commits = sum(1 for line in lines if line == "COMMIT")
        print(
            f"{name:<12}{(len(lines) - commits) / args.orders:>8.1f} statements{commits / args.orders:>6.1f} commits"
        )
        if args.show:
            for sql, count in collections.Counter(x for x in lines if x != "COMMIT").most_common():
                print(f"    {count / args.orders:>5.1f}  {sql[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
