"""`make bench`: concurrent partners against the running suite, and the floor, in one run.

Starts the whole suite on a private NATS (its own, with a user per service) (SQLite by default;
ORDERDESK_BENCH_BACKEND=postgresql with ORDERDESK_TEST_POSTGRES_URL for PostgreSQL),
drives POST /v1/orders from many concurrent partners for a fixed time, then the
same load against the floor (same hops and commits, no business logic) once the suite has
drained, and again right after the surge (each ratio against the floor of its own minute), and prints:
accepted orders/s end to end, p50/p99 latency, and how fast accepted orders were
allocated (reserved) behind the API; CPU and statements per order per process (replicas
summed per service, the PostgreSQL cluster's own CPU counted); latency by load (bench/latency.py).

    python -m bench [--seconds 15] [--concurrency 64] [--latency-seconds 8] [--replicas 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine, Iterator
from pathlib import Path

import aiohttp

from bench import (
    LOAD_CUSTOMERS,
    UNTHROTTLED,
    analyze_postgres,
    import_master_data,
    key_for,
    latency,
    percentile,
    print_per_order,
    process_counts,
    seed_partners,
    surge,
    wait_drained,
    webhooks,
)
from devtools import localservers
from devtools.devstack import ROOT, Stack
from gateway.gathering import GATHER_GROUP

BENCH_SKUS = [f"BENCH-{n:03d}" for n in range(20)]


async def drive(url: str, key: str | list[str], seconds: float, concurrency: int, body_for) -> dict:
    """`concurrency` clients posting single orders for `seconds`, each as soon as its last was answered; with
    a list of partners' keys, each request from the next of them, so a gathered call holds many partners'."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted: list[str] = []
    decisions: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def partner(n: int) -> None:
            i = 0
            while time.perf_counter() < deadline:
                i += 1
                started = time.perf_counter()
                headers = {
                    "Authorization": f"Bearer {key_for(key, n * 7 + i)}",
                    "Idempotency-Key": f"bench-{n}-{i}-{uuid.uuid4().hex[:8]}",
                }
                try:
                    async with session.post(f"{url}/v1/orders", json=body_for(n, i), headers=headers) as resp:
                        data = await resp.json(content_type=None)
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status == 201:
                            accepted.append(data["order_id"])
                            decisions[data.get("status", "?")] = decisions.get(data.get("status", "?"), 0) + 1
                except Exception:
                    statuses[0] = statuses.get(0, 0) + 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*[partner(n) for n in range(concurrency)])
        elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "accepted": len(accepted),
        "ids": accepted,
        "statuses": statuses,
        "decisions": decisions,
        "rate": len(accepted) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
    }


RUN = uuid.uuid4().hex[:6]  # partner references are unique per run (a repeat would be held as a duplicate)


def order_body(n: int, i: int) -> dict:
    return {
        "external_ref": f"BENCH-{RUN}-{n}-{i}-{uuid.uuid4().hex[:6]}",
        "customer_id": LOAD_CUSTOMERS[(n + i) % len(LOAD_CUSTOMERS)],
        "lines": [{"sku": BENCH_SKUS[(n * 7 + i) % len(BENCH_SKUS)], "quantity": 1, "unit_price": "10.00"}],
        "payment_terms": "NET30",
    }


# The data folder of the PostgreSQL cluster under each running bench_suite (by id of its stack), for
# process_counts to count the database's CPU too and for warm_up to analyze it.
SUITE_POSTGRES: dict[int, Path] = {}
# The load comes from as many partners as it has clients, each with its own key (and so its own idempotency
# keys, feed and rate limit), as an order desk's traffic does: not from one partner's many connections.
BENCH_PARTNERS = 64
# Their keys under each running bench_suite (by id of its stack): `partner_keys(stack)`.
SUITE_PARTNERS: dict[int, list[str]] = {}


def partner_keys(stack: Stack) -> list[str]:
    return SUITE_PARTNERS[id(stack)]


@contextlib.contextmanager
def bench_suite(
    prefix: str,
    *,
    tls: bool = True,
    extra_env: dict[str, str] = UNTHROTTLED,
    postgresql: bool = False,
    replicas: int = 1,
) -> Iterator[tuple[Path, Stack]]:
    """The suite on SQLite (or, `postgresql` or `replicas` > 1, a throw-away PostgreSQL cluster) and its
    own NATS in a new temporary folder (`prefix`), with the demo data and the bench products; stopped
    afterwards, a SIGTERM to the bench included. Yields the folder and the stack."""
    # A bench killed with SIGTERM (a `kill`, a timeout) stops its suite as Ctrl-C does: Python's default
    # ends the process at once and would leave nine processes and a PostgreSQL cluster running.
    stopping = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    local_pg, stack = None, None
    try:
        database_urls = {}
        if postgresql or replicas > 1:  # replicas need PostgreSQL
            from devtools.devstack import postgres_databases

            local_pg = localservers.LocalPostgres(Path(tempfile.mkdtemp(prefix=f"{prefix}pg-")))
            database_urls = postgres_databases(local_pg.start().url)
        stack = Stack(
            data_dir=folder / "suite",
            database_urls=database_urls,
            replicas=replicas,
            extra_env=extra_env,
            tls=tls,
        )
        if local_pg is not None:
            SUITE_POSTGRES[id(stack)] = local_pg.data_dir
        stack.start()
        stack.load_demo_data()
        seed_bench_products(stack)
        SUITE_PARTNERS[id(stack)] = seed_partners(stack, folder, BENCH_PARTNERS)
        yield folder, stack
    finally:
        if stack is not None:
            SUITE_PARTNERS.pop(id(stack), None)
            SUITE_POSTGRES.pop(id(stack), None)
            stack.stop()
        if local_pg is not None:
            local_pg.stop()
        signal.signal(signal.SIGTERM, stopping)


def _exit_on_sigterm(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def seed_bench_products(stack: Stack) -> None:
    products = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    products += "".join(f"{s},Bench part,10.00,USD,false,1,1,1,active\n" for s in BENCH_SKUS)
    stock = "sku,warehouse,on_hand\n" + "".join(
        f"{s},{w},1000000\n" for s in BENCH_SKUS for w in ("WH-CHI", "WH-HAM")
    )
    folder = Path(stack.data_dir) / "bench-data"
    folder.mkdir(exist_ok=True)
    import_master_data(stack, folder, products=products, stock=stock)


def metric_total(port: int, name: str, label: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and label in line
    )


def allocated_total(stack: Stack) -> float:
    """Orders allocated so far, from orders' own counter (summed over its replicas: one of them allocates)."""
    return sum(
        metric_total(stack.metrics_ports[i], "orderdesk_order_status_transitions_total", 'status="allocated"')
        for i in stack.instances("orders")
    )


def wait_allocated(stack: Stack, target: int, timeout: float = 120) -> float:
    """Seconds until `target` orders have been allocated (from orders' own counter)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if allocated_total(stack) >= target:
            return time.perf_counter() - started
        time.sleep(0.2)
    return float("nan")


def run_allocated(stack: Stack, load: Coroutine[None, None, dict]) -> dict:
    """Runs a load (`drive`, bench.latency.open_loop: figures with its "decisions") and waits until its
    confirmed orders are allocated. Over 100 orders/s the allocator holds off until the orders stop
    (services/orders/surge.py), so a load's allocations come after it: what is measured next must not start
    while the allocator works them off."""
    before = allocated_total(stack)
    figures = asyncio.run(load)
    wait_allocated(stack, before + figures["decisions"].get("confirmed", 0))
    return figures


def own_cpu_seconds() -> float:
    """This process's CPU seconds so far: the load generator's share of the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def gathered_calls(stack: Stack) -> tuple[float, float, float, float]:
    """So far: the gateway's gathered calls to intake (gateway.gathering: up to GATHER_IN_FLIGHT in flight),
    the orders they carried, the seconds intake spent handling them (SubmitOrders), and of those the seconds
    orders' handler took for intake's CreateOrders calls (each service's replicas summed)."""
    group = f'group="{GATHER_GROUP}"'

    def summed(service: str, name: str, label: str) -> float:
        return sum(metric_total(stack.metrics_ports[i], name, label) for i in stack.instances(service))

    return (
        summed("gateway", "orderdesk_group_runs_total", group),
        summed("gateway", "orderdesk_group_items_total", group),
        summed("intake", "orderdesk_grpc_server_handling_seconds_sum", 'method="SubmitOrders"'),
        summed("orders", "orderdesk_grpc_server_handling_seconds_sum", 'method="CreateOrders"'),
    )


def print_during_the_load(
    elapsed: float,
    before: dict,
    after: dict,
    generator_seconds: float,
    calls: tuple[float, float, float, float],
) -> None:
    """Whether the load was held back by the machine's cores or by the calls in flight to intake: the
    cores busy between two process_counts around it, the load generator's, and the gathered calls. A call's
    time in intake splits into orders' handler and the rest: intake's own work and the hops there and back,
    which is where a busy machine's waits show."""
    busy = sum(after[n]["cpu"] - before[n]["cpu"] for n in before) / elapsed
    count, orders, handled, in_orders = calls
    print(
        f"during the load ({elapsed:.1f}s): the suite kept {busy:.2f} of {os.cpu_count()} cores busy "
        f"(nats-server and any PostgreSQL included), the load generator {generator_seconds / elapsed:.2f}; the "
        f"gateway made {count:.0f} calls to intake, {orders / max(count, 1):.1f} orders each, "
        f"{1000 * handled / max(count, 1):.1f} ms each in intake ({1000 * in_orders / max(count, 1):.1f} of them in "
        f"orders' CreateOrders), {handled / elapsed:.2f} of them there at a time on average"
    )


def warm_up(stack: Stack) -> None:
    """Connections, caches, SQLite pages: 8 partners for 2 s, their orders allocated and their events
    consumed, so what is measured next is its own work. On PostgreSQL, then the planner's statistics of every
    table (bench.analyze_postgres: a production database has them, a fresh one not for its first minute)."""
    run_allocated(stack, drive(stack.gateway_url, partner_keys(stack), 2, 8, order_body))
    wait_drained(stack)
    pg_dir = SUITE_POSTGRES.get(id(stack))
    if pg_dir is not None:
        analyze_postgres(pg_dir)


def measure_floor(url: str, seconds: float, concurrency: int) -> dict:
    """The floor's single-order run, as the suite's (a short warm-up of 8 clients first)."""
    asyncio.run(drive(url, "none", 2, 8, order_body))
    return asyncio.run(drive(url, "none", seconds, concurrency, order_body))


def start_floor(folder: Path, stack: Stack) -> tuple[str, list[subprocess.Popen]]:
    ports = [localservers.free_port() for _ in range(3)]
    at = [f"127.0.0.1:{port}" for port in ports]
    # The floor's hops speak mTLS as the suite's do (same handshakes, same encryption), with one certificate.
    env = {**os.environ, **stack.client_tls("cli").as_env()}

    def floor(*argv: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bench.floor", *argv], cwd=ROOT, env=env)

    procs = [
        floor("hop", "--listen", at[2], "--db", f"sqlite+aiosqlite:///{folder}/floor-b.db"),
        floor("hop", "--listen", at[1], "--db", f"sqlite+aiosqlite:///{folder}/floor-a.db", "--next", at[2]),
        floor("http", "--listen", at[0], "--next", at[1]),
    ]
    url = f"http://127.0.0.1:{ports[0]}"
    deadline = time.monotonic() + 30
    while not localservers.answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError("floor did not start")
        time.sleep(0.1)
    while not _floor_answers_an_order(url):  # the whole chain is up, not just its HTTP end
        if time.monotonic() > deadline:
            raise RuntimeError("floor did not start")
        time.sleep(0.2)
    return url, procs


def _floor_answers_an_order(url: str) -> bool:
    import urllib.request

    try:
        request = urllib.request.Request(
            f"{url}/v1/orders", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
        )
        return urllib.request.urlopen(request, timeout=5).status == 201
    except Exception:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "15")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "64")))
    parser.add_argument(
        "--replicas",
        type=int,
        default=int(os.environ.get("BENCH_REPLICAS", "1")),
        help="processes per service; more than 1 runs on a throw-away PostgreSQL cluster",
    )
    parser.add_argument(
        "--surge-orders",
        type=int,
        default=int(os.environ.get("BENCH_SURGE_ORDERS", "20000")),
        help="orders in the surge scenario (0: skip it)",
    )
    parser.add_argument(
        "--latency-seconds",
        type=float,
        default=float(os.environ.get("BENCH_LATENCY_SECONDS", "8")),
        help="seconds per step of the latency-by-load run (0: skip it; bench/latency.py)",
    )
    parser.add_argument("--surge-batch", type=int, default=500, help="orders per batch request in the surge")
    parser.add_argument(
        "--surge-connections", type=int, default=4, help="batch requests in flight in the surge"
    )
    parser.add_argument(
        "--webhook-endpoints",
        type=int,
        default=int(os.environ.get("BENCH_WEBHOOK_ENDPOINTS", "100")),
        help="partners with one webhook endpoint each, one dead (0: skip the webhook runs)",
    )
    args = parser.parse_args()

    postgresql = args.replicas > 1 or os.environ.get("ORDERDESK_BENCH_BACKEND") == "postgresql"
    backend = f"PostgreSQL, {args.replicas} replica(s) per service" if postgresql else "SQLite"
    with bench_suite("orderdesk-bench-", postgresql=postgresql, replicas=args.replicas) as (folder, stack):
        floor_procs: list[subprocess.Popen] = []
        try:
            warm_up(stack)  # the warm-up's work done: what follows is the load's alone
            pg_dir = SUITE_POSTGRES.get(id(stack))
            before, counts_before = allocated_total(stack), process_counts(stack, pg_dir)
            calls_before, generator_before = gathered_calls(stack), own_cpu_seconds()
            real = asyncio.run(
                drive(stack.gateway_url, partner_keys(stack), args.seconds, args.concurrency, order_body)
            )
            generator_seconds = own_cpu_seconds() - generator_before
            counts_loaded, calls_loaded = process_counts(stack, pg_dir), gathered_calls(stack)
            confirmed = real["decisions"].get("confirmed", 0)
            drain = wait_allocated(stack, before + confirmed)
            allocated_rate = confirmed / (real["elapsed"] + drain) if drain == drain else float("nan")
            wait_drained(stack)  # shipments made, feeds appended: every event of the load consumed
            counts_after = process_counts(stack, pg_dir)

            # The floor in the same minute as the run it is set against: this machine's speed drifts by a
            # third within a bench, so a floor measured minutes later (after the latency, webhook and surge
            # runs) moved the ratio as much as a change did. The suite is idle meanwhile (drained above).
            floor_url, floor_procs = start_floor(folder, stack)
            floor = measure_floor(floor_url, args.seconds, args.concurrency)

            # Latency by load: 1 and 16 partners, then fixed rates at fractions of this run's accepted/s.
            latency_steps = None
            if args.latency_seconds:
                latency_steps = latency.run(
                    stack, args.latency_seconds, real["rate"], drive, order_body, partner_keys(stack)
                )

            # The webhook runs before the surge: each of its runs starts from a suite that has caught up
            # (see webhooks.wait_quiet), which after 20,000 orders would take minutes.
            hooks = None
            if args.webhook_endpoints:
                hooks = webhooks.run(
                    stack, folder, args.seconds, args.concurrency, order_body, args.webhook_endpoints
                )

            surged, surge_floor = None, None
            if args.surge_orders:
                surge.seed_scarce(stack, folder)
                surged = surge.run_surge(
                    stack, BENCH_SKUS, args.surge_orders, args.surge_batch, args.surge_connections
                )
                surge_floor = measure_floor(floor_url, args.seconds, args.concurrency)  # the surge's minute

            print()
            print(
                f"orderdesk bench: {args.concurrency} concurrent partners, {args.seconds:.0f}s per run, {backend}, "
                f"{os.cpu_count()} cores"
            )
            print(f"{'path':<34}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}  statuses")
            for name, r in (
                ("orders end to end (gateway)", real),
                ("floor (same hops+commits, no logic)", floor),
            ):
                print(
                    f"{name:<34}{r['rate']:>12.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}"
                    f"{sum(r['statuses'].values()):>10}  {dict(sorted(r['statuses'].items()))}"
                )
            print(f"end to end / floor: {real['rate'] / floor['rate']:.2f}")
            print(f"decisions: {real['decisions']}")
            print(
                f"allocated behind the API: all {confirmed} confirmed orders reserved {drain:.1f}s after the load "
                f"stopped ({allocated_rate:.0f} orders/s from first request to last allocation)"
            )
            print_during_the_load(
                real["elapsed"],
                counts_before,
                counts_loaded,
                generator_seconds,
                tuple(a - b for a, b in zip(calls_loaded, calls_before, strict=True)),
            )
            summed = f", {args.replicas} replicas of each service summed" if args.replicas > 1 else ""
            print_per_order(
                counts_before,
                counts_after,
                real["accepted"],
                f"the load and its drain{summed}",
                stack.component_of,
            )
            if latency_steps is not None:
                latency.report(latency_steps, real, args.concurrency, real["rate"])
            if hooks is not None:
                webhooks.report(hooks)
            if surged is not None and surge_floor is not None:
                surge.report(surged, surge_floor["rate"])
            return 0
        finally:
            for p in floor_procs:
                p.terminate()


if __name__ == "__main__":
    status = main()
    # Supply: reservations/s under contention, two inventory replicas on one PostgreSQL (own processes).
    from bench import archive, backends, backup, carriers, console, idle, security, supply
    from bench import watch as promise_watch

    # Backup: duration and size for 100,000 orders (bench/backup.py says how they are made).
    # Archive: the job's rate, and the hot path before and after archiving a year (bench/archive.py).
    # The promise watch: one pass over 100,000 open orders (bench/watch.py).
    # Console: the desk's pages with 100,000 orders, p50/p99 per page (bench/console.py).
    # Carriers: the tracking events per second the gateway accepts (bench/carriers.py).
    # Security: CPU per order without mTLS, with it, and with the rate limiter too (bench/security.py).
    # Idle: what the suite costs doing nothing, per process (bench/idle.py).
    # Backends: CPU per order on SQLite, PostgreSQL with 1 and 2 replicas, side by side (bench/backends.py).
    sys.exit(
        status
        or supply.main([])
        or promise_watch.main([])
        or backup.main([])
        or archive.main([])
        or console.main([])
        or carriers.main([])
        or security.main([])
        or idle.main([])
        or backends.main([])
    )
