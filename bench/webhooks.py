"""Webhooks under the order benchmark: order throughput without and with registered webhook endpoints
(one of them dead), and event-to-webhook latency while orders pour in.

100 partners each place orders and each has one endpoint for all its events ("*"): 99 answer 204 from a
local receiver process, one points at a closed port (its deliveries retry, then park). The same partners
and load run without endpoints, with them, and without again (them paused); the drop in accepted
orders/s against the mean of the runs around it is reported. Each run starts once the suite has caught up.

    python -m bench.webhooks run [--seconds 15] [--concurrency 64] [--endpoints 100]   # these runs alone
    python -m bench.webhooks receive --port N --stats FILE   # the receiver (started by run())
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from bench import percentile, seed_partners
from bench.surge import cpu_seconds, process_cpu_seconds
from devtools import localservers
from devtools.devstack import ROOT, Stack

MIN_RUN_SECONDS = 30.0  # a drop of a few percent is lost in the noise of shorter runs on shared cores


async def register(url: str, keys: list[str], receiver_port: int, dead_port: int) -> list[tuple[str, str]]:
    """One endpoint per partner (the last one dead): [(partner key, endpoint id)]."""
    made = []
    async with aiohttp.ClientSession() as session:
        for n, key in enumerate(keys):
            port = dead_port if n == len(keys) - 1 else receiver_port
            async with session.post(
                f"{url}/v1/webhooks",
                headers={"Authorization": f"Bearer {key}"},
                json={"url": f"http://127.0.0.1:{port}/in/{n}", "event_types": ["*"]},
            ) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"webhook registration failed: {resp.status} {await resp.text()}")
                made.append((key, (await resp.json())["id"]))
    return made


async def pause(url: str, endpoints: list[tuple[str, str]]) -> None:
    async with aiohttp.ClientSession() as session:
        for key, endpoint_id in endpoints:
            async with session.post(
                f"{url}/v1/webhooks/{endpoint_id}/pause", headers={"Authorization": f"Bearer {key}"}
            ) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"pausing a webhook failed: {resp.status} {await resp.text()}")


def received(stats: Path) -> int:
    try:
        return json.loads(stats.read_text())["count"]
    except (OSError, ValueError, KeyError):
        return 0


def notifier_metrics(stack: Stack) -> dict[str, float]:
    text = (
        urllib.request.urlopen(f"http://127.0.0.1:{stack.metrics_ports['notifier']}/metrics", timeout=5)
        .read()
        .decode()
    )
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("orderdesk_webhook_", "orderdesk_feed_events_appended_total")):
            name, _, value = line.rpartition(" ")
            found[name] = found.get(name, 0.0) + float(value)
            if "{" in name:  # also summed over labels
                bare = name.split("{", 1)[0]
                found[bare] = found.get(bare, 0.0) + float(value)
    return found


async def wait_quiet(stack: Stack, timeout: float = 600.0) -> float:
    """Waits until every consumer of the event stream has caught up (nothing pending, nothing unacked),
    so a run is not measured while the services still work off an earlier one. Returns the seconds waited."""
    import nats

    from orderdesk import events

    started = time.monotonic()
    nc = await nats.connect(stack.nats_url, **stack.nats_connect_options())
    try:
        js = nc.jetstream()
        while time.monotonic() - started < timeout:
            consumers = await js.consumers_info(events.STREAM)
            if all(c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers):
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise RuntimeError(f"the suite did not catch up within {timeout:.0f}s")
    finally:
        await nc.close()


def measured(
    stack: Stack, keys: list[str], seconds: float, concurrency: int, body_for, receiver=None
) -> dict:
    """One load run from a suite that has caught up, with the CPU each process used during it."""
    asyncio.run(wait_quiet(stack))
    before, receiver_before = (
        cpu_seconds(stack),
        (process_cpu_seconds(receiver.pid) or 0.0) if receiver else 0.0,
    )
    from bench.__main__ import drive

    result = asyncio.run(drive(stack.gateway_url, keys, seconds, concurrency, body_for))
    result["cpu"] = _used_since(before, cpu_seconds(stack))
    if receiver is not None:
        result["cpu"]["(receiver)"] = (process_cpu_seconds(receiver.pid) or 0.0) - receiver_before
    return result


def run(stack: Stack, folder: Path, seconds: float, concurrency: int, body_for, endpoints: int = 100) -> dict:
    """Without endpoints, with them, and without again (them paused): the drop is measured against the
    mean of the two runs around it, so the suite getting slower as its databases grow is not counted."""
    seconds = max(seconds, MIN_RUN_SECONDS)
    from bench.__main__ import drive

    keys = seed_partners(stack, folder, endpoints, prefix="HOOK")
    asyncio.run(drive(stack.gateway_url, keys, 2, 8, body_for))  # warm-up: the new partners' keys
    without = measured(stack, keys, seconds, concurrency, body_for)

    port, dead_port = localservers.free_port(), localservers.free_port()
    stats = folder / "hook-receiver.json"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.webhooks", "receive", "--port", str(port), "--stats", str(stats)],
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not localservers.answers(f"http://127.0.0.1:{port}"):
            if time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.1)
        registered = asyncio.run(register(stack.gateway_url, keys, port, dead_port))
        with_hooks = measured(stack, keys, seconds, concurrency, body_for, receiver)
        stopped = time.monotonic()
        last, last_change = received(stats), time.monotonic()
        while (
            time.monotonic() - last_change < 3 and time.monotonic() - stopped < 180
        ):  # let deliveries catch up
            time.sleep(0.5)
            now = received(stats)
            if now != last:
                last, last_change = now, time.monotonic()
        drain = last_change - stopped
        figures = notifier_metrics(stack)
        asyncio.run(pause(stack.gateway_url, registered))
        without_again = measured(stack, keys, seconds, concurrency, body_for)
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(30)
    latencies = json.loads(stats.read_text()).get("latencies", [])
    return {
        "endpoints": endpoints,
        "without": without,
        "with": with_hooks,
        "without_again": without_again,
        "latencies": latencies,
        "drain": drain,
        "metrics": figures,
    }


def _used_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def _per_order(run: dict) -> str:
    accepted = max(run["accepted"], 1)
    return ", ".join(
        f"{name} {seconds / accepted * 1000:.1f}" for name, seconds in sorted(run["cpu"].items())
    )


def report(r: dict) -> None:
    without, with_hooks = (r["without"]["rate"] + r["without_again"]["rate"]) / 2, r["with"]["rate"]
    drop = (without - with_hooks) / without if without else float("nan")
    lat = r["latencies"]
    m = r["metrics"]
    outcome = {
        k.split('outcome="')[1].split('"')[0]: v
        for k, v in m.items()
        if k.startswith("orderdesk_webhook_deliveries_total{")
    }
    print(f"webhooks: {r['endpoints']} partners placing orders, one endpoint each for every event (one dead)")
    print(
        f"  orders/s without endpoints {r['without']['rate']:.0f}, with {with_hooks:.0f}, without again (paused) "
        f"{r['without_again']['rate']:.0f}: drop {drop:.1%} against the mean of the runs around it "
        f"(statuses {dict(sorted(r['with']['statuses'].items()))})"
    )
    print(f"  CPU ms per accepted order without endpoints: {_per_order(r['without'])}")
    print(f"  CPU ms per accepted order with endpoints:    {_per_order(r['with'])}")
    print(
        "  (the receiver stands in for 99 partners' servers; on these shared cores its CPU is taken from the suite)"
    )
    print(
        f"  event-to-webhook latency p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms "
        f"over {len(lat)} deliveries; the receiver was still catching up {r['drain']:.1f}s after the load stopped"
    )
    print(
        f"  notifier: {m.get('orderdesk_feed_events_appended_total', 0):.0f} events in feeds; attempts by outcome "
        f"{ {k: int(v) for k, v in sorted(outcome.items())} }; parked now "
        f"{m.get('orderdesk_webhook_parked_deliveries', 0):.0f}, feed lag {m.get('orderdesk_webhook_feed_lag_events', 0):.0f}"
    )


# --- the receiver process ---------------------------------------------------------------------------
def receive(port: int, stats: Path) -> None:
    from aiohttp import web

    latencies: list[float] = []

    def write(document: dict) -> None:  # small files, rarely: fine on the loop
        stats.write_text(json.dumps(document))

    occurred_at = re.compile(rb'"occurred_at":"([^"]+)"')

    async def handle(request: web.Request) -> web.Response:
        # Only the one field it needs (not the whole JSON): its CPU is taken from the suite's cores here.
        found = occurred_at.search(await request.read())
        occurred = dt.datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00")).timestamp()
        latencies.append(time.time() - occurred)
        return web.Response(status=204)

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/in/{n}", handle)
        app.router.add_get("/", ping)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        while not stop.is_set():
            write({"count": len(latencies)})
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass
        write({"count": len(latencies), "latencies": latencies})
        await runner.cleanup()

    asyncio.run(main())


def standalone(seconds: float, concurrency: int, endpoints: int) -> None:
    """The webhook runs on their own: a private NATS, the suite on SQLite, the bench products."""
    import os

    from bench.__main__ import bench_suite, order_body

    with bench_suite("orderdesk-bench-hooks-") as (folder, stack):
        result = run(stack, folder, seconds, concurrency, order_body, endpoints)
        print(
            f"\norderdesk webhook bench: {concurrency} concurrent clients, {seconds:.0f}s per run, SQLite, "
            f"{os.cpu_count()} cores"
        )
        report(result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("receive")
    rec.add_argument("--port", type=int, required=True)
    rec.add_argument("--stats", type=Path, required=True)
    alone = sub.add_parser("run")
    alone.add_argument("--seconds", type=float, default=15)
    alone.add_argument("--concurrency", type=int, default=64)
    alone.add_argument("--endpoints", type=int, default=100)
    args = parser.parse_args()
    if args.command == "receive":
        receive(args.port, args.stats)
    else:
        standalone(args.seconds, args.concurrency, args.endpoints)
