"""What every route module of Partner API v1 shares: the scopes, the caller's Principal, the backends,
the documented problem answers and the CSV body.

Each handler: authorise, build the request, one gRPC call, shape the answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from gateway import problems
from gateway.auth import Principal
from gateway.backends import Backends
from gateway.bodies import ProblemDocument

ORDERS, RETURNS, FULFILLMENT, ADMIN = "orders", "returns", "fulfillment", "admin"
CSV_MEDIA_TYPES = ("text/csv", "text/plain", "application/csv")
COMMON = (401, 403, 422, 429, 503)


def problem_responses(*codes: int) -> dict:
    described = {
        401: "missing or unknown API key",
        403: "the key lacks the scope",
        404: "not found (or not yours)",
        409: "the state forbids it (see `rule`)",
        412: "If-Match names an older version of the order",
        413: "body too large",
        415: "send text/csv",
        422: "invalid input; `errors` names each field",
        429: "over the key's rate limit or the partner's stream cap; see Retry-After and RateLimit-*",
        503: "a service did not answer; retry",
    }
    return {
        c: {
            "model": ProblemDocument,
            "description": described[c],
            "content": {
                problems.PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}
            },
        }
        for c in codes
    }


def scoped(*needed: str):
    """Dependency: the caller's Principal, refused with 401 (no/unknown key) or 403 (no scope).

    Deliberately one flat dependency: in FastAPI every nested dependency costs a
    resolution pass per request, measurable on the hot path (the bearer scheme is
    documented in the OpenAPI document by gateway.app instead).
    """

    async def principal(request: Request) -> Principal:
        # Authenticated by gateway.middleware before the body was read; the lookup here is for an app
        # called without it.
        who = getattr(request.state, "principal", None) or await request.app.state.authenticator.authenticate(
            request.headers.get("authorization")
        )
        who.require(needed)
        return who

    return Depends(principal)


def backends(request: Request) -> Backends:
    return request.app.state.services


ORDER_ID_MAX_LENGTH = 64
OrderId = Annotated[str, Path(max_length=ORDER_ID_MAX_LENGTH)]


async def csv_text(request: Request) -> str:
    """The body of a CSV upload as text: 415 for another media type, 422 when it is not UTF-8."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise problems.http_status(415, "send the CSV document as the body with 'Content-Type: text/csv'")
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        raise problems.validation([problems.FieldError("body", "the CSV must be UTF-8 text")]) from None
