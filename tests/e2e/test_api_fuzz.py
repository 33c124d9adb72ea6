"""API fuzzing with schemathesis against the running gateway's OpenAPI document: whatever a partner sends,
no 5xx and every error is application/problem+json. A bounded number of examples per operation
(ORDERDESK_FUZZ_EXAMPLES, default 15); the counts are printed (pytest -s)."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("ORDERDESK_FUZZ_EXAMPLES", "15"))


def errors_are_problem_documents(ctx, response, case):
    """Every 4xx/5xx answer is RFC 9457 problem+json with its status and a title."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{case.method} {case.formatted_path} answered {response.status_code} as {content_type!r}"
    )
    body = response.json()
    assert body.get("status") == response.status_code and body.get("title"), body
    return None


def test_gateway_answers_generated_requests_without_5xx_and_errors_as_problem_json(stack):
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    statuses: Counter = Counter()
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case):
            response = case.call(headers={"Authorization": "Bearer demo-admin-key"}, timeout=30)
            statuses[response.status_code] += 1
            case.validate_response(response, checks=[not_a_server_error, errors_are_problem_documents])

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # one operation's failure must not hide the others'
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    print(
        f"\nschemathesis: {sum(statuses.values())} calls over {operations} operations, "
        f"statuses {dict(sorted(statuses.items()))}, {len(failures)} operations failing"
    )
    assert operations > 10
    assert not failures, "\n\n".join(failures)
