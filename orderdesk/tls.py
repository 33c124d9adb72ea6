"""mTLS between the suite's processes (README "mTLS inside"): every gRPC server asks for a client certificate
from the deployment's CA, every channel shows its own and checks the server's name. A process's identity is
its certificate's common name (intake, orders, ..., gateway, console, cli); orderdesk/access.py says what each
identity may call and orderdesk.runtime.Authorize enforces it.

ORDERDESK_TLS_CA        PEM file: the CA that signed every process's certificate (peers are checked against it)
ORDERDESK_TLS_CERT      PEM file: this process's certificate (its common name is its identity)
ORDERDESK_TLS_KEY       PEM file: its private key
ORDERDESK_TLS_REQUIRED  true: refuse to start without the three above (production), instead of plaintext

None of the three set: plaintext, as before mTLS, with a warning at start-up (unit and integration tests with
fake servers run that way). Every server port and every channel of the suite is made here, never by hand.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import grpc

ENV = {"ca": "ORDERDESK_TLS_CA", "cert": "ORDERDESK_TLS_CERT", "key": "ORDERDESK_TLS_KEY"}
REQUIRED_ENV = "ORDERDESK_TLS_REQUIRED"
Options = Sequence[tuple[str, Any]]


@dataclass(frozen=True)
class TlsSettings:
    """The three PEM files, or none (plaintext)."""

    ca: str = ""
    cert: str = ""
    key: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TlsSettings:
        """From ORDERDESK_TLS_* in `environ` (default: this process's); a half-made setting or a file that
        cannot be read stops the process here, naming it."""
        environ = os.environ if environ is None else environ
        paths = {field: environ.get(name, "").strip() for field, name in ENV.items()}
        given = [ENV[f] for f, p in paths.items() if p]
        if given and len(given) != len(ENV):
            missing = [ENV[f] for f, p in paths.items() if not p]
            raise ValueError(f"mTLS half configured: {', '.join(given)} set but {', '.join(missing)} not")
        if not given and environ.get(REQUIRED_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
            raise ValueError(f"{REQUIRED_ENV}=true but {', '.join(ENV.values())} are not set")
        settings = cls(**paths)
        if settings.enabled:
            _ = settings.pem  # read now: a missing file is a start-up error, not a failed call later
        return settings

    @property
    def enabled(self) -> bool:
        return bool(self.ca)

    def as_env(self) -> dict[str, str]:
        """The environment that configures a process with these files (devtools.devstack)."""
        return {name: getattr(self, field) for field, name in ENV.items()} if self.enabled else {}

    @cached_property
    def pem(self) -> tuple[bytes, bytes, bytes]:
        """(CA, certificate, key) as bytes."""
        read = []
        for field in ("ca", "cert", "key"):
            path = getattr(self, field)
            try:
                with open(path, "rb") as f:
                    read.append(f.read())
            except OSError as exc:
                raise ValueError(f"{ENV[field]}: cannot read {path}: {exc.strerror}") from None
        return read[0], read[1], read[2]

    def server_credentials(self) -> grpc.ServerCredentials:
        ca, cert, key = self.pem
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self.pem
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def add_port(server: grpc.aio.Server | grpc.Server, addr: str, tls: TlsSettings) -> int:
    """Listens on `addr`: mTLS when configured (a client without a certificate from the CA is refused in the
    handshake), else plaintext. Returns the port (addr may end in :0)."""
    if tls.enabled:
        return server.add_secure_port(addr, tls.server_credentials())
    return server.add_insecure_port(addr)


def _options(peer: str, tls: TlsSettings, options: Options) -> list[tuple[str, Any]]:
    # The server must show the certificate of the component we mean to reach (its DNS name `peer`), whatever
    # address we dial: an IP, a list of replicas, a headless Service's name.
    return [*options, ("grpc.ssl_target_name_override", peer)] if tls.enabled else list(options)


def aio_channel(target: str, tls: TlsSettings, *, peer: str, options: Options = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to component `peer` (intake, orders, ..., gateway) at `target`."""
    if tls.enabled:
        return grpc.aio.secure_channel(
            target, tls.channel_credentials(), options=_options(peer, tls, options)
        )
    return grpc.aio.insecure_channel(target, options=list(options))


def channel(target: str, tls: TlsSettings, *, peer: str, options: Options = ()) -> grpc.Channel:
    """The same, blocking (readiness checks, the CLI's backup)."""
    if tls.enabled:
        return grpc.secure_channel(target, tls.channel_credentials(), options=_options(peer, tls, options))
    return grpc.insecure_channel(target, options=list(options))


def announce(component: str, tls: TlsSettings, log: logging.Logger) -> None:
    """The start-up line that says whether this process proves who it is (and asks its callers to)."""
    if tls.enabled:
        log.info("mTLS on", extra={"component": component, "cert": tls.cert})
    else:
        log.warning(
            "running WITHOUT mTLS: %s are not set, so gRPC is plaintext and any caller may call any method",
            ", ".join(ENV.values()),
        )


def caller(context: grpc.aio.ServicerContext) -> str:
    """The identity of the client of a call: its certificate's common name ("" when it has none)."""
    names = context.auth_context().get("x509_common_name") or [b""]
    return names[0].decode("utf-8", "replace")
