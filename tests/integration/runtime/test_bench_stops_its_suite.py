"""A bench killed with SIGTERM (`kill`, a timeout) stops the suite it started (bench.__main__.bench_suite):
the services, the gateway and its own nats-server end with it rather than running on."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from devtools.devstack import ROOT

# A bench that starts its suite, says which processes it runs, then waits to be killed.
BENCH = """
import json, os, sys, time
from bench.__main__ import bench_suite
with bench_suite("orderdesk-bench-sigterm-") as (folder, stack):
    pids = [p.popen.pid for p in stack.processes.values()] + [stack.own_nats.process.pid]
    print("suite " + json.dumps(pids), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a child the bench did not reap yet is a zombie: ended
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:  # gone between the two looks
        return False


def test_a_bench_killed_with_sigterm_stops_its_suite():
    bench = subprocess.Popen(
        [sys.executable, "-c", BENCH], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    pids: list[int] = []
    try:
        line = ""
        while not line.startswith("suite "):  # after the demo data's "imported ..." lines
            line = bench.stdout.readline()
            assert line, "the bench ended before its suite started"
        pids = json.loads(line.removeprefix("suite "))
        assert len(pids) >= 8 and all(_alive(pid) for pid in pids)  # six services, the gateway, nats-server

        bench.send_signal(signal.SIGTERM)

        assert bench.wait(timeout=120) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in pids if _alive(pid)] == []
    finally:  # a failed run leaves nothing behind for the tests after it
        if bench.poll() is None:
            bench.kill()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
