"""gRPC edges shared by services and the gateway: domain errors to rich status and back."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from orderdesk import errors, logs

ERROR_DOMAIN = "orderdesk.io"


def to_status(error: errors.DomainError) -> grpc.Status:
    details = [error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)]
    if isinstance(error, errors.InvalidArgument | errors.FailedPrecondition) and error.violations:
        # InvalidArgument, and a FailedPrecondition that itemises
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in error.violations
                ]
            )
        )
    if isinstance(error, errors.FailedPrecondition):
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=error.rule, subject=error.subject, description=error.message
                    )
                ]
            )
        )
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return rpc_status.to_status(
        status_pb2.Status(code=getattr(code_pb2, error.code), message=error.message, details=packed)
    )


@dataclass
class RpcFailure:
    """What a caller learns from a failed call: code, message, reason and field violations."""

    code: grpc.StatusCode
    message: str
    reason: str = ""
    violations: list[errors.FieldViolation] = field(default_factory=list)


def describe(error: grpc.RpcError) -> RpcFailure:
    failure = RpcFailure(code=error.code(), message=error.details() or "")
    try:
        status = rpc_status.from_call(error)
    except Exception:  # a status without rich details is still an answer
        status = None
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            failure.reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            failure.violations.extend(
                errors.FieldViolation(v.field, v.description, v.reason) for v in bad.field_violations
            )
    return failure


def passed_on(error: grpc.RpcError) -> Exception:
    """A peer's refusal as the same domain error, so a service can answer its own caller with it
    (its message only when the peer marked it as its own domain error). Anything else, a bug or
    a transport failure of the peer, is returned unchanged or as Unavailable."""
    failure = describe(error)
    message = failure.message if failure.reason else "a service behind this one refused the request"
    code = failure.code
    if code is grpc.StatusCode.NOT_FOUND:
        return errors.NotFound(message)
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        return errors.FailedPrecondition(
            message, rule=failure.reason or "failed_precondition", violations=failure.violations
        )
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return errors.InvalidArgument(message, failure.violations)
    if code is grpc.StatusCode.ABORTED:
        return errors.Conflict(message)
    if code in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ):
        return errors.Unavailable("a service behind this one did not answer in time; try again")
    return error


def metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for calls to other services: the correlation id goes along."""
    cid = logs.correlation_id.get()
    return (("x-correlation-id", cid),) if cid else ()
