"""A throw-away certificate authority for the development stack and the tests (README "mTLS inside").

`make run`, the end-to-end tests and the benchmark start the suite secured, as production runs: at start-up
devtools.devstack makes a CA here, valid a day, and one certificate per identity (each component, and `cli`
for the operator's tool and the tests), whose common name is the identity (orderdesk/access.py) and whose
names cover the component's name (the name channels check, orderdesk.tls), localhost and 127.0.0.1. The CA's
key never touches the disk; each process gets only its own key (mode 0600) and the CA's certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devtools.localservers import write_private
from orderdesk.tls import TlsSettings

VALID_FOR = dt.timedelta(days=1)
CLOCK_SKEW = dt.timedelta(minutes=5)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Authority:
    """A CA in memory: `issue(identity)` makes a certificate and key signed by it."""

    def __init__(self, name: str = "orderdesk development CA", valid_for: dt.timedelta = VALID_FOR):
        self.valid_for = valid_for
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + valid_for)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, identity: str) -> tuple[bytes, bytes]:
        """(certificate, key) in PEM for `identity`: client and server use, named identity/localhost/127.0.0.1."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names = [
            x509.DNSName(identity),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + self.valid_for)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def write(self, folder: Path, identities: Iterable[str]) -> dict[str, TlsSettings]:
        """The CA's certificate and one certificate and key per identity in `folder`; each identity's settings."""
        folder.mkdir(parents=True, exist_ok=True)
        ca = folder / "ca.pem"
        ca.write_bytes(self.ca_pem)
        made = {}
        for identity in identities:
            cert, key = self.issue(identity)
            cert_path, key_path = folder / f"{identity}.pem", folder / f"{identity}-key.pem"
            cert_path.write_bytes(cert)
            write_private(key_path, key)
            made[identity] = TlsSettings(ca=str(ca), cert=str(cert_path), key=str(key_path))
        return made
