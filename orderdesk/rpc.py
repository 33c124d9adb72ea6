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
    if getattr(error, "violations", None):  # InvalidArgument, and a FailedPrecondition that itemises
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description, reason=v.reason)
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


def metadata() -> tuple[tuple[str, str], ...]:
    """Metadata for calls to other services: the correlation id goes along."""
    cid = logs.correlation_id.get()
    return (("x-correlation-id", cid),) if cid else ()
