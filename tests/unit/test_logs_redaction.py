"""Log redaction covers the message text, exceptions and every field's value, not only fields named secret;
and SQL parameters never reach a log or an error's text (hide_parameters)."""

from __future__ import annotations

import json
import logging
import sqlite3

import pytest
import sqlalchemy as sa

from orderdesk.db import ENGINE_OPTIONS
from orderdesk.logs import JsonFormatter, fields, redact

SECRETS = [
    ("key odk_AbCdEfGhIjKlMnOpQrStUv was used", "odk_AbCdEfGhIjKlMnOpQrStUv"),
    ("Authorization: Bearer demo-shop-key", "demo-shop-key"),
    ("connect postgresql://gateway:s3cr3t-pw@db:5432/gateway failed", "s3cr3t-pw"),
    ("rotated to whsec_abcdefghijklmnop", "whsec_abcdefghijklmnop"),
    (
        "Orderdesk-Signature: t=1700000000,v1=0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef",
    ),
    ("retry with password=hunter2 later", "hunter2"),
    ('{"api_key": "chosen-key", "x": 1}', "chosen-key"),
    ("ORDERDESK_KEY_PEPPER=pepper-value-of-32-characters-xx", "pepper-value-of-32-characters-xx"),
]


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_secrets_in_text_are_masked(text, secret):
    assert secret not in redact(text)


def test_ordinary_text_is_left_alone():
    text = "order ORD-20261203-0001 confirmed for C0001 (tokens left: 3, secretary's note)"
    assert redact(text) == text


def _format(record: logging.LogRecord) -> dict:
    return json.loads(JsonFormatter().format(record))


def test_the_formatter_masks_message_fields_and_exceptions():
    logger = logging.getLogger("test.redaction")
    record = logger.makeRecord(
        "test.redaction",
        logging.WARNING,
        __file__,
        1,
        "delivery to %s failed",
        ("https://u:pw123@h.example/",),
        None,
        extra=fields(error="401 for Bearer odk_AbCdEfGhIjKlMnOpQrSt", secret="whatever", count=3),
    )
    try:
        raise ValueError("bad key odk_ZyXwVuTsRqPoNmLkJiHg")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    entry = _format(record)
    text = json.dumps(entry)
    for secret in ("pw123", "odk_AbCdEfGhIjKlMnOpQrSt", "odk_ZyXwVuTsRqPoNmLkJiHg", "whatever"):
        assert secret not in text, secret
    assert entry["count"] == 3 and entry["secret"] == "***" and "failed" in entry["msg"]


def test_sql_parameters_are_hidden_from_errors():
    engine = sa.create_engine("sqlite://", **ENGINE_OPTIONS)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (k TEXT PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO t VALUES (:k)"), {"k": "odk_secret-parameter"})
        with pytest.raises(sa.exc.IntegrityError) as caught:
            conn.execute(sa.text("INSERT INTO t VALUES (:k)"), {"k": "odk_secret-parameter"})
    assert isinstance(caught.value.orig, sqlite3.IntegrityError)
    assert "odk_secret-parameter" not in str(caught.value) and "hidden" in str(caught.value)
