"""Domain errors, raised by plain-Python rules (no gRPC, no I/O here).

orderdesk.rpc turns them into a gRPC status with google.rpc details (BadRequest
field violations, PreconditionFailure, ErrorInfo), and the gateway turns that
status back into problem+json with the field paths.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = "invalid"


class DomainError(Exception):
    code = "UNKNOWN"
    reason = "error"

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    reason = "invalid_argument"

    def __init__(
        self, message: str, violations: list[FieldViolation] | None = None, *, reason: str | None = None
    ):
        super().__init__(message, reason=reason)
        self.violations = violations or []


class NotFound(DomainError):
    code = "NOT_FOUND"
    reason = "not_found"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    reason = "already_exists"


class FailedPrecondition(DomainError):
    """The aggregate's state forbids the change; `rule` names the rule that refused it."""

    code = "FAILED_PRECONDITION"
    reason = "failed_precondition"

    def __init__(
        self, message: str, *, rule: str, subject: str = "", violations: list[FieldViolation] | None = None
    ):
        super().__init__(message, reason=rule)
        self.rule = rule
        self.subject = subject
        self.violations = violations or []  # optional: what exactly failed, field by field


class Conflict(DomainError):
    """A lost race (optimistic version check); the caller may retry."""

    code = "ABORTED"
    reason = "conflict"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    reason = "unavailable"


def require(value: str, field: str) -> None:
    """A required request field: empty is an InvalidArgument naming the field."""
    if not value:
        raise InvalidArgument(f"{field} is required", [FieldViolation(field, "required")])
