"""OpenAPI links in the gateway's document: where an answer's id leads. Every 2xx answer whose body carries
an id (order_id, rma_id, …), itself or in the first of its listed items, links to every operation whose path
takes that id, so a client (and the stateful API fuzzing, tests/e2e/test_api_fuzz.py) can follow an order it
made to its changes, cancellation, returns …. Derived from the document itself: a new route is linked as
soon as its path names the id."""

from __future__ import annotations

import re

IDS = ("order_id", "rma_id", "shipment_id", "production_id", "exception_id", "endpoint_id")
PATH_PARAMETER = re.compile(r"{([^}]+)}")


def add_links(document: dict) -> dict:
    schemas = document.get("components", {}).get("schemas", {})
    takers = [  # (operationId, the path's parameters) of every operation on an id
        (operation["operationId"], PATH_PARAMETER.findall(path))
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict) and "operationId" in operation and PATH_PARAMETER.search(path)
    ]
    for operations in document["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                carried = _ids_carried(_body_schema(response, schemas), schemas)
                links = {
                    target: {"operationId": target, "parameters": {p: carried[p] for p in parameters}}
                    for target, parameters in takers
                    if parameters
                    and all(p in carried for p in parameters)
                    and target != operation.get("operationId")
                }
                if links:
                    response["links"] = links
    return document


def _body_schema(response: dict, schemas: dict) -> dict:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return _resolved(schema, schemas)


def _resolved(schema: dict, schemas: dict) -> dict:
    ref = schema.get("$ref", "")
    return schemas.get(ref.rsplit("/", 1)[-1], {}) if ref else schema


def _ids_carried(schema: dict, schemas: dict) -> dict[str, str]:
    """Each id the body carries -> the runtime expression that reads it (its own field, else the first item's
    of a list it carries)."""
    found: dict[str, str] = {}
    properties = schema.get("properties", {})
    for name in IDS:
        if name in properties:
            found[name] = f"$response.body#/{name}"
    for field, spec in properties.items():
        if spec.get("type") == "array":
            item = _resolved(spec.get("items", {}), schemas)
            for name in IDS:
                if name in item.get("properties", {}):
                    found.setdefault(name, f"$response.body#/{field}/0/{name}")
    return found
