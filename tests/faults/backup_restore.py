"""The fault suite's backup scenario: back up under load, stop the suite, destroy every database, restore,
start, and the books balance.

    python -m tests.faults.backup_restore [--postgres] [--replicas 2] [--before 20] [--after 10]

Partners place orders (and the warehouse ships some) at a steady rate; `orderdesk backup` runs in the middle
of it; the load goes on for a while, then the suite stops, every database is deleted, `orderdesk restore`
brings the backup back (it deletes the event stream: the databases are the truth) and the suite starts again.
Then, once every outbox is empty and every consumer has caught up:
- every order acknowledged before the backup's point exists exactly once;
- an order acknowledged after the point either exists (it committed before the point, its answer came
  later) or is counted as the expected loss, by id: never silently missing;
- no order is stuck half-way (received or confirmed: an event lost between services), inventory holds for
  each order exactly what orders says it allocated, stock's reserved figures are the sum of the
  reservations, and shipping holds the allocated lines of every allocated order;
- a new order is allocated end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from devtools.devstack import ROOT, Stack, postgres_databases
from devtools.http import client_session
from orderdesk.config import SERVICES, normalize_database_url
from orderdesk.consumers import FAULT_ENV
from tests.faults.suite import FLAKY_CONSUMER, Environment, Load, Plan

HALF_WAY = ("received", "confirmed")
ALLOCATED = ("allocated", "partially_shipped", "shipped", "completed")


@dataclass
class Outcome:
    before: int = 0  # orders acknowledged before the point
    after: int = 0  # ... after it
    lost_before: list[str] = field(default_factory=list)  # a defect: acknowledged before the point, gone
    expected_loss: list[str] = field(default_factory=list)  # acknowledged after the point, not in the backup
    kept_after: int = 0  # acknowledged after the point, committed before it
    duplicated: list[str] = field(default_factory=list)
    half_way: list[str] = field(default_factory=list)
    disagree: list[str] = field(default_factory=list)
    unpublished: dict[str, int] = field(default_factory=dict)
    rearmed: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    recovered: float = float("nan")  # seconds for a new order to be allocated after start

    @property
    def problems(self) -> dict[str, object]:
        found = {
            name: getattr(self, name)
            for name in ("lost_before", "duplicated", "half_way", "disagree")
            if getattr(self, name)
        }
        if any(self.unpublished.values()):
            found["unpublished"] = self.unpublished
        if self.recovered != self.recovered:
            found["recovered"] = "no new order was allocated after the restore"
        return found


class TimedLoad(Load):
    """The suite's partner load, noting when each order was acknowledged (wall clock, like the manifest)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.acked_at: dict[str, float] = {}

    async def persist(self, key, method, path, **kwargs):
        status, body, attempt = await super().persist(key, method, path, **kwargs)
        if method == "POST" and path == "/v1/orders" and status == 201:
            self.acked_at.setdefault(body["order_id"], time.time())
        return status, body, attempt


class BackupEnvironment(Environment):
    """The suite's environment on SQLite (no PostgreSQL) or on its private PostgreSQL."""

    def __init__(self, replicas: int, postgres: bool):
        super().__init__(replicas)
        self.postgres = postgres

    def start(self) -> BackupEnvironment:
        self.nats.start()
        urls = {}
        if self.postgres:
            self.pg.start()
            urls = postgres_databases(self.pg.url)
        # Shipping takes each allocation on its third delivery: at the backup's point some are always in
        # flight (published by orders, not yet in shipping's copy). The restored suite starts without it.
        self.stack = Stack(
            data_dir=self.folder / "suite",
            nats_url=self.nats.url,
            nats_passwords=self.nats_passwords,
            database_urls=urls,
            replicas=self.replicas,
            extra_env={"ORDERDESK_RPC_TIMEOUT": "3", FAULT_ENV: f"{FLAKY_CONSUMER}:2"},
        )
        self.stack.start(timeout=180)
        self.stack.load_demo_data()
        return self

    def start_again(self) -> None:
        """The restored suite: the same databases and NATS, fresh ports (the old ones may be taken by now),
        no injected failures."""
        old = self.stack
        for attempt in range(3):  # a free port picked now may be taken by another program before it binds
            self.stack = Stack(
                data_dir=old.data_dir,
                nats_url=old.nats_url,
                nats_passwords=old.nats_passwords,
                database_urls=old.database_urls,
                replicas=old.replicas,
                extra_env={"ORDERDESK_RPC_TIMEOUT": "3"},
            )
            try:
                self.stack.start(timeout=180)
                return
            except RuntimeError:
                self.stack.stop()
                if attempt == 2:
                    raise

    def url(self, component: str) -> str:
        return normalize_database_url(
            self.stack.database_urls.get(component)
            or f"sqlite+aiosqlite:///{self.stack.data_dir / (component + '.db')}"
        )

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args],
            env=self.stack.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"orderdesk {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def destroy_databases(self) -> None:
        if self.postgres:
            import asyncpg

            async def drop() -> None:
                conn = await asyncpg.connect(self.pg.url)
                try:
                    for name in self.stack.database_urls.values():
                        await conn.execute(f'DROP DATABASE "{name.rsplit("/", 1)[1]}" WITH (FORCE)')
                finally:
                    await conn.close()

            asyncio.run(drop())
        else:
            for path in self.stack.data_dir.glob("*.db*"):
                path.unlink()


async def query(env: BackupEnvironment, component: str, sql: str) -> list:
    engine = create_async_engine(env.url(component))
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).mappings())
    finally:
        await engine.dispose()


async def settle(env: BackupEnvironment, timeout: float) -> float:
    """Until every outbox is empty and every consumer has nothing pending, twice in a row."""
    import nats

    from orderdesk import events

    started = time.monotonic()
    nc = await nats.connect(env.nats.url, **env.stack.nats_connect_options())
    js = nc.jetstream()
    quiet = 0
    try:
        while time.monotonic() - started < timeout and quiet < 2:
            busy = sum((await unpublished(env)).values())
            try:
                for info in await js.consumers_info(events.STREAM):
                    busy += info.num_pending + info.num_ack_pending
            except Exception:  # the stream is being re-created
                busy += 1
            quiet = quiet + 1 if busy == 0 else 0
            await asyncio.sleep(1.0)
    finally:
        await nc.close()
    return time.monotonic() - started


async def unpublished(env: BackupEnvironment) -> dict[str, int]:
    return {
        s: (await query(env, s, "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL"))[0]["n"]
        for s in SERVICES
    }


async def check(env: BackupEnvironment, load: TimedLoad, point: float, run: str, outcome: Outcome) -> None:
    orders = await query(
        env,
        "orders",
        f"SELECT order_id, external_ref, status FROM orders WHERE external_ref LIKE 'FLT-{run}-%'",
    )
    by_id = {r["order_id"]: r for r in orders}
    refs = defaultdict(int)
    for r in orders:
        refs[r["external_ref"]] += 1
    outcome.duplicated = [ref for ref, n in refs.items() if n > 1]
    for order_id, at in sorted(load.acked_at.items(), key=lambda item: item[1]):
        if at < point:
            outcome.before += 1
            if order_id not in by_id:
                outcome.lost_before.append(order_id)
        else:
            outcome.after += 1
            if order_id in by_id:
                outcome.kept_after += 1
            else:
                outcome.expected_loss.append(order_id)
    outcome.half_way = [f"{r['order_id']}: {r['status']}" for r in orders if r["status"] in HALF_WAY]

    allocated: dict[str, dict[str, int]] = defaultdict(dict)
    for r in await query(env, "orders", "SELECT order_id, sku, allocated FROM order_lines"):
        if r["order_id"] in by_id and r["allocated"]:
            allocated[r["order_id"]][r["sku"]] = r["allocated"]
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    places: dict[tuple[str, str], int] = defaultdict(int)
    for r in await query(
        env, "inventory", "SELECT order_id, sku, warehouse, quantity, shipped FROM reservations"
    ):
        places[(r["sku"], r["warehouse"])] += r["quantity"]
        if r["quantity"] + r["shipped"]:
            held[r["order_id"]][r["sku"]] += r["quantity"] + r["shipped"]
    for r in await query(env, "inventory", "SELECT sku, warehouse, reserved FROM stock"):
        if r["reserved"] != places[(r["sku"], r["warehouse"])]:
            outcome.disagree.append(
                f"stock {r['sku']}@{r['warehouse']} says {r['reserved']} reserved, "
                f"reservations hold {places[(r['sku'], r['warehouse'])]}"
            )
    for order_id in by_id:
        if dict(held.get(order_id, {})) != allocated.get(order_id, {}):
            outcome.disagree.append(
                f"{order_id}: orders allocated {allocated.get(order_id, {})}, "
                f"inventory holds {dict(held.get(order_id, {}))}"
            )
    known = {r["order_id"] for r in await query(env, "orders", "SELECT order_id FROM orders")}
    outcome.disagree += [
        f"{o}: inventory holds {dict(held[o])} for an order orders does not know"
        for o in held
        if o not in known
    ]
    shipped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in await query(env, "shipping", "SELECT order_id, lines, status FROM shipments"):
        if r["status"] != "cancelled" and r["order_id"] in by_id:
            for sku, quantity in json.loads(r["lines"]) if isinstance(r["lines"], str) else r["lines"]:
                shipped[r["order_id"]][sku] += quantity
    for order_id, r in by_id.items():
        if r["status"] in ALLOCATED and dict(shipped[order_id]) != allocated.get(order_id, {}):
            outcome.disagree.append(
                f"{order_id} ({r['status']}): shipments hold {dict(shipped[order_id])}, "
                f"allocated {allocated.get(order_id, {})}"
            )
    outcome.unpublished = await unpublished(env)


async def run_scenario(
    *,
    postgres: bool = False,
    replicas: int = 1,
    rate: float = 6.0,
    before: float = 8.0,
    after: float = 4.0,
    stream_reset: bool = True,
    log=print,
) -> Outcome:
    run = uuid.uuid4().hex[:6].upper()
    env = BackupEnvironment(replicas, postgres)
    plan = Plan(replicas=replicas, rate=rate, ship_fraction=0.3, return_fraction=0.0)
    outcome = Outcome()
    started = time.monotonic()
    try:
        await asyncio.to_thread(env.start)
        await asyncio.to_thread(env.seed, 1000)
        log(
            f"suite up in {time.monotonic() - started:.0f}s ({'PostgreSQL' if postgres else 'SQLite'}, "
            f"{replicas} replica(s)); {rate:.0f} orders/s"
        )
        load = TimedLoad(env.stack.gateway_url, plan, run)
        folder = env.folder / "backup"
        async with client_session(total=10) as session:
            load.session = session
            workers = max(2, int(rate))
            tasks = [asyncio.create_task(load.orders(n, workers)) for n in range(workers)]
            tasks += [asyncio.create_task(load.operator()) for _ in range(2)]
            try:
                await asyncio.sleep(before)
                began = time.monotonic()
                await asyncio.to_thread(env.cli, "backup", str(folder))
                outcome.figures["backup_seconds"] = time.monotonic() - began
                await asyncio.sleep(after)
                load.stopping = True
                load.give_up_at = time.monotonic() + 10
                await asyncio.gather(*tasks[:workers])
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        manifest = json.loads((folder / "manifest.json").read_text())
        point = manifest["point_epoch"]
        outcome.figures["writes_paused_ms"] = manifest["writes_paused_seconds"] * 1000
        outcome.figures["bytes"] = manifest["bytes"]
        log(
            f"backup at {manifest['point']} in {outcome.figures['backup_seconds']:.1f}s "
            f"({manifest['bytes']:,} bytes, writes paused {outcome.figures['writes_paused_ms']:.0f} ms); "
            f"{len(load.acked_at)} orders acknowledged in all"
        )

        await asyncio.to_thread(env.stack.stop)
        await asyncio.to_thread(env.destroy_databases)
        began = time.monotonic()
        outcome.rearmed = (
            await asyncio.to_thread(
                env.cli, "restore", str(folder), *(() if stream_reset else ("--no-stream-reset",))
            )
        ).strip()
        outcome.figures["restore_seconds"] = time.monotonic() - began
        log(outcome.rearmed)
        began = time.monotonic()
        await asyncio.to_thread(env.start_again)
        outcome.figures["start_seconds"] = time.monotonic() - began
        async with client_session(total=10) as session:
            probe = TimedLoad(env.stack.gateway_url, plan, run)
            probe.session, probe.give_up_at = session, time.monotonic() + 60
            outcome.recovered = await probe.probe()
        outcome.figures["settle_seconds"] = await settle(env, 90)
        await check(env, load, point, run, outcome)
        return outcome
    finally:
        await asyncio.to_thread(env.stop)


def report(outcome: Outcome) -> str:
    f = outcome.figures
    lines = [
        f"backup                      {f.get('backup_seconds', 0):.1f}s, {f.get('bytes', 0):,.0f} bytes, "
        f"writes paused {f.get('writes_paused_ms', 0):.0f} ms",
        f"restore / start / settle    {f.get('restore_seconds', 0):.1f}s / {f.get('start_seconds', 0):.1f}s / "
        f"{f.get('settle_seconds', 0):.1f}s; a new order allocated {outcome.recovered:.1f}s after the start",
        f"acknowledged before point   {outcome.before} (lost: {len(outcome.lost_before)})",
        f"acknowledged after point    {outcome.after}: {outcome.kept_after} committed before the point, "
        f"{len(outcome.expected_loss)} the expected loss {outcome.expected_loss[:5]}",
        f"duplicated / half-way       {len(outcome.duplicated)} / {len(outcome.half_way)}",
        f"services disagree           {len(outcome.disagree)}",
        f"outbox rows unpublished     {sum(outcome.unpublished.values())}",
        "books balance: " + ("yes" if not outcome.problems else "NO"),
    ]
    lines += [
        f"  {name}: {detail[:10] if isinstance(detail, list) else detail}"
        for name, detail in outcome.problems.items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.backup_restore")
    parser.add_argument("--postgres", action="store_true", help="on a private PostgreSQL (else SQLite)")
    parser.add_argument("--replicas", type=int, default=1, help="processes per service (PostgreSQL)")
    parser.add_argument("--rate", type=float, default=10.0, help="partner orders per second")
    parser.add_argument("--before", type=float, default=20.0, help="seconds of load before the backup")
    parser.add_argument(
        "--after", type=float, default=10.0, help="seconds of load after it (the expected loss)"
    )
    parser.add_argument(
        "--keep-stream",
        action="store_true",
        help="restore with --no-stream-reset (shows why the restore resets it: the books do not "
        "balance, events in flight at the point are lost)",
    )
    args = parser.parse_args(argv)
    outcome = asyncio.run(
        run_scenario(
            postgres=args.postgres or args.replicas > 1,
            replicas=args.replicas,
            rate=args.rate,
            before=args.before,
            after=args.after,
            stream_reset=not args.keep_stream,
            log=lambda m: print(m, flush=True),
        )
    )
    print(report(outcome), flush=True)
    return 0 if not outcome.problems else 1


if __name__ == "__main__":
    sys.exit(main())
