"""`make bench`, supply part: reservations per second under contention, two inventory replicas on
one PostgreSQL.

Starts a private NATS, a fresh PostgreSQL database (on ORDERDESK_TEST_POSTGRES_URL's server when
set, else a throw-away cluster from the local PostgreSQL binaries) and two inventory processes
(`python -m services.inventory`, exactly as deployed) on that one database. Then:

1. hot rows: `concurrency` clients send Reserve for new orders (1-2 lines of 4 SKUs in 3
   warehouses, plenty of stock), alternating between the replicas, for `seconds`: every call
   locks and updates the same few stock rows. Reports reservations/s and latency.
2. scarce stock: 200 orders at once for 150 units of one SKU across 3 warehouses.
Then checks the books in the database: nothing oversold (0 <= reserved <= on hand on every
row), reserved equal to the orders' reservations, and held + backordered = asked per order.

    python -m bench.supply [--seconds 10] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from bench import percentile
from devtools import localservers
from devtools.devstack import Process, Stack, secured_nats
from orderdesk import tls
from orderdesk.v1 import common_pb2, inventory_pb2, inventory_pb2_grpc

HOT_SKUS = [f"HOT-{n}" for n in range(4)]
WAREHOUSES = ("WH-SHA", "WH-HAM", "WH-CHI")
DEMO_WAREHOUSES = Path(__file__).resolve().parent.parent / "demo" / "warehouses.csv"
COUNTRIES = ("US", "DE", "CN", "FR")


def start_replicas(
    folder: Path, nats_url: str, nats_passwords: dict[str, str], db_url: str
) -> tuple[list[Process], list[str], Stack]:
    stack = Stack(
        data_dir=folder, nats_url=nats_url, nats_passwords=nats_passwords, database_urls={"inventory": db_url}
    )
    procs, addrs = [], []
    for n in (1, 2):  # one after the other: the first runs the migrations
        name, port = f"inventory-{n}", localservers.free_port()
        env = {
            **stack.env("inventory"),
            "ORDERDESK_INVENTORY_ADDR": f"127.0.0.1:{port}",
            "ORDERDESK_INVENTORY_METRICS_PORT": str(localservers.free_port()),
        }
        proc = Process(
            name, [sys.executable, "-m", "services.inventory"], env, folder / "logs" / f"{name}.log"
        )
        proc.start()
        procs.append(proc)
        addrs.append(f"127.0.0.1:{port}")
        stack.processes[name], stack.ports[name], stack.component_of[name] = proc, port, "inventory"
        stack.wait_ready(60, (name,))
    return procs, addrs, stack


async def seed(stub, on_hand: dict[tuple[str, str], int], warehouses: str) -> None:
    await stub.ImportMasterData(common_pb2.ImportCsvRequest(kind="warehouses", csv=warehouses), timeout=30)
    rows = "".join(f"{sku},{wh},{q}\n" for (sku, wh), q in on_hand.items())
    await stub.ImportMasterData(
        common_pb2.ImportCsvRequest(kind="stock", csv="sku,warehouse,on_hand\n" + rows), timeout=30
    )


async def hot_rows(stubs, seconds: float, concurrency: int) -> dict:
    latencies: list[float] = []
    outcomes = {"full": 0, "partial": 0, "none": 0, "error": 0}
    asked: dict[str, dict[str, int]] = {}
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        rng = random.Random(n)
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            order_id = f"B{n}-{i}-{uuid.uuid4().hex[:6]}"
            skus = rng.sample(HOT_SKUS, rng.randint(1, 2))
            lines = {s: rng.randint(1, 3) for s in skus}
            asked[order_id] = lines
            started = time.perf_counter()
            try:
                answer = await stubs[(n + i) % 2].Reserve(
                    inventory_pb2.ReserveRequest(
                        order_id=order_id,
                        priority=rng.randint(0, 3),
                        ship_to_country=COUNTRIES[i % 4],
                        lines=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in lines.items()],
                    ),
                    timeout=30,
                )
            except grpc.RpcError:
                outcomes["error"] += 1
                continue
            latencies.append(time.perf_counter() - started)
            held = sum(r.quantity for r in answer.reservations)
            outcomes["full" if not answer.backordered else ("partial" if held else "none")] += 1

    started = time.perf_counter()
    await asyncio.gather(*[client(n) for n in range(concurrency)])
    elapsed = time.perf_counter() - started
    return {
        "rate": len(latencies) / elapsed,
        "calls": len(latencies),
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "outcomes": outcomes,
        "elapsed": elapsed,
    }


async def scarce(stubs) -> dict:
    rng = random.Random(7)
    wanted = {f"S{n:03d}-{uuid.uuid4().hex[:6]}": rng.randint(1, 2) for n in range(200)}
    started = time.perf_counter()
    answers = await asyncio.gather(
        *[
            stubs[n % 2].Reserve(
                inventory_pb2.ReserveRequest(
                    order_id=o,
                    priority=rng.randint(0, 3),
                    lines=[inventory_pb2.ReserveLine(sku="SCARCE", quantity=q)],
                ),
                timeout=60,
            )
            for n, (o, q) in enumerate(wanted.items())
        ]
    )
    elapsed = time.perf_counter() - started
    held = sum(r.quantity for a in answers for r in a.reservations)
    backordered = sum(b.quantity for a in answers for b in a.backordered)
    for (o, q), a in zip(wanted.items(), answers, strict=True):
        assert sum(r.quantity for r in a.reservations) + sum(b.quantity for b in a.backordered) == q, o
    return {
        "orders": len(wanted),
        "asked": sum(wanted.values()),
        "held": held,
        "backordered": backordered,
        "seconds": elapsed,
    }


async def check_books(db_url: str) -> dict:
    import asyncpg

    conn = await asyncpg.connect(db_url)
    try:
        rows = await conn.fetch("SELECT sku, warehouse, on_hand, reserved FROM stock")
        held = {
            (r["sku"], r["warehouse"]): r["q"]
            for r in await conn.fetch(
                "SELECT sku, warehouse, SUM(quantity) AS q FROM reservations GROUP BY sku, warehouse"
            )
        }
    finally:
        await conn.close()
    oversold = [r for r in rows if not 0 <= r["reserved"] <= r["on_hand"]]
    mismatched = [r for r in rows if r["reserved"] != held.get((r["sku"], r["warehouse"]), 0)]
    return {
        "rows": len(rows),
        "oversold": len(oversold),
        "mismatched": len(mismatched),
        "reserved": sum(r["reserved"] for r in rows),
    }


async def run(addrs: list[str], db_url: str, seconds: float, concurrency: int, stack: Stack) -> dict:
    # Reservations as the orders service makes them, the seed as the operator's import (identities under mTLS).
    channels = [tls.aio_channel(a, stack.client_tls("orders"), peer="inventory") for a in addrs]
    channels.append(tls.aio_channel(addrs[0], stack.client_tls("cli"), peer="inventory"))
    stubs = [inventory_pb2_grpc.InventoryServiceStub(c) for c in channels[:-1]]
    try:
        stock = {(s, w): 1_000_000 for s in HOT_SKUS for w in WAREHOUSES}
        stock.update({("SCARCE", "WH-SHA"): 40, ("SCARCE", "WH-HAM"): 50, ("SCARCE", "WH-CHI"): 60})
        seeder = inventory_pb2_grpc.InventoryServiceStub(channels[-1])
        await seed(seeder, stock, DEMO_WAREHOUSES.read_text())
        await hot_rows(stubs, 2, 8)  # warm-up: connections, pools, caches
        hot = await hot_rows(stubs, seconds, concurrency)
        short = await scarce(stubs)
        books = await check_books(db_url)
        return {"hot": hot, "scarce": short, "books": books}
    finally:
        for c in channels:
            await c.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.supply")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "64")))
    args = parser.parse_args(argv)
    result = measure(args.seconds, args.concurrency)
    if result is None:
        print("supply bench skipped: no PostgreSQL (set ORDERDESK_TEST_POSTGRES_URL or install PostgreSQL)")
        return 0
    report(result, args.concurrency, args.seconds)
    books = result["books"]
    return 0 if not books["oversold"] and not books["mismatched"] else 1


def measure(seconds: float, concurrency: int) -> dict | None:
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-bench-supply-"))
    admin = os.environ.get("ORDERDESK_TEST_POSTGRES_URL")
    local_pg = None
    if not admin:
        if localservers.postgres_bin_dir() is None:
            return None
        local_pg = localservers.LocalPostgres(folder / "pg").start()
        admin = local_pg.url
    name = f"bench_supply_{uuid.uuid4().hex[:8]}"
    nats_server, nats_passwords = secured_nats(folder / "nats")  # inventory's own user, as in production
    nats_server.start()
    procs: list[Process] = []
    try:
        db_url = asyncio.run(localservers.create_postgres_database(admin, name))
        procs, addrs, stack = start_replicas(folder, nats_server.url, nats_passwords, db_url)
        return asyncio.run(
            run(addrs, db_url.replace("postgresql+asyncpg://", "postgresql://"), seconds, concurrency, stack)
        )
    finally:
        for p in procs:
            if p.alive():
                p.popen.terminate()
        for p in procs:
            if p.popen is not None:
                p.popen.wait(20)
        try:
            asyncio.run(localservers.drop_postgres_database(admin, name))
        except Exception:
            pass
        nats_server.stop()
        if local_pg is not None:
            local_pg.stop()


def report(result: dict, concurrency: int, seconds: float) -> None:
    hot, short, books = result["hot"], result["scarce"], result["books"]
    print()
    print(
        f"supply: two inventory replicas on one PostgreSQL, {concurrency} concurrent Reserve calls, {seconds:.0f}s"
    )
    print(f"{'scenario':<42}{'reserves/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'calls':>8}  outcomes")
    print(
        f"{'hot rows (4 SKUs x 3 warehouses)':<42}{hot['rate']:>12.0f}{hot['p50']:>10.1f}{hot['p99']:>10.1f}"
        f"{hot['calls']:>8}  {hot['outcomes']}"
    )
    print(
        f"scarce: {short['orders']} orders at once, 150 units: asked {short['asked']}, held {short['held']}, "
        f"backordered {short['backordered']} in {short['seconds']:.2f}s"
    )
    print(
        f"books: {books['rows']} stock rows, oversold {books['oversold']}, reserved != reservations "
        f"{books['mismatched']}"
    )


if __name__ == "__main__":
    sys.exit(main())
