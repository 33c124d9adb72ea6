"""The surge: many thousands of orders submitted as fast as the suite accepts them.

Partners send their orders in batches (POST /v1/orders/batch, the channel a partner
uses for volume) from several connections at once. One order in ten asks for a SKU
that has no stock when the surge starts; once every order is entered, a receipt brings
a quarter of that demand, so the orders compete for it and the report shows who got
it: the allocator serves the highest priority (customer tier, urgency) first.

Then the books are checked through the admin API: every accepted order exists exactly
once (by its partner reference), none is lost, none is duplicated, each reached
allocated or (short of the scarce SKU) scheduled, and sending the first batches again
creates nothing.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

from bench import LOAD_CUSTOMERS, UNTHROTTLED, percentile
from devtools.devstack import ROOT, Stack
from orderdesk import tls
from orderdesk.v1 import inventory_pb2, inventory_pb2_grpc

SCARCE_SKU = "BENCH-SCARCE"
TIERS = ("strategic", "key", "standard")


def surge_customers(per_tier: int = 3) -> list[tuple[str, str]]:
    """Active demo customers of each tier with room on their credit: (customer_id, tier).

    Not the single-order loads' customers: in `make bench` their orders come first and use up those
    customers' credit, and the surge's orders for them would be held for review, not allocated.
    """
    picked: list[tuple[str, str]] = []
    with open(ROOT / "demo" / "customers.csv", newline="") as f:
        rows = [
            r for r in csv.DictReader(f) if r["status"] == "active" and r["customer_id"] not in LOAD_CUSTOMERS
        ]
    for tier in TIERS:
        picked += [(r["customer_id"], tier) for r in rows if r["tier"] == tier][:per_tier]
    return picked


def surge_orders(run: str, total: int, skus: list[str]) -> list[dict]:
    customers = surge_customers()
    orders = []
    for i in range(total):
        customer, _tier = customers[i % len(customers)]
        scarce = i % 10 == 3
        orders.append(
            {
                "idempotency_key": f"surge-{run}-{i}",
                "external_ref": f"SURGE-{run}-{i}",
                "customer_id": customer,
                "lines": [
                    {
                        "sku": SCARCE_SKU if scarce else skus[i % len(skus)],
                        "quantity": 1,
                        "unit_price": "10.00",
                    }
                ],
                "urgent": i % 7 == 0,
            }
        )
    return orders


async def submit_all(url: str, key: str, orders: list[dict], batch_size: int, connections: int) -> dict:
    batches = [orders[i : i + batch_size] for i in range(0, len(orders), batch_size)]
    queue: asyncio.Queue[list[dict]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    accepted: dict[str, str] = {}  # external_ref -> order_id
    refused: Counter = Counter()
    latencies: list[float] = []
    failures = 0
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections), timeout=timeout
    ) as session:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                batch = queue.get_nowait()
                for attempt in range(5):  # a batch is idempotent: resend it whole after a failure
                    started = time.perf_counter()
                    try:
                        async with session.post(
                            f"{url}/v1/orders/batch", json={"orders": batch}, headers=headers
                        ) as resp:
                            body = await resp.json(content_type=None)
                            if resp.status != 200:
                                raise RuntimeError(f"HTTP {resp.status}: {str(body)[:200]}")
                    except Exception:
                        failures += 1
                        await asyncio.sleep(0.5 * (attempt + 1))
                        continue
                    latencies.append(time.perf_counter() - started)
                    for result in body["results"]:
                        ref = batch[result["index"]]["external_ref"]
                        if result["status"] == "accepted":
                            accepted[ref] = result["order_id"]
                        else:
                            refused[result.get("error_code", "?")] += 1
                    break

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        elapsed = time.perf_counter() - started
    return {
        "accepted": accepted,
        "refused": refused,
        "elapsed": elapsed,
        "batch_latencies": latencies,
        "failures": failures,
        "batches": len(batches),
    }


async def list_orders(
    session: aiohttp.ClientSession, url: str, key: str, status: str = "", limit: int = 500
) -> list[dict]:
    items, cursor = [], ""
    while True:
        params = {"limit": str(limit)}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        async with session.get(
            f"{url}/v1/orders", params=params, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            page = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"listing orders: HTTP {resp.status} {page}")
        items += page["items"]
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return items


async def wait_until_none(url: str, key: str, status: str, timeout: float) -> float:
    """Seconds until no order is left in `status` (nan on timeout)."""
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < timeout:
            async with session.get(
                f"{url}/v1/orders",
                params={"status": status, "limit": "1"},
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                if not (await resp.json(content_type=None))["items"]:
                    return time.perf_counter() - started
            await asyncio.sleep(0.5)
    return float("nan")


async def wait_scarce_settled(url: str, key: str, refs: set[str], supply: int, timeout: float) -> float:
    """Seconds until `supply` scarce orders left scheduled, or nothing changed for 5 s."""
    started = time.perf_counter()
    last, still_since = -1, time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < timeout:
            waiting = sum(
                1 for o in await list_orders(session, url, key, "scheduled") if o["external_ref"] in refs
            )
            if waiting <= len(refs) - supply:
                return time.perf_counter() - started
            if waiting != last:
                last, still_since = waiting, time.perf_counter()
            elif time.perf_counter() - still_since > 5:
                return time.perf_counter() - started
            await asyncio.sleep(0.5)
    return float("nan")


def restock(stack: Stack, quantity: int, reference: str) -> None:
    async def call() -> None:
        # A goods receipt, as the gateway passes a partner's on (its identity under mTLS).
        async with tls.aio_channel(
            stack.addr("inventory"), stack.client_tls("gateway"), peer="inventory"
        ) as channel:
            stub = inventory_pb2_grpc.InventoryServiceStub(channel)
            await stub.Restock(
                inventory_pb2.RestockRequest(
                    sku=SCARCE_SKU, warehouse="WH-CHI", quantity=quantity, reference=reference
                ),
                timeout=10,
            )

    asyncio.run(call())


def process_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far (Linux /proc), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reserved_total(stack: Stack) -> int:
    """Orders that left `confirmed` for allocated or scheduled so far, from orders' own counters."""
    import urllib.request

    total = 0.0
    for instance in stack.instances("orders"):
        text = urllib.request.urlopen(
            f"http://127.0.0.1:{stack.metrics_ports[instance]}/metrics", timeout=5
        ).read()
        for line in text.decode().splitlines():
            if line.startswith("orderdesk_order_status_transitions_total{") and (
                'status="allocated"' in line or 'status="scheduled"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system) each process of the suite has used so far."""
    used = {}
    for name, proc in stack.processes.items():
        seconds = process_cpu_seconds(proc.popen.pid) if proc.popen is not None else None
        if seconds is not None:
            used[name] = seconds
    return used


def run_surge(
    stack: Stack,
    skus: list[str],
    total: int,
    batch_size: int,
    connections: int,
    key: str = "demo-shop-key",
    admin_key: str = "demo-admin-key",
) -> dict:
    run = uuid.uuid4().hex[:6]
    orders = surge_orders(run, total, skus)
    cpu_before = cpu_seconds(stack)
    reserved_start = reserved_total(stack)
    sent = asyncio.run(submit_all(stack.gateway_url, key, orders, batch_size, connections))
    cpu_during = {n: t - cpu_before.get(n, 0.0) for n, t in cpu_seconds(stack).items()}
    accepted_at = time.perf_counter()
    cpu_accepted = cpu_seconds(stack)
    reserved_before = reserved_total(stack)  # the allocator may have started while orders came in
    settle = asyncio.run(wait_until_none(stack.gateway_url, admin_key, "confirmed", timeout=900))
    cpu_settling = {n: t - cpu_accepted.get(n, 0.0) for n, t in cpu_seconds(stack).items()}
    reserved_after = reserved_total(stack)
    scarce_refs = {o["external_ref"] for o in orders if o["lines"][0]["sku"] == SCARCE_SKU}
    supply = len(scarce_refs) // 4
    restock(stack, supply, f"surge-{run}")
    scarce_wait = asyncio.run(
        wait_scarce_settled(stack.gateway_url, admin_key, scarce_refs, supply, timeout=300)
    )
    drained = time.perf_counter() - accepted_at

    async def books() -> tuple[list[dict], dict]:
        async with aiohttp.ClientSession() as session:
            stored = [
                o
                for o in await list_orders(session, stack.gateway_url, admin_key)
                if o["external_ref"].startswith(f"SURGE-{run}-")
            ]
        # The first batches again: every order is a replay, nothing new is created.
        again = await submit_all(stack.gateway_url, key, orders[: 2 * batch_size], batch_size, 2)
        return stored, again

    stored, again = asyncio.run(books())
    by_ref: dict[str, list[dict]] = defaultdict(list)
    for o in stored:
        by_ref[o["external_ref"]].append(o)
    accepted = sent["accepted"]
    lost = [ref for ref, oid in accepted.items() if oid not in {o["order_id"] for o in by_ref.get(ref, [])}]
    duplicated = [ref for ref, found in by_ref.items() if len(found) > 1]
    statuses = Counter(o["status"] for o in stored)
    replays_new = sum(1 for ref, oid in again["accepted"].items() if accepted.get(ref) != oid)

    # Who got the scarce stock, by priority (higher first).
    scarce = [found[0] for ref, found in by_ref.items() if ref in scarce_refs]
    by_priority: dict[int, Counter] = defaultdict(Counter)
    for o in scarce:
        by_priority[o["priority"]]["allocated" if o["status"] == "allocated" else "waiting"] += 1
    served = [o["priority"] for o in scarce if o["status"] == "allocated"]
    unserved = [o["priority"] for o in scarce if o["status"] != "allocated"]
    # An inversion: an order served while a strictly higher-priority one still waits.
    inversions = sum(1 for p in served if unserved and p < max(unserved))
    return {
        "sent": total,
        "accepted": len(accepted),
        "refused": dict(sent["refused"]),
        "failures": sent["failures"],
        "elapsed": sent["elapsed"],
        "rate": len(accepted) / sent["elapsed"],
        "batch_size": batch_size,
        "connections": connections,
        "batch_p50": percentile(sent["batch_latencies"], 50) * 1000,
        "batch_p99": percentile(sent["batch_latencies"], 99) * 1000,
        "stored": len(stored),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "statuses": dict(statuses),
        "settle": settle,
        "drained": drained,
        "scarce_wait": scarce_wait,
        "supply": supply,
        "scarce_orders": len(scarce),
        "by_priority": {p: dict(c) for p, c in sorted(by_priority.items(), reverse=True)},
        "inversions": inversions,
        "replayed": sum(1 for _ in again["accepted"]),
        "replays_new": replays_new,
        "cpu_ms_per_order": {n: 1000 * t / max(len(accepted), 1) for n, t in sorted(cpu_during.items())},
        "settle_cpu_ms_per_order": {
            n: 1000 * t / max(reserved_after - reserved_before, 1) for n, t in sorted(cpu_settling.items())
        },
        "reserved_while_accepting": reserved_before - reserved_start,
        "reserved_after_accepting": reserved_after - reserved_before,
    }


def _cpu_line(label: str, cpu: dict[str, float]) -> str:
    """CPU milliseconds per order: the total, then each process that used 0.05 ms or more."""
    return f"  {label}: {sum(cpu.values()):.1f} = " + ", ".join(
        f"{n} {ms:.1f}" for n, ms in cpu.items() if ms >= 0.05
    )


def report(r: dict, floor_rate: float) -> None:
    print()
    print(f"surge: {r['sent']:,} orders in batches of {r['batch_size']} over {r['connections']} connections")
    print(
        f"  accepted {r['accepted']:,} in {r['elapsed']:.1f}s = {r['rate']:.0f} orders/s "
        f"({r['rate'] / floor_rate:.2f} of the floor's {floor_rate:.0f}/s); batch p50 {r['batch_p50']:.0f} ms, "
        f"p99 {r['batch_p99']:.0f} ms; refused {r['refused'] or 0}; resent after a failure: {r['failures']}"
    )
    print(_cpu_line("CPU while accepting, ms per accepted order", r["cpu_ms_per_order"]))
    print(
        f"  books: {r['stored']:,} stored, lost {r['lost']}, duplicated {r['duplicated']}, "
        f"statuses {r['statuses']}; the first {r['replayed']} sent again: {r['replays_new']} new"
    )
    print(
        f"  behind the API: every order allocated or scheduled {r['settle']:.1f}s after the last was accepted; "
        f"all settled {r['drained']:.1f}s after"
    )
    backlog = r["reserved_after_accepting"]
    print(
        f"  allocation: {r['reserved_while_accepting']:,} orders allocated or scheduled while orders came in, "
        f"the backlog of {backlog:,} after that in {r['settle']:.1f}s = {backlog / r['settle']:.0f} orders/s"
    )
    print(_cpu_line("CPU per backlog order while it was allocated, ms", r["settle_cpu_ms_per_order"]))
    print(
        f"  scarce stock: {r['scarce_orders']} orders wanted {SCARCE_SKU}, a receipt brought {r['supply']}; "
        f"served by priority (highest first):"
    )
    for priority, c in r["by_priority"].items():
        print(
            f"    priority {priority:>4}: {c.get('allocated', 0):>5} served, {c.get('waiting', 0):>5} waiting"
        )
    print(f"  priority inversions (served while a higher priority waits): {r['inversions']}")


def seed_scarce(stack: Stack, folder: Path) -> None:
    """The scarce SKU: known, active, no stock anywhere."""
    import subprocess
    import sys

    products = (
        "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,"
        f"status\n{SCARCE_SKU},Scarce bench part,10.00,USD,false,30,1,1,active\n"
    )
    (folder / "scarce-products.csv").write_text(products)
    (folder / "scarce-stock.csv").write_text(f"sku,warehouse,on_hand\n{SCARCE_SKU},WH-CHI,0\n")
    for kind, name in (("products", "scarce-products.csv"), ("stock", "scarce-stock.csv")):
        subprocess.run(
            [sys.executable, "-m", "cli", "import", kind, str(folder / name)],
            env=stack.env(),
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )


def main() -> int:
    """The surge on its own: `python -m bench.surge [--orders 5000]` (SQLite, one replica each)."""
    import argparse
    import tempfile

    from bench.__main__ import BENCH_SKUS, seed_bench_products

    parser = argparse.ArgumentParser(prog="python -m bench.surge")
    parser.add_argument("--orders", type=int, default=int(os.environ.get("BENCH_SURGE_ORDERS", "5000")))
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument(
        "--hold-allocation",
        action="store_true",
        help="the allocator waits until no order has come for a second: the whole surge is one "
        "backlog (its rate then does not depend on how fast orders came in)",
    )
    args = parser.parse_args()
    hold = {"ORDERDESK_ALLOCATOR_SURGE_RATE": "1", "ORDERDESK_ALLOCATOR_SURGE_MAX_DEFER_SECONDS": "1000000"}
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-surge-"))
    stack = Stack(  # and its own NATS
        data_dir=folder / "suite",
        extra_env={**UNTHROTTLED, **(hold if args.hold_allocation else {})},
    )
    try:
        stack.start()
        stack.load_demo_data()
        seed_bench_products(stack)
        seed_scarce(stack, folder)
        r = run_surge(stack, BENCH_SKUS, args.orders, args.batch, args.connections)
        report(r, r["rate"])
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
