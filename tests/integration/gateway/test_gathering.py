"""Single orders gathered into one intake.SubmitOrders call (gateway.gathering), against a fake intake behind
the real runtime interceptor: a call that fails as a whole is each request's own failure, and each request
waits no longer than its own single call's deadline (the gateway's rpc_timeout here: 1 s)."""

from __future__ import annotations

import asyncio

from orderdesk import errors
from tests.integration.gateway.test_transport import ORDER, is_problem, submit


async def timed(gateway, body: dict, key: str, after: float = 0.0):
    await asyncio.sleep(after)
    started = asyncio.get_running_loop().time()
    code, answer, headers = await submit(gateway, body, idempotency_key=key)
    return code, answer, headers, asyncio.get_running_loop().time() - started


async def test_a_call_that_fails_as_a_whole_is_each_requests_own_failure(gateway, fakes):
    fakes.intake.down = errors.Unavailable("intake is restarting")
    answers = await asyncio.gather(*[submit(gateway, idempotency_key=f"k{n}") for n in range(6)])
    assert 1 <= fakes.intake.calls < 6  # gathered
    for code, problem, headers in answers:
        assert code == 503 and is_problem(headers) and headers["Retry-After"] == "1", problem
        del problem["correlation_id"]
        assert problem == {  # what the single call's UNAVAILABLE status gave
            "type": "https://orderdesk.io/problems/unavailable",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "intake is restarting",
        }
    fakes.intake.down = None
    code, accepted, _ = await submit(gateway, idempotency_key="k0")
    assert code == 201 and accepted["replayed"] is False  # the failed call entered nothing


async def test_each_request_waits_no_longer_than_its_own_deadline(gateway, fakes):
    # A's order holds the call in flight for 0.8 s. B (at 0.05 s) and C (at 0.4 s) go together next, B's order
    # taking intake 0.4 s: that call ends at 1.2 s, past B's deadline (1.05 s), within C's (1.4 s). B is
    # answered at its own deadline as a single call past it is; C's time is not cut to B's.
    a, b, c = await asyncio.gather(
        timed(gateway, dict(ORDER, customer_id="SLOW-800"), "a"),
        timed(gateway, dict(ORDER, customer_id="SLOW-400"), "b", after=0.05),
        timed(gateway, ORDER, "c", after=0.4),
    )
    assert a[0] == 201, a
    assert b[0] == 503 and b[1]["type"].endswith("/unavailable") and b[2]["Retry-After"] == "1", b
    assert 0.95 <= b[3] < 1.3, b[3]
    assert c[0] == 201, c
    assert fakes.intake.calls == 2
