"""python -m tests.faults [--replicas 2] [--short] [--nats-cluster]: the fault suite, its table, exit status 1 unless the books balance."""

from __future__ import annotations

import argparse
import asyncio
import sys

from tests.faults.suite import Plan, report, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--replicas", type=int, default=2, help="processes per service (PostgreSQL)")
    parser.add_argument("--rate", type=float, default=10.0, help="partner orders per second")
    parser.add_argument(
        "--nats-down",
        type=float,
        default=None,
        help="seconds NATS stays stopped (30); with --nats-cluster, each node (10)",
    )
    parser.add_argument("--pg-down", type=float, default=5.0, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--gap", type=float, default=10.0, help="seconds of plain load between faults")
    parser.add_argument("--short", action="store_true", help="the CI form: few faults, short outages")
    parser.add_argument(
        "--nats-cluster",
        action="store_true",
        help="on a three-node JetStream cluster: kill -9 "
        "of one node, then of another (tests/faults/cluster.py)",
    )
    args = parser.parse_args(argv)
    if args.nats_cluster:
        from tests.faults.cluster import cluster_plan, run_cluster_suite

        plan = cluster_plan(
            args.replicas,
            short=args.short,
            rate=args.rate,
            gap=args.gap,
            node_down=10.0 if args.nats_down is None else args.nats_down,
        )
        faults, tally, books, figures = asyncio.run(run_cluster_suite(plan, log=log))
    else:
        plan = (
            short_plan(args.replicas)
            if args.short
            else Plan(
                replicas=args.replicas,
                rate=args.rate,
                nats_down=30.0 if args.nats_down is None else args.nats_down,
                pg_down=args.pg_down,
                gap=args.gap,
            )
        )
        faults, tally, books, figures = asyncio.run(run_suite(plan, log=log))
    print(report(faults, tally, books, figures, plan.replicas), flush=True)
    return 0 if not books.problems and not tally.refused else 1


def log(message: str) -> None:
    print(message, flush=True)


def short_plan(replicas: int = 2) -> Plan:
    return Plan(
        replicas=replicas,
        rate=6.0,
        nats_down=3.0,
        pg_down=1.0,
        gap=2.0,
        flaky_seconds=3.0,
        kill_each=False,
        ship_fraction=0.3,
        return_fraction=0.3,
        settle_timeout=60.0,
        flaky_restore=False,
    )


if __name__ == "__main__":
    sys.exit(main())
