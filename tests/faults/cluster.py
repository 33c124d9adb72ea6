"""The fault suite on a three-node JetStream cluster: `python -m tests.faults --nats-cluster`
(`make faults NATS_CLUSTER=1`).

Three local nats-servers (devtools.natscluster, free loopback ports, never the machine's shared NATS), the
streams with three replicas (ORDERDESK_STREAM_REPLICAS=3), every process given all three URLs. Under the
suite's partner load: the node leading the event stream is killed -9 and brought back once the other two
have carried on without it, then another node the same way. Partners must see no errors they cannot retry
(each retried with its Idempotency-Key, none lost) and the books must balance (the suite's checks).

With one replica per service the services run on SQLite (the short form in `make test`); with more, on a
throw-away PostgreSQL cluster as in the rest of the suite.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path

from devtools import localservers
from devtools.devstack import Stack, postgres_databases
from devtools.natscluster import LocalNatsCluster
from orderdesk import events
from tests.faults.suite import Checker, Environment, Faults, Plan, run_suite


class ClusterEnvironment(Environment):
    """A three-node JetStream cluster + the suite (SQLite with one replica per service, else PostgreSQL)."""

    def __init__(self, replicas: int):  # not Environment's: no single NATS, PostgreSQL only for replicas
        self.folder = Path(tempfile.mkdtemp(prefix="orderdesk-faults-cluster-"))
        self.nats = LocalNatsCluster(self.folder / "nats")
        self.pg_folder = Path(tempfile.mkdtemp(prefix="orderdesk-faults-pg-")) if replicas > 1 else None
        self.pg = localservers.LocalPostgres(self.pg_folder) if self.pg_folder else None
        self.replicas = replicas
        self.stack: Stack | None = None
        self.nats_disconnects = 0  # "nats disconnected" in the processes' logs: the kills were felt

    def start(self) -> ClusterEnvironment:
        self.nats.start()
        urls = {}
        if self.pg:
            self.pg.start()
            urls = postgres_databases(self.pg.url)
        self.stack = Stack(
            data_dir=self.folder / "suite",
            nats_url=self.nats.url,
            database_urls=urls,
            replicas=self.replicas,
            extra_env={"ORDERDESK_RPC_TIMEOUT": "3", "ORDERDESK_STREAM_REPLICAS": "3"},
        )
        self.stack.start(timeout=180)
        self.stack.load_demo_data()
        return self

    def stop(self) -> None:
        if self.stack:
            self.stack.stop()
        self.nats.stop()
        if self.pg:
            self.pg.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.pg_folder:
            shutil.rmtree(self.pg_folder, ignore_errors=True)


class NodeFaults(Faults):
    """kill -9 of the stream's leader node, back after `plan.nats_down` s; then of the node most processes
    are connected to (another one), the same way."""

    env: ClusterEnvironment

    def __init__(self, env: ClusterEnvironment, plan: Plan):
        super().__init__(env, plan)
        self.killed: list[int] = []

    def schedule(self) -> list[tuple[str, object]]:
        down = f"{self.plan.nats_down:.0f}s"
        return [
            (f"kill -9 NATS node (stream leader), {down}", self.node),
            (f"kill -9 another NATS node (most clients), {down}", self.node),
        ]

    async def node(self) -> None:
        cluster = self.env.nats
        leader, replicas = await asyncio.to_thread(self.stream_cluster)
        if replicas != len(cluster.nodes):  # else a dead node could take the only copy of an event with it
            raise RuntimeError(f"stream {events.STREAM} has {replicas} replica(s), not {len(cluster.nodes)}")
        clients = [node.monitor("/varz").get("connections", 0) for node in cluster.nodes]
        if not self.killed and leader is not None:
            victim = leader  # the stream's leader: its replicas elect another while partners keep ordering
        else:  # the node most processes are connected to: they must reconnect to another
            victim = max(
                (n for n in range(len(cluster.nodes)) if n not in self.killed), key=lambda n: clients[n]
            )
        self.killed.append(victim)
        print(
            f"  kill -9 {cluster.nodes[victim].name} (stream leader: "
            f"{cluster.nodes[leader].name if leader is not None else '?'}; clients per node {clients})",
            flush=True,
        )
        cluster.kill(victim)
        await asyncio.sleep(self.plan.nats_down)
        back = await asyncio.to_thread(cluster.restart, victim, 180)
        print(
            f"  {cluster.nodes[victim].name} back and every stream replica current after {back:.1f}s",
            flush=True,
        )
        logs = self.env.stack.data_dir / "logs"
        self.env.nats_disconnects = sum(
            p.read_text(errors="replace").count("nats disconnected") for p in logs.glob("*.log")
        )

    def stream_cluster(self) -> tuple[int | None, int]:
        """The event stream's leader (a node index) and its number of replicas."""
        for node in self.env.nats.nodes:
            for account in node.monitor("/jsz?accounts=true&streams=true&config=true").get(
                "account_details", []
            ):
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == events.STREAM:
                        name = detail.get("cluster", {}).get("leader")
                        leader = next((n for n, x in enumerate(self.env.nats.nodes) if x.name == name), None)
                        return leader, detail.get("config", {}).get("num_replicas", 0)
        return None, 0


class SqliteConnection:
    """The few asyncpg calls the Checker makes, answered from a service's SQLite file, read-only."""

    def __init__(self, path: Path):
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        self.db.row_factory = sqlite3.Row

    @staticmethod
    def translate(query: str, args: tuple) -> tuple[str, list]:
        # `= ANY($n::text[])` (a list parameter) becomes a JSON array walked by json_each; `$n` becomes `?`.
        query = re.sub(r"=\s*ANY\(\$\d+::text\[\]\)", "IN (SELECT value FROM json_each(?))", query)
        query = re.sub(r"\$\d+", "?", query)
        return query, [json.dumps(a) if isinstance(a, list) else a for a in args]

    async def fetch(self, query: str, *args) -> list[sqlite3.Row]:
        return self.db.execute(*self.translate(query, args)).fetchall()

    async def fetchval(self, query: str, *args):
        row = self.db.execute(*self.translate(query, args)).fetchone()
        return row[0] if row else None

    async def close(self) -> None:
        self.db.close()


class ClusterChecker(Checker):
    """The suite's books, on PostgreSQL or on each service's SQLite file."""

    env: ClusterEnvironment

    async def connect(self, component: str):
        if self.env.pg:
            return await super().connect(component)
        return SqliteConnection(self.env.stack.data_dir / f"{component}.db")


def cluster_plan(
    replicas: int, *, short: bool, rate: float = 10.0, node_down: float = 10.0, gap: float = 10.0
) -> Plan:
    if short:  # the pytest form: light load, short outages, few shipments to drain at the end
        return Plan(
            replicas=replicas,
            rate=4.0,
            nats_down=2.0,
            gap=3.0,
            ship_fraction=0.2,
            return_fraction=0.3,
            settle_timeout=60.0,
        )
    return Plan(replicas=replicas, rate=rate, nats_down=node_down, gap=gap)


async def run_cluster_suite(plan: Plan, *, log=print):
    env = ClusterEnvironment(plan.replicas)
    faults, tally, books, figures = await run_suite(
        plan, log=log, env=env, faults=NodeFaults, checker=ClusterChecker
    )
    figures["nats_disconnects"] = env.nats_disconnects
    log(f"connections to NATS lost and taken up again (services' logs): {env.nats_disconnects}")
    return faults, tally, books, figures
