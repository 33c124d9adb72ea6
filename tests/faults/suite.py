"""The fault suite's machinery: a private NATS and PostgreSQL, the suite as real processes, a steady partner
load through the gateway, one fault at a time, then the books.

Everything runs against servers the suite starts itself (a LocalNats with `sync_interval: always`, so an
acknowledged event survives kill -9 of the single server, with a user per service as `make run` has, and a
throw-away LocalPostgres cluster): never the machine's shared NATS or PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import aiohttp
import asyncpg

from devtools import localservers
from devtools.devstack import Stack, postgres_databases, secured_nats
from devtools.http import client_session
from orderdesk import events
from orderdesk.config import SERVICES, nats_servers
from orderdesk.consumers import FAULT_ENV

KEYS = {"shop": "demo-shop-key", "3pl": "demo-3pl-key", "admin": "demo-admin-key"}
WAREHOUSES = ("WH-CHI", "WH-HAM")
SKUS = [f"FAULT-{n:02d}" for n in range(6)]  # the suite's own SKUs (the demo data has FLT-*)
PROBE_SKU = "FAULT-PROBE"
FLAKY_CONSUMER = "shipping-order-allocated"  # fails the first deliveries of every message in that fault


@dataclass
class Plan:
    replicas: int = 1
    rate: float = 10.0  # partner orders per second, steady
    nats_down: float = 30.0  # seconds NATS stays stopped
    pg_down: float = 5.0  # seconds PostgreSQL stays stopped
    gap: float = 10.0  # seconds of plain load between faults
    flaky_seconds: float = 20.0  # how long the consumer fails its first deliveries
    flaky_restore: bool = True  # restart it healthy afterwards (the short form leaves one replica flaky)
    kill_each: bool = True  # kill -9 every service (and the gateway); else orders and the gateway
    ship_fraction: float = 0.6  # orders the warehouse operator ships to delivery
    return_fraction: float = 0.3  # delivered orders that come back (one unit, restocked)
    settle_timeout: float = 180.0


@dataclass
class FaultRecord:
    name: str
    started: float
    healed: float = 0.0
    recovered: float = float("nan")  # seconds from the start of the fault until a new order was allocated
    requests: int = 0
    acknowledged: int = 0
    errors: int = 0


@dataclass
class Tally:
    attempts: list[tuple[float, str]] = field(default_factory=list)  # (time, "ok" | "error" | "refused")
    acked: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    quantities: dict[str, tuple[str, int]] = field(default_factory=dict)  # order id -> (sku, quantity)
    replay_mismatch: int = 0  # a retry answered with another order
    refused: list[str] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)  # every shipment delivered (we said so)
    returned: dict[str, int] = field(default_factory=dict)  # order id -> units refunded & restocked
    operator_gave_up: list[str] = field(default_factory=list)
    failed_calls: int = 0  # any partner call: 5xx or no answer


class Environment:
    """NATS + PostgreSQL + the suite (with `replicas` processes per service), all private to this run."""

    def __init__(self, replicas: int):
        self.folder = Path(tempfile.mkdtemp(prefix="orderdesk-faults-"))
        self.pg_folder = Path(tempfile.mkdtemp(prefix="orderdesk-faults-pg-"))
        self.nats, self.nats_passwords = secured_nats(self.folder / "nats", sync_always=True)
        self.pg = localservers.LocalPostgres(self.pg_folder)
        self.replicas = replicas
        self.stack: Stack | None = None

    def start(self) -> Environment:
        self.nats.start()
        self.pg.start()
        urls = postgres_databases(self.pg.url)
        self.stack = Stack(
            data_dir=self.folder / "suite",
            nats_url=self.nats.url,
            nats_passwords=self.nats_passwords,
            database_urls=urls,
            replicas=self.replicas,
            extra_env={"ORDERDESK_RPC_TIMEOUT": "3"},
        )
        self.stack.start(timeout=180)
        self.stack.load_demo_data()
        return self

    def seed(self, units_per_place: int) -> None:
        import subprocess
        import sys

        from devtools.devstack import ROOT

        folder = self.folder / "seed"
        folder.mkdir(exist_ok=True)
        header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
        (folder / "products.csv").write_text(
            header + "".join(f"{s},Fault part {s},10.00,USD,false,3,1,1,active\n" for s in [*SKUS, PROBE_SKU])
        )
        (folder / "stock.csv").write_text(
            "sku,warehouse,on_hand\n"
            + "".join(
                f"{s},{w},{units_per_place if s != PROBE_SKU else 1_000_000}\n"
                for s in [*SKUS, PROBE_SKU]
                for w in WAREHOUSES
            )
        )
        for kind in ("products", "stock"):
            subprocess.run(
                [sys.executable, "-m", "cli", "import", kind, str(folder / f"{kind}.csv")],
                env=self.stack.env(),
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )

    def stop(self) -> None:
        if self.stack:
            self.stack.stop()
        self.nats.stop()
        self.pg.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.pg_folder, ignore_errors=True)


class Load:
    """Partners through the gateway: orders at a steady rate (a failed attempt is retried with the same
    Idempotency-Key, as the API asks), a warehouse operator shipping them, and returns."""

    def __init__(self, base: str, plan: Plan, run: str):
        self.base, self.plan, self.run = base, plan, run
        self.tally = Tally()
        self.stopping = False
        self.give_up_at = float("inf")
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.session: aiohttp.ClientSession | None = None
        self.rng = random.Random(run)

    async def request(self, key: str, method: str, path: str, *, json_body=None, headers=None):
        h = {"Authorization": f"Bearer {KEYS[key]}", **(headers or {})}
        async with self.session.request(method, self.base + path, json=json_body, headers=h) as resp:
            body = await resp.json(content_type=None) if resp.content_length != 0 else None
            return resp.status, body

    async def persist(
        self, key: str, method: str, path: str, *, json_body=None, headers=None, ok=(200, 201), record=False
    ):
        """Retries a call through faults until it gets an answer that is not a failure of ours (5xx, no answer)."""
        delay = 0.2
        attempt = 0
        while time.monotonic() < self.give_up_at:
            attempt += 1
            try:
                status, body = await self.request(key, method, path, json_body=json_body, headers=headers)
            except (aiohttp.ClientError, TimeoutError):
                status, body = 0, None
            if status not in ok and not 400 <= status < 500:
                self.tally.failed_calls += 1
            if record:
                self.tally.attempts.append(
                    (
                        time.monotonic(),
                        "ok" if status in ok else "refused" if 400 <= status < 500 else "error",
                    )
                )
            if status in ok or 400 <= status < 500:
                return status, body, attempt
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return 0, None, attempt

    async def orders(self, worker: int, workers: int) -> None:
        pace = workers / self.plan.rate
        n = 0
        while not self.stopping:
            started = time.monotonic()
            n += 1
            key = f"{self.run}-{worker}-{n}"
            sku = self.rng.choice(SKUS)
            quantity = self.rng.choice((1, 1, 2))
            body = {
                "external_ref": f"FLT-{key}",
                "customer_id": "C0001",
                "payment_terms": "NET30",
                "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
            }
            status, answer, _ = await self.persist(
                "shop",
                "POST",
                "/v1/orders",
                json_body=body,
                headers={"Idempotency-Key": key},
                ok=(201,),
                record=True,
            )
            if status == 201:
                order_id = answer["order_id"]
                if self.tally.acked.setdefault(key, order_id) != order_id:
                    self.tally.replay_mismatch += 1
                self.tally.quantities[order_id] = (sku, quantity)
                if self.rng.random() < self.plan.ship_fraction:
                    self.queue.put_nowait(order_id)
            elif status:
                self.tally.refused.append(f"{key}: {status} {answer}")
            await asyncio.sleep(max(0.0, pace - (time.monotonic() - started)))

    async def operator(self) -> None:
        while True:
            order_id = await self.queue.get()
            try:
                problem = await self.ship(order_id)
                if problem:
                    self.tally.operator_gave_up.append(f"{order_id}: {problem}")
            finally:
                self.queue.task_done()

    async def ship(self, order_id: str) -> str:
        """Picks, packs, ships and delivers every shipment of an allocated order; sometimes takes a unit back."""
        deadline = time.monotonic() + 60
        shipments: list = []
        order, status = None, 0
        while time.monotonic() < deadline:
            status, order, _ = await self.persist("shop", "GET", f"/v1/orders/{order_id}")
            if status == 200 and order["status"] in ("scheduled", "backordered"):
                return ""  # waits for stock: nothing to ship (and nothing to check beyond agreement)
            if status == 200 and order["status"] == "allocated":
                status, answer, _ = await self.persist("3pl", "GET", f"/v1/shipments?order_id={order_id}")
                shipments = answer["items"] if status == 200 else []
                if shipments:
                    break
            await asyncio.sleep(0.5)
        if not shipments:
            return f"no shipments within 60s (order {order.get('status') if isinstance(order, dict) else status})"
        for n, shipment in enumerate(shipments):
            steps = (
                {"type": "picked"},
                {"type": "packed"},
                {"type": "shipped", "carrier": "DHL", "tracking_number": f"T{order_id[-8:]}{n}"},
                {"type": "delivered"},
            )
            for step in steps:
                status, body, attempts = await self.persist(
                    "3pl", "POST", f"/v1/shipments/{shipment['shipment_id']}/events", json_body=step
                )
                if status != 200 and not (
                    status == 409 and attempts > 1
                ):  # 409 after a lost answer: done before
                    return f"{step['type']}: {status} {body}"
        self.tally.delivered.add(order_id)
        if self.rng.random() >= self.plan.return_fraction:
            return ""
        sku, _ = self.tally.quantities[order_id]
        await self.completed(order_id)
        status, rma, _ = await self.persist(
            "shop",
            "POST",
            f"/v1/orders/{order_id}/returns",
            headers={"Idempotency-Key": f"ret-{order_id}"},
            json_body={"lines": [{"sku": sku, "quantity": 1, "reason": "damaged"}], "resolution": "refund"},
        )
        if status != 201:
            return f"return: {status} {rma}"
        rma_id = rma["rma_id"]
        for path, body in (
            (f"/v1/returns/{rma_id}/receive", None),
            (f"/v1/returns/{rma_id}/inspect", {"lines": [{"sku": sku, "quantity": 1, "outcome": "restock"}]}),
        ):
            status, answer, attempts = await self.persist("3pl", "POST", path, json_body=body)
            if status != 200 and not (status == 409 and attempts > 1):
                return f"{path}: {status} {answer}"
        self.tally.returned[order_id] = 1
        return ""

    async def completed(self, order_id: str) -> None:
        """A return needs the delivery recorded on the order (orders learns it from shipping's events)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, order, _ = await self.persist("shop", "GET", f"/v1/orders/{order_id}")
            if status == 200 and order["status"] == "completed":
                return
            await asyncio.sleep(0.5)

    async def probe(self) -> float:
        """Seconds until a new order is acknowledged and allocated (the suite works again end to end)."""
        started = time.monotonic()
        key = f"{self.run}-probe-{uuid.uuid4().hex[:8]}"
        body = {
            "external_ref": f"PROBE-{key}",
            "customer_id": "C0001",
            "payment_terms": "NET30",
            "lines": [{"sku": PROBE_SKU, "quantity": 1, "unit_price": "10.00"}],
        }
        status, answer, _ = await self.persist(
            "shop", "POST", "/v1/orders", json_body=body, headers={"Idempotency-Key": key}, ok=(201,)
        )
        if status != 201:
            return float("nan")
        while time.monotonic() < self.give_up_at:
            status, order, _ = await self.persist("shop", "GET", f"/v1/orders/{answer['order_id']}")
            if status == 200 and order["status"] in (
                "allocated",
                "partially_shipped",
                "shipped",
                "completed",
            ):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        return float("nan")


class Faults:
    """One fault at a time; each returns when the fault is healed (the process or server is back)."""

    def __init__(self, env: Environment, plan: Plan):
        self.env, self.plan = env, plan

    def schedule(self) -> list[tuple[str, object]]:
        stack = self.env.stack
        kills = SERVICES if self.plan.kill_each else ("orders",)
        steps: list[tuple[str, object]] = []
        for service in kills:
            instance = stack.instances(service)[0]
            steps.append((f"kill -9 {instance}", lambda i=instance: self.kill(i)))
        steps.append(("kill -9 gateway", lambda: self.kill("gateway")))
        steps.append((f"NATS down {self.plan.nats_down:.0f}s", self.nats))
        steps.append((f"PostgreSQL restart ({self.plan.pg_down:.0f}s down)", self.postgres))
        steps.append((f"{FLAKY_CONSUMER} fails 2 deliveries", self.flaky_consumer))
        return steps

    async def kill(self, instance: str) -> None:
        await asyncio.to_thread(self.env.stack.restart, instance, 120, sig=signal.SIGKILL)

    async def nats(self) -> None:
        self.env.nats.kill()
        await asyncio.sleep(self.plan.nats_down)
        await asyncio.to_thread(self.env.nats.start)

    async def postgres(self) -> None:
        await asyncio.to_thread(self.env.pg.restart, self.plan.pg_down)

    async def flaky_consumer(self) -> None:
        stack = self.env.stack
        instances = stack.instances(FLAKY_CONSUMER.split("-")[0])
        if not self.plan.flaky_restore:
            instances = instances[:1]  # one flaky replica (it stays so): its failures go to both replicas
        stack.extra_env[FAULT_ENV] = f"{FLAKY_CONSUMER}:2"
        try:  # one replica after the other: the service stays up
            for instance in instances:
                await asyncio.to_thread(stack.restart, instance, 120)
        finally:
            del stack.extra_env[FAULT_ENV]
        await asyncio.sleep(self.plan.flaky_seconds)
        for instance in instances if self.plan.flaky_restore else ():
            await asyncio.to_thread(stack.restart, instance, 120)


@dataclass
class Books:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    oversold: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    reserved_twice: list[str] = field(default_factory=list)
    wrong_state: list[str] = field(default_factory=list)
    disagree: list[str] = field(default_factory=list)
    unpublished: dict[str, int] = field(default_factory=dict)
    effects_twice: list[str] = field(default_factory=list)
    # The finance ledger: per order, the credit notes intake recorded = the refunds returns decided.
    credits: list[str] = field(default_factory=list)
    refunds_decided: tuple[int, Decimal] = (0, Decimal(0))  # (RMAs, sum) over the run's orders
    credit_notes: tuple[int, Decimal] = (0, Decimal(0))
    duplicate_events: int = 0
    dead_letters: int = 0
    events_seen: int = 0

    @property
    def problems(self) -> dict[str, object]:
        found = {
            name: getattr(self, name)
            for name in (
                "lost",
                "duplicated",
                "oversold",
                "negative",
                "reserved_twice",
                "wrong_state",
                "disagree",
                "effects_twice",
                "credits",
            )
            if getattr(self, name)
        }
        if any(self.unpublished.values()):
            found["unpublished"] = self.unpublished
        if self.duplicate_events:
            found["duplicate_events"] = self.duplicate_events
        if self.dead_letters:
            found["dead_letters"] = self.dead_letters
        return found


class Checker:
    """Read-only: each service's database and the JetStream streams."""

    def __init__(self, env: Environment, tally: Tally, initial_units: int, run: str):
        self.env, self.tally, self.initial, self.run = env, tally, initial_units, run

    async def connect(self, component: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.env.stack.database_urls[component].replace("+asyncpg", ""))

    async def settle(self, timeout: float) -> float:
        """Waits until every outbox is empty and every durable consumer has nothing pending (twice in a row)."""
        import nats

        started = time.monotonic()
        nc = await nats.connect(nats_servers(self.env.nats.url), **self.env.stack.nats_connect_options())
        js = nc.jetstream()
        quiet = 0
        try:
            while time.monotonic() - started < timeout and quiet < 2:
                busy = sum((await self.unpublished()).values())
                for info in await js.consumers_info(events.STREAM):
                    busy += info.num_pending + info.num_ack_pending
                quiet = quiet + 1 if busy == 0 else 0
                await asyncio.sleep(1.0)
        finally:
            await nc.close()
        return time.monotonic() - started

    async def unpublished(self) -> dict[str, int]:
        counts = {}
        for service in SERVICES:
            conn = await self.connect(service)
            try:
                counts[service] = await conn.fetchval(
                    "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                )
            finally:
                await conn.close()
        return counts

    async def check(self) -> Books:
        books = Books(acknowledged=len(self.tally.acked))
        ids = sorted(set(self.tally.acked.values()))
        orders_db, inventory_db = await self.connect("orders"), await self.connect("inventory")
        shipping_db, returns_db = await self.connect("shipping"), await self.connect("returns")
        intake_db = await self.connect("intake")
        try:
            rows = await orders_db.fetch(
                "SELECT order_id, external_ref, status, shipments FROM orders WHERE external_ref LIKE $1",
                f"FLT-{self.run}-%",
            )
            by_ref = Counter(r["external_ref"] for r in rows)
            books.duplicated = [ref for ref, n in by_ref.items() if n > 1]
            orders = {r["order_id"]: r for r in rows}
            books.lost = [i for i in ids if i not in orders]
            lines = defaultdict(dict)
            for r in await orders_db.fetch(
                "SELECT order_id, sku, quantity, allocated, shipped, delivered, returned FROM order_lines "
                "WHERE order_id = ANY($1::text[])",
                ids,
            ):
                lines[r["order_id"]][r["sku"]] = r
            history = defaultdict(list)
            for r in await orders_db.fetch(
                "SELECT order_id, version, status FROM order_history "
                "WHERE order_id = ANY($1::text[]) ORDER BY order_id, version",
                ids,
            ):
                history[r["order_id"]].append(r["status"])

            reserved = defaultdict(lambda: defaultdict(int))
            places = defaultdict(lambda: [0, 0])  # (sku, warehouse) -> [held now, ever shipped]
            for r in await inventory_db.fetch(
                "SELECT order_id, sku, warehouse, quantity, shipped FROM reservations "
                "WHERE sku LIKE 'FAULT-%'"
            ):
                reserved[r["order_id"]][r["sku"]] += r["quantity"] + r["shipped"]
                places[(r["sku"], r["warehouse"])][0] += r["quantity"]
                places[(r["sku"], r["warehouse"])][1] += r["shipped"]
            receipts = defaultdict(int)
            for r in await inventory_db.fetch(
                "SELECT sku, warehouse, quantity FROM receipts WHERE sku LIKE 'FAULT-%'"
            ):
                receipts[(r["sku"], r["warehouse"])] += r["quantity"]
            for r in await inventory_db.fetch(
                "SELECT sku, warehouse, on_hand, reserved FROM stock WHERE sku LIKE 'FAULT-%' AND sku <> $1",
                PROBE_SKU,
            ):
                place = (r["sku"], r["warehouse"])
                held, shipped = places[place]
                if r["on_hand"] < 0 or r["reserved"] < 0 or r["reserved"] > r["on_hand"]:
                    books.negative.append(f"{place}: on_hand {r['on_hand']} reserved {r['reserved']}")
                if r["reserved"] != held:
                    books.reserved_twice.append(
                        f"{place}: stock says {r['reserved']} reserved, orders hold {held}"
                    )
                supply = self.initial + receipts[place]
                if held + shipped > supply:
                    books.oversold.append(f"{place}: {held + shipped} units promised of {supply}")
                if r["on_hand"] != supply - shipped:
                    books.disagree.append(f"{place}: on hand {r['on_hand']}, expected {supply - shipped}")

            shipments = defaultdict(list)
            for r in await shipping_db.fetch(
                "SELECT shipment_id, order_id, warehouse, lines, status FROM shipments "
                "WHERE order_id = ANY($1::text[])",
                ids,
            ):
                shipments[r["order_id"]].append(r)
            refunded = defaultdict(int)
            for r in await returns_db.fetch(
                "SELECT r.order_id, r.status, l.restocked FROM returns r JOIN return_lines l USING (rma_id) "
                "WHERE r.order_id = ANY($1::text[])",
                ids,
            ):
                if r["status"] == "refunded":
                    refunded[r["order_id"]] += r["restocked"]

            for order_id in ids:
                order = orders.get(order_id)
                if order is None:
                    continue
                status = order["status"]
                for once in ("received", "confirmed", "allocated", "completed"):
                    if history[order_id].count(once) > 1:
                        books.effects_twice.append(
                            f"{order_id}: {once} {history[order_id].count(once)} times"
                        )
                allocated = {sku: r["allocated"] for sku, r in lines[order_id].items()}
                if {s: q for s, q in reserved[order_id].items() if q} != {
                    s: q for s, q in allocated.items() if q
                }:
                    books.disagree.append(
                        f"{order_id} ({status}): orders allocated {allocated}, "
                        f"inventory holds {dict(reserved[order_id])}"
                    )
                live = [s for s in shipments[order_id] if s["status"] != "cancelled"]
                shipped_lines = defaultdict(int)
                for s in live:
                    for sku, quantity in (
                        json.loads(s["lines"]) if isinstance(s["lines"], str) else s["lines"]
                    ):
                        shipped_lines[sku] += quantity
                if status in ("allocated", "partially_shipped", "shipped", "completed"):
                    if dict(shipped_lines) != {s: q for s, q in allocated.items() if q}:
                        books.disagree.append(
                            f"{order_id}: shipments hold {dict(shipped_lines)}, allocated {allocated}"
                        )
                    view = (
                        json.loads(order["shipments"])
                        if isinstance(order["shipments"], str)
                        else order["shipments"]
                    )
                    theirs = {s["shipment_id"]: s["status"] for s in live}
                    ours = {v["shipment_id"]: v["status"] for v in view or [] if v["status"] != "cancelled"}
                    if ours != theirs:
                        books.disagree.append(
                            f"{order_id}: orders sees shipments {ours}, shipping has {theirs}"
                        )
                if order_id in self.tally.delivered and status != "completed":
                    books.wrong_state.append(
                        f"{order_id}: every shipment delivered but the order is {status}"
                    )
                if order_id not in self.tally.delivered and status in ("completed",):
                    books.wrong_state.append(f"{order_id}: completed without our deliveries")
                returned = self.tally.returned.get(order_id, 0)
                if refunded[order_id] != returned:
                    books.wrong_state.append(
                        f"{order_id}: {returned} returned, returns refunded {refunded[order_id]}"
                    )
                if sum(r["returned"] for r in lines[order_id].values()) != returned:
                    books.wrong_state.append(
                        f"{order_id}: order lines show "
                        f"{sum(r['returned'] for r in lines[order_id].values())} returned, "
                        f"expected {returned}"
                    )
            await self.credit_books(books, ids, returns_db, intake_db)
        finally:
            for conn in (orders_db, inventory_db, shipping_db, returns_db, intake_db):
                await conn.close()
        books.unpublished = await self.unpublished()
        await self.stream_books(books)
        return books

    async def credit_books(self, books: Books, ids: list[str], returns_db, intake_db) -> None:
        """Every refund the returns service decided is one credit note in intake's ledger, CN-<RMA id> for
        its amount: per order, the same count and sum (the suite's returns are refunds, no exchange
        credits). A missing one is a refund finance never hears of; a second one, money credited twice."""
        decided: dict[str, dict[str, Decimal]] = defaultdict(dict)  # order -> {number: amount}
        for r in await returns_db.fetch(
            "SELECT rma_id, order_id, refund_amount FROM returns "
            "WHERE status = 'refunded' AND order_id = ANY($1::text[])",
            ids,
        ):
            if Decimal(r["refund_amount"]) > 0:
                decided[r["order_id"]][f"CN-{r['rma_id']}"] = Decimal(r["refund_amount"])
        recorded: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for r in await intake_db.fetch(
            "SELECT order_id, number, amount_micros FROM finance_documents "
            "WHERE kind = 'credit_note' AND order_id = ANY($1::text[])",
            ids,
        ):
            recorded[r["order_id"]].append((r["number"], Decimal(r["amount_micros"]) / 1_000_000))
        for order_id in sorted(set(decided) | set(recorded)):
            refunds, notes = decided[order_id], recorded[order_id]
            if (len(notes), sum((a for _, a in notes), Decimal(0))) != (
                len(refunds),
                sum(refunds.values(), Decimal(0)),
            ) or sorted(notes) != sorted(refunds.items()):
                books.credits.append(f"{order_id}: refunds decided {dict(refunds)}, credit notes {notes}")
        books.refunds_decided = (
            sum(len(r) for r in decided.values()),
            sum((sum(r.values(), Decimal(0)) for r in decided.values()), Decimal(0)),
        )
        books.credit_notes = (
            sum(len(n) for n in recorded.values()),
            sum((a for n in recorded.values() for _, a in n), Decimal(0)),
        )

    async def stream_books(self, books: Books) -> None:
        """Every event id once in the stream; dead letters counted."""
        import nats

        nc = await nats.connect(nats_servers(self.env.nats.url), **self.env.stack.nats_connect_options())
        js = nc.jetstream()
        try:
            books.dead_letters = (await js.stream_info(events.DLQ_STREAM)).state.messages
            total = (await js.stream_info(events.STREAM)).state.messages
            sub = await js.subscribe(f"{events.SUBJECT_ROOT}.>", ordered_consumer=True, deliver_policy="all")
            seen: Counter = Counter()
            while sum(seen.values()) < total:
                try:
                    msg = await sub.next_msg(timeout=5)
                except Exception:
                    break
                seen[(msg.headers or {}).get("Nats-Msg-Id", "")] += 1
            await sub.unsubscribe()
            books.events_seen = sum(seen.values())
            books.duplicate_events = sum(n - 1 for n in seen.values() if n > 1)
        finally:
            await nc.close()


async def run_suite(
    plan: Plan,
    *,
    log=print,
    env: Environment | None = None,
    faults: type[Faults] = Faults,
    checker: type[Checker] = Checker,
) -> tuple[list[FaultRecord], Tally, Books, dict]:
    """The suite on `env` (default: one NATS and PostgreSQL) with `faults`' schedule, then `checker`'s books."""
    run = uuid.uuid4().hex[:6].upper()
    env = env or Environment(plan.replicas)
    started = time.monotonic()
    faults_list = []
    try:
        await asyncio.to_thread(env.start)
        fault_plan = faults(env, plan)
        schedule = fault_plan.schedule()
        # Enough stock for most orders (and a shortage near the end: backorders must not oversell).
        duration_guess = len(schedule) * (plan.gap + 10) + plan.nats_down + plan.flaky_seconds
        initial = max(20, int(plan.rate * duration_guess * 1.33 * 0.7 / (len(SKUS) * len(WAREHOUSES))))
        await asyncio.to_thread(env.seed, initial)
        log(
            f"suite up in {time.monotonic() - started:.0f}s ({plan.replicas} replica(s) per service); "
            f"{len(schedule)} faults, {plan.rate:.0f} orders/s, {initial} units per SKU and warehouse"
        )
        load = Load(env.stack.gateway_url, plan, run)
        async with client_session(total=10) as session:
            load.session = session
            workers = max(2, int(plan.rate))
            tasks = [asyncio.create_task(load.orders(n, workers)) for n in range(workers)]
            tasks += [asyncio.create_task(load.operator()) for _ in range(4)]
            await asyncio.sleep(plan.gap)
            for name, inject in schedule:
                record = FaultRecord(name, time.monotonic())
                log(f"fault: {name}")
                await inject()
                record.healed = time.monotonic()
                recovered = await load.probe()
                record.recovered = record.healed - record.started + recovered
                faults_list.append(record)
                log(
                    f"  healed after {record.healed - record.started:.1f}s, "
                    f"an order allocated again after {record.recovered:.1f}s"
                )
                await asyncio.sleep(plan.gap)
            load.stopping = True
            load.give_up_at = time.monotonic() + 240
            await asyncio.gather(*tasks[:workers])
            try:
                await asyncio.wait_for(load.queue.join(), 300)
            except TimeoutError:
                log("the operator did not finish every shipment in time")
            for task in tasks[workers:]:
                task.cancel()
        ends = [f.started for f in faults_list[1:]] + [time.monotonic()]
        for record, end in zip(faults_list, ends, strict=True):
            window = [o for t, o in load.tally.attempts if record.started <= t < end]
            record.requests, record.acknowledged = len(window), window.count("ok")
            record.errors = window.count("error")
        books_checker = checker(env, load.tally, initial, run)
        settle = await books_checker.settle(plan.settle_timeout)
        books = await books_checker.check()
        figures = {"seconds": time.monotonic() - started, "settle": settle, "run": run}
        return faults_list, load.tally, books, figures
    finally:
        await asyncio.to_thread(env.stop)


def report(faults_list: list[FaultRecord], tally: Tally, books: Books, figures: dict, replicas: int) -> str:
    out = [
        f"\norderdesk fault suite: {replicas} replica(s) per service, {figures['seconds']:.0f}s "
        f"(books settled {figures['settle']:.0f}s after the load)\n",
        f"{'fault':<44}{'requests':>9}{'acked':>7}{'errors':>8}{'healed s':>10}{'recovered s':>13}",
    ]
    for f in faults_list:
        out.append(
            f"{f.name:<44}{f.requests:>9}{f.acknowledged:>7}{f.errors:>8}"
            f"{f.healed - f.started:>10.1f}{f.recovered:>13.1f}"
        )
    requests = len(tally.attempts)
    out += [
        "",
        f"faults injected          {len(faults_list)}",
        f"requests sent            {requests} (order submissions, retries included; "
        f"{sum(1 for _, o in tally.attempts if o == 'error')} failed and were retried)",
        f"partner calls failed     {tally.failed_calls} (every call: orders, shipments, returns; each retried)",
        f"orders acknowledged      {books.acknowledged}",
        f"lost                     {len(books.lost)}",
        f"duplicated               {len(books.duplicated) + tally.replay_mismatch}",
        f"oversold                 {len(books.oversold)}",
        f"negative stock           {len(books.negative)}",
        f"reserved twice           {len(books.reserved_twice)}",
        f"wrong final state        {len(books.wrong_state)}",
        f"services disagree        {len(books.disagree)}",
        f"effects applied twice    {len(books.effects_twice)}",
        f"outbox rows unpublished  {sum(books.unpublished.values())}",
        f"duplicate events         {books.duplicate_events} (of {books.events_seen} in the stream)",
        f"dead letters             {books.dead_letters}",
        f"delivered / returned     {len(tally.delivered)} / {len(tally.returned)}",
        f"refunds / credit notes   {books.refunds_decided[0]} ({books.refunds_decided[1]:.2f}) / "
        f"{books.credit_notes[0]} ({books.credit_notes[1]:.2f}) decided by returns / recorded by intake",
        f"refused by the API       {len(tally.refused)}",
        f"load gave up             {len(tally.operator_gave_up)} orders the warehouse operator could not "
        f"finish before its deadline (not a books problem: those orders are checked as they are)",
    ]
    problems = books.problems
    if tally.refused:
        problems["refused"] = tally.refused[:5]
    out.append("\nbooks balance: " + ("yes" if not problems else "NO"))
    for name, detail in problems.items():
        shown = detail[:10] if isinstance(detail, list) else detail
        out.append(f"  {name}: {shown}")
    if tally.operator_gave_up:
        out.append(f"  (operator gave up on: {tally.operator_gave_up[:5]})")
    return "\n".join(out)
