"""Latency by load level: what a partner waits for one order, from one partner to past the peak.

Closed loop (each partner sends its next order when the last one is answered): 1 and 16 partners, next to
the 64 of the main run. Open loop (orders sent at a fixed rate whether or not the earlier ones were
answered, as independent partners do): 25%, 50%, 75% and 100% of the 64-partner run's accepted/s. A
latency is counted from when the order was due to be sent, so an order that waited for a free connection
(at most `max_in_flight` in flight) counts its wait: a saturated suite cannot hide its queue.

An open-loop step sends at its rate for LEAD_IN_SECONDS before its clock starts: its figures are the steady
state, partners' connections open, as partners keep theirs. A cold step opens a connection for every order
in flight at once (117-168 TLS connections in its first half second at 500/s, measured), and that first
second's orders alone filled the step's worst percent. The lead-in's own p99 is printed beside ("cold").

Each step starts from a drained suite: every order of the previous step allocated (over 100 orders/s the
allocator holds off until the orders stop coming, services/orders/surge.py, so a step's allocations come
after it), then its shipments, feeds and events done.

    python -m bench.latency [--seconds 8] [--peak 130]   # its own suite on SQLite; the peak measured first
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable

import aiohttp

from bench import cpu_ms_per_order, key_for, percentile, process_counts, wait_drained

P99_LIMIT_MS = 250.0  # the target: p99 at or under 250 ms at half the peak rate
OPEN_STEPS = (0.25, 0.5, 0.75, 1.0)  # fractions of the peak's accepted/s
CLOSED_PARTNERS = (1, 16)
MAX_IN_FLIGHT = 256  # open loop: requests in flight at most (beyond that an order waits for a slot)
LEAD_IN_SECONDS = 2.0  # open loop: sent at the step's rate before its clock starts (connections opened)


def send_offsets(rate: float, seconds: float) -> list[float]:
    """When each request of an open-loop run is due, in seconds from its start: evenly `1/rate` apart,
    as many as fit in `seconds` (none for a rate or duration of zero)."""
    if rate <= 0 or seconds <= 0:
        return []
    return [k / rate for k in range(int(rate * seconds + 1e-9))]


def split_lead_in(samples: list[tuple[float, float]], lead_in: float) -> tuple[list[float], list[float]]:
    """(offset due, latency) samples as the lead-in's latencies and the measured ones: due before `lead_in`
    seconds, or from then on."""
    cold = [latency for offset, latency in samples if offset < lead_in]
    return cold, [latency for offset, latency in samples if offset >= lead_in]


def first_over(steps: list[tuple[str, float]], limit_ms: float = P99_LIMIT_MS) -> str | None:
    """The name of the first step (in load order) whose p99 exceeds `limit_ms`; None when none does.
    A step without latencies (NaN: nothing was answered) counts as over."""
    for name, p99 in steps:
        if not p99 <= limit_ms:  # NaN too
            return name
    return None


async def open_loop(
    url: str,
    key: str | list[str],
    rate: float,
    seconds: float,
    body_for: Callable[[int, int], dict],
    max_in_flight: int = MAX_IN_FLIGHT,
    lead_in: float = LEAD_IN_SECONDS,
) -> dict:
    """POST /v1/orders at `rate` a second for `lead_in` + `seconds`, not waiting for answers; the same
    figures as bench.__main__.drive (accepted, rate, p50/p99 ms) for the orders due after the lead-in, plus
    the rate offered and the lead-in's p99 ("cold_p99"). Statuses and decisions count every order sent."""
    samples: list[tuple[float, float]] = []  # (offset due, latency) of each answered order
    statuses: dict[int, int] = {}
    accepted = 0
    decisions: dict[str, int] = {}
    slots = asyncio.Semaphore(max_in_flight)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(k: int, offset: float, due: float) -> None:
            nonlocal accepted
            async with slots:
                headers = {
                    "Authorization": f"Bearer {key_for(key, k)}",
                    "Idempotency-Key": f"open-{k}-{uuid.uuid4().hex[:8]}",
                }
                try:
                    # body_for(n, i) as a partner n's i-th order: 64 partners' worth of customers and SKUs.
                    body = body_for(k % 64, k // 64)
                    async with session.post(f"{url}/v1/orders", json=body, headers=headers) as resp:
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status == 201:
                            if offset >= lead_in:  # the lead-in's orders are not the step's
                                accepted += 1
                            decision = (await resp.json(content_type=None)).get("status", "?")
                            decisions[decision] = decisions.get(decision, 0) + 1
                        else:
                            await resp.read()
                except Exception:
                    statuses[0] = statuses.get(0, 0) + 1
                    return
            samples.append((offset, time.perf_counter() - due))

        tasks = []
        started = time.perf_counter()
        for k, offset in enumerate(send_offsets(rate, lead_in + seconds)):
            due = started + offset
            pause = due - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            tasks.append(asyncio.create_task(one(k, offset, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started - lead_in  # the measured orders' time: sent, then answered
    cold, latencies = split_lead_in(samples, lead_in)
    return {
        "offered": rate,
        "elapsed": elapsed,
        "accepted": accepted,
        "decisions": decisions,
        "statuses": statuses,
        "rate": accepted / elapsed if elapsed > 0 else 0.0,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
        "cold_p99": percentile(cold, 99) * 1000,
    }


def run(stack, seconds: float, peak: float, drive, body_for, keys: list[str]) -> list[tuple[str, dict]]:
    """The latency steps against a running suite: [(label, figures)], closed loops first, then the open
    loop at fractions of `peak` (accepted/s), from the partners' `keys`. `drive` is bench.__main__.drive (the
    closed loop)."""
    from bench.__main__ import SUITE_POSTGRES, run_allocated

    postgres = SUITE_POSTGRES.get(id(stack))

    def measured(load) -> dict:
        """A step's figures and its CPU ms per order (every order it sent), over the load and its drain."""
        before = process_counts(stack, postgres)
        figures = run_allocated(stack, load)
        wait_drained(stack)
        figures["cpu_ms"] = cpu_ms_per_order(
            before, process_counts(stack, postgres), figures["statuses"].get(201, 0)
        )
        return figures

    steps: list[tuple[str, dict]] = []
    wait_drained(stack)
    for partners in CLOSED_PARTNERS:
        clients = keys[:partners]  # as many partners as clients
        figures = measured(drive(stack.gateway_url, clients, seconds, partners, body_for))
        steps.append((f"{partners} partner{'s' if partners > 1 else ''}, closed loop", figures))
    for fraction in OPEN_STEPS:
        figures = measured(open_loop(stack.gateway_url, keys, fraction * peak, seconds, body_for))
        steps.append((f"{fraction:.0%} of peak, open loop", figures))
    return steps


def report(steps: list[tuple[str, dict]], peak_run: dict, peak_partners: int, peak: float) -> None:
    """The table "latency by load": each step's offered and accepted rate, p50/p99, the CPU per order of the
    step and its drain (the peak's is the single-order table's), statuses; then p99 at half the peak and where
    p99 first crosses 250 ms."""
    rows = [*steps[: len(CLOSED_PARTNERS)], (f"{peak_partners} partners, closed loop (the peak)", peak_run)]
    rows += steps[len(CLOSED_PARTNERS) :]
    print(
        f"latency by load (open loop at fractions of a peak of {peak:.0f} accepted/s, each after a "
        f"{LEAD_IN_SECONDS:.0f}s lead-in at its rate whose p99 is the cold one):"
    )
    print(
        f"{'load':<44}{'offered/s':>10}{'accepted/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'cold p99':>10}"
        f"{'CPU ms/order':>14}  statuses"
    )
    for name, r in rows:
        offered = f"{r['offered']:.0f}" if "offered" in r else "-"
        cold = f"{r['cold_p99']:.1f}" if "cold_p99" in r else "-"
        cpu = f"{r['cpu_ms']:.1f}" if "cpu_ms" in r else "-"
        print(
            f"{name:<44}{offered:>10}{r['rate']:>12.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}{cold:>10}{cpu:>14}"
            f"  {dict(sorted(r['statuses'].items()))}"
        )
    open_steps = [(name, r) for name, r in steps[len(CLOSED_PARTNERS) :]]
    half = next((r for name, r in open_steps if name.startswith("50%")), None)
    if half is not None:
        print(
            f"p99 at half the peak ({half['offered']:.0f}/s): {half['p99']:.0f} ms (target <= {P99_LIMIT_MS:.0f})"
        )
    over = first_over([(name, r["p99"]) for name, r in open_steps])
    if over is None:
        print(f"p99 stays at or under {P99_LIMIT_MS:.0f} ms up to the peak")
    else:
        rate = dict(open_steps)[over]["offered"]
        print(f"p99 first over {P99_LIMIT_MS:.0f} ms at: {over} ({rate:.0f}/s)")


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import bench_suite, drive, order_body, partner_keys, run_allocated, warm_up

    parser = argparse.ArgumentParser(prog="python -m bench.latency")
    parser.add_argument("--seconds", type=float, default=8.0, help="per step")
    parser.add_argument("--partners", type=int, default=64, help="the closed loop that sets the peak")
    parser.add_argument(
        "--peak", type=float, default=0.0, help="accepted/s to take as the peak (0: measure it)"
    )
    args = parser.parse_args(argv)
    with bench_suite("orderdesk-bench-latency-") as (_folder, stack):
        warm_up(stack)
        peak_run = run_allocated(
            stack, drive(stack.gateway_url, partner_keys(stack), args.seconds, args.partners, order_body)
        )
        peak = args.peak or peak_run["rate"]
        steps = run(stack, args.seconds, peak, drive, order_body, partner_keys(stack))
    print()
    report(steps, peak_run, args.partners, peak)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
