"""The order search among 100,000 orders: each filter's query plan and its time per page.

Seeds an orders database (SQLite; and PostgreSQL when ORDERDESK_TEST_POSTGRES_URL is set) with
`--orders` orders over 200 days (4 partners, 2,000 customers, 500 SKUs, 1–3 lines each, five
channels, a tenth held with one or two reasons), then for each search prints the plan's steps on `orders`/`order_lines` and
the server-side time of a page of 50 (first page and the page after it), p50 and p99 over the runs.
Figures are printed, never asserted.

    python -m bench.order_search [--orders 100000] [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from devtools.localservers import create_postgres_database, drop_postgres_database
from orderdesk import migrations
from orderdesk.db import Database
from services.orders.domain import Line, Listing, Order
from services.orders.service import OrdersService
from services.orders.store import HOT, OrderRepository, _page

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "orders" / "migrations"
START = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
PARTNERS = ("P-SHOP", "P-EDI", "P-B2B", "P-MKT")
# A held order's reasons, one or two of these (the desk's common ones).
HOLD_REASONS = [
    "amount_review",
    "price_mismatch",
    "credit_limit_exceeded",
    "delivery_date_infeasible",
    "ship_to_incomplete",
]

# (name, partner scope, status, order_by, search)
SEARCHES = [
    ("po number (admin)", "", "", "", {"external_ref": "PO-004711"}),
    ("po number (partner)", "P-MKT", "", "", {"external_ref": "PO-004711"}),
    ("customer", "", "", "", {"customer_id": "C0042"}),
    ("customer (partner)", "P-EDI", "", "", {"customer_id": "C0042"}),
    ("sku, common", "", "", "", {"sku": "SKU-0001"}),
    ("sku, rare", "", "", "", {"sku": "SKU-0499"}),
    ("sku (partner)", "P-SHOP", "", "", {"sku": "SKU-0499"}),
    ("channel csv", "", "", "", {"channel": "csv"}),
    ("one day", "", "", "", {"created_from": "2026-08-01", "created_to": "2026-08-01"}),
    ("one day (partner)", "P-MKT", "", "", {"created_from": "2026-08-01", "created_to": "2026-08-01"}),
    ("held, newest", "", "on_hold", "", {}),
    ("held by priority, customer", "", "on_hold", "priority", {"customer_id": "C0042"}),
    ("partner, newest", "P-EDI", "", "", {}),
    ("everything, newest", "", "", "", {}),
]


def seed_orders(n: int) -> list[Order]:
    rng = random.Random(16)
    made = []
    for i in range(n):
        at = START + dt.timedelta(seconds=i * 200 * 86400 / n)
        skus = rng.sample([f"SKU-{k:04d}" for k in range(500)], rng.randint(1, 3))
        if rng.random() < 0.3:
            skus[0] = "SKU-0001"  # a best seller in about a third of the orders
        held = rng.random() < 0.1
        reasons = rng.sample(HOLD_REASONS, rng.choice((1, 1, 1, 2))) if held else []
        made.append(
            Order.receive(
                at=at,
                actor="key:bench@" + PARTNERS[i % 4],
                hold_reasons=[{"code": code, "message": "m", "field": ""} for code in reasons],
                order_id=f"ORD-{uuid.UUID(int=rng.getrandbits(128)).hex[:12].upper()}",
                partner_id=PARTNERS[i % 4],
                channel=rng.choices(("api", "batch", "csv", "phone", "email"), (14, 4, 2, 1, 1))[0],
                external_ref=f"PO-{i:06d}",
                customer_id=f"C{rng.randrange(2000):04d}",
                ship_to={"name": "N", "line1": "L", "city": "C", "postal_code": "1", "country": "FR"},
                lines=[Line(sku=s, quantity=rng.randint(1, 9), unit_price=Decimal("10.00")) for s in skus],
                requested_delivery_date="",
                payment_terms="NET30",
                currency="USD",
                priority=rng.choice((0, 100, 200, 300)) + rng.randrange(90),
                proposals=[],
                urgent=False,
            )
        )
    return made


async def plan(db: Database, query) -> list[str]:
    async with db.read() as conn:
        if conn.dialect.name == "sqlite":
            rows = await conn.execute(text("EXPLAIN QUERY PLAN " + str(_literal(query, conn))))
            return [r[-1] for r in rows]
        rows = await conn.execute(text("EXPLAIN " + str(_literal(query, conn))))
        return [r[0].strip() for r in rows if "Scan" in r[0] or "Index" in r[0]]


def _literal(query, conn) -> str:
    return query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})


async def measure(db: Database, runs: int) -> None:
    service = OrdersService(db)
    for name, partner, status, order_by, search in SEARCHES:
        listing = Listing.parse(order_by, "", "", **search)
        steps = await plan(db, _page(HOT, partner_id=partner, status=status, limit=50, listing=listing))
        first, cursor = await service.list(partner, status, 50, "", order_by=order_by, **search)
        timings: list[float] = []
        for n in range(runs):
            started = time.perf_counter()
            await service.list(partner, status, 50, cursor if n % 2 else "", order_by=order_by, **search)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p50, p99 = timings[len(timings) // 2], timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        print(f"  {name:28s} {len(first):3d} found  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
        for step in steps:
            print(f"      {step}")


async def load(db: Database, orders: list[Order]) -> None:
    """Inserts `orders` (with their lines and history) 2,000 per transaction, then ANALYZE: the orders
    database as a year of trade leaves it (also bench/console.py, into a running suite's orders database)."""
    for chunk in range(0, len(orders), 2000):
        async with db.transaction() as tx:
            await tx.repo(OrderRepository).add_many(orders[chunk : chunk + 2000])
    async with db.transaction() as tx:
        await tx.execute(text("ANALYZE"))


async def run_on(url: str, orders: list[Order], runs: int) -> None:
    db = Database(url)
    try:
        await migrations.upgrade(db.engine, MIGRATIONS)
        started = time.perf_counter()
        await load(db, orders)
        print(f"  seeded {len(orders)} orders in {time.perf_counter() - started:.0f} s")
        await measure(db, runs)
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    orders = seed_orders(args.orders)
    with tempfile.TemporaryDirectory() as folder:
        print("SQLite")
        await run_on(f"sqlite+aiosqlite:///{folder}/orders.db", orders, args.runs)
    admin = os.environ.get("ORDERDESK_TEST_POSTGRES_URL")
    if admin:
        print("PostgreSQL")
        name = f"odbench_{uuid.uuid4().hex[:12]}"
        url = await create_postgres_database(admin, name)
        try:
            await run_on(url, seed_orders(args.orders), args.runs)
        finally:
            await drop_postgres_database(admin, name)


if __name__ == "__main__":
    asyncio.run(main())
