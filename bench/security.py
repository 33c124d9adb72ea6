"""What security costs per order (issue 12): the same single-order load on three suites, one after another in
one run, and the CPU every process of each spent per accepted order (the load and its allocation after):

    plain              no mTLS (plaintext gRPC, no caller checked), no rate limiter
    mTLS + access      every gRPC hop mutual TLS, every call checked against orderdesk/access.py
    + rate limiter     and the gateway's token buckets taking one token per request (never refusing)

CPU is each process's user + system time from /proc before and after (the suite's processes only: not NATS,
not the load generator). Figures are printed, never asserted.

    python -m bench.security [--seconds 6] [--concurrency 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
from pathlib import Path

from bench import NO_FINANCE_FEED, UNTHROTTLED
from bench.__main__ import bench_suite, drive, order_body, run_allocated, warm_up
from devtools.devstack import Stack

UNLIMITED = {
    "ORDERDESK_RATE_LIMITS": ",".join(f"{c}=0/1" for c in ("submit", "read", "feed", "admin")),
    **NO_FINANCE_FEED,
}
SUITES = [  # (name, mTLS, the gateway's rate limits)
    ("plain", False, UNLIMITED),
    ("mTLS + access", True, UNLIMITED),
    ("+ rate limiter", True, UNTHROTTLED),
]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(stack: Stack) -> float:
    """User + system CPU seconds of every process of the suite so far."""
    total = 0.0
    for process in stack.processes.values():
        if process.popen is None:
            continue
        fields = Path(f"/proc/{process.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
    return total


def measure(stack: Stack, seconds: float, concurrency: int) -> dict:
    """One load on `stack` and the allocation behind it: the load's figures and the suite's CPU per order."""
    before_cpu = cpu_seconds(stack)
    run = run_allocated(stack, drive(stack.gateway_url, "demo-shop-key", seconds, concurrency, order_body))
    spent = cpu_seconds(stack) - before_cpu
    return {**run, "cpu_ms": spent * 1000 / max(run["accepted"], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.security")
    parser.add_argument("--seconds", type=float, default=6.0, help="per load")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="loads per suite, taken in turn")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in SUITES}
    with contextlib.ExitStack() as suites:
        # All three up at once, loaded in turn (plain, mTLS, limiter, plain, …): what the machine is doing
        # meanwhile falls on each alike. Only the loaded suite's processes are counted.
        stacks = {
            name: suites.enter_context(
                bench_suite(f"orderdesk-bench-security-{n}-", tls=tls, extra_env=limits)
            )[1]
            for n, (name, tls, limits) in enumerate(SUITES)
        }
        for stack in stacks.values():
            warm_up(stack)
        for _ in range(args.rounds):
            for name, stack in stacks.items():
                runs[name].append(measure(stack, args.seconds, args.concurrency))
    print()
    print(
        f"orderdesk security cost: {args.concurrency} concurrent partners, {args.rounds} loads of "
        f"{args.seconds:.0f}s per suite in turn, SQLite, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.1f}; CPU summed over the suite's processes, the load and its allocation"
    )
    print(
        f"{'suite':<18}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'CPU ms/order':>14}{'min':>8}{'vs plain':>10}"
    )
    plain = statistics.median(r["cpu_ms"] for r in runs["plain"])
    for name, found in runs.items():
        cpu = statistics.median(r["cpu_ms"] for r in found)
        print(
            f"{name:<18}{statistics.median(r['rate'] for r in found):>12.0f}"
            f"{statistics.median(r['p50'] for r in found):>10.1f}{statistics.median(r['p99'] for r in found):>10.1f}"
            f"{cpu:>14.1f}{min(r['cpu_ms'] for r in found):>8.1f}{cpu - plain:>+10.1f}"
        )
    print("(medians over the loads; min: the least CPU per order of any load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
