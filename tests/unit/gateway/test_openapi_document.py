"""The partner API's OpenAPI document is a contract: paths, operation ids and schemas change only on purpose.

openapi.json beside this test is the document as published. After a deliberate change of the API, rewrite it
with `ORDERDESK_UPDATE_OPENAPI=1 .venv/bin/python -m pytest tests/unit/gateway/test_openapi_document.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gateway.app import create_app
from orderdesk.config import Settings

PUBLISHED = Path(__file__).with_name("openapi.json")


def document() -> dict:
    settings = Settings(
        component="gateway",
        database_url="sqlite+aiosqlite:///unused.db",
        nats_url="nats://unused",
        grpc_addr="127.0.0.1:1",
        metrics_port=0,
        rpc_timeout=1.0,
    )
    return create_app(settings).openapi()  # built from the routes alone: nothing is started


def operations(doc: dict) -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, op["operationId"])
        for path, methods in doc["paths"].items()
        for method, op in methods.items()
    ]


def test_the_document_is_the_published_one():
    current = document()
    if os.environ.get("ORDERDESK_UPDATE_OPENAPI"):
        PUBLISHED.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert operations(current) == operations(published)  # the paths in order, each with its operation id
    assert sorted(current["components"]["schemas"]) == sorted(published["components"]["schemas"])
    assert current == published


def test_every_operation_has_a_unique_id_and_the_bearer_scheme():
    doc = document()
    ids = [op_id for _, _, op_id in operations(doc)]
    assert len(ids) == len(set(ids)) == 53
    assert doc["security"] == [{"apiKey": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
