"""Starts the whole suite as real processes: `make run`, the end-to-end tests and the benchmark.

    python -m devtools.devstack run     # NATS if none answers, five services, gateway, console, demo data
                                         # and demo accounts; in the foreground until Ctrl-C
    python -m devtools.devstack run --replicas 2   # two processes of every service on PostgreSQL

Each service, the gateway and the desk console is its own process (`python -m services.<name>`,
`python -m gateway`, `python -m console`; the console with `Stack(console=True)`) with its own database, configured only by environment
variables, exactly as in production.

NATS: a Stack given no `nats_url` starts its own nats-server in `data_dir/nats` (`secured_nats`: a user per
service, fresh passwords), so the tests and the bench run the secured setup and no two stacks share a
stream; each process gets only its own user, the CLI and the tests the admin (`Stack.nats_connect_options`).

Replicas (`Stack(replicas=2)`): every service runs as that many processes named
`<service>-1`, `<service>-2`, each with its own gRPC and metrics port, all on the
service's one PostgreSQL database (SQLite cannot be shared by processes). The others
dial a service through ORDERDESK_<SERVICE>_TARGET, the list of its replicas' addresses,
balanced round robin by gRPC. The gateway stays one process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools import localservers, pki
from devtools.supervisor import CrashLoop, Supervisor
from orderdesk import natsauth
from orderdesk.config import (
    DEFAULT_GRPC_PORTS,
    DEFAULT_METRICS_PORTS,
    SERVICES,
    NatsCredentials,
    nats_servers,
)
from orderdesk.logs import redact
from orderdesk.parsing import whole_number
from orderdesk.tls import TlsSettings

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = (*SERVICES, "gateway")  # always started; the console too with Stack(console=True)
HTTP_COMPONENTS = {"gateway": 8080, "console": 8090}  # their documented HTTP ports (not gRPC)
GATEWAY_KEYS_PORT = 15059  # the gateway's API-key admin gRPC for the console (README "Console")
PORT_ATTEMPTS = 3  # starts on freshly picked ports, when another run took one first


class PortTaken(RuntimeError):
    """A process exited during start-up because a port picked for it was taken meanwhile."""


def secured_nats(
    folder: Path, *, port: int | None = None, sync_always: bool = False
) -> tuple[localservers.LocalNats, dict[str, str]]:
    """A nats-server (not yet started: `.start()`) whose store and config are in `folder`, with a user per
    component allowed only its own subjects (orderdesk/natsauth.py), and the fresh passwords of those users
    (give them to `Stack(nats_passwords=...)`)."""
    passwords = natsauth.generate_passwords()
    server = localservers.LocalNats(
        folder, port=port, sync_always=sync_always, config=natsauth.render_authorization(passwords)
    )
    return server, passwords


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None
    cwd: Path = ROOT
    log_start: int = 0  # where this start's output begins in the log (a restart appends)

    def start(self) -> None:
        log = open(self.log_path, "ab")
        self.log_start = log.tell()
        self.popen = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
        )

    def output(self) -> str:
        """What this start has written so far."""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_start)
            return log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Stack:
    data_dir: Path
    # A NATS the caller runs; empty: the stack's own (secured_nats in data_dir/nats), started and stopped
    # with the stack.
    nats_url: str = ""
    database_urls: dict[str, str] = field(
        default_factory=dict
    )  # component -> URL; default SQLite in data_dir
    default_ports: bool = False  # True: the documented ports (make run); False: free ports (tests)
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    replicas: int = 1  # processes per service (>1 needs PostgreSQL for every service)
    console: bool = False  # the desk console too (make run, the browser tests)
    # The interpreter and working folder of the processes: another virtualenv (the clean-install test runs an
    # installed copy, away from the source tree so it cannot import the checkout).
    python: str = sys.executable
    cwd: Path = ROOT
    status_link_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    # Throw-away shared secrets of the demo's carriers (README "Carriers"): their tracking events are signed.
    carrier_secrets: dict[str, str] = field(
        default_factory=lambda: {"dhl": secrets.token_urlsafe(24), "ups": secrets.token_urlsafe(24)}
    )
    # mTLS between every process (README "mTLS inside"): a throw-away CA and a certificate per identity.
    tls: bool = True
    # The NATS users' passwords when the server was made with orderdesk.natsauth's users (secured_nats; the
    # stack's own NATS is): each process gets only its own user, the CLI the admin. Empty: no credentials.
    nats_passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.started_at = dt.datetime.now(dt.UTC).isoformat()
        self.data_dir = Path(self.data_dir)
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.own_nats: localservers.LocalNats | None = None
        if not self.nats_url:
            if self.nats_passwords:
                raise ValueError("nats_passwords without nats_url: the stack's own NATS makes its own")
            self.own_nats, self.nats_passwords = secured_nats(self.data_dir / "nats")
            self.nats_url = self.own_nats.url
        if self.replicas > 1:
            on_sqlite = [s for s in SERVICES if not self.database_urls.get(s, "").startswith("postgres")]
            if on_sqlite:
                raise ValueError(
                    f"replicas need PostgreSQL (SQLite cannot be shared across processes): "
                    f"no PostgreSQL URL for {', '.join(on_sqlite)}"
                )
        self._pick_ports()
        identities = (*COMPONENTS, "console", "cli")
        self.certificates = pki.Authority().write(self.data_dir / "tls", identities) if self.tls else {}

    def _pick_ports(self) -> None:
        """Every process's ports: the documented ones (`default_ports`) or free ones picked now (again after a
        start-up found one taken meanwhile)."""
        # Per process ("orders" alone, or "orders-1", "orders-2"); a component's name also maps to its first process.
        self.ports: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}
        self.component_of: dict[str, str] = {}
        for name in self.components:
            grpc_default = HTTP_COMPONENTS.get(name) or DEFAULT_GRPC_PORTS[name]
            for n, instance in enumerate(self.instances(name)):
                # Documented ports for the first replica; further replicas 10 above per replica.
                self.ports[instance] = (
                    grpc_default + 10 * n if self.default_ports else localservers.free_port()
                )
                self.metrics_ports[instance] = (
                    DEFAULT_METRICS_PORTS[name] + 10 * n if self.default_ports else localservers.free_port()
                )
                self.component_of[instance] = name
            first = self.instances(name)[0]
            self.ports.setdefault(name, self.ports[first])
            self.metrics_ports.setdefault(name, self.metrics_ports[first])
        # The gateway's API-key admin gRPC (gateway/keyservice.py), which the console calls.
        self.keys_port = GATEWAY_KEYS_PORT if self.default_ports else localservers.free_port()

    @property
    def components(self) -> tuple[str, ...]:
        return (*COMPONENTS, "console") if self.console else COMPONENTS

    def instances(self, component: str) -> list[str]:
        """The process names of a component: itself, or <component>-1 … -N for replicated services."""
        if component in HTTP_COMPONENTS or self.replicas == 1:
            return [component]
        return [f"{component}-{n}" for n in range(1, self.replicas + 1)]

    @property
    def all_instances(self) -> list[str]:
        return [i for name in self.components for i in self.instances(name)]

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['console']}"

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def target(self, component: str) -> str:
        """How other processes dial a component: its one address, or the list of its replicas'."""
        return ",".join(self.addr(i) for i in self.instances(component))

    def env(self, instance: str | None = None) -> dict[str, str]:
        """The environment of a process (`instance`), or of a client of the suite (the CLI) when None."""
        # The suite's processes are configured here alone, except for the diagnostic switches (profiling.py).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ORDERDESK_")
            or k in ("ORDERDESK_PROFILE", "ORDERDESK_PROFILE_CLOCK", "ORDERDESK_SQL_TRACE")
        }
        env.update(
            ORDERDESK_NATS_URL=self.nats_url,
            ORDERDESK_DATA_DIR=str(self.data_dir),
            PYTHONUNBUFFERED="1",
            # The demo and the tests register receivers on this machine: loopback only (production: public
            # https targets only; link-local and cloud metadata addresses never, even here).
            ORDERDESK_WEBHOOKS_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
            # The demo's partners CSV names its keys (demo-shop-key ...); production keys are generated only.
            ORDERDESK_DEMO_KEYS="true",
        )
        own = self.component_of.get(instance or "", "")
        for name in self.components:
            env[f"ORDERDESK_{name.upper()}_ADDR"] = self.addr(instance if name == own else name)
            env[f"ORDERDESK_{name.upper()}_METRICS_PORT"] = str(
                self.metrics_ports[instance if name == own else name]
            )
            if len(self.instances(name)) > 1:
                env[f"ORDERDESK_{name.upper()}_TARGET"] = self.target(name)
            if name in self.database_urls:
                env[f"ORDERDESK_{name.upper()}_DATABASE_URL"] = self.database_urls[name]
        env["ORDERDESK_GATEWAY_URL"] = self.gateway_url
        env["ORDERDESK_GATEWAY_KEYS_ADDR"] = f"127.0.0.1:{self.keys_port}"
        if os.environ.get("ORDERDESK_CLOCK_AT"):  # `ORDERDESK_CLOCK_AT=... make run`: a demo on another day
            env["ORDERDESK_CLOCK_AT"] = os.environ["ORDERDESK_CLOCK_AT"]
            env["ORDERDESK_CLOCK_SINCE"] = self.started_at  # one anchor: a restarted process keeps the time
        # A throw-away key for the end customer's status links, shared by the gateway and the console.
        env["ORDERDESK_STATUS_LINK_SECRET"] = self.status_link_secret
        env["ORDERDESK_CARRIER_SECRETS"] = ",".join(f"{c}={s}" for c, s in self.carrier_secrets.items())
        if self.console:
            env["ORDERDESK_CONSOLE_URL"] = self.console_url
        env.update(self.client_tls(own or "cli").as_env())  # only its own certificate and key, and the CA
        env.update(
            natsauth.credentials_env(self.nats_passwords, self.component_of[instance] if instance else None)
        )
        env.update(self.extra_env)
        return env

    def nats_connect_options(self, user: str = natsauth.ADMIN) -> dict[str, str]:
        """nats.connect's keywords for a test or a tool on this stack's NATS as `user` (default the
        operators' admin; a component's user also gets its own inbox prefix): none without credentials."""
        if not self.nats_passwords:
            return {}
        if user not in self.nats_passwords:
            raise ValueError(f"no NATS user {user!r}: one of {', '.join(self.nats_passwords)}")
        component = "" if user == natsauth.ADMIN else user
        return NatsCredentials(user, self.nats_passwords[user]).connect_options(component)

    def client_tls(self, identity: str = "cli") -> TlsSettings:
        """The TLS settings of `identity` (a component, or "cli"): for a test or a tool that dials the suite
        as that identity (orderdesk.tls.aio_channel); plaintext settings when the stack runs without TLS."""
        if not self.tls:
            return TlsSettings()
        if identity not in self.certificates:
            raise ValueError(f"no certificate for {identity!r}: one of {', '.join(self.certificates)}")
        return self.certificates[identity]

    def _process(self, name: str) -> Process:
        component = self.component_of[name]
        module = component if component in HTTP_COMPONENTS else f"services.{component}"
        return Process(
            name,
            [self.python, "-m", module],
            self.env(name),
            self.data_dir / "logs" / f"{name}.log",
            cwd=self.cwd,
        )

    def start(self, timeout: float | None = None) -> Stack:
        """Starts every process and waits until each is ready: `timeout` seconds (default 60, or
        ORDERDESK_STACK_START_SECONDS on a crowded machine where eight Pythons starting at once take longer)."""
        if timeout is None:
            timeout = float(os.environ.get("ORDERDESK_STACK_START_SECONDS", "60"))
        if self.own_nats and not (self.own_nats.process and self.own_nats.process.poll() is None):
            self.own_nats.start()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            for name in self.all_instances:
                self.start_process(name)
            try:
                self.wait_ready(timeout * self.replicas)  # N times the processes starting on the same cores
                return self
            except PortTaken:
                # A free port picked at random was taken by another run on the machine (tests side by side)
                # before its process bound it: the processes again on ports picked anew (peers learn them
                # from their environment at start, so all of them).
                if self.default_ports or attempt == PORT_ATTEMPTS:
                    raise
                self.stop_processes()
                self._pick_ports()
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def wait_ready(self, timeout: float = 60, names: tuple[str, ...] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names or self.all_instances)
        while pending:
            name = pending[0]
            proc = self.processes[name]
            if not proc.alive():
                said = proc.output().lower()
                taken = "address already in use" in said or "failed to bind" in said
                raise (PortTaken if taken else RuntimeError)(
                    f"{name} exited during start-up:\n{self.tail(name)}"
                )
            if self.ready(name):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout}s:\n{self.tail(name)}")
            time.sleep(0.1)

    def ready(self, name: str) -> bool:
        if self.component_of.get(name) in HTTP_COMPONENTS:
            try:
                url = f"http://127.0.0.1:{self.ports[name]}/healthz"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    return resp.status == 200
            except Exception:
                return False
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from orderdesk import tls

        with tls.channel(self.addr(name), self.client_tls(), peer=self.component_of[name]) as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
                return answer.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.data_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def load_demo_data(self, folder: Path = ROOT / "demo") -> None:
        subprocess.run(
            [sys.executable, "-m", "cli", "import-demo", "--dir", str(folder)],
            env=self.env(),
            cwd=ROOT,
            check=True,
        )
        if self.console:  # the documented demo accounts (README "Console"), one per role
            subprocess.run(
                [sys.executable, "-m", "cli", "users", "demo"], env=self.env(), cwd=ROOT, check=True
            )

    def start_process(self, name: str) -> None:
        """Starts one process of the suite (again), without waiting for it to be ready."""
        self.processes[name] = self._process(name)
        self.processes[name].start()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        if proc.alive():
            proc.popen.send_signal(sig)
            proc.popen.wait(30)

    def restart(self, name: str, timeout: float = 60, *, sig: int = signal.SIGTERM) -> None:
        """Stops a process (SIGTERM, or `sig=signal.SIGKILL` for a crash) and starts it again."""
        self.kill(name, sig)
        self.start_process(name)
        self.wait_ready(timeout, (name,))

    def stop(self) -> None:
        self.stop_processes()
        if self.own_nats:  # after the processes: they drain their connections on SIGTERM
            self.own_nats.stop()

    def stop_processes(self) -> None:
        """The suite's processes stopped, its own NATS (if any) left running (a restore resets its stream)."""
        # The console and the gateway first (no new requests), then the services.
        for name in ("console", "gateway", *[i for s in SERVICES for i in self.instances(s)]):
            proc = self.processes.get(name)
            if proc and proc.alive():
                proc.popen.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            localservers.reap(proc.popen, 20)


def postgres_databases(admin_url: str, prefix: str = "orderdesk") -> dict[str, str]:
    """One database per component (`<prefix>_<component>`) on the server of `admin_url`, made if missing."""
    import asyncio

    import asyncpg

    async def ensure() -> dict[str, str]:
        conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
            for name in (*COMPONENTS, "console"):
                if f"{prefix}_{name}" not in existing:
                    await conn.execute(f'CREATE DATABASE "{prefix}_{name}"')
        finally:
            await conn.close()
        base = admin_url.rsplit("/", 1)[0]
        return {name: f"{base}/{prefix}_{name}" for name in (*COMPONENTS, "console")}

    return asyncio.run(ensure())


def _run(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir)
    nats_url = os.environ.get("ORDERDESK_NATS_URL", "nats://127.0.0.1:4222")
    local_nats = None
    nats_passwords: dict[str, str] = {}
    if not any(localservers.answers(url) for url in nats_servers(nats_url)):
        port = whole_number(nats_url.rsplit(":", 1)[-1]) or 4222
        print(f"no NATS at {redact(nats_url)}: starting nats-server (JetStream) from the venv", flush=True)
        # Secure by default: a user per service, allowed only its own subjects (orderdesk/natsauth.py).
        local_nats, nats_passwords = secured_nats(data_dir / "nats", port=port)
        local_nats.start()
        nats_url = local_nats.url
    else:
        print(
            f"WARNING: NATS at {redact(nats_url)} is used without credentials: any process could publish any "
            "service's events. Let `make run` start its own NATS (with a user per service) for the secured setup.",
            flush=True,
        )
    database_urls = {
        k[len("ORDERDESK_") : -len("_DATABASE_URL")].lower(): v
        for k, v in os.environ.items()
        if k.startswith("ORDERDESK_") and k.endswith("_DATABASE_URL")
    }
    local_pg = None
    if args.postgres:
        database_urls = {**postgres_databases(args.postgres), **database_urls}
    elif args.replicas > 1 and not all(database_urls.get(s, "").startswith("postgres") for s in SERVICES):
        print(
            "replicas need PostgreSQL: starting a throw-away cluster (use --postgres URL for yours)",
            flush=True,
        )
        local_pg = localservers.LocalPostgres(data_dir.resolve() / "pg").start()
        database_urls = {**postgres_databases(local_pg.url), **database_urls}
    stack = Stack(
        data_dir=data_dir,
        nats_url=nats_url,
        default_ports=True,
        database_urls=database_urls,
        replicas=args.replicas,
        console=True,
        nats_passwords=nats_passwords,
    )
    stopping = {"now": False}
    status = 0

    def _stop(*_):
        stopping["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        print(
            f"starting {', '.join(SERVICES)} ({args.replicas} each), the gateway and the console ...",
            flush=True,
        )
        stack.start()
        if not args.no_demo:
            stack.load_demo_data()
        print(
            f"\norderdesk is running: gateway {stack.gateway_url}  (logs in {data_dir}/logs)\n"
            f"  the desk console: {stack.console_url}  (sign in as admin@demo.example / admin-demo-pass;\n"
            '  viewer@, clerk@ and approver@demo.example likewise: README "Console")\n'
            f"  curl -s {stack.gateway_url}/healthz\n"
            f"  curl -s -H 'Authorization: Bearer demo-admin-key' {stack.gateway_url}/v1/inventory/BRK-001\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        supervisor = Supervisor(
            stack,
            say=lambda text: print(text, flush=True),
            metrics_port=int(os.environ.get("ORDERDESK_SUPERVISOR_METRICS_PORT", "9109")),
        )
        try:
            supervisor.run(lambda: stopping["now"])
        except CrashLoop as exc:
            print(f"\n!!! {exc}\nstopping the suite", flush=True)
            status = 1
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        if local_nats:
            local_nats.stop()
        if local_pg:
            local_pg.stop()
        print("stopped", flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the whole suite in the foreground")
    run.add_argument("--data-dir", default=os.environ.get("ORDERDESK_DATA_DIR", "var"))
    run.add_argument("--no-demo", action="store_true", help="do not load the demo master data")
    run.add_argument(
        "--replicas", type=int, default=1, help="processes per service (more than 1 needs PostgreSQL)"
    )
    run.add_argument(
        "--postgres",
        default="",
        help="admin URL of a PostgreSQL server: one database per "
        "component (orderdesk_<name>), made if missing",
    )
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
