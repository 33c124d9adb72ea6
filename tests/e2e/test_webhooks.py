"""Webhooks and the event feed through the real processes: a receiver in this test gets a partner's events,
signed, in order; retries, parking and replay, a 410 that stops only its endpoint; the feed resumes from a
sequence (long poll and Server-Sent Events); a partner never sees another's endpoints or events."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict

import aiohttp
import pytest
from aiohttp import web

from devtools import localservers
from services.notifier import domain

pytestmark = pytest.mark.e2e

CUSTOMER = "C0001"


# --- a partner's receiver ------------------------------------------------------------------------
class Receiver:
    """Webhook receivers on one local port: /ok/<name>, /flaky/<name> (first two requests 500), /gone/<name>."""

    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.got: dict[str, list[dict]] = defaultdict(list)  # 2xx-answered requests per name
        self.requests: dict[str, int] = defaultdict(int)
        self.bad_signatures: list[str] = []
        self.runner = None
        self.base = ""

    async def handle(self, request: web.Request) -> web.Response:
        mode, name = request.match_info["mode"], request.match_info["name"]
        raw = await request.read()
        self.requests[name] += 1
        header = request.headers.get(domain.SIGNATURE_HEADER, "")
        if not domain.verify(self.secrets.get(name, ""), header, raw, now=time.time()):
            self.bad_signatures.append(name)
        if mode == "gone":
            return web.Response(status=410, text="this endpoint is retired")
        if mode == "flaky" and self.requests[name] <= 2:
            return web.Response(status=500, text="try later")
        self.got[name].append({"body": json.loads(raw), "headers": dict(request.headers)})
        return web.Response(status=204)

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/{mode}/{name}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def stop(self) -> None:
        await self.runner.cleanup()

    def of_order(self, name: str, order_id: str) -> list[dict]:
        return [g for g in self.got[name] if g["body"]["order_id"] == order_id]


@pytest.fixture(scope="module")
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


async def register(
    partner, receiver: Receiver, mode: str, event_types=("*",), base: str | None = None
) -> dict:
    name = f"{mode}-{uuid.uuid4().hex[:8]}"
    code, body, _ = await partner.post(
        "/v1/webhooks",
        json={"url": f"{base or receiver.base}/{mode}/{name}", "event_types": list(event_types)},
    )
    assert code == 201, body
    receiver.secrets[name] = body["secret"]
    body["name"] = name
    return body


# --- driving an order ----------------------------------------------------------------------------
async def new_product(admin) -> str:
    sku = f"HOOK-{uuid.uuid4().hex[:8].upper()}"
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    code, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=header + f"{sku},Hook part,10.00,USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert code == 200, body
    code, body, _ = await admin.post(
        "/v1/admin/import/stock",
        data=f"sku,warehouse,on_hand\n{sku},WH-CHI,50\n",
        headers={"Content-Type": "text/csv"},
    )
    assert code == 200, body
    return sku


async def submit(shop, sku: str) -> str:
    code, body, _ = await shop.post(
        "/v1/orders",
        json={
            "external_ref": f"PO-{uuid.uuid4().hex[:6]}",
            "customer_id": CUSTOMER,
            "payment_terms": "NET30",
            "lines": [{"sku": sku, "quantity": 2, "unit_price": "10.00"}],
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    assert code == 201 and body["status"] == "confirmed", body
    return body["order_id"]


async def ship_and_deliver(shop, operator, order_id: str, eventually) -> None:
    async def shipments():
        code, body, _ = await operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"] if code == 200 and body["items"] else None

    for shipment in await eventually(shipments):
        for step in (
            {"type": "picked"},
            {"type": "packed"},
            {"type": "shipped", "carrier": "DHL", "tracking_number": f"TRK{uuid.uuid4().hex[:6]}"},
            {"type": "delivered"},
        ):
            code, body, _ = await operator.post(f"/v1/shipments/{shipment['shipment_id']}/events", json=step)
            assert code == 200, body

    async def completed():
        code, body, _ = await shop.get(f"/v1/orders/{order_id}")
        return body["status"] == "completed"

    await eventually(completed)


async def feed_of_order(partner, order_id: str, wanted_last: str, eventually, prefix: str = "") -> list[dict]:
    """The partner's feed entries for one order (of types starting with `prefix`), once the expected type is in."""
    seen_types: list[str] = []

    async def read():
        found, after = [], 0
        while True:
            code, page, _ = await partner.get(f"/v1/events?after={after}&limit=500")
            assert code == 200, page
            found += [e for e in page["events"] if e["order_id"] == order_id and e["type"].startswith(prefix)]
            if page["next_after"] == after or page["next_after"] >= page["last_sequence"]:
                break
            after = page["next_after"]
        seen_types[:] = [e["type"] for e in found]
        return found if wanted_last in seen_types else None

    try:
        return await eventually(read)
    except AssertionError as exc:
        raise AssertionError(f"{wanted_last} not in the feed of {order_id}: {seen_types}") from exc


async def deliveries(partner, webhook_id: str, status: str = "") -> list[dict]:
    code, page, _ = await partner.get(
        f"/v1/webhooks/{webhook_id}/deliveries?limit=200" + (f"&status={status}" if status else "")
    )
    assert code == 200, page
    return page["items"]


# --- the tests -----------------------------------------------------------------------------------
async def test_a_receiver_gets_every_event_of_an_order_in_order_with_valid_signatures(
    shop, warehouse_operator, admin, receiver, eventually
):
    hook = await register(shop, receiver, "ok")
    assert hook["secret"].startswith("whsec_") and hook["status"] == "active"
    sku = await new_product(admin)
    order_id = await submit(shop, sku)
    await ship_and_deliver(shop, warehouse_operator, order_id, eventually)
    feed = await feed_of_order(shop, order_id, "order.completed", eventually)

    async def all_delivered():
        return len(receiver.of_order(hook["name"], order_id)) == len(feed)

    await eventually(all_delivered)
    got = receiver.of_order(hook["name"], order_id)
    assert [g["body"] for g in got] == feed  # the same documents, in the same order
    assert [g["body"]["order_sequence"] for g in got] == list(range(1, len(feed) + 1))
    types = [g["body"]["type"] for g in got]
    for expected in (
        "order.received",
        "order.confirmed",
        "order.allocated",
        "shipment.shipped",
        "shipment.delivered",
        "order.completed",
    ):
        assert expected in types, types
    assert types.index("order.received") == 0 and types.index("shipment.shipped") < types.index(
        "shipment.delivered"
    )
    shipped = next(g["body"] for g in got if g["body"]["type"] == "shipment.shipped")
    assert shipped["carrier"] == "DHL" and shipped["tracking_number"].startswith("TRK")
    headers = got[0]["headers"]
    assert headers[domain.EVENT_ID_HEADER] == got[0]["body"]["id"]
    assert headers[domain.SEQUENCE_HEADER] == str(got[0]["body"]["sequence"])
    assert headers[domain.ORDER_SEQUENCE_HEADER] == "1"
    assert hook["name"] not in receiver.bad_signatures
    # The secret was shown once: never again.
    code, listed, _ = await shop.get("/v1/webhooks")
    assert code == 200 and all("secret" not in w for w in listed["items"])
    code, one, _ = await shop.get(f"/v1/webhooks/{hook['id']}")
    assert code == 200 and "secret" not in one and one["cursor_sequence"] >= feed[-1]["sequence"]


async def test_a_receiver_failing_twice_gets_each_event_exactly_once_after_retries(
    shop, admin, receiver, eventually
):
    hook = await register(shop, receiver, "flaky", ["order.*"])
    order_id = await submit(shop, await new_product(admin))
    feed = await feed_of_order(shop, order_id, "order.allocated", eventually, "order.")

    async def delivered():
        got = receiver.of_order(hook["name"], order_id)
        return got if len(got) >= len(feed) else None

    got = await eventually(delivered)
    assert [g["body"]["id"] for g in got][: len(feed)] == [e["id"] for e in feed]  # each once, in order
    assert len({g["body"]["id"] for g in got}) == len(got)

    async def recorded():  # the answer is recorded just after the receiver has it
        log = [d for d in await deliveries(shop, hook["id"]) if d["order_id"] == order_id]
        return all(d["status"] == "delivered" for d in log) and log

    log = await eventually(recorded)
    assert all(d["attempt_log"][-1]["status_code"] == 204 for d in log)
    statuses = [a["status_code"] for d in await deliveries(shop, hook["id"]) for a in d["attempt_log"]]
    assert statuses.count(500) == 2  # the two failures were retried, nothing else was
    retried = next(d for d in await deliveries(shop, hook["id"]) if d["attempt_log"][0]["status_code"] == 500)
    assert retried["attempt_log"][0]["response_excerpt"] == "try later" and retried["status"] == "delivered"
    assert hook["name"] not in receiver.bad_signatures


async def test_a_dead_receivers_deliveries_are_parked_and_replayed_when_it_is_back(shop, admin, eventually):
    port = localservers.free_port()  # nobody listens here yet
    back = Receiver()
    hook = await register(shop, back, "ok", ["order.*"], base=f"http://127.0.0.1:{port}")
    order_id = await submit(shop, await new_product(admin))
    feed = await feed_of_order(shop, order_id, "order.allocated", eventually, "order.")

    async def parked():
        found = [d for d in await deliveries(shop, hook["id"], "parked") if d["order_id"] == order_id]
        return found if len(found) >= len(feed) else None

    found = await eventually(parked)
    assert all(
        len(d["attempt_log"]) == 4
        and d["attempt_log"][-1]["status_code"] is None
        and d["attempt_log"][-1]["error"]
        for d in found
    )
    code, endpoint, _ = await shop.get(f"/v1/webhooks/{hook['id']}")
    assert endpoint["parked_deliveries"] >= len(feed) and endpoint["status"] == "active"

    await back.start(port)
    try:
        first = min(found, key=lambda d: d["sequence"])
        code, replayed, _ = await shop.post(f"/v1/webhooks/{hook['id']}/deliveries/{first['id']}/replay")
        assert code == 200 and replayed["status"] == "pending" and replayed["attempts"] == 0, replayed
        code, answer, _ = await shop.post(
            f"/v1/webhooks/{hook['id']}/replay",
            json={"from_sequence": first["sequence"] + 1, "to_sequence": max(d["sequence"] for d in found)},
        )
        assert code == 200 and answer["replayed"] >= len(found) - 1, answer

        async def all_back():
            return len(back.of_order(hook["name"], order_id)) >= len(feed)

        await eventually(all_back)
        assert [g["body"]["id"] for g in back.of_order(hook["name"], order_id)][: len(feed)] == [
            e["id"] for e in feed
        ]
        assert not back.bad_signatures

        async def all_recorded():  # the answer is recorded just after the receiver has it
            again = [d for d in await deliveries(shop, hook["id"]) if d["order_id"] == order_id]
            return all(d["status"] == "delivered" for d in again) and again

        again = await eventually(all_recorded)
        assert all(len(d["attempt_log"]) == 5 for d in again)
    finally:
        await back.stop()


async def test_a_410_disables_only_its_endpoint(shop, admin, receiver, eventually):
    gone = await register(shop, receiver, "gone")
    fine = await register(shop, receiver, "ok", ["order.*"])
    order_id = await submit(shop, await new_product(admin))

    async def disabled():
        code, body, _ = await shop.get(f"/v1/webhooks/{gone['id']}")
        return body if body["status"] == "disabled" else None

    body = await eventually(disabled)
    assert "410" in body["disabled_reason"]
    feed = await feed_of_order(shop, order_id, "order.allocated", eventually, "order.")

    async def fine_got_all():
        return len(receiver.of_order(fine["name"], order_id)) == len(feed)

    await eventually(fine_got_all)
    sent_to_gone = receiver.requests[gone["name"]]
    assert 1 <= sent_to_gone <= 4  # at most the attempts already in flight when the 410 came
    await asyncio.sleep(0.5)
    assert receiver.requests[gone["name"]] == sent_to_gone  # nothing more went to the retired endpoint
    code, other, _ = await shop.get(f"/v1/webhooks/{fine['id']}")
    assert other["status"] == "active"
    code, body, _ = await shop.post(
        f"/v1/webhooks/{gone['id']}/replay", json={"from_sequence": 1, "to_sequence": 2}
    )
    assert code == 409 and body["rule"] == "endpoint_disabled", body


async def test_the_feed_resumes_from_a_sequence_long_polls_and_streams(shop, admin, http, stack, eventually):
    sku = await new_product(admin)
    # Earlier tests' orders of this partner may still be moving (allocations, shipments): start from
    # a feed that has been quiet for a while, so that the only news is the order submitted below.
    head, quiet_since = -1, time.monotonic()
    while head < 0 or time.monotonic() - quiet_since < 2.0:
        code, page, _ = await shop.get("/v1/events?after=0&limit=1")
        assert code == 200
        if page["last_sequence"] != head:
            head, quiet_since = page["last_sequence"], time.monotonic()
        await asyncio.sleep(0.2)

    poll = asyncio.create_task(shop.get(f"/v1/events?after={head}&wait=20"))
    await asyncio.sleep(0.3)
    assert not poll.done()  # nothing new yet: the long poll waits
    order_id = await submit(shop, sku)
    code, page, _ = await asyncio.wait_for(poll, 20)
    assert code == 200 and page["events"] and page["events"][0]["sequence"] == head + 1
    assert page["events"][0]["order_id"] == order_id and page["events"][0]["type"] == "order.received"

    feed = await feed_of_order(shop, order_id, "order.allocated", eventually, "order.")
    resume_from = feed[0]["sequence"]
    code, page, _ = await shop.get(f"/v1/events?after={resume_from}")
    got = [e["sequence"] for e in page["events"]]
    assert got and got[0] == resume_from + 1 and got == sorted(got)
    assert {e["sequence"] for e in feed[1:]} <= set(got)

    # Server-Sent Events, resumed with Last-Event-ID: the next entries with their sequence as id.
    headers = {
        "Authorization": f"Bearer {shop.key}",
        "Accept": "text/event-stream",
        "Last-Event-ID": str(resume_from),
    }
    seen: list[tuple[int, str, dict]] = []
    async with http.get(
        f"{stack.gateway_url}/v1/events", headers=headers, timeout=aiohttp.ClientTimeout(total=20)
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        event: dict = {}
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["type"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif line == "" and "id" in event:
                seen.append((event["id"], event["type"], event["data"]))
                event = {}
                if len(seen) == 2:
                    break
    assert [s[0] for s in seen] == [resume_from + 1, resume_from + 2]
    assert all(s[2]["sequence"] == s[0] and s[2]["type"] == s[1] for s in seen)


async def test_a_partner_sees_only_its_own_webhooks_deliveries_and_feed(
    shop, edi, warehouse_operator, admin, receiver, eventually
):
    hook = await register(shop, receiver, "ok", ["order.confirmed"])
    order_id = await submit(shop, await new_product(admin))
    await feed_of_order(shop, order_id, "order.allocated", eventually)
    base = f"/v1/webhooks/{hook['id']}"
    for method, path in (
        ("GET", base),
        ("DELETE", base),
        ("POST", f"{base}/pause"),
        ("POST", f"{base}/resume"),
        ("POST", f"{base}/rotate-secret"),
        ("GET", f"{base}/deliveries"),
    ):
        code, body, _ = await edi.request(method, path)
        assert code == 404, (method, path, body)
    code, body, _ = await edi.post(f"{base}/replay", json={"from_sequence": 1, "to_sequence": 5})
    assert code == 404, body
    code, listed, _ = await edi.get("/v1/webhooks")
    assert code == 200 and hook["id"] not in {w["id"] for w in listed["items"]}
    code, page, _ = await edi.get("/v1/events?after=0&limit=500")
    assert code == 200 and order_id not in {e["order_id"] for e in page["events"]}
    code, body, _ = await warehouse_operator.get("/v1/webhooks")
    assert code == 403, body
    # The owner still has it, untouched; pause, rotate and delete work for the owner.
    code, body, _ = await shop.post(f"{base}/pause")
    assert code == 200 and body["status"] == "paused"
    code, rotated, _ = await shop.post(f"{base}/rotate-secret")
    assert code == 200 and rotated["secret"] != hook["secret"] and rotated["secret"].startswith("whsec_")
    code, _, _ = await shop.request("DELETE", base)
    assert code == 204
    code, _, _ = await shop.get(base)
    assert code == 404


async def test_bad_webhook_input_names_the_field(shop):
    cases = [
        ({"url": "ftp://example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/hook", "event_types": ["*"]}, "url"),
        ({"url": "https://example.com/hook", "event_types": ["Order Confirmed"]}, "event_types[0]"),
        ({"url": "https://example.com/hook", "event_types": []}, "event_types"),
        ({"url": "https://example.com/hook", "event_types": ["*"], "secret": "short"}, "secret"),
    ]
    for payload, field in cases:
        code, body, _ = await shop.post("/v1/webhooks", json=payload)
        assert code == 422, (payload, body)
        assert field in [e["field"] for e in body["errors"]], (payload, body)
    code, body, _ = await shop.get("/v1/webhooks/whe_nope/deliveries?status=lost")
    assert code == 422 and body["errors"][0]["field"] == "status"
    code, body, _ = await shop.post(
        "/v1/webhooks/whe_nope/replay", json={"from_sequence": 0, "to_sequence": 1}
    )
    assert code == 422 and body["errors"][0]["field"] == "from_sequence"
