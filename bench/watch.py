"""How long one pass of the promise watch takes over 100,000 open orders (printed, never asserted).

    python -m bench.watch [--orders 100000] [--batch 500]

The orders are written straight into a fresh orders database (SQLite by default; PostgreSQL with
ORDERDESK_BENCH_BACKEND=postgresql and ORDERDESK_TEST_POSTGRES_URL) through the orders repository, as the
service stores them: lines, history, allocations, shipments. A mix the desk sees: confirmed, backordered
(one in ten with supply after its promise), on hold (some for days), allocated, shipped (some with a silent
carrier or a delay). Then the watch runs in-process, as the lease holder does, with a clock the bench sets:
- first pass: every order due (as after the migration), risks raised and published through the outbox;
- the hourly recheck an hour later: every order due again, nothing new to tell (the steady state).
Each "pass" here is the watch's whole sweep over the due orders, in its batches.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from orderdesk import migrations
from orderdesk.db import Database
from orderdesk.outbox import outbox_table
from services.orders.domain import Allocation, Line, Order, ShipmentView
from services.orders.store import OrderRepository, orders
from services.orders.watch import Watch

MIGRATIONS = Path(__file__).resolve().parents[1] / "services" / "orders" / "migrations"
NOW = dt.datetime(2026, 12, 10, 9, 0, tzinfo=dt.UTC)


def make_order(n: int) -> Order:
    kind = n % 10
    placed = NOW - dt.timedelta(days=n % 7, hours=n % 24)
    promised = (NOW.date() + dt.timedelta(days=2 + n % 20)).isoformat()
    o = Order.receive(
        at=placed,
        actor="P-BENCH",
        hold_reasons=[{"code": "amount_review", "message": "m", "field": ""}] if kind == 9 else [],
        order_id=f"ORD-B{n:07d}",
        partner_id="P-BENCH",
        channel="api",
        external_ref=f"PO-{n}",
        customer_id=f"C{n % 500:04d}",
        ship_to={"country": "DE", "city": "Hamburg"},
        lines=[Line("SKU-1", 2, Decimal("9.50")), Line(f"SKU-{n % 50}", 1, Decimal("3.00"))],
        requested_delivery_date=promised,
        payment_terms="NET30",
        currency="EUR",
        priority=100 * (n % 4),
    )
    if kind == 9:
        return o
    if kind in (1, 2):  # backordered; one in ten of all orders with supply after the promise
        late = kind == 1
        due = dt.date.fromisoformat(promised) + dt.timedelta(days=3 if late else -1)
        o.apply_reservation(
            placed, [Allocation("SKU-1", "WH-HAM", 2)], {f"SKU-{n % 50}": 1}, ("", due.isoformat())
        )
    elif kind >= 3:
        o.apply_reservation(
            placed, [Allocation("SKU-1", "WH-HAM", 2), Allocation(f"SKU-{n % 50}", "WH-HAM", 1)], {}
        )
        if kind >= 6:  # shipped; some heard from lately, some silent, some delayed
            shipped = NOW - dt.timedelta(hours=6 if kind == 6 else 60)
            view = ShipmentView(f"SHP-B{n:07d}", "WH-HAM", "shipped", "DHL", f"T{n}", {"SKU-1": 2}, None, 1)
            view.promised_delivery_date = promised
            o.record_shipment(shipped, view, "shipped", shipped)
            if kind == 8:
                delayed = ShipmentView(
                    f"SHP-B{n:07d}", "WH-HAM", "shipped", "DHL", f"T{n}", {"SKU-1": 2}, None, 2
                )
                delayed.expected_delivery_date = (
                    dt.date.fromisoformat(promised) + dt.timedelta(days=2)
                ).isoformat()
                o.record_shipment(shipped, delayed, "delayed", NOW - dt.timedelta(hours=1))
    return o


async def database() -> tuple[Database, str | None, str | None]:
    if os.environ.get("ORDERDESK_BENCH_BACKEND") == "postgresql":
        from devtools.localservers import create_postgres_database

        admin = os.environ["ORDERDESK_TEST_POSTGRES_URL"]
        name = f"odbench_{uuid.uuid4().hex[:12]}"
        url = await create_postgres_database(admin, name)
        return Database(url), admin, name
    folder = tempfile.mkdtemp(prefix="orderdesk-bench-watch-")
    return Database(f"sqlite+aiosqlite:///{folder}/orders.db"), None, None


async def sweep(watch: Watch) -> tuple[float, int, int]:
    """Passes until nothing is due: (seconds, orders assessed, passes); CPU seconds in SWEEP_CPU."""
    started, cpu = time.perf_counter(), time.process_time()
    assessed = passes = 0
    while True:
        n = await watch.pass_once()
        if not n:
            break
        assessed += n
        passes += 1
    SWEEP_CPU[0] = time.process_time() - cpu
    return time.perf_counter() - started, assessed, passes


SWEEP_CPU = [0.0]  # the last sweep's CPU seconds (this process: the watch and, on SQLite, the database)


async def run(count: int, batch: int) -> None:
    db, admin, name = await database()
    try:
        await migrations.upgrade(db.engine, MIGRATIONS)
        started = time.perf_counter()
        for start in range(0, count, 1000):
            chunk = [make_order(n) for n in range(start, min(start + 1000, count))]
            async with db.transaction() as tx:
                await tx.repo(OrderRepository).add_many(chunk)
        print(f"  {count:,} open orders written in {time.perf_counter() - started:.1f} s ({db.dialect})")

        clock = {"now": NOW}
        watch = Watch(db, clock=lambda: clock["now"], batch=batch)
        seconds, assessed, passes = await sweep(watch)
        async with db.read() as conn:
            events = (await conn.execute(select(func.count()).select_from(outbox_table))).scalar_one()
            at_risk = (
                await conn.execute(select(func.count()).select_from(orders).where(orders.c.risk_codes != ""))
            ).scalar_one()
        counts = await watch.count()
        print(
            f"  first pass: {assessed:,} orders in {seconds:.1f} s ({assessed / seconds:,.0f} orders/s, "
            f"{passes} batches of {batch}; CPU {SWEEP_CPU[0]:.1f} s); {at_risk:,} at risk, {events:,} events in the outbox"
        )
        print("    by reason: " + ", ".join(f"{k} {v:,}" for k, v in counts.items() if v))
        clock["now"] = NOW + dt.timedelta(hours=1, minutes=1)
        seconds, assessed, passes = await sweep(watch)
        async with db.read() as conn:
            after = (await conn.execute(select(func.count()).select_from(outbox_table))).scalar_one()
        print(
            f"  hourly recheck: {assessed:,} orders in {seconds:.1f} s ({assessed / max(seconds, 1e-9):,.0f} orders/s; "
            f"CPU {SWEEP_CPU[0]:.1f} s); {after - events:,} new events"
        )
        seconds, assessed, _ = await sweep(watch)
        print(f"  nothing due: a poll takes {seconds * 1000:.1f} ms")
    finally:
        await db.close()
        if name:
            from devtools.localservers import drop_postgres_database

            await drop_postgres_database(admin, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watch")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=Watch.BATCH)
    args = parser.parse_args(argv)
    print(f"\nPromise watch: one pass over {args.orders:,} open orders (in-process, one core)")
    asyncio.run(run(args.orders, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
