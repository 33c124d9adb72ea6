"""The feed's replay window as a partner meets it: a suite whose feed keeps two seconds of events (its own
NATS and databases), an order placed, its events read, and once they are pruned a cursor older than the
window answers 409 `feed_cursor_expired` saying where to go on, never silently nothing; the pruning is
measured on the notifier's /metrics."""

from __future__ import annotations

import asyncio
import re
import urllib.request
import uuid

import pytest

from devtools.devstack import Stack
from devtools.http import client_session
from tests.e2e.conftest import KEYS, WEBHOOK_ENV, _eventually

pytestmark = pytest.mark.e2e

FEED_SECONDS = 2.0


@pytest.fixture(scope="module")
async def short_window(tmp_path_factory):
    """Its own NATS, so its durable consumers never share work with another suite's."""
    suite = Stack(
        data_dir=tmp_path_factory.mktemp("retention"),
        extra_env={
            **WEBHOOK_ENV,
            "ORDERDESK_RETENTION_FEED_DAYS": repr(FEED_SECONDS / 86400),
            "ORDERDESK_RETENTION_INTERVAL_SECONDS": "0.5",
        },
    )
    try:
        await asyncio.to_thread(suite.start)
        await asyncio.to_thread(suite.load_demo_data)
        yield suite
    finally:
        await asyncio.to_thread(suite.stop)


async def test_a_feed_cursor_older_than_the_window_answers_clearly(short_window):
    headers = {"Authorization": f"Bearer {KEYS['shop']}"}
    base = short_window.gateway_url
    async with client_session(total=30) as http:

        async def events(after: int):
            async with http.get(f"{base}/v1/events", params={"after": after}, headers=headers) as resp:
                return resp.status, await resp.json(content_type=None)

        body = {
            "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
            "customer_id": "C0001",
            "payment_terms": "NET30",
            "lines": [{"sku": "BRK-001", "quantity": 1, "unit_price": "31.57"}],
        }
        async with http.post(
            f"{base}/v1/orders", json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
        ) as resp:
            assert resp.status in (200, 201), await resp.text()
            order_id = (await resp.json())["order_id"]

        async def seen():
            status, page = await events(0)
            return status == 200 and any(e["order_id"] == order_id for e in page["events"]) and page

        first_page = await _eventually(seen)
        first = first_page["events"][0]["sequence"]

        async def pruned():  # everything older than the window is gone: reading from the start finds nothing
            status, page = await events(0)
            return status == 200 and page["last_sequence"] >= first and not page["events"] and page

        head = (await _eventually(pruned, timeout=60))["last_sequence"]

        status, problem = await events(first)
        assert status == 409, problem
        assert problem["rule"] == "feed_cursor_expired"
        assert f"after sequence {first} are no longer kept" in problem["detail"]
        assert f"after={head}" in problem["detail"]
        # where it says to go on, the feed answers (nothing new yet)
        status, page = await events(head)
        assert status == 200 and page["events"] == [] and page["next_after"] == head

    metrics = await asyncio.to_thread(
        lambda: (
            urllib.request.urlopen(
                f"http://127.0.0.1:{short_window.metrics_ports['notifier']}/metrics", timeout=5
            )
            .read()
            .decode()
        )
    )
    found = re.search(
        r'orderdesk_retention_pruned_total\{service="notifier",what="feed"\} ([0-9.e+]+)', metrics
    )
    assert found and float(found.group(1)) >= len(first_page["events"])
    assert 'orderdesk_retention_pass_seconds_count{service="notifier",what="feed"}' in metrics
