"""mTLS settings (orderdesk/tls.py) and the development CA (devtools/pki.py): a half-made setting stops a
process naming what is missing, and each identity's certificate names it and its key is its owner's alone."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from devtools.pki import Authority
from orderdesk.tls import TlsSettings


def test_nothing_set_is_plaintext():
    assert not TlsSettings.from_env({}).enabled
    assert TlsSettings.from_env({}).as_env() == {}


def test_a_half_made_setting_names_what_is_missing():
    with pytest.raises(
        ValueError, match="ORDERDESK_TLS_CERT set but ORDERDESK_TLS_CA, ORDERDESK_TLS_KEY not"
    ):
        TlsSettings.from_env({"ORDERDESK_TLS_CERT": "/x.pem"})


def test_required_refuses_plaintext():
    with pytest.raises(ValueError, match="ORDERDESK_TLS_REQUIRED=true"):
        TlsSettings.from_env({"ORDERDESK_TLS_REQUIRED": "true"})


def test_an_unreadable_file_stops_the_process_naming_it(tmp_path):
    made = Authority().write(tmp_path, ["orders"])["orders"]
    env = {**made.as_env(), "ORDERDESK_TLS_KEY": str(tmp_path / "missing-key.pem")}
    with pytest.raises(ValueError, match="ORDERDESK_TLS_KEY: cannot read .*missing-key.pem"):
        TlsSettings.from_env(env)


def test_each_identity_gets_its_name_and_a_key_only_it_reads(tmp_path):
    made = Authority().write(tmp_path, ["orders", "cli"])
    settings = TlsSettings.from_env(made["orders"].as_env())
    assert settings == made["orders"] and settings.enabled
    ca, cert_pem, _ = settings.pem
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "orders"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["orders", "localhost"]
    assert cert.issuer == x509.load_pem_x509_certificate(ca).subject
    assert stat.S_IMODE((tmp_path / "orders-key.pem").stat().st_mode) == 0o600
    assert not list(tmp_path.glob("ca-key*"))  # the CA's key stays in memory
