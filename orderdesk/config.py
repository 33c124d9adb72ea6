"""Configuration from environment variables, one place for every process.

ORDERDESK_NATS_URL                 nats://127.0.0.1:4222; a JetStream cluster: every node, comma-separated
ORDERDESK_NATS_USER, _PASSWORD     this process's own NATS user (orderdesk/natsauth.py); unset: none
ORDERDESK_DATA_DIR                 ./var (SQLite files live here)
ORDERDESK_<SERVICE>_DATABASE_URL   default sqlite+aiosqlite:///<data dir>/<service>.db
ORDERDESK_<SERVICE>_ADDR           gRPC listen/dial address, default 127.0.0.1:<port>
ORDERDESK_<SERVICE>_TARGET         how others dial the service when it differs from ADDR (replicas):
                                   "127.0.0.1:15052,127.0.0.1:15062" (round robin) or a gRPC target
ORDERDESK_<SERVICE>_METRICS_PORT   Prometheus /metrics port (0 disables)
ORDERDESK_RPC_TIMEOUT              deadline of every outgoing gRPC call, seconds
ORDERDESK_GRPC_REFLECTION          false: a service lists its API to anyone who asks only when true (debugging)
ORDERDESK_TLS_CA, _CERT, _KEY      mTLS between the processes: PEM files (orderdesk/tls.py); unset: plaintext
ORDERDESK_WEBHOOK_*                the notifier's delivery settings (see WebhookSettings)
ORDERDESK_CONSOLE_*                the desk console's address, sessions and sign-in rules (see ConsoleSettings)
ORDERDESK_CLOCK_AT                 tests and demos only: the processes' clock read this RFC 3339 instant
ORDERDESK_CLOCK_SINCE              at this real instant (default: the process's start) and runs on
                                   (orderdesk.clock); unset: real time
ORDERDESK_STATUS_LINK_SECRET       the key of the end customer's signed status links (orderdesk/statuslinks.py)
ORDERDESK_CONSOLE_URL              the console's address as customers reach it (status links point there)
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orderdesk import clock
from orderdesk.tls import TlsSettings

SERVICES = ("intake", "orders", "inventory", "shipping", "returns", "notifier")
# Below Linux's ephemeral range (32768-60999, /proc/sys/net/ipv4/ip_local_port_range), where an outgoing
# connection could already hold a listening port we want (50051-50056 once kept orders from starting).
DEFAULT_GRPC_PORTS = {
    "intake": 15051,
    "orders": 15052,
    "inventory": 15053,
    "shipping": 15054,
    "returns": 15055,
    "notifier": 15056,
}
DEFAULT_METRICS_PORTS = {
    "intake": 9101,
    "orders": 9102,
    "inventory": 9103,
    "shipping": 9104,
    "returns": 9105,
    "notifier": 9106,
    "gateway": 9100,
    "console": 9107,
}


def env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def service_addr(service: str) -> str:
    return env(f"ORDERDESK_{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}")


def service_target(service: str) -> str:
    """How other processes reach a service: its TARGET (replicas: a comma-separated list), else its ADDR."""
    return env(f"ORDERDESK_{service.upper()}_TARGET", service_addr(service))


# Every channel between processes: keepalives, and a restarted peer used again within seconds
# (gRPC's default reconnect backoff grows to 120 s, leaving callers failing long after the peer is back).
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


def grpc_target(target: str) -> tuple[str, list[tuple[str, str | int]]]:
    """A dial target and its channel options (CHANNEL_OPTIONS and the balancing). A list of host:port
    (one per replica) becomes an `ipv4:` target balanced round robin over every address;
    `dns:///name:port` (a headless Kubernetes Service) is balanced round robin over what the name
    resolves to; one address is dialled as it is."""
    round_robin = [("grpc.lb_policy_name", "round_robin")]
    if "," in target:
        return "ipv4:" + ",".join(a.strip() for a in target.split(",") if a.strip()), [
            *CHANNEL_OPTIONS,
            *round_robin,
        ]
    if target.startswith("dns:"):
        return target, [*CHANNEL_OPTIONS, *round_robin]
    return target, list(CHANNEL_OPTIONS)


def nats_servers(url: str) -> list[str]:
    """ORDERDESK_NATS_URL as the list nats-py connects to: one URL, or several comma-separated (the nodes of
    a JetStream cluster: a client whose server dies reconnects to another)."""
    servers = [part.strip() for part in url.split(",") if part.strip()]
    if not servers:
        raise ValueError("ORDERDESK_NATS_URL is empty: give nats://host:port, or several comma-separated")
    return servers


@dataclass(frozen=True)
class NatsCredentials:
    """ORDERDESK_NATS_USER and ORDERDESK_NATS_PASSWORD: the process's own NATS user, whose permissions
    orderdesk/natsauth.py sets out. Both unset: no credentials (a NATS without authorization)."""

    user: str = ""
    password: str = field(default="", repr=False)  # never in a repr, so never in a log line

    @classmethod
    def from_env(cls) -> NatsCredentials:
        user = os.environ.get("ORDERDESK_NATS_USER", "").strip()
        password = os.environ.get("ORDERDESK_NATS_PASSWORD", "")
        if bool(user) != bool(password):
            raise ValueError(
                "ORDERDESK_NATS_USER and ORDERDESK_NATS_PASSWORD go together: set both, or neither"
            )
        return cls(user, password)

    def connect_options(self, component: str = "") -> dict[str, str]:
        """nats.connect's keywords: the user and password, and the component's own inbox prefix (the only
        inboxes its user may subscribe to)."""
        from orderdesk import natsauth

        options = {"user": self.user, "password": self.password} if self.user else {}
        if component:
            options["inbox_prefix"] = natsauth.inbox_prefix(component)
        return options


def data_dir() -> Path:
    return Path(env("ORDERDESK_DATA_DIR", "var"))


def database_url(component: str) -> str:
    default = f"sqlite+aiosqlite:///{data_dir() / (component + '.db')}"
    return normalize_database_url(env(f"ORDERDESK_{component.upper()}_DATABASE_URL", default))


def normalize_database_url(url: str) -> str:
    """Accepts the plain URLs operators write and picks the async driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://") :]
    if url.startswith("sqlite:///"):
        url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    return url


@dataclass(frozen=True)
class Settings:
    component: str
    database_url: str
    nats_url: str
    grpc_addr: str
    metrics_port: int
    rpc_timeout: float
    peers: dict[str, str] = field(default_factory=dict)
    clock_at: dt.datetime | None = None  # ORDERDESK_CLOCK_AT (orderdesk.clock): tests and demos only
    clock_since: dt.datetime | None = None  # ORDERDESK_CLOCK_SINCE: the real instant the clock read clock_at
    grpc_reflection: bool = False  # ORDERDESK_GRPC_REFLECTION: off, so a port reached tells nobody its API
    tls: TlsSettings = field(default_factory=TlsSettings)  # ORDERDESK_TLS_*: mTLS (orderdesk/tls.py)
    # ORDERDESK_HEALTH_PORT: the gRPC health service alone, plaintext, for probes that cannot show a certificate
    # (the kubelet's); 0: none
    health_port: int = 0

    @classmethod
    def from_env(cls, component: str) -> Settings:
        metrics_default = DEFAULT_METRICS_PORTS.get(component, 0)
        return cls(
            component=component,
            database_url=database_url(component),
            nats_url=env("ORDERDESK_NATS_URL", "nats://127.0.0.1:4222"),
            grpc_addr=service_addr(component) if component in SERVICES else "",
            metrics_port=int(env(f"ORDERDESK_{component.upper()}_METRICS_PORT", str(metrics_default))),
            rpc_timeout=float(env("ORDERDESK_RPC_TIMEOUT", "5")),
            peers={name: service_target(name) for name in SERVICES},
            clock_at=clock.parse_instant(env("ORDERDESK_CLOCK_AT", "")),
            clock_since=clock.parse_instant(env("ORDERDESK_CLOCK_SINCE", ""), "ORDERDESK_CLOCK_SINCE"),
            grpc_reflection=env_bool("ORDERDESK_GRPC_REFLECTION"),
            tls=TlsSettings.from_env(),
            health_port=int(env("ORDERDESK_HEALTH_PORT", "0")),
        )


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, "true" if default else "false").strip().lower() in ("1", "true", "yes", "on")


def webhook_allow_networks() -> str:
    """ORDERDESK_WEBHOOKS_ALLOW_NETWORKS as written (the notifier parses and checks it:
    services.notifier.domain.parse_networks); the former all-or-nothing ORDERDESK_WEBHOOKS_ALLOW_PRIVATE=true
    is refused, naming its replacement."""
    if env_bool("ORDERDESK_WEBHOOKS_ALLOW_PRIVATE"):
        raise ValueError(
            "ORDERDESK_WEBHOOKS_ALLOW_PRIVATE is gone: list the networks your receivers are on in "
            "ORDERDESK_WEBHOOKS_ALLOW_NETWORKS (e.g. 127.0.0.0/8) instead"
        )
    return env("ORDERDESK_WEBHOOKS_ALLOW_NETWORKS", "")


@dataclass(frozen=True)
class WebhookSettings:
    """The notifier's delivery settings (README "Webhooks and the event feed")."""

    # ORDERDESK_WEBHOOKS_ALLOW_NETWORKS: the non-public networks webhooks may reach, comma-separated
    # (development: the demo's and the tests' receivers, 127.0.0.0/8); empty in production: public https only.
    allow_networks: str
    max_attempts: int  # ORDERDESK_WEBHOOK_MAX_ATTEMPTS: attempts per round before a delivery is parked
    backoff: float  # ORDERDESK_WEBHOOK_BACKOFF_SECONDS: first retry delay, doubled each time
    max_backoff: float  # ORDERDESK_WEBHOOK_MAX_BACKOFF_SECONDS: cap of one retry delay
    timeout: float  # ORDERDESK_WEBHOOK_TIMEOUT_SECONDS: one POST, connect to last byte
    concurrency: int  # ORDERDESK_WEBHOOK_CONCURRENCY: POSTs in flight across all endpoints
    endpoint_concurrency: int = 4  # ORDERDESK_WEBHOOK_ENDPOINT_CONCURRENCY: POSTs in flight per endpoint
    # ORDERDESK_WEBHOOK_PARTNER_CONCURRENCY: POSTs in flight per partner, all its endpoints together (0: no cap)
    partner_concurrency: int = 16
    max_endpoints: int = 16  # ORDERDESK_WEBHOOK_MAX_ENDPOINTS: endpoints a partner may register (0: no cap)
    # ORDERDESK_WEBHOOK_SECRET_OVERLAP_SECONDS: after a rotation the old secret signs beside the new one this
    # long (both v1= values), so a receiver switches without losing a delivery; 0: it stops at once.
    secret_overlap_seconds: float = 86400.0

    @classmethod
    def from_env(cls) -> WebhookSettings:
        return cls(
            allow_networks=webhook_allow_networks(),
            max_attempts=int(env("ORDERDESK_WEBHOOK_MAX_ATTEMPTS", "8")),
            backoff=float(env("ORDERDESK_WEBHOOK_BACKOFF_SECONDS", "1")),
            max_backoff=float(env("ORDERDESK_WEBHOOK_MAX_BACKOFF_SECONDS", "600")),
            timeout=float(env("ORDERDESK_WEBHOOK_TIMEOUT_SECONDS", "10")),
            concurrency=int(env("ORDERDESK_WEBHOOK_CONCURRENCY", "64")),
            endpoint_concurrency=int(env("ORDERDESK_WEBHOOK_ENDPOINT_CONCURRENCY", "4")),
            partner_concurrency=int(env("ORDERDESK_WEBHOOK_PARTNER_CONCURRENCY", "16")),
            max_endpoints=int(env("ORDERDESK_WEBHOOK_MAX_ENDPOINTS", "16")),
            secret_overlap_seconds=float(env("ORDERDESK_WEBHOOK_SECRET_OVERLAP_SECONDS", "86400")),
        )


@dataclass(frozen=True)
class GatewayEdgeSettings:
    """The partner edge's limits (README "Partner API", "Limits")."""

    rate_limits: str = (
        ""  # ORDERDESK_RATE_LIMITS: "submit=50/200,read=100/400,..." (class=rate/burst) over defaults
    )
    streams_per_partner: int = (
        4  # ORDERDESK_STREAMS_PER_PARTNER: open long polls + SSE per partner (0: no cap)
    )
    limit_concurrency: int = (
        1000  # ORDERDESK_GATEWAY_LIMIT_CONCURRENCY: connections+tasks, then 503 (uvicorn)
    )
    keepalive_seconds: float = (
        5.0  # ORDERDESK_GATEWAY_KEEPALIVE_SECONDS: an idle keep-alive connection closes
    )
    keys_addr: str = (
        ""  # ORDERDESK_GATEWAY_KEYS_ADDR: the API-key admin gRPC for the console ("": not served)
    )

    @classmethod
    def from_env(cls) -> GatewayEdgeSettings:
        return cls(
            rate_limits=env("ORDERDESK_RATE_LIMITS", ""),
            streams_per_partner=int(env("ORDERDESK_STREAMS_PER_PARTNER", "4")),
            limit_concurrency=int(env("ORDERDESK_GATEWAY_LIMIT_CONCURRENCY", "1000")),
            keepalive_seconds=float(env("ORDERDESK_GATEWAY_KEEPALIVE_SECONDS", "5")),
            keys_addr=env("ORDERDESK_GATEWAY_KEYS_ADDR", "").strip(),
        )


@dataclass(frozen=True)
class ConsoleSettings:
    """The desk console's own settings (README "Console"); its database, peers and metrics port come from
    `Settings.from_env("console")` like every process's."""

    addr: str  # ORDERDESK_CONSOLE_ADDR: where it listens, default 127.0.0.1:8090
    session_idle_seconds: int  # ORDERDESK_CONSOLE_SESSION_IDLE_SECONDS: signed out after this long unused
    session_max_seconds: int  # ORDERDESK_CONSOLE_SESSION_MAX_SECONDS: signed out this long after signing in
    secure_cookies: str  # ORDERDESK_CONSOLE_SECURE_COOKIES: auto (Secure over https) | true | false
    signin_window_seconds: int  # ORDERDESK_CONSOLE_SIGNIN_WINDOW_SECONDS: failures counted over this window
    signin_account_limit: (
        int  # ORDERDESK_CONSOLE_SIGNIN_ACCOUNT_LIMIT: failed sign-ins per account per window
    )
    signin_address_limit: (
        int  # ORDERDESK_CONSOLE_SIGNIN_ADDRESS_LIMIT: failed sign-ins per address per window
    )
    lock_after: int  # ORDERDESK_CONSOLE_LOCK_AFTER: failures in a row that lock the account
    lock_seconds: int  # ORDERDESK_CONSOLE_LOCK_SECONDS: how long a locked account stays locked
    gateway_keys: str = ""  # ORDERDESK_GATEWAY_KEYS_ADDR: the gateway's API-key gRPC ("": no API keys page)

    @classmethod
    def from_env(cls) -> ConsoleSettings:
        secure = env("ORDERDESK_CONSOLE_SECURE_COOKIES", "auto").strip().lower()
        if secure not in ("auto", "true", "false"):
            raise ValueError("ORDERDESK_CONSOLE_SECURE_COOKIES is auto, true or false")
        return cls(
            addr=env("ORDERDESK_CONSOLE_ADDR", "127.0.0.1:8090"),
            session_idle_seconds=int(env("ORDERDESK_CONSOLE_SESSION_IDLE_SECONDS", "1800")),
            session_max_seconds=int(env("ORDERDESK_CONSOLE_SESSION_MAX_SECONDS", "43200")),
            secure_cookies=secure,
            signin_window_seconds=int(env("ORDERDESK_CONSOLE_SIGNIN_WINDOW_SECONDS", "300")),
            signin_account_limit=int(env("ORDERDESK_CONSOLE_SIGNIN_ACCOUNT_LIMIT", "5")),
            signin_address_limit=int(env("ORDERDESK_CONSOLE_SIGNIN_ADDRESS_LIMIT", "30")),
            lock_after=int(env("ORDERDESK_CONSOLE_LOCK_AFTER", "10")),
            lock_seconds=int(env("ORDERDESK_CONSOLE_LOCK_SECONDS", "900")),
            gateway_keys=env("ORDERDESK_GATEWAY_KEYS_ADDR", "").strip(),
        )


class ArchiveSettingError(ValueError):
    """An archive setting that cannot be read: the orders service refuses to start, naming it."""


@dataclass(frozen=True)
class ArchiveSettings:
    """Orders' archive job (README "Archive"): closed orders untouched for `after_days` leave the hot tables.

    ORDERDESK_ARCHIVE_AFTER_DAYS        180: days since a closed order (completed, cancelled, rejected) last
                                        changed; fractions allowed; 0 never archives
    ORDERDESK_ARCHIVE_INTERVAL_SECONDS  3600: between passes (first pass a minute after start)
    ORDERDESK_ARCHIVE_BATCH             200: orders moved per transaction (1..5000)
    """

    after_days: float = 180.0
    interval_seconds: float = 3600.0
    batch: int = 200

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ArchiveSettings:
        environ = dict(os.environ) if environ is None else environ
        values: dict[str, float | int] = {}
        problems: list[str] = []
        for name, attr, kind, low, high in (
            ("ORDERDESK_ARCHIVE_AFTER_DAYS", "after_days", float, 0.0, None),
            ("ORDERDESK_ARCHIVE_INTERVAL_SECONDS", "interval_seconds", float, 1.0, None),
            ("ORDERDESK_ARCHIVE_BATCH", "batch", int, 1, 5000),
        ):
            text = environ.get(name, "").strip()
            if not text:
                continue
            try:
                value = kind(text)
            except ValueError:
                problems.append(f"{name}={text!r}: must be a {'whole ' if kind is int else ''}number")
                continue
            if value != value or value in (float("inf"), float("-inf")) or value < low:
                problems.append(f"{name}={text!r}: must be at least {low:g}")
            elif high is not None and value > high:
                problems.append(f"{name}={text!r}: must be at most {high:g}")
            else:
                values[attr] = value
        if problems:
            raise ArchiveSettingError("refusing to start, archive settings: " + "; ".join(problems))
        return cls(**values)  # type: ignore[arg-type]


PEPPER_FILE = "key-pepper"
MIN_PEPPER_LENGTH = 32


def key_pepper() -> bytes:
    """The secret API keys are hashed with (HMAC-SHA256): ORDERDESK_KEY_PEPPER (a Kubernetes Secret; the
    same value for every gateway replica and the CLI), at least 32 characters. Unset, a single-host setup
    (`make run`, tests) uses `<data dir>/key-pepper`, made once with 256 random bits (mode 0600); a
    deployment with replicas must set the variable. Changing it invalidates every stored key."""
    import secrets

    value = os.environ.get("ORDERDESK_KEY_PEPPER", "")
    if value:
        if len(value) < MIN_PEPPER_LENGTH:
            raise ValueError(f"ORDERDESK_KEY_PEPPER must be at least {MIN_PEPPER_LENGTH} characters")
        return value.encode()
    return local_secret(PEPPER_FILE, lambda: secrets.token_urlsafe(32), "ORDERDESK_KEY_PEPPER").encode()


def local_secret(name: str, make: Callable[[], str], setting: str) -> str:
    """A single host's secret in `<data dir>/<name>` (mode 0600), made once by `make` by whichever process
    comes first: the development default of a `setting` a deployment gives from its secret store."""
    path = data_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(make())
    for _ in range(50):  # a process that made it a moment ago may still be writing
        text = path.read_text().strip()
        if text:
            return text
        import time

        time.sleep(0.01)
    raise ValueError(f"{path} is empty: delete it or set {setting}")


def demo_keys_allowed() -> bool:
    """ORDERDESK_DEMO_KEYS=true (development only: `make run`, the tests): the partners CSV may name a key
    (the demo's `demo-shop-key` ...). Otherwise every key is generated (`orderdesk keys create`)."""
    return env_bool("ORDERDESK_DEMO_KEYS")


@dataclass(frozen=True)
class StatusLinkSettings:
    """The end customer's signed status links (orderdesk/statuslinks.py, README "The desk's backend")."""

    secret: str  # ORDERDESK_STATUS_LINK_SECRET: the HMAC key; the gateway signs, the console verifies
    console_url: str  # ORDERDESK_CONSOLE_URL: the console's public base URL, default http://127.0.0.1:8090

    @classmethod
    def from_env(cls) -> StatusLinkSettings:
        return cls(
            secret=os.environ.get("ORDERDESK_STATUS_LINK_SECRET", ""),
            console_url=env("ORDERDESK_CONSOLE_URL", "http://127.0.0.1:8090").rstrip("/"),
        )


# How long the personal data on a closed order must be kept (the legal retention of commercial records:
# 10 years for booking records and invoices in Germany, HGB §257 / AO §147; shorten it where the law of the
# deployment does). Only after it may a customer's data on the order be erased (orderdesk/erasure.py).
DEFAULT_PERSONAL_DATA_RETENTION_DAYS = 3653.0


def personal_data_retention_days() -> float:
    """ORDERDESK_PERSONAL_DATA_RETENTION_DAYS: days after an order closed (completed, cancelled, rejected)
    during which its personal data is kept; fractions allowed; 0: erasable as soon as it closed."""
    name = "ORDERDESK_PERSONAL_DATA_RETENTION_DAYS"
    text = env(name, str(DEFAULT_PERSONAL_DATA_RETENTION_DAYS))
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: must be a number of days") from None
    if not days >= 0 or days == float("inf"):
        raise ValueError(f"{name}={text!r}: must be a finite number of days, not negative")
    return days


@dataclass(frozen=True)
class WatchSettings:
    """The promise watch's settings (README "Promise watch"); a bad value stops the orders process."""

    lead_days: int = 3  # ORDERDESK_WATCH_LEAD_DAYS: release to delivery at the least, working days
    carrier_silence_hours: float = 48.0  # ORDERDESK_WATCH_CARRIER_SILENCE_HOURS: shipped, no carrier event
    max_hold_hours: float = 24.0  # ORDERDESK_WATCH_MAX_HOLD_HOURS: on hold at most this long
    recheck_minutes: float = (
        60.0  # ORDERDESK_WATCH_RECHECK_MINUTES: an open order is assessed at least so often
    )
    interval_seconds: float = 5.0  # ORDERDESK_WATCH_INTERVAL_SECONDS: between polls for due orders
    batch: int = 500  # ORDERDESK_WATCH_BATCH: orders per pass (one read, one transaction)
    working_days: str = "Mon-Fri"  # ORDERDESK_WATCH_WORKING_DAYS: the days the watch's day arithmetic counts

    @classmethod
    def from_env(cls, environ=None) -> WatchSettings:
        environ = os.environ if environ is None else environ
        values: dict = {}
        problems = []
        for name, kind, low in (
            ("lead_days", int, 0),
            ("carrier_silence_hours", float, 0.01),
            ("max_hold_hours", float, 0.01),
            ("recheck_minutes", float, 0.01),
            ("interval_seconds", float, 0.01),
            ("batch", int, 1),
        ):
            var = "ORDERDESK_WATCH_" + name.upper()
            text = (environ.get(var) or "").strip()
            if not text:
                continue
            try:
                value = kind(text)
                if value < low:
                    raise ValueError
            except ValueError:
                problems.append(
                    f"{var}={text!r}: a {'whole ' if kind is int else ''}number of at least {low:g}"
                )
                continue
            values[name] = value
        days = (environ.get("ORDERDESK_WATCH_WORKING_DAYS") or "").strip()
        if days:
            from orderdesk.calendar import parse_working_days

            try:
                parse_working_days(days)
                values["working_days"] = days
            except ValueError as exc:
                problems.append(f"ORDERDESK_WATCH_WORKING_DAYS={days!r}: {exc}")
        if problems:
            raise ValueError("promise watch settings: " + "; ".join(problems))
        return cls(**values)


CARRIER_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_CARRIER_SECRET_LENGTH = 16


def parse_carrier_secrets(text: str) -> dict[str, tuple[str, ...]]:
    """ "dhl=s1,ups=s2,dhl=s3" -> {"dhl": ("s1", "s3"), "ups": ("s2",)}: a carrier may have two while its
    secret is rotated. A malformed entry raises ValueError naming it (never its secret)."""
    found: dict[str, tuple[str, ...]] = {}
    for n, entry in enumerate(filter(None, (e.strip() for e in text.split(","))), start=1):
        code, sep, secret = entry.partition("=")
        code, secret = code.strip().lower(), secret.strip()
        if not sep or not CARRIER_CODE.match(code):
            raise ValueError(
                f"entry {n}: write carrier=secret, the carrier in lower-case letters, digits, - or _"
            )
        if len(secret) < MIN_CARRIER_SECRET_LENGTH:
            raise ValueError(
                f"entry {n} ({code}): a secret has at least {MIN_CARRIER_SECRET_LENGTH} characters"
            )
        found[code] = (*found.get(code, ()), secret)
    return found


@dataclass(frozen=True)
class CarrierSettings:
    """Carriers' and tracking aggregators' shared secrets (README "Carriers")."""

    secrets: dict[str, tuple[str, ...]]  # ORDERDESK_CARRIER_SECRETS: carrier=secret,…; a Kubernetes Secret
    tolerance_seconds: int  # ORDERDESK_CARRIER_SIGNATURE_TOLERANCE_SECONDS: an older timestamp is stale

    @classmethod
    def from_env(cls) -> CarrierSettings:
        try:
            secrets = parse_carrier_secrets(os.environ.get("ORDERDESK_CARRIER_SECRETS", ""))
        except ValueError as exc:
            raise ValueError(f"ORDERDESK_CARRIER_SECRETS: {exc}") from None
        return cls(secrets, int(env("ORDERDESK_CARRIER_SIGNATURE_TOLERANCE_SECONDS", "300")))
