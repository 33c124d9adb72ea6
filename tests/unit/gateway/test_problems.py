"""gRPC failures and validation errors as problem+json (RFC 9457): statuses, field paths, no leaks."""

from __future__ import annotations

import grpc
import pytest

from gateway import problems
from orderdesk import errors as domain
from orderdesk.rpc import RpcFailure


def failure(code: grpc.StatusCode, message: str = "m", reason: str = "r", violations=()) -> RpcFailure:
    return RpcFailure(code=code, message=message, reason=reason, violations=list(violations))


@pytest.mark.parametrize(
    "code, status",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 422),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
        (grpc.StatusCode.UNIMPLEMENTED, 500),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            500,
        ),  # the services never refuse the gateway: a bug, not the partner's
    ],
)
def test_status_codes(code, status):
    assert problems.from_rpc_failure(failure(code)).status == status


def test_field_violations_keep_their_paths_and_aliases_rename_service_fields():
    problem = problems.from_rpc_failure(
        failure(
            grpc.StatusCode.INVALID_ARGUMENT,
            "2 problems",
            violations=[
                domain.FieldViolation("lines[0].quantity", "must be positive", "not_positive"),
                domain.FieldViolation("idempotency_key", "required", "required"),
            ],
        ),
        field_aliases={"idempotency_key": "Idempotency-Key"},
    )
    body = problem.body("cid-1")
    assert body["status"] == 422 and body["detail"] == "2 problems" and body["correlation_id"] == "cid-1"
    assert body["errors"] == [
        {"field": "lines[0].quantity", "message": "must be positive", "reason": "not_positive"},
        {"field": "Idempotency-Key", "message": "required", "reason": "required"},
    ]
    assert set(body) >= {"type", "title", "status", "detail"}


def test_failed_precondition_names_the_rule():
    body = problems.from_rpc_failure(
        failure(grpc.StatusCode.FAILED_PRECONDITION, "shipped", "cancel_before_shipment")
    ).body()
    assert body["rule"] == "cancel_before_shipment" and body["status"] == 409


def test_transport_messages_never_reach_the_partner():
    # No ErrorInfo reason: the text came from the gRPC library and may name hosts.
    bare = failure(
        grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; 10.1.2.3:50052", reason=""
    )
    problem = problems.from_rpc_failure(bare)
    assert problem.status == 503 and "10.1.2.3" not in str(problem.body())
    assert problem.headers["Retry-After"] == "1"
    internal = problems.from_rpc_failure(
        failure(grpc.StatusCode.INTERNAL, "internal error (KeyError) at db.py:12")
    )
    assert "KeyError" not in str(internal.body()) and internal.status == 500


def test_domain_messages_are_kept():
    problem = problems.from_rpc_failure(
        failure(grpc.StatusCode.NOT_FOUND, "order ORD-1 not found", "not_found")
    )
    assert problem.body()["detail"] == "order ORD-1 not found"


def test_domain_errors_raised_in_the_gateway_map_the_same_way():
    problem = problems.from_domain_error(
        domain.InvalidArgument("bad csv", [domain.FieldViolation("row 2.scopes", "x")])
    )
    assert problem.status == 422 and [e.field for e in problem.errors] == ["row 2.scopes"]
    assert problems.from_domain_error(domain.NotFound("nope")).status == 404
    assert problems.from_domain_error(domain.FailedPrecondition("no", rule="r1")).rule == "r1"


@pytest.mark.parametrize(
    "loc, path",
    [
        (("body", "lines", 0, "quantity"), "lines[0].quantity"),
        (("body", "ship_to", "country"), "ship_to.country"),
        (("body", "lines", 2), "lines[2]"),
        (("header", "Idempotency-Key"), "Idempotency-Key"),
        (("query", "limit"), "limit"),
        (("path", "kind"), "kind"),
        (("body",), "body"),
        (("body", 17), "body[17]"),  # a JSON decode error at position 17
    ],
)
def test_field_paths_of_validation_errors(loc, path):
    assert problems.field_path(loc) == path


def test_validation_errors_become_one_problem():
    problem = problems.from_validation_errors(
        [
            {
                "loc": ("body", "lines", 0, "unit_price"),
                "msg": "Input should be a valid string",
                "type": "string_type",
            },
            {"loc": ("header", "Idempotency-Key"), "msg": "Field required", "type": "missing"},
        ]
    )
    assert problem.status == 422
    assert [(e.field, e.reason) for e in problem.errors] == [
        ("lines[0].unit_price", "string_type"),
        ("Idempotency-Key", "missing"),
    ]


def test_a_peer_refusal_is_passed_on_as_the_same_domain_error():
    import grpc

    from orderdesk import errors as domain
    from orderdesk import rpc

    class Failed(grpc.RpcError):
        def __init__(self, error):
            self.status = rpc.to_status(error)

        def code(self):
            return self.status.code

        def details(self):
            return self.status.details

        def trailing_metadata(self):
            return self.status.trailing_metadata

    refused = rpc.passed_on(Failed(domain.FailedPrecondition("not on hold", rule="approve_only_on_hold")))
    assert isinstance(refused, domain.FailedPrecondition) and refused.rule == "approve_only_on_hold"
    assert refused.message == "not on hold"
    missing = rpc.passed_on(Failed(domain.NotFound("order 0 not found")))
    assert isinstance(missing, domain.NotFound) and missing.message == "order 0 not found"
    bad = rpc.passed_on(Failed(domain.InvalidArgument("bad", [domain.FieldViolation("x", "y", "z")])))
    assert isinstance(bad, domain.InvalidArgument) and bad.violations[0].field == "x"
