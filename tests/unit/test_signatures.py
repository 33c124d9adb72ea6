"""One signature scheme for our webhooks and the carriers' events (orderdesk.signatures), and the carriers'
secrets from configuration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderdesk.config import parse_carrier_secrets
from orderdesk.signatures import Verdict, check, signature, signature_header, verify

SECRET, OLD = "whsec_a-carriers-secret-0001", "whsec_the-one-before-00002"
BODY = b'{"events": []}'
NOW = 1_800_000_000


def test_a_signed_body_is_valid_and_names_its_signature():
    checked = check([SECRET], signature_header(SECRET, NOW, BODY), BODY, NOW)
    assert checked.verdict is Verdict.VALID
    assert checked.signature == signature(SECRET, NOW, BODY) and checked.timestamp == NOW


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", f"t={NOW}", "v1=00", "garbage"])
def test_no_timestamp_or_no_signature_is_unsigned(header):
    assert check([SECRET], header, BODY, NOW).verdict is Verdict.UNSIGNED


def test_an_old_or_future_timestamp_is_stale_even_when_the_signature_matches():
    for t in (NOW - 301, NOW + 301):
        assert check([SECRET], signature_header(SECRET, t, BODY), BODY, NOW, 300).verdict is Verdict.STALE
    assert check([SECRET], signature_header(SECRET, NOW - 300, BODY), BODY, NOW, 300).verdict is Verdict.VALID


def test_another_secret_or_another_body_is_a_bad_signature():
    header = signature_header(SECRET, NOW, BODY)
    assert check([OLD], header, BODY, NOW).verdict is Verdict.BAD_SIGNATURE
    assert check([SECRET], header, BODY + b" ", NOW).verdict is Verdict.BAD_SIGNATURE


def test_either_secret_while_rotating_and_either_value_sent():
    assert check([SECRET, OLD], signature_header(OLD, NOW, BODY), BODY, NOW).verdict is Verdict.VALID
    both = f"t={NOW},v1={signature(OLD, NOW, BODY)},v1={signature(SECRET, NOW, BODY)}"
    assert verify(SECRET, both, BODY, NOW) and verify(OLD, both, BODY, NOW)


@given(st.binary(max_size=200), st.integers(0, 2**40))
def test_any_body_verifies_only_with_its_own_signature(body, t):
    header = signature_header(SECRET, t, body)
    assert verify(SECRET, header, body, t)
    assert not verify(SECRET, header, body + b"x", t)


def test_carrier_secrets_from_configuration():
    secrets = parse_carrier_secrets(f" DHL={SECRET}, ups={OLD},dhl={OLD} ")
    assert secrets == {"dhl": (SECRET, OLD), "ups": (OLD,)}
    assert parse_carrier_secrets("") == {}
    with pytest.raises(ValueError, match="at least 16") as short:
        parse_carrier_secrets("dhl=short")
    assert "short" not in str(short.value).split(":", 1)[-1]  # the secret itself is never in the message
    with pytest.raises(ValueError, match="carrier=secret"):
        parse_carrier_secrets("dhl hub=" + SECRET)


def test_a_rotation_signs_with_both_secrets_and_either_verifies():
    header = signature_header(SECRET, NOW, BODY, OLD)
    assert header.count("v1=") == 2
    assert check([SECRET], header, BODY, NOW).verdict is Verdict.VALID  # a receiver already on the new one
    assert check([OLD], header, BODY, NOW).verdict is Verdict.VALID  # one still on the old one
    assert check(["whsec_someone_else_000"], header, BODY, NOW).verdict is Verdict.BAD_SIGNATURE
