"""What an idle suite costs (issue 15): the whole suite with the demo data and the console, no load, and the CPU
each process spends while nothing happens, as a fraction of one core, against the target of 0.02 for the whole
suite (`make run` doing nothing must not keep a core busy).

The suite starts, is given `--settle` seconds (start-up, demo import, first jobs), then each process's
user + system time and its context switches (voluntary + involuntary, over all its threads: how often it
wakes) are read from /proc before and after `--seconds` of nothing. NATS is shown on its own line and left out
of the suite's total (it is the broker, not orderdesk's code, and its idle cost is its own).

    python -m bench.idle [--seconds 60] [--settle 20]

ORDERDESK_PROFILE=<dir> profiles every process (cProfile, written when the suite stops) to see which loop wakes.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench import UNTHROTTLED
from devtools.devstack import Stack

TARGET = 0.02  # of one core, the whole suite at idle (issue 15)
TICKS = os.sysconf("SC_CLK_TCK")


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it (a worker a process may start)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def sample(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and context switches (all threads) of `pid` and its children so far."""
    cpu, switches = 0.0, 0
    for one in _descendants(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15 of stat)
            for task in Path(f"/proc/{one}/task").iterdir():
                for line in (task / "status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except OSError:
            continue
    return cpu, switches


def pids(stack: Stack) -> dict[str, int]:
    found = {name: p.popen.pid for name, p in stack.processes.items() if p.popen is not None}
    if stack.own_nats is not None and stack.own_nats.process is not None:
        found["nats-server"] = stack.own_nats.process.pid
    return found


def measure(stack: Stack, seconds: float) -> dict[str, tuple[float, float]]:
    """Per process: (fraction of a core, wake-ups per second) over `seconds` of doing nothing."""
    watched = pids(stack)
    before = {name: sample(pid) for name, pid in watched.items()}
    started = time.monotonic()
    time.sleep(seconds)
    after = {name: sample(pid) for name, pid in watched.items()}
    elapsed = time.monotonic() - started
    return {
        name: ((after[name][0] - before[name][0]) / elapsed, (after[name][1] - before[name][1]) / elapsed)
        for name in watched
    }


def report(figures: dict[str, tuple[float, float]], seconds: float) -> float:
    print()
    print(
        f"orderdesk idle: the suite with the demo data and the console, no load, {seconds:.0f}s, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'process':<14}{'CPU (of a core)':>16}{'wake-ups/s':>12}")
    total = 0.0
    for name, (cpu, wakeups) in figures.items():
        if name != "nats-server":
            total += cpu
        print(f"{name:<14}{cpu:>16.4f}{wakeups:>12.1f}")
    print(
        f"{'suite total':<14}{total:>16.4f}   target <= {TARGET} ({'met' if total <= TARGET else 'NOT met'})"
    )
    print("(nats-server is shown but not counted; wake-ups: context switches of all its threads)")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the idle suite is measured")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after start-up before measuring")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-bench-idle-"))
    stack = Stack(data_dir=folder / "suite", console=True, extra_env=UNTHROTTLED)
    try:
        stack.start()
        stack.load_demo_data()
        time.sleep(args.settle)
        report(measure(stack, args.seconds), args.seconds)
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
