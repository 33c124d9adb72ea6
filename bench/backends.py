"""CPU per order on SQLite, on PostgreSQL with one process per service, and with two, in one run.

Each backend gets its own suite (demo data, bench products, its own NATS; PostgreSQL a throw-away
cluster) and the same single-order load as `make bench`'s main run (bench.__main__.drive, order_body):
a warm-up, then `--seconds` of `--concurrency` partners, then the drain (allocation, shipments, feeds),
counted per process and summed per service over its replicas, PostgreSQL's own processes with them (on
SQLite the database works inside each service's process, so the comparison is like for like). Prints each backend's per-order table and
one line per backend against SQLite's CPU per order (the issue's target: within 1.3×).

    python -m bench.backends [--seconds 15] [--concurrency 64] [--only sqlite,pg1,pg2]
"""

from __future__ import annotations

import argparse
import os
import time

from bench import (
    PG_STATS_FLUSH_SECONDS,
    batch_sizes,
    cpu_ms_per_order,
    print_per_order,
    process_counts,
    wait_drained,
)

# (key, label, PostgreSQL?, processes per service)
BACKENDS = (
    ("sqlite", "SQLite", False, 1),
    ("pg1", "PostgreSQL, 1 replica", True, 1),
    ("pg2", "PostgreSQL, 2 replicas", True, 2),
)
STATEMENTS = "orderdesk_db_statements_total"


def per_order_total(before: dict, after: dict, key: str, accepted: int) -> float:
    """A counter summed over the suite's processes, per accepted order, between two process_counts."""
    return sum(after[n][key] - before[n][key] for n in after if n in before and key in after[n]) / max(
        accepted, 1
    )


def measure(postgresql: bool, replicas: int, seconds: float, concurrency: int) -> dict:
    """One backend's single-order run: the drive's figures plus CPU ms and statements per accepted order."""
    from bench.__main__ import (
        SUITE_POSTGRES,
        bench_suite,
        drive,
        order_body,
        partner_keys,
        run_allocated,
        warm_up,
    )

    with bench_suite(
        f"orderdesk-bench-{'pg' if postgresql else 'sqlite'}{replicas}-",
        postgresql=postgresql,
        replicas=replicas,
    ) as (
        _folder,
        stack,
    ):
        warm_up(stack)
        pg_dir = SUITE_POSTGRES.get(id(stack))
        if pg_dir is not None:
            time.sleep(PG_STATS_FLUSH_SECONDS)  # the warm-up's transactions counted before, not in the run
        before = process_counts(stack, pg_dir)
        run = run_allocated(
            stack, drive(stack.gateway_url, partner_keys(stack), seconds, concurrency, order_body)
        )
        wait_drained(stack)
        if pg_dir is not None:
            time.sleep(PG_STATS_FLUSH_SECONDS)
        after = process_counts(stack, pg_dir)
        return {
            **run,
            "before": before,
            "after": after,
            "component_of": dict(stack.component_of),
            "cpu_ms": cpu_ms_per_order(before, after, run["accepted"]),
            "statements": per_order_total(before, after, STATEMENTS, run["accepted"]),
        }


def batch_line(label: str, sizes: dict[str, dict[str, float]]) -> str:
    """`label`'s batch sizes: orders per gathered call (the gateway's single orders into SubmitOrders) and
    per intake group (single SubmitOrder calls, a gRPC partner's), events per pull of each consumer."""
    groups = "".join(
        f"{runs:.1f} orders per {what}, "
        for process, what in (("gateway", "gathered call"), ("intake", "intake group"))
        if (runs := sizes.get(process, {}).get("orderdesk_group_runs_total"))
    )
    pulls = ", ".join(
        f"{name} {figures['orderdesk_consumer_pulls_total']:.1f}"
        for name, figures in sizes.items()
        if "orderdesk_consumer_pulls_total" in figures
    )
    return f"{label}: {groups}events per pull: {pulls or '-'}"


def compare_line(label: str, cpu_ms: float, sqlite_cpu_ms: float | None) -> str:
    """`label`'s CPU per order, and against SQLite's when that was measured (and not zero)."""
    against = f", {cpu_ms / sqlite_cpu_ms:.2f}× SQLite's {sqlite_cpu_ms:.1f}" if sqlite_cpu_ms else ""
    return f"{label}: {cpu_ms:.1f} ms CPU per order{against}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backends")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "15")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "64")))
    parser.add_argument("--only", default="sqlite,pg1,pg2", help="which backends, comma-separated")
    args = parser.parse_args(argv)
    wanted = args.only.split(",")
    results = [
        (label, measure(pg, replicas, args.seconds, args.concurrency))
        for key, label, pg, replicas in BACKENDS
        if key in wanted
    ]
    print()
    print(
        f"backends: {args.concurrency} concurrent partners, {args.seconds:.0f}s each, {os.cpu_count()} cores"
    )
    print(
        f"{'backend':<26}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/order':>14}{'statements':>12}"
    )
    for label, r in results:
        print(
            f"{label:<26}{r['rate']:>12.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{r['cpu_ms']:>14.1f}{r['statements']:>12.1f}"
        )
    for label, r in results:
        print_per_order(
            r["before"], r["after"], r["accepted"], f"{label}, the load and its drain", r["component_of"]
        )
    for label, r in results:
        print(batch_line(label, batch_sizes(r["before"], r["after"], r["component_of"])))
    sqlite = next((r["cpu_ms"] for label, r in results if label == "SQLite"), None)
    for label, r in results:
        if label != "SQLite":
            print(compare_line(label, r["cpu_ms"], sqlite))
    rates = {label: r["rate"] for label, r in results}
    one, two = rates.get("PostgreSQL, 1 replica"), rates.get("PostgreSQL, 2 replicas")
    if one and two is not None:
        print(
            f"PostgreSQL, 2 replicas against 1: {two / one:.2f}× the accepted orders/s ({two:.0f} against {one:.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
