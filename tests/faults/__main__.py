"""python -m tests.faults [--replicas 2] [--short]: the fault suite, its table, exit status 1 unless the books balance."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.faults.suite import Plan, report, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--replicas", type=int, default=2, help="processes per service (PostgreSQL)")
    parser.add_argument("--rate", type=float, default=10.0, help="partner orders per second")
    parser.add_argument("--nats-down", type=float, default=30.0, help="seconds NATS stays stopped")
    parser.add_argument("--pg-down", type=float, default=5.0, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds of plain load between faults")
    parser.add_argument("--short", action="store_true", help="the CI form: few faults, short outages")
    args = parser.parse_args(argv)
    plan = short_plan(args.replicas) if args.short else Plan(
        replicas=args.replicas, rate=args.rate, nats_down=args.nats_down, pg_down=args.pg_down, gap=args.gap)
    faults, tally, books, figures = asyncio.run(run_suite(plan, log=lambda m: print(m, flush=True)))
    print(report(faults, tally, books, figures, plan.replicas), flush=True)
    return 0 if not books.problems and not tally.refused else 1


def short_plan(replicas: int = 2) -> Plan:
    return Plan(replicas=replicas, rate=6.0, nats_down=3.0, pg_down=1.0, gap=2.0, flaky_seconds=3.0,
                kill_each=False, ship_fraction=0.3, return_fraction=0.3, settle_timeout=60.0,
                flaky_restore=False)


if __name__ == "__main__":
    sys.exit(main())
