"""The desk console's time per page with 100,000 orders in the orders database (issue 16: under 100 ms at p99).

Starts a private NATS and the suite with the console (SQLite, the demo data and the demo accounts), loads
`--orders` orders into the orders database with bench/order_search.py's loader (4 partners, 2,000
customers, 500 SKUs, five channels, 200 days, a tenth held with one or two reasons), signs in as the demo
viewer through the sign-in form (its CSRF token, its cookies), then asks for each page `--requests` times,
one request at a time: the Today page (the held-orders queue by priority), its later pages (by the
page's own "Next page" links), each work queue (a fiftieth of the confirmed orders backordered, a hundredth
with an open exception), the live counts' JSON, and searches. For each: p50 and p99 as the client sees them (loopback HTTP,
keep-alive) and as the console measures itself (its Server-Timing header: the console's whole time,
the orders service's gRPC call included). The orders service's ListOrders for the same searches over
gRPC is timed too, to tell the console's share from the query's. Figures are printed, never asserted.
The suite's data stays behind (its folder is printed last): `python -m bench.list_orders` re-times the
orders service's queries on that orders database, with their plans, in a minute instead of the bench's ten.

    python -m bench.console [--orders 100000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import html
import os
import re
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

from bench import percentile
from bench.order_search import load, seed_orders
from devtools.devstack import Stack
from devtools.http import client_session
from orderdesk import tls
from orderdesk.db import Database
from orderdesk.v1 import orders_pb2, orders_pb2_grpc
from services.orders.domain import Allocation, Order, Status
from services.orders.exceptions import OrderException

SIGN_IN = (
    "viewer@demo.example",
    "viewer-demo-pass",
)  # a demo account (README "Console"): reading is all it needs
NEXT_PAGE = re.compile(r'<a href="(/[^"]*cursor=[^"]*)">')
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")
WATCH_ASSESSED = re.compile(r"^orderdesk_watch_orders_assessed_total ([0-9.e+]+)$", re.MULTILINE)

# (name, ListOrders filters, the search screen's address for the same search or None): the desk's searches.
SEARCHES = [
    ("po number", {"external_ref": "PO-004711"}, "external_ref=PO-004711"),
    ("customer", {"customer_id": "C0042"}, "customer=C0042"),
    ("sku, common", {"sku": "SKU-0001"}, "sku=SKU-0001"),
    ("sku, rare", {"sku": "SKU-0499"}, "sku=SKU-0499"),
    ("channel phone", {"channel": "phone"}, "channel=phone"),
    (
        "one day",
        {"created_from": "2026-08-01", "created_to": "2026-08-01"},
        "created_from=2026-08-01&created_to=2026-08-01",
    ),
    ("held, customer", {"status": "on_hold", "customer_id": "C0042"}, "status=on_hold&customer=C0042"),
    ("held, one reason", {"status": "on_hold", "hold_reason": "price_mismatch"}, None),
    (
        "held by priority, customer",
        {"status": "on_hold", "order_by": "priority", "customer_id": "C0042"},
        None,
    ),
    ("everything, newest", {}, None),
]


# (name, Today's address): each work queue as its tab opens it, and narrowed as the desk narrows it.
QUEUES = [
    ("held, oldest", "queue=held&sort=oldest"),
    ("held, reason + customer", "queue=held&reason=price_mismatch&customer=C0042"),
    ("exceptions", "queue=exceptions"),
    ("exceptions, one type", "queue=exceptions&reason=production_delay"),
    ("at risk", "queue=at_risk"),
    ("backorders", "queue=backorders"),
    ("backorders, warehouse", "queue=backorders&warehouse=WH-2"),
]


def summary(client_ms: list[float], server_ms: list[float]) -> dict:
    return {
        "n": len(client_ms),
        "p50": percentile(client_ms, 50),
        "p99": percentile(client_ms, 99),
        "server_p50": percentile(server_ms, 50),
        "server_p99": percentile(server_ms, 99),
    }


async def sign_in(session: aiohttp.ClientSession, url: str) -> None:
    """The sign-in form as a browser uses it: its CSRF token (and the cookie it pairs with), then the post."""
    async with session.get(f"{url}/signin") as resp:
        form = await resp.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    if token is None:
        raise RuntimeError("no CSRF token in the sign-in form")
    email, password = SIGN_IN
    data = {"csrf_token": html.unescape(token.group(1)), "next": "/", "email": email, "password": password}
    async with session.post(f"{url}/signin", data=data, allow_redirects=False) as resp:
        if resp.status != 303:
            raise RuntimeError(f"sign-in answered {resp.status}: {(await resp.text())[:300]}")


async def time_page(session: aiohttp.ClientSession, url: str, paths: list[str], requests: int) -> dict:
    """`requests` GETs, one at a time, cycling through `paths`; each must be a 200 page."""
    client, server = [], []
    for n in range(requests):
        started = time.perf_counter()
        async with session.get(url + paths[n % len(paths)], allow_redirects=False) as resp:
            await resp.read()
            took = (time.perf_counter() - started) * 1000
            if resp.status != 200:
                raise RuntimeError(f"{paths[n % len(paths)]} answered {resp.status}")
            timing = SERVER_TIMING.search(resp.headers.get("Server-Timing", ""))
        client.append(took)
        if timing:
            server.append(float(timing.group(1)))
    return summary(client, server)


async def later_pages(session: aiohttp.ClientSession, url: str, first: str, pages: int) -> list[str]:
    """The paths of the pages after `first`, following each page's own "Next page" link."""
    found, path = [], first
    for _ in range(pages):
        async with session.get(url + path) as resp:
            link = NEXT_PAGE.search(await resp.text())
        if link is None:
            break
        path = html.unescape(link.group(1))
        found.append(path)
    return found


async def time_console(url: str, requests: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an address, not a name)
    async with client_session(cookie_jar=jar, total=60) as session:
        await sign_in(session, url)
        await time_page(session, url, ["/"], 10)  # warm-up: connections, templates, SQLite pages
        results["today (held, by priority)"] = await time_page(session, url, ["/"], requests)
        pages = await later_pages(session, url, "/", 20)
        if pages:
            results[f"today, pages 2-{len(pages) + 1}"] = await time_page(session, url, pages, requests)
        for name, query in QUEUES:
            results[f"today: {name}"] = await time_page(session, url, [f"/?{query}"], requests)
        results["today: live counts (JSON)"] = await time_page(session, url, ["/today/counts"], requests)
        if await _has_search(session, url):
            for name, _, query in SEARCHES:
                if query is not None:
                    results[f"search: {name}"] = await time_page(session, url, [f"/search?{query}"], requests)
    return results


async def _has_search(session: aiohttp.ClientSession, url: str) -> bool:
    async with session.get(f"{url}/search", allow_redirects=False) as resp:
        return resp.status == 200


async def time_list_orders(addr: str, requests: int, settings: tls.TlsSettings) -> dict[str, dict]:
    """The orders service's ListOrders (a page of 50) for the Today page's query and each search, over gRPC
    as the console calls it (its identity under mTLS)."""
    results: dict[str, dict] = {}
    async with tls.aio_channel(addr, settings, peer="orders") as channel:
        orders = orders_pb2_grpc.OrdersServiceStub(channel)
        queries = [
            ("today (held, by priority)", {"status": "on_hold", "order_by": "priority"}),
            ("today: exceptions", {"open_exception": True, "order_by": "oldest"}),
            ("today: backorders", {"status": "scheduled", "order_by": "expected"}),
        ]
        for name, filters in [*queries, *((name, filters) for name, filters, _ in SEARCHES)]:
            request = orders_pb2.ListOrdersRequest(limit=50, **filters)
            await orders.ListOrders(request, timeout=30)
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                await orders.ListOrders(request, timeout=30)
                timings.append((time.perf_counter() - started) * 1000)
            results[name] = summary(timings, [])
        await orders.CountQueues(orders_pb2.CountQueuesRequest(), timeout=30)
        timings = []
        for _ in range(requests):
            started = time.perf_counter()
            await orders.CountQueues(orders_pb2.CountQueuesRequest(), timeout=30)
            timings.append((time.perf_counter() - started) * 1000)
        results["CountQueues (every queue)"] = summary(timings, [])
    return results


def watch_settled(metrics_port: int, quiet_seconds: float = 6.0, limit: float = 900.0) -> float:
    """Seconds until the orders service's promise watch stops assessing (its counter holds still)."""
    started = time.monotonic()
    last, still_since = -1.0, time.monotonic()
    while time.monotonic() - started < limit:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        found = WATCH_ASSESSED.search(text)
        assessed = float(found.group(1)) if found else 0.0
        if assessed != last:
            last, still_since = assessed, time.monotonic()
        elif time.monotonic() - still_since >= quiet_seconds:
            return still_since - started
        time.sleep(1.0)
    return limit


def report(orders: int, loaded: float, console: dict[str, dict], grpc_lists: dict[str, dict]) -> None:
    load1, _, _ = os.getloadavg()
    print()
    print(
        f"orderdesk console: {orders:,} orders in the orders database (loaded in {loaded:.0f}s), SQLite, "
        f"one request at a time, {os.cpu_count()} cores, load average {load1:.1f}; target: p99 < 100 ms"
    )
    print(
        f"{'page (console, HTTP)':<36}{'p50 ms':>9}{'p99 ms':>9}{'server p50':>12}{'server p99':>12}{'requests':>10}"
    )
    for name, r in console.items():
        print(
            f"{name:<36}{r['p50']:>9.1f}{r['p99']:>9.1f}{r['server_p50']:>12.1f}{r['server_p99']:>12.1f}{r['n']:>10}"
        )
    if not any(name.startswith("search") for name in console):
        print("(no /search screen in this console: searches timed at the orders service only)")
    print(f"{'ListOrders, limit 50 (orders, gRPC)':<36}{'p50 ms':>9}{'p99 ms':>9}{'':>24}{'requests':>10}")
    for name, r in grpc_lists.items():
        print(f"{name:<36}{r['p50']:>9.1f}{r['p99']:>9.1f}{'':>24}{r['n']:>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.console")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="requests per page")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="orderdesk-bench-console-"))
    stack = Stack(data_dir=folder / "suite", console=True)  # and its own NATS
    try:
        stack.start()
        stack.load_demo_data()
        started = time.perf_counter()
        asyncio.run(_load(stack, args.orders))
        loaded = time.perf_counter() - started
        # The promise watch assesses every loaded order once (minutes for 100,000): time the pages after
        # that first sweep, as a desk meets them on any day but the one its orders arrived in bulk.
        swept = watch_settled(stack.metrics_ports["orders"])
        print(f"the promise watch's first sweep over the loaded orders: {swept:.0f}s")
        console = asyncio.run(time_console(stack.console_url, args.requests))
        grpc_lists = asyncio.run(
            time_list_orders(stack.addr("orders"), args.requests, stack.client_tls("console"))
        )
        report(args.orders, loaded, console, grpc_lists)
        print(f"the suite's data stays in {folder} (its orders database for python -m bench.list_orders)")
        return 0
    finally:
        stack.stop()


async def _load(stack: Stack, orders: int) -> None:
    """The orders straight into the running orders service's database (its migrations already ran)."""
    db = Database(f"sqlite+aiosqlite:///{stack.data_dir}/orders.db")
    try:
        await load(db, with_queues(seed_orders(orders)))
    finally:
        await db.close()


def with_queues(orders: list[Order]) -> list[Order]:
    """The seeded orders with work in Today's other queues too: of the confirmed ones, one in 50 backordered
    (half of those partly allocated at WH-2, an expected ship date within 30 days or none) and one in 100
    with an open production delay."""
    for n, order in enumerate(orders):
        if order.status is not Status.CONFIRMED:
            continue
        at = order.created_at or dt.datetime.now(dt.UTC)
        if n % 50 == 0:
            expected = (at.date() + dt.timedelta(days=n % 30)).isoformat() if n % 3 else ""
            allocated = [Allocation(order.lines[0].sku, "WH-2", 1)] if n // 50 % 2 else []
            order.apply_reservation(at, allocated, {order.lines[-1].sku: 1}, (expected, expected))
        elif n % 100 == 1:
            order.record_exception(
                OrderException.create(
                    exception_id=f"X{n}", type="production_delay", cause="bench", at=at, actor="bench"
                )
            )
    return orders


if __name__ == "__main__":
    raise SystemExit(main())
