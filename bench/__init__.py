"""`make bench`: figures for the order path, printed, never asserted (see bench/__main__.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devtools.devstack import Stack

# The gateway's rate limiter runs (its cost is in the figures) but never refuses: the bench drives its partners'
# keys at full speed, far beyond a partner's production limits (gateway.ratelimit).
# No finance feed pays the bench's tens of thousands of orders: credit closes at completion, so the demo
# customers' limits do not hold the load (what is measured is the order path, not credit control).
NO_FINANCE_FEED = {"ORDERDESK_INTAKE_EXPOSURE_UNTIL": "completion"}
# The single-order loads' customers (standard, active, NET30 in the demo data). Their exposure grows with every
# order the bench makes before the surge, so the surge orders for other customers (bench.surge).
LOAD_CUSTOMERS = [f"C{n:04d}" for n in (1, 2, 3, 5, 6)]
UNTHROTTLED = {
    "ORDERDESK_RATE_LIMITS": ",".join(f"{c}=1e9/1000000000" for c in ("submit", "read", "feed", "admin")),
    **NO_FINANCE_FEED,
}


def key_for(keys: str | list[str], n: int) -> str:
    """The API key of a load's `n`th request: the one key, or of many partners' keys the next in turn."""
    return keys if isinstance(keys, str) else keys[n % len(keys)]


def percentile(values: list[float], p: float) -> float:
    """The `p`th percentile (nearest rank) of `values`; NaN for none: every bench reports the same way."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def import_csv(stack: Stack, path: Path, kind: str, text: str) -> None:
    """CSV text imported the way an operator does it (`orderdesk import <kind>`), one way for every bench."""
    from devtools.devstack import ROOT

    path.write_text(text)
    subprocess.run(
        [sys.executable, "-m", "cli", "import", kind, str(path)],
        env=stack.env(),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def import_master_data(stack: Stack, folder: Path, *, products: str, stock: str) -> None:
    """Products and stock (CSV text), imported as an operator does."""
    import_csv(stack, folder / "products.csv", "products", products)
    import_csv(stack, folder / "stock.csv", "stock", stock)


def seed_partners(stack: Stack, folder: Path, count: int, prefix: str = "BENCH") -> list[str]:
    """`count` partners P-<prefix>-000 ... (scope orders), each with its own API key: their keys, in order."""
    keys = [f"bench-{prefix.lower()}-key-{n:03d}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    text = "partner_id,name,api_key,scopes\n" + "".join(
        f"P-{prefix}-{n:03d},Bench partner {n},{key},orders\n" for n, key in enumerate(keys)
    )
    import_csv(stack, folder / f"{prefix.lower()}-partners.csv", "partners", text)
    return keys


# What `make bench` divides per accepted order, per process: (row label, Prometheus counter summed over its series).
PER_ORDER_COUNTERS = (
    ("SQL statements", "orderdesk_db_statements_total"),
    ("commits", "orderdesk_db_commits_total"),
    ("gRPC calls handled", "orderdesk_grpc_server_handled_total"),
    ("events published", "orderdesk_outbox_published_total"),
    ("events consumed", "orderdesk_events_consumed_total"),
)
# Batch sizes (README "Scaling"): what a pull brought (events per pull) and a group-commit run entered.
BATCH_COUNTERS = (
    ("orderdesk_consumer_pulled_events_total", "orderdesk_consumer_pulls_total"),
    ("orderdesk_group_items_total", "orderdesk_group_runs_total"),
)
NATS = "nats-server"
POSTGRES = "postgresql"
# Transactions the PostgreSQL cluster ended (pg_stat_database: commits and rollbacks, a read's and a pool
# ping's included): each is at least a BEGIN and a COMMIT or ROLLBACK round trip beside its statements.
PG_TRANSACTIONS = "pg_transactions"
PG_STATS_FLUSH_SECONDS = 11.0  # an idle backend reports its counts within 10 s (PostgreSQL 15+)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc); 0 when it is gone."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU seconds of a LocalPostgres cluster (`data_dir` as given to it) so far: the postmaster, its live
    children (a backend per pooled connection, the writers) and the children it has reaped; 0 when it is
    not running. The database's share of an order, which on SQLite is inside each service's process."""
    import os

    try:
        postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime, stime, reaped children's cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_port(data_dir: Path) -> int:
    """The port of the LocalPostgres cluster in `data_dir` (its postmaster.pid's fourth line)."""
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[3])


def postgres_transactions(data_dir: Path) -> float:
    """Transactions a LocalPostgres cluster has ended so far, over all its databases (committed and rolled
    back); 0 when it cannot be asked. The counts lag by up to PG_STATS_FLUSH_SECONDS."""
    import asyncio

    import asyncpg

    async def ask() -> float:
        conn = await asyncpg.connect(host="127.0.0.1", port=_postgres_port(data_dir), user="postgres")
        try:
            return float(
                await conn.fetchval("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database") or 0
            )
        finally:
            await conn.close()

    try:
        return asyncio.run(ask())
    except (OSError, ValueError, IndexError, asyncpg.PostgresError):
        return 0.0


def analyze_postgres(data_dir: Path) -> list[str]:
    """Every table of every database of the LocalPostgres cluster in `data_dir` analyzed
    (localservers.analyze_databases); returns the databases.

    Why the bench does it after its warm-up: a production database has statistics (autovacuum keeps them
    within a tenth of each table's size), a fresh one has none until autovacuum's first visit (its naptime,
    a minute by default), longer than a bench run. Without them the planner takes each key of a lookup by
    a list of keys to match 0.5% of the table, and on the suite's tables scans them whole: a cost that grows
    with the table during the run and that no production database pays. pgbench analyzes after loading
    for the same reason."""
    import asyncio

    from devtools import localservers

    url = f"postgresql://postgres@127.0.0.1:{_postgres_port(data_dir)}/postgres"
    return asyncio.run(localservers.analyze_databases(url))


def _counter_sums(port: int) -> dict[str, float]:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    sums = dict.fromkeys((name for _, name in PER_ORDER_COUNTERS), 0.0)
    sums.update(dict.fromkeys((name for pair in BATCH_COUNTERS for name in pair), 0.0))
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in sums:
            sums[name] += float(line.rsplit(" ", 1)[1])
    return sums


def process_counts(stack: Stack, postgres: Path | None = None) -> dict[str, dict[str, float]]:
    """Per process of the suite (and the stack's own nats-server, and the PostgreSQL cluster in `postgres`
    if given): its CPU seconds so far ("cpu") and the PER_ORDER_COUNTERS from its /metrics."""
    found: dict[str, dict[str, float]] = {}
    for name, process in stack.processes.items():
        if process.popen is not None:
            found[name] = {"cpu": _cpu_seconds(process.popen.pid), **_counter_sums(stack.metrics_ports[name])}
    if stack.own_nats is not None and stack.own_nats.process is not None:
        found[NATS] = {"cpu": _cpu_seconds(stack.own_nats.process.pid)}
    if postgres is not None:
        found[POSTGRES] = {
            "cpu": postgres_cpu_seconds(postgres),
            PG_TRANSACTIONS: postgres_transactions(postgres),
        }
    return found


def wait_drained(stack: Stack, timeout: float = 300.0) -> float:
    """Seconds until the suite has worked off what it was given: every consumer of the stream caught up and
    every service's outbox empty, twice in a row half a second apart."""
    import asyncio
    import time

    from bench.webhooks import wait_quiet

    started, quiet = time.monotonic(), 0
    while quiet < 2:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the suite did not drain within {timeout:.0f}s")
        asyncio.run(wait_quiet(stack, timeout))
        backlog = sum(
            _gauge(stack.metrics_ports[i], "orderdesk_outbox_backlog_events")
            for s in ("intake", "orders", "inventory", "shipping", "returns", "notifier")
            for i in stack.instances(s)
        )
        quiet = quiet + 1 if backlog == 0 else 0
        time.sleep(0.5)
    return time.monotonic() - started


def _gauge(port: int, name: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def by_service(
    counts: dict[str, dict[str, float]], component_of: dict[str, str]
) -> dict[str, dict[str, float]]:
    """process_counts with the replicas of a service summed under its name ("orders-1" + "orders-2" ->
    "orders"): what a service costs per order, however many processes it runs as. Processes not in
    `component_of` (nats-server) stay as they are; a figure only some replicas have is summed over those."""
    summed: dict[str, dict[str, float]] = {}
    for name, figures in counts.items():
        into = summed.setdefault(component_of.get(name, name), {})
        for key, value in figures.items():
            into[key] = into.get(key, 0.0) + value
    return summed


def batch_sizes(before: dict, after: dict, component_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """Per service (its replicas summed), between two process_counts: events per pull of its consumers and
    requests per group-commit run, where it had any."""
    before, after = by_service(before, component_of), by_service(after, component_of)
    sizes: dict[str, dict[str, float]] = {}
    for name, figures in after.items():
        for items, runs in BATCH_COUNTERS:
            count = figures.get(runs, 0.0) - before.get(name, {}).get(runs, 0.0)
            if count > 0:
                sizes.setdefault(name, {})[runs] = (figures[items] - before[name].get(items, 0.0)) / count
    return sizes


def cpu_ms_per_order(before: dict, after: dict, accepted: int) -> float:
    """The suite's CPU milliseconds per accepted order between two process_counts (nats-server apart)."""
    seconds = sum(after[n]["cpu"] - before[n]["cpu"] for n in after if n in before and n != NATS)
    return 1000.0 * seconds / max(accepted, 1)


def print_per_order(
    before: dict, after: dict, accepted: int, what: str, component_of: dict[str, str] | None = None
) -> None:
    """The table: per process, CPU ms and each counter per accepted order between the two process_counts;
    with `component_of` (Stack.component_of) per service, its replicas summed."""
    if component_of is not None:
        before, after = by_service(before, component_of), by_service(after, component_of)
    orders = max(accepted, 1)
    names = [n for n in after if n in before]
    rows = [("CPU ms", "cpu", 1000.0)] + [(label, name, 1.0) for label, name in PER_ORDER_COUNTERS]
    if any(PG_TRANSACTIONS in after[n] for n in names):
        rows.append(("PG transactions", PG_TRANSACTIONS, 1.0))
    width = max(10, *(len(n) + 2 for n in names))
    with_db = f" and {POSTGRES}'s" if POSTGRES in names else ""
    print(f"per accepted order, {what} ({accepted} orders; the total is the suite's{with_db}, {NATS} apart):")
    print(f"{'':<20}" + "".join(f"{n:>{width}}" for n in names) + f"{'total':>10}")
    for label, key, scale in rows:
        values = {n: (after[n][key] - before[n][key]) * scale / orders for n in names if key in after[n]}
        total = sum(v for n, v in values.items() if n != NATS)
        print(
            f"{label:<20}"
            + "".join(f"{values[n]:>{width}.1f}" if n in values else f"{'':>{width}}" for n in names)
            + f"{total:>10.1f}"
        )
