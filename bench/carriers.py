"""`make bench`, carriers part: the tracking events per second `POST /v1/carriers/{carrier}/tracking` accepts.

Starts a private NATS and the suite on SQLite with the demo data, ships `parcels` orders (each with its own
tracking number), then `concurrency` carriers' clients post signed batches of `batch` events (new event ids,
in_transit at rising times, so every one is applied: recorded, the shipment saved, an event published) for
`seconds`. Prints events/s accepted, requests/s and latency. One short measurement, never asserted.

    python -m bench.carriers [--seconds 10] [--concurrency 16] [--batch 10] [--parcels 40]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from bench import UNTHROTTLED, import_master_data, percentile
from devtools.devstack import Stack
from devtools.http import client_session
from orderdesk.signatures import signature_header

SKU = "BENCH-TRACK"
SHOP, OPERATOR = "demo-shop-key", "demo-3pl-key"


def seed(stack: Stack, folder: Path) -> None:
    import_master_data(
        stack,
        folder,
        products="sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,"
        f"order_multiple,status\n{SKU},Bench parcel,10.00,USD,false,1,1,1,active\n",
        stock=f"sku,warehouse,on_hand\n{SKU},WH-HAM,1000000\n",
    )


async def ship_parcels(session: aiohttp.ClientSession, url: str, count: int) -> list[str]:
    """`count` orders placed, allocated and shipped, each with its own tracking number."""

    async def call(method: str, path: str, key: str, body=None, headers=None):
        h = {"Authorization": f"Bearer {key}", **(headers or {})}
        async with session.request(method, url + path, json=body, headers=h) as resp:
            return resp.status, await resp.json(content_type=None)

    async def one(n: int) -> str:
        order = {
            "external_ref": f"TRACK-{uuid.uuid4().hex[:10]}",
            "customer_id": "C0001",
            "payment_terms": "NET30",
            "lines": [{"sku": SKU, "quantity": 1, "unit_price": "10.00"}],
        }
        status, body = await call("POST", "/v1/orders", SHOP, order, {"Idempotency-Key": uuid.uuid4().hex})
        assert status == 201, body
        order_id = body["order_id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = await call("GET", f"/v1/shipments?order_id={order_id}", OPERATOR)
            if status == 200 and body["items"]:
                break
            await asyncio.sleep(0.2)
        sid = body["items"][0]["shipment_id"]
        tracking_number = f"BT{n:05d}{uuid.uuid4().hex[:6].upper()}"
        for step in ({"type": "picked"}, {"type": "packed"}):
            await call("POST", f"/v1/shipments/{sid}/events", OPERATOR, step)
        step = {"type": "shipped", "carrier": "DHL", "tracking_number": tracking_number}
        status, body = await call("POST", f"/v1/shipments/{sid}/events", OPERATOR, step)
        assert status == 200, body
        return tracking_number

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def drive(
    url: str, secret: str, parcels: list[str], seconds: float, concurrency: int, batch: int
) -> dict:
    latencies: list[float] = []
    outcomes: dict[str, int] = {}
    statuses: dict[int, int] = {}
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    ticks = itertools.count()
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def client(n: int) -> None:
            while time.perf_counter() < deadline:
                events = []
                for _ in range(batch):
                    tick = next(ticks)
                    events.append(
                        {
                            "event_id": f"B{tick}-{uuid.uuid4().hex[:8]}",
                            "tracking_number": parcels[tick % len(parcels)],
                            "status": "in_transit",
                            "occurred_at": (start + dt.timedelta(seconds=tick)).isoformat(),
                            "location": "hub",
                        }
                    )
                body = json.dumps({"events": events}).encode()
                headers = {
                    "Authorization": f"Bearer {OPERATOR}",
                    "Content-Type": "application/json",
                    "Orderdesk-Signature": signature_header(secret, int(time.time()), body),
                }
                began = time.perf_counter()
                try:
                    async with session.post(
                        f"{url}/v1/carriers/dhl/tracking", data=body, headers=headers
                    ) as resp:
                        answer = await resp.json(content_type=None)
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1
                        if resp.status == 200:
                            for r in answer["results"]:
                                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
                except Exception:
                    statuses[0] = statuses.get(0, 0) + 1
                    continue
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - began
    accepted = sum(v for k, v in outcomes.items() if k in ("applied", "recorded"))
    return {
        "elapsed": elapsed,
        "accepted": accepted,
        "outcomes": outcomes,
        "statuses": statuses,
        "events_per_s": accepted / elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50": percentile(latencies, 50) * 1000,
        "p99": percentile(latencies, 99) * 1000,
    }


def measure(seconds: float, concurrency: int, batch: int, parcels: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-bench-carriers-"))
    stack = Stack(data_dir=folder / "suite", extra_env=UNTHROTTLED)  # and its own NATS
    try:
        stack.start()
        stack.load_demo_data()
        seed(stack, folder)

        async def run() -> dict:
            async with client_session(total=60) as session:
                numbers = await ship_parcels(session, stack.gateway_url, parcels)
            return await drive(
                stack.gateway_url, stack.carrier_secrets["dhl"], numbers, seconds, concurrency, batch
            )

        return asyncio.run(run())
    finally:
        stack.stop()


def report(result: dict, concurrency: int, batch: int) -> None:
    print()
    print(f"carrier tracking ({concurrency} clients, {batch} events per signed request, SQLite):")
    print(
        f"  {result['events_per_s']:.0f} events/s accepted ({result['requests_per_s']:.1f} requests/s, "
        f"p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms per request; "
        f"outcomes {result['outcomes']}, statuses {result['statuses']})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.carriers")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "10")))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--parcels", type=int, default=40)
    args = parser.parse_args(argv)
    report(measure(args.seconds, args.concurrency, args.batch, args.parcels), args.concurrency, args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
