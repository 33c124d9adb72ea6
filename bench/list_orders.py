"""The console's ListOrders queries on an orders database already there: each one's plan and its time.

For iterating on the Today queues and the searches without the suite: point it at an orders database (for
example the one `python -m bench.console --keep` leaves behind, after the promise watch's sweep and the
allocator's backorders) and it migrates it to head (so a new migration's backfill runs on real rows), then
for each of Today's queries and the console bench's searches prints the query plan's steps (SQLite `EXPLAIN
QUERY PLAN`) and the orders service's own time for a page of 50 (OrdersService.list: the query and the
hydration, no gRPC), p50 and p99 over `--runs`. Figures are printed, never asserted.

    python -m bench.list_orders PATH/orders.db [--runs 200] [--only backorders]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from bench import percentile
from bench.order_search import MIGRATIONS, plan
from orderdesk import migrations
from orderdesk.db import Database
from services.orders.domain import Listing
from services.orders.service import OrdersService
from services.orders.store import HOT, _page

# (name, ListOrders filters): Today's queues as console/screens/today.py asks them, then bench/console.py's
# searches.
QUERIES = [
    ("today (held, by priority)", {"status": "on_hold", "order_by": "priority"}),
    ("held, oldest", {"status": "on_hold", "order_by": "oldest"}),
    (
        "held, reason + customer",
        {
            "status": "on_hold",
            "order_by": "priority",
            "hold_reason": "price_mismatch",
            "customer_id": "C0042",
        },
    ),
    ("exceptions", {"open_exception": True, "order_by": "oldest"}),
    ("at risk", {"at_risk": True}),
    ("backorders", {"status": "scheduled", "order_by": "expected"}),
    ("backorders, warehouse WH-2", {"status": "scheduled", "order_by": "expected", "warehouse": "WH-2"}),
    ("backorders, warehouse WH-HAM", {"status": "scheduled", "order_by": "expected", "warehouse": "WH-HAM"}),
    (
        "backorders by priority, warehouse WH-HAM",
        {"status": "scheduled", "order_by": "priority", "warehouse": "WH-HAM"},
    ),
    (
        "backorders, oldest, warehouse WH-HAM",
        {"status": "scheduled", "order_by": "oldest", "warehouse": "WH-HAM"},
    ),
    ("held by priority, warehouse WH-2", {"status": "on_hold", "order_by": "priority", "warehouse": "WH-2"}),
    ("search: po number", {"external_ref": "PO-004711"}),
    ("search: customer", {"customer_id": "C0042"}),
    ("search: sku, common", {"sku": "SKU-0001"}),
    ("search: sku, rare", {"sku": "SKU-0499"}),
    ("search: sku, none", {"sku": "SKU-9999"}),
    ("search: sku + customer", {"sku": "SKU-0001", "customer_id": "C0042"}),
    ("search: channel phone", {"channel": "phone"}),
    ("search: one day", {"created_from": "2026-08-01", "created_to": "2026-08-01"}),
]


async def measure(path: Path, runs: int, only: str) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrations.upgrade(db.engine, MIGRATIONS)
        service = OrdersService(db)
        print(f"{path}: load average {os.getloadavg()[0]:.1f}; page of 50, OrdersService.list, ms")
        for name, filters in QUERIES:
            if only and only not in name:
                continue
            args = dict(filters)
            status = args.pop("status", "")
            queue = {k: args[k] for k in ("at_risk", "open_exception", "warehouse") if k in args}
            search = {k: v for k, v in args.items() if k not in (*queue, "order_by", "hold_reason")}
            listing = Listing.parse(
                args.get("order_by", ""), args.get("hold_reason", ""), "", **queue, **search
            )
            steps = await plan(db, _page(HOT, partner_id="", status=status, limit=50, listing=listing))
            first, cursor = await service.list("", status, 50, "", **args)
            timings = []
            for n in range(runs):
                started = time.perf_counter()
                await service.list("", status, 50, cursor if n % 2 and cursor else "", **args)
                timings.append((time.perf_counter() - started) * 1000)
            p50, p99 = percentile(timings, 50), percentile(timings, 99)
            print(f"  {name:34s} {len(first):3d} found  p50 {p50:6.1f}  p99 {p99:6.1f}")
            for step in steps:
                print(f"      {step}")
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_orders")
    parser.add_argument("database", type=Path, help="an orders SQLite database")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only", default="", help="only the queries whose name contains this")
    args = parser.parse_args(argv)
    asyncio.run(measure(args.database, args.runs, args.only))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
