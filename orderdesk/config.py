"""Configuration from environment variables, one place for every process.

ORDERDESK_NATS_URL                 nats://127.0.0.1:4222
ORDERDESK_DATA_DIR                 ./var (SQLite files live here)
ORDERDESK_<SERVICE>_DATABASE_URL   default sqlite+aiosqlite:///<data dir>/<service>.db
ORDERDESK_<SERVICE>_ADDR           gRPC listen/dial address, default 127.0.0.1:<port>
ORDERDESK_<SERVICE>_METRICS_PORT   Prometheus /metrics port (0 disables)
ORDERDESK_RPC_TIMEOUT              deadline of every outgoing gRPC call, seconds
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("intake", "orders", "inventory", "shipping", "returns")
DEFAULT_GRPC_PORTS = {"intake": 50051, "orders": 50052, "inventory": 50053, "shipping": 50054, "returns": 50055}
DEFAULT_METRICS_PORTS = {
    "intake": 9101,
    "orders": 9102,
    "inventory": 9103,
    "shipping": 9104,
    "returns": 9105,
    "gateway": 9100,
}


def env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def service_addr(service: str) -> str:
    return env(f"ORDERDESK_{service.upper()}_ADDR", f"127.0.0.1:{DEFAULT_GRPC_PORTS[service]}")


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
            peers={name: service_addr(name) for name in SERVICES},
        )
