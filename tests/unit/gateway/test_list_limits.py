"""Every page size a partner can ask for is capped in the published OpenAPI document (and so by the app)."""

from __future__ import annotations

import json
from pathlib import Path

DOCUMENT = json.loads((Path(__file__).parent / "openapi.json").read_text())


def test_every_limit_parameter_has_a_maximum():
    limits = [
        (path, method, p["schema"])
        for path, operations in DOCUMENT["paths"].items()
        for method, operation in operations.items()
        for p in operation.get("parameters", [])
        if p["name"] == "limit"
    ]
    assert limits, "no list route found"
    for path, method, schema in limits:
        assert 1 <= schema.get("maximum", 0) <= 500, (method, path, schema)


def test_the_orders_csv_upload_documents_its_caps():
    body = DOCUMENT["paths"]["/v1/orders/csv"]["post"]["requestBody"]
    assert body["content"]["text/csv"]["schema"]["maxLength"] == 2 * 1024 * 1024
    assert "1000 orders" in body["description"] and "5000 rows" in body["description"]
    assert "413" in DOCUMENT["paths"]["/v1/orders/csv"]["post"]["responses"]
