"""The partner edge against the real suite: a second gateway process with tight limits beside the stack's.

One partner over its rate limit gets 429 while another is served; a partner's long polls are capped while
another's go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import urllib.request

import pytest

from devtools import localservers
from tests.e2e.conftest import KEYS, Partner

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def extra_gateway(stack, name: str, **env: str):
    """Another `python -m gateway` on the suite's services and key database, with these settings."""
    port, metrics_port = localservers.free_port(), localservers.free_port()
    environment = {
        **stack.env("gateway"),
        "ORDERDESK_GATEWAY_ADDR": f"127.0.0.1:{port}",
        "ORDERDESK_GATEWAY_METRICS_PORT": str(metrics_port),
        "ORDERDESK_GATEWAY_KEYS_ADDR": "",  # the console's key admin service: the first gateway's alone
        **env,
    }
    log_path = stack.data_dir / "logs" / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=environment, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"{name} not ready:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)


async def test_a_partner_over_its_rate_limit_gets_429_and_another_is_served(stack, http):
    with extra_gateway(stack, "gateway-limited", ORDERDESK_RATE_LIMITS="read=0.2/5") as url:
        shop, edi = Partner(http, url, KEYS["shop"]), Partner(http, url, KEYS["edi"])
        shop_answers = [await shop.get("/v1/orders?limit=1") for _ in range(7)]
        assert [s for s, _, _ in shop_answers] == [200] * 5 + [429] * 2
        status, body, headers = shop_answers[-1]
        assert body["type"].endswith("/rate-limited") and int(headers["Retry-After"]) >= 1
        assert headers["RateLimit-Limit"] == "5" and headers["RateLimit-Remaining"] == "0"
        edi_answers = [await edi.get("/v1/orders?limit=1") for _ in range(5)]
        assert [s for s, _, _ in edi_answers] == [200] * 5
        assert [h["RateLimit-Remaining"] for _, _, h in edi_answers] == ["4", "3", "2", "1", "0"]
        # The limited partner's other route classes are untouched.
        status, _, _ = await shop.get("/v1/events?after=0&limit=1")
        assert status == 200


async def test_long_polls_are_capped_per_partner(stack, http):
    with extra_gateway(stack, "gateway-streams", ORDERDESK_STREAMS_PER_PARTNER="2") as url:
        shop, edi = Partner(http, url, KEYS["shop"]), Partner(http, url, KEYS["edi"])
        # A cursor far ahead of the feed: nothing is new, so each poll holds its connection for `wait`.
        far = "/v1/events?after=100000000&wait=3"
        polls = [asyncio.create_task(shop.get(far)) for _ in range(2)]
        await asyncio.sleep(0.5)
        status, body, _ = await shop.get(far)
        assert status == 429 and body["type"].endswith("/too-many-streams")
        status, _, _ = await edi.get("/v1/events?after=100000000&wait=1")  # another partner's slots
        assert status in (200, 409)
        assert all(s in (200, 409) for s, _, _ in await asyncio.gather(*polls))
        status, _, _ = await shop.get("/v1/events?after=100000000&wait=1")  # slots given back
        assert status in (200, 409)


def _orders_csv(orders: int, *, full: bool) -> bytes:
    header = "external_ref,customer_id,sku,quantity,unit_price"
    ship_to = ",ship_to_name,ship_to_line1,ship_to_city,ship_to_postal_code,ship_to_country" if full else ""
    rows = [
        f"BIG-{n:06d},C0001,BRK-001,1,31.57"
        + (",Müller GmbH,Industriestraße 12,Hamburg,20095,DE" if full else "")
        for n in range(orders)
    ]
    return ("\n".join([header + ship_to, *rows]) + "\n").encode()


@pytest.mark.parametrize("full", [True, False], ids=["over-the-byte-cap", "under-it-but-20000-orders"])
async def test_a_20000_order_csv_is_413_and_the_gateway_stays_healthy(stack, shop, full):
    import psutil

    gateway = psutil.Process(stack.processes["gateway"].popen.pid)
    rss_before = gateway.memory_info().rss
    body = _orders_csv(20_000, full=full)
    status, problem, _ = await shop.request(
        "POST",
        "/v1/orders/csv",
        data=body,
        headers={"Content-Type": "text/csv", "Idempotency-Key": f"big-{full}"},
    )
    assert status == 413, problem
    assert problem["type"].endswith("/too-large")
    if not full:  # read (640 kB), then refused at the 1001st order while parsing
        assert problem["errors"][0]["field"] == "row 1002.external_ref"
    assert gateway.memory_info().rss - rss_before < 64 * 1024 * 1024
    # Nothing of it was submitted, and the gateway serves as before.
    status, page, _ = await shop.get("/v1/orders?limit=5")
    assert status == 200 and not any(o["external_ref"].startswith("BIG-") for o in page["items"])
    status, _, _ = await shop.request("GET", "/healthz")
    assert status == 200


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "forbidden_target"),
        ("https://[fd00:ec2::254]/latest/meta-data/", "forbidden_target"),
        ("https://[2002:a9fe:a9fe::]/hook", "forbidden_target"),  # 6to4 of the metadata address
        ("https://[64:ff9b::a9fe:a9fe]/hook", "forbidden_target"),  # NAT64 of it
        ("https://10.0.0.1/hook", "forbidden_target"),  # private: not in the demo's allow-list
        ("http://93.184.216.34/hook", "https_required"),  # public, but plain http
    ],
)
async def test_a_metadata_or_private_webhook_target_is_refused_in_the_default_run(shop, url, reason):
    """The suite as `make run` starts it (ORDERDESK_WEBHOOKS_ALLOW_NETWORKS=127.0.0.0/8,::1/128)."""
    status, problem, _ = await shop.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
    assert status == 422, problem
    (error,) = problem["errors"]
    assert error["field"] == "url" and error["reason"] == reason, error
    status, listed, _ = await shop.get("/v1/webhooks")
    assert status == 200 and url not in {e["url"] for e in listed["items"]}


def _cli(stack, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], env=stack.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_revoked_key_stops_on_both_gateways_within_a_second(stack, http):
    """Two gateway processes on one key database (the stack's and a second one): `orderdesk keys revoke`,
    then both refuse the key within a second (plus the CLI's own exit)."""
    key = _cli(
        stack, "keys", "create", "--partner", "P-SHOP", "--name", "revoke-me", "--scopes", "orders"
    ).strip()
    assert key.startswith("odk_") and len(key) >= 4 + 43
    with extra_gateway(stack, "gateway-replica") as second:
        replicas = [Partner(http, stack.gateway_url, key), Partner(http, second, key)]
        for partner in replicas:
            status, _, _ = await partner.get("/v1/orders?limit=1")
            assert status == 200
        _cli(stack, "keys", "revoke", "--partner", "P-SHOP", "--name", "revoke-me")
        revoked_at = time.monotonic()
        stopped: dict[int, float] = {}
        while len(stopped) < 2 and time.monotonic() - revoked_at < 5:
            for n, partner in enumerate(replicas):
                if n not in stopped and (await partner.get("/v1/orders?limit=1"))[0] == 401:
                    stopped[n] = time.monotonic() - revoked_at
            await asyncio.sleep(0.05)
        assert sorted(stopped) == [0, 1] and max(stopped.values()) <= 1.2, stopped
