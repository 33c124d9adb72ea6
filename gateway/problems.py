"""problem+json (RFC 9457) for every error the gateway answers, and the gRPC -> HTTP mapping.

A gRPC failure becomes a `Problem` here, in plain Python (no I/O), so the mapping
is unit-tested on its own. Only messages written by our own domain code (those
that carry an orderdesk ErrorInfo) reach the partner; a transport error's text
(addresses, stack details) never does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from orderdesk import errors as domain_errors
from orderdesk.rpc import RpcFailure

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://orderdesk.io/problems/"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    reason: str = ""


@dataclass(eq=False)  # an exception stays hashable
class Problem(Exception):
    """An HTTP error answer. Raise it from a handler; the app renders it as problem+json."""

    status: int
    title: str
    detail: str = ""
    slug: str = "about-blank"
    errors: list[FieldError] = field(default_factory=list)
    rule: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, correlation_id: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
        }
        if self.errors:
            body["errors"] = [
                {"field": e.field, "message": e.message, **({"reason": e.reason} if e.reason else {})}
                for e in self.errors
            ]
        if self.rule:
            body["rule"] = self.rule
        if correlation_id:
            body["correlation_id"] = correlation_id
        return body


# --- the gateway's own refusals ---------------------------------------------------------
def unauthenticated(detail: str) -> Problem:
    return Problem(401, "Unauthenticated", detail, "unauthenticated", headers={"WWW-Authenticate": "Bearer"})


def forbidden(needed: Sequence[str]) -> Problem:
    return Problem(
        403,
        "Forbidden",
        f"this API key lacks the scope for this request (one of: {', '.join(needed)})",
        "forbidden",
    )


def validation(errors: list[FieldError], detail: str = "the request is invalid") -> Problem:
    return Problem(422, "Unprocessable Content", detail, "invalid-request", errors)


def too_large(limit: int) -> Problem:
    return Problem(413, "Content Too Large", f"the request body is larger than {limit} bytes", "too-large")


def too_large_document(errors: list[FieldError]) -> Problem:
    return Problem(
        413,
        "Content Too Large",
        "the document is larger than one request may carry; nothing was submitted",
        "too-large",
        errors,
    )


def rate_limited(retry_after: int) -> Problem:
    return Problem(
        429,
        "Too Many Requests",
        f"this API key is over its rate limit for this kind of request; retry after {retry_after} s "
        "(RateLimit-* headers tell the limit and what is left)",
        "rate-limited",
        headers={"Retry-After": str(retry_after)},
    )


def too_many_streams(cap: int) -> Problem:
    return Problem(
        429,
        "Too Many Requests",
        f"this partner already has {cap} event streams (long polls or SSE) open; close one first",
        "too-many-streams",
        headers={"Retry-After": "1"},
    )


def http_status(status: int, detail: str) -> Problem:
    """Starlette's own HTTP errors (404 for an unknown path, 405, ...) in problem form."""
    titles = {
        400: "Bad Request",
        404: "Not Found",
        405: "Method Not Allowed",
        413: "Content Too Large",
        415: "Unsupported Media Type",
    }
    return Problem(status, titles.get(status, "Error"), detail, "http-" + str(status))


def internal() -> Problem:
    return Problem(
        500,
        "Internal Server Error",
        "the request failed; the correlation id identifies it in our logs",
        "internal",
    )


# --- field paths of request validation (pydantic / FastAPI) ----------------------------------
def field_path(loc: Sequence[str | int]) -> str:
    """("body", "lines", 0, "quantity") -> "lines[0].quantity"; ("header", "Idempotency-Key") -> "Idempotency-Key"."""
    parts = list(loc)
    if (
        len(parts) > 1
        and parts[0] in ("body", "query", "path", "header", "cookie")
        and not isinstance(parts[1], int)
    ):
        parts = parts[1:]  # the source goes, unless an index follows it ("body[17]": a JSON error's position)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "body"


def from_validation_errors(raw: Sequence[Mapping[str, Any]]) -> Problem:
    errors = [
        FieldError(
            "body" if e.get("type") == "json_invalid" else field_path(e.get("loc", ())),
            str(e.get("msg", "invalid")),
            str(e.get("type", "")),
        )
        for e in raw
    ]
    return validation(errors, f"the request has {len(errors)} problem(s); nothing was changed")


# --- gRPC -> HTTP -------------------------------------------------------------------------
_BY_CODE: dict[grpc.StatusCode, tuple[int, str, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (422, "Unprocessable Content", "invalid-request"),
    grpc.StatusCode.OUT_OF_RANGE: (422, "Unprocessable Content", "invalid-request"),
    grpc.StatusCode.NOT_FOUND: (404, "Not Found", "not-found"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "Conflict", "already-exists"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "Conflict", "state-conflict"),
    grpc.StatusCode.ABORTED: (409, "Conflict", "concurrent-change"),
    grpc.StatusCode.UNAVAILABLE: (503, "Service Unavailable", "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "Service Unavailable", "unavailable"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (503, "Service Unavailable", "unavailable"),
}
_GENERIC_DETAIL = {
    404: "not found",
    409: "the request conflicts with the current state",
    422: "the request is invalid",
    503: "a service behind the gateway did not answer in time; try again",
}
RETRY_AFTER_SECONDS = "1"


def from_rpc_failure(failure: RpcFailure, field_aliases: Mapping[str, str] | None = None) -> Problem:
    """A failed gRPC call as the partner sees it.

    `field_aliases` renames a service's field to what the partner sent, e.g.
    intake's "idempotency_key" is the partner's "Idempotency-Key" header.
    """
    status, title, slug = _BY_CODE.get(failure.code, (500, "Internal Server Error", "internal"))
    if status == 500:
        return internal()
    # Our domain errors carry an ErrorInfo reason; their messages are written for people.
    # A bare transport error (connection refused, deadline) may name hosts: keep it to ourselves.
    trusted = bool(failure.reason)
    detail = failure.message if trusted and failure.message else _GENERIC_DETAIL.get(status, title)
    aliases = field_aliases or {}
    problem = Problem(
        status,
        title,
        detail,
        slug,
        errors=[
            FieldError(aliases.get(v.field, v.field), v.description, v.reason) for v in failure.violations
        ],
    )
    if failure.code is grpc.StatusCode.FAILED_PRECONDITION and trusted:
        problem.rule = failure.reason  # FailedPrecondition puts its rule in ErrorInfo.reason
    if status == 503:
        problem.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return problem


def from_domain_error(error: domain_errors.DomainError) -> Problem:
    """The same mapping for domain errors raised in the gateway itself (e.g. parsing a partners CSV)."""
    failure = RpcFailure(
        code=grpc.StatusCode[error.code],
        message=error.message,
        reason=error.reason,
        violations=list(getattr(error, "violations", [])),
    )
    return from_rpc_failure(failure)
