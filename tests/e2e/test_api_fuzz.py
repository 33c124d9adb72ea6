"""API fuzzing with schemathesis against the running gateway's OpenAPI document: whatever a partner sends,
no 5xx and every error is application/problem+json. A bounded number of examples per operation
(ORDERDESK_FUZZ_EXAMPLES, default 15); the counts are printed (pytest -s)."""

from __future__ import annotations

import os
import time
import uuid
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


PATIENCE_AFTER_429 = 20


def _retry_after(response) -> float:
    value = response.headers.get("retry-after") or response.headers.get("Retry-After") or ["1"]
    try:
        return max(float(value[0] if isinstance(value, list) else value), 0.05)
    except ValueError:
        return 1.0


def valid_order() -> dict:
    """An order of the demo data (customer C0001, BRK-001 at its list price) that the gateway accepts."""
    return {
        "external_ref": f"FUZZ-{uuid.uuid4().hex[:10]}",
        "customer_id": "C0001",
        "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": "31.57"}],
        "payment_terms": "NET30",
    }


def test_gateway_answers_generated_sequences_of_calls_without_5xx(stack):
    """Stateful: schemathesis chains calls by the links it infers from the document (an order made by
    POST /v1/orders is then read, changed, cancelled, returned … by its own id), so the fuzzing reaches the
    states a random id never does. Same checks as above; the steps per status are printed."""
    schema = schemathesis.openapi.from_url(f"{stack.gateway_url}/openapi.json")
    statuses: Counter = Counter()
    steps: Counter = Counter()
    found_by_link: set[str] = set()  # operations on an id that answered 2xx: the id came from a response
    waited: Counter = Counter()  # 429s waited out, by path

    class Partner(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case):
            # A random order is refused (unknown customer, SKU …), so nothing would follow it: the orders
            # the sequences start from are valid ones (the stateless test above fuzzes the body).
            if case.method == "POST" and case.path == "/v1/orders":
                case.body = valid_order()
            case.headers = {
                **(case.headers or {}),
                "Authorization": "Bearer demo-admin-key",
                "Idempotency-Key": uuid.uuid4().hex,
            }

        def get_call_kwargs(self, case):
            return {"timeout": 30}

        def call(self, case, **kwargs):
            # Hypothesis replays a sequence and needs the same answers to draw the same next steps (which
            # rules are enabled follows what earlier calls returned). A 429 comes by the clock, not by the
            # sequence: told one, the fuzzer waits as long as Retry-After says and asks again, as a patient
            # partner does; the limits themselves are tested on their own (test_edge).
            for _ in range(PATIENCE_AFTER_429):
                response = case.call(**kwargs)
                if response.status_code != 429:
                    break
                waited[case.path] += 1
                time.sleep(min(_retry_after(response), 2.0))
            return response

        def after_call(self, response, case):
            statuses[response.status_code] += 1
            steps[f"{case.method} {case.path}"] += 1
            if "{" in case.path and response.status_code < 300:
                found_by_link.add(f"{case.method} {case.path}")

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error, errors_are_problem_documents])

    Partner.run(
        settings=settings(
            max_examples=EXAMPLES * 4,
            stateful_step_count=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
    )
    print(
        f"\nschemathesis, stateful: {sum(statuses.values())} calls over {len(steps)} operations, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    print(
        f"operations reached by a real id: {sorted(found_by_link)}; 429s waited out: {sum(waited.values())}"
    )
    assert found_by_link, f"no call on an id reached a real one: {sorted(steps)}"
