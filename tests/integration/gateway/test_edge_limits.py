"""The partner edge through a real uvicorn: keys are checked before the body is read, each key has its own
token bucket per route class (429 problem+json with Retry-After and RateLimit-* fields), and one key over
its limit does not touch another's."""

from __future__ import annotations

import asyncio
import time

from gateway.problems import PROBLEM_MEDIA_TYPE
from orderdesk.config import GatewayEdgeSettings


async def test_one_key_over_its_read_limit_gets_429_and_another_key_is_untouched(start_gateway):
    gw = await start_gateway(GatewayEdgeSettings(rate_limits="read=0.5/3,submit=0.5/1"))
    answers = [await gw.call("GET", "/v1/orders?limit=5", "shop-key") for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [h["RateLimit-Remaining"] for _, _, h in answers] == ["2", "1", "0", "0"]
    status, body, headers = answers[-1]
    assert headers["Content-Type"] == PROBLEM_MEDIA_TYPE
    assert body["type"].endswith("/rate-limited") and body["status"] == 429
    assert headers["Retry-After"] == "2" and headers["RateLimit-Limit"] == "3"
    assert headers["RateLimit-Policy"] == "3;w=6" and int(headers["RateLimit-Reset"]) >= 2
    # The other partner, and the same key's other route class, go on as before.
    for _ in range(3):
        status, _, headers = await gw.call("GET", "/v1/orders?limit=5", "edi-key")
        assert status == 200, status
    status, _, _ = await gw.call("POST", "/v1/orders", "shop-key", json={})
    assert status == 422  # submit has its own bucket: the body is checked, not refused by the limit
    status, _, _ = await gw.call("POST", "/v1/orders", "shop-key", json={})
    assert status == 429
    # Once the bucket refills the key is served again.
    await asyncio.sleep(2.1)
    status, _, _ = await gw.call("GET", "/v1/orders?limit=5", "shop-key")
    assert status == 200


async def test_an_unknown_key_is_refused_before_the_body_is_read(gateway):
    """Headers announcing a body that never comes: a gateway reading the body first would wait for it."""
    host, port = gateway.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    writer.write(
        b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nobody-key\r\n"
        b"Content-Type: application/json\r\nContent-Length: 500000\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    assert status_line.startswith(b"HTTP/1.1 401"), status_line
    assert time.monotonic() - started < 5
    writer.close()


async def test_no_key_for_an_upload_is_401_not_413(gateway):
    status, body, _ = await gateway.call(
        "POST", "/v1/orders/csv", None, data=b"x" * (30 * 1024 * 1024), headers={"Content-Type": "text/csv"}
    )
    assert status == 401 and body["type"].endswith("/unauthenticated")
