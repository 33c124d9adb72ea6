"""The notifier on a real database (SQLite and PostgreSQL): the feed appended once per event through the
consumer's inbox, endpoints' cursors, parking and replay, and the delivery workers against a local receiver."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web

from orderdesk import errors, events, metrics, sealing
from orderdesk.config import WebhookSettings
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.signatures import parse_header
from orderdesk.v1 import events_pb2, orders_pb2, shipping_pb2
from services.notifier import domain
from services.notifier.delivery import Dispatcher, Target
from services.notifier.service import NotifierService
from services.notifier.store import (
    DELIVERED,
    FAILED,
    PARKED,
    PENDING,
    Attempt,
    NotifierRepository,
    endpoints,
    rendered,
)

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "notifier" / "migrations"


class Msg:
    """A JetStream message as the consumer sees it."""

    def __init__(self, event: events_pb2.Event):
        self.data = event.SerializeToString()
        self.subject = events.subject(event)
        self.headers = {}
        self.metadata = None
        self.acked = False

    async def ack(self):
        self.acked = True

    async def nak(self, delay=None):
        raise AssertionError("nak'ed")


async def public_only(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


def order_event(order_id: str, partner: str, status: str, version: int) -> events_pb2.Event:
    order = orders_pb2.Order(order_id=order_id, partner_id=partner, status=status)
    return events.new_event(
        f"order.{status}",
        aggregate_id=order_id,
        version=version,
        order_id=order_id,
        order=events_pb2.OrderEvent(status=status, order=order),
    )


def shipment_event(order_id: str, status: str) -> events_pb2.Event:
    # partner_id left empty on purpose: the notifier maps it from the order events it has seen
    shipment = shipping_pb2.Shipment(
        shipment_id=f"SHP-{order_id}", order_id=order_id, status=status, carrier="DHL", tracking_number="T1"
    )
    return events.new_event(
        f"shipment.{status}",
        aggregate_id=f"SHP-{order_id}",
        version=2,
        order_id=order_id,
        shipment=events_pb2.ShipmentEvent(shipment=shipment),
    )


@pytest.fixture
async def notifier(make_database):
    db = await make_database(MIGRATIONS)
    service = NotifierService(db, resolver=public_only)
    consumer = EventConsumer(db, None, Subscription("notifier-feed", "orderdesk.>", service.on_event))
    return db, service, consumer


async def feed_of(service, partner: str) -> list:
    entries, _ = await service.read_feed(partner, 0, 500, 0)
    return entries


async def test_the_feed_numbers_each_partners_events_once_and_maps_shipments_to_the_orders_partner(notifier):
    db, service, consumer = notifier
    a, b = "ORD-A1", "ORD-B1"
    received_a = order_event(a, "P-SHOP", "received", 1)
    sent = [
        received_a,
        order_event(b, "P-EDI", "received", 1),
        order_event(a, "P-SHOP", "confirmed", 2),
        received_a,  # a redelivery: the inbox skips it
        shipment_event(a, "shipped"),
        events.new_event(
            "stock.restocked", aggregate_id="SKU", version=1, stock=events_pb2.StockEvent(sku="SKU")
        ),
    ]
    for event in sent:
        msg = Msg(event)
        await consumer.handle(msg)
        assert msg.acked
    shop = await feed_of(service, "P-SHOP")
    assert [(e["sequence"], e["type"], e["order_sequence"]) for e in shop] == [
        (1, "order.received", 1),
        (2, "order.confirmed", 2),
        (3, "shipment.shipped", 3),
    ]
    body = json.loads(shop[2]["body"])
    assert body["sequence"] == 3 and body["order_sequence"] == 3 and body["carrier"] == "DHL"
    assert [(e["sequence"], e["order_id"]) for e in await feed_of(service, "P-EDI")] == [(1, b)]
    entries, head = await service.read_feed("P-SHOP", 2, 10, 0)
    assert [e["sequence"] for e in entries] == [3] and head == 3
    assert await feed_of(service, "P-NOBODY") == []


async def test_a_shipment_goes_to_its_orders_partner_as_known_else_to_the_one_it_names(notifier):
    """One event at a time, a shipment's partner is read with its order's counter bump: the known order's
    partner wins over the one the shipment names; an unknown order's shipment goes to the partner it names
    (and starts its order's numbers); one naming nobody is dropped and bumps nothing."""
    db, service, consumer = notifier
    await consumer.handle(Msg(order_event("ORD-K1", "P-SHOP", "received", 1)))
    named_other = shipment_event("ORD-K1", "shipped")
    named_other.shipment.shipment.partner_id = "P-OTHER"
    unknown = shipment_event("ORD-U1", "shipped")
    unknown.shipment.shipment.partner_id = "P-EDI"
    for event in (named_other, unknown, shipment_event("ORD-N1", "shipped")):
        await consumer.handle(Msg(event))
    assert [(e["order_id"], e["order_sequence"]) for e in await feed_of(service, "P-SHOP")] == [
        ("ORD-K1", 1),
        ("ORD-K1", 2),
    ]
    assert await feed_of(service, "P-OTHER") == []
    assert [(e["order_id"], e["order_sequence"]) for e in await feed_of(service, "P-EDI")] == [("ORD-U1", 1)]
    async with db.read() as conn:
        known = await NotifierRepository(conn).partners_of_orders(["ORD-K1", "ORD-U1", "ORD-N1"])
    assert known == {"ORD-K1": "P-SHOP", "ORD-U1": "P-EDI"}


async def test_a_batch_appends_the_same_feed_as_one_event_at_a_time(make_database):
    """The feed consumer's group commit (on_events) numbers and maps exactly as on_event does, also for a
    shipment whose order was learnt earlier in the same batch, and for orders already known before it."""
    one_by_one, together = await make_database(MIGRATIONS), await make_database(MIGRATIONS)
    earlier = [order_event("ORD-K", "P-SHOP", "received", 1)]
    batch = [
        order_event("ORD-N", "P-SHOP", "received", 1),
        shipment_event("ORD-K", "shipped"),
        order_event("ORD-N", "P-SHOP", "confirmed", 2),
        order_event("ORD-E", "P-EDI", "received", 1),
        shipment_event("ORD-N", "packed"),
        shipment_event("ORD-UNKNOWN", "packed"),
        events.new_event(
            "stock.restocked", aggregate_id="SKU", version=1, stock=events_pb2.StockEvent(sku="SKU")
        ),
    ]
    feeds = []
    for db, batched in ((one_by_one, False), (together, True)):
        service = NotifierService(db, resolver=public_only)
        for event in earlier:
            async with db.transaction() as tx:
                await service.on_event(tx, event)
        async with db.transaction() as tx:
            if batched:
                statements = metrics.DB_STATEMENTS._value.get()
                await service.on_events(tx, batch)
                # the orders' rows, the heads, both written back in one statement each, the feed rows
                assert metrics.DB_STATEMENTS._value.get() - statements == 5
            else:
                for event in batch:
                    await service.on_event(tx, event)
        feeds.append(
            {
                p: [
                    (e["sequence"], e["order_id"], e["type"], e["order_sequence"], e["body"])
                    for e in await feed_of(service, p)
                ]
                for p in ("P-SHOP", "P-EDI")
            }
        )
    assert feeds[0] == feeds[1]
    assert [(s, o, n) for s, o, _t, n, _b in feeds[1]["P-SHOP"]] == [
        (1, "ORD-K", 1),
        (2, "ORD-N", 1),
        (3, "ORD-K", 2),
        (4, "ORD-N", 2),
        (5, "ORD-N", 3),
    ]
    # and the next single append continues the numbers the batch left
    service = NotifierService(together, resolver=public_only)
    async with together.transaction() as tx:
        await service.on_event(tx, order_event("ORD-N", "P-SHOP", "allocated", 3))
    last = (await feed_of(service, "P-SHOP"))[-1]
    assert (last["sequence"], last["order_sequence"]) == (6, 4)
    async with together.transaction() as tx:  # the batch made ORD-E's row with its partner
        await service.on_event(tx, shipment_event("ORD-E", "shipped"))
    last = (await feed_of(service, "P-EDI"))[-1]
    assert (last["sequence"], last["order_id"], last["order_sequence"]) == (2, "ORD-E", 2)


async def test_a_long_poll_wakes_when_the_partners_feed_grows(notifier):
    db, service, consumer = notifier
    reader = asyncio.create_task(service.read_feed("P-SHOP", 0, 10, 10))
    await asyncio.sleep(0.2)
    assert not reader.done()
    await consumer.handle(Msg(order_event("ORD-W1", "P-SHOP", "received", 1)))
    entries, head = await asyncio.wait_for(reader, 5)  # woken, not timed out (it would wait 10 s)
    assert [e["order_id"] for e in entries] == ["ORD-W1"] and head == 1


async def test_endpoints_take_on_matching_entries_after_their_cursor_in_order_and_park_and_replay(notifier):
    db, service, consumer = notifier
    await consumer.handle(Msg(order_event("ORD-OLD", "P-SHOP", "received", 1)))  # before the endpoint existed
    endpoint, secret = await service.create_endpoint(
        "P-SHOP", "https://hooks.example.com/in", ["order.confirmed", "shipment.*"], ""
    )
    assert secret.startswith("whsec_") and endpoint.cursor == 1
    for event in [
        order_event("ORD-1", "P-SHOP", "received", 1),
        order_event("ORD-1", "P-SHOP", "confirmed", 2),
        shipment_event("ORD-1", "shipped"),
        order_event("ORD-2", "P-EDI", "received", 1),
    ]:
        await consumer.handle(Msg(event))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        assert await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches) == 3
        assert await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches) == 0
        assert (await repo.endpoint(endpoint.endpoint_id)).cursor == 4
    async with db.read() as conn:
        heads = await NotifierRepository(conn).heads(endpoint.endpoint_id, 10)
    # One order, so one head: its oldest pending delivery (the shipment event waits behind it).
    assert [(h["sequence"], h["event_type"]) for h in heads] == [(3, "order.confirmed")]
    first = heads[0]
    assert json.loads(rendered(first)["body"])["type"] == "order.confirmed"  # as its POST sends it

    async with db.transaction() as tx:  # the first is delivered; the second is retried, then parked
        repo = NotifierRepository(tx.conn)
        await repo.record_attempt(
            first["delivery_id"],
            1,
            status_code=200,
            latency_ms=3.0,
            error="",
            excerpt="ok",
            new_status=DELIVERED,
            attempts=1,
            next_attempt_at=None,
        )
        (second,) = await repo.heads(endpoint.endpoint_id, 10)
        assert second["sequence"] == 4
        await repo.record_attempt(
            second["delivery_id"],
            1,
            status_code=503,
            latency_ms=2.0,
            error="",
            excerpt="busy",
            new_status=PENDING,
            attempts=1,
            next_attempt_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60),
        )
        await repo.record_attempt(
            second["delivery_id"],
            2,
            status_code=0,
            latency_ms=1.0,
            error="ClientConnectorError: refused",
            excerpt="",
            new_status=PARKED,
            attempts=2,
            next_attempt_at=None,
        )
        assert await repo.heads(endpoint.endpoint_id, 10) == []
    rows, attempts, cursor = await service.deliveries(endpoint.endpoint_id, "P-SHOP", PARKED, 50, "")
    assert [r["sequence"] for r in rows] == [4] and cursor == ""
    assert [(a["attempt"], a["status_code"]) for a in attempts[rows[0]["delivery_id"]]] == [(1, 503), (2, 0)]
    found, parked = await service.endpoint(endpoint.endpoint_id, "P-SHOP")
    assert parked == 1

    row, log = await service.replay(endpoint.endpoint_id, "P-SHOP", rows[0]["delivery_id"])
    assert row["status"] == PENDING and row["attempts"] == 0 and len(log) == 2  # the log is kept

    # A range from before the endpoint existed: the old order.received does not match, nothing new for it;
    # the delivered order.confirmed starts a new round.
    assert await service.replay_range(endpoint.endpoint_id, "P-SHOP", 1, 3) == 1
    all_rows, _, _ = await service.deliveries(endpoint.endpoint_id, "P-SHOP", "", 50, "")
    assert {r["sequence"]: r["status"] for r in all_rows} == {3: PENDING, 4: PENDING}
    with pytest.raises(errors.InvalidArgument) as caught:
        await service.replay_range(endpoint.endpoint_id, "P-SHOP", 5, 2)
    assert caught.value.violations[0].field == "to_sequence"


async def test_a_retrying_order_holds_back_only_its_own_later_events(notifier):
    db, service, consumer = notifier
    endpoint, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/in", ["order.*"], "")
    for event in [
        order_event("ORD-X", "P-SHOP", "received", 1),
        order_event("ORD-Y", "P-SHOP", "received", 1),
        order_event("ORD-X", "P-SHOP", "confirmed", 2),
        order_event("ORD-Y", "P-SHOP", "confirmed", 2),
    ]:
        await consumer.handle(Msg(event))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches)
        heads = await repo.heads(endpoint.endpoint_id, 10)
        assert [(h["order_id"], h["event_type"]) for h in heads] == [
            ("ORD-X", "order.received"),
            ("ORD-Y", "order.received"),
        ]
        # ORD-X's first event waits for a retry; ORD-Y's is delivered: ORD-Y's next may go, ORD-X's may not.
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)
        await repo.record_attempt(
            heads[0]["delivery_id"],
            1,
            status_code=503,
            latency_ms=1,
            error="",
            excerpt="",
            new_status=PENDING,
            attempts=1,
            next_attempt_at=later,
        )
        await repo.record_attempt(
            heads[1]["delivery_id"],
            1,
            status_code=200,
            latency_ms=1,
            error="",
            excerpt="",
            new_status=DELIVERED,
            attempts=1,
            next_attempt_at=None,
        )
        heads = await repo.heads(endpoint.endpoint_id, 10)
        assert [(h["order_id"], h["event_type"]) for h in heads] == [
            ("ORD-X", "order.received"),
            ("ORD-Y", "order.confirmed"),
        ]
        # Parked, the held event lets the order's next one go (the cursor moves on).
        await repo.record_attempt(
            heads[0]["delivery_id"],
            2,
            status_code=0,
            latency_ms=1,
            error="refused",
            excerpt="",
            new_status=PARKED,
            attempts=2,
            next_attempt_at=None,
        )
        heads = await repo.heads(endpoint.endpoint_id, 10)
        assert [(h["order_id"], h["event_type"]) for h in heads] == [
            ("ORD-X", "order.confirmed"),
            ("ORD-Y", "order.confirmed"),
        ]


async def test_one_round_takes_on_for_every_endpoint_and_a_busy_endpoint_cannot_crowd_out_the_others(
    notifier,
):
    """take_on_all moves every lagging endpoint's cursor in one go; due_heads gives each endpoint at most
    `per_endpoint` heads (earliest due first), so one endpoint with many retries due leaves room for others."""
    db, service, consumer = notifier
    busy, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/busy", ["order.*"], "")
    quiet, _ = await service.create_endpoint(
        "P-EDI", "https://hooks.example.com/quiet", ["order.confirmed"], ""
    )
    for n in range(6):
        await consumer.handle(Msg(order_event(f"ORD-S{n}", "P-SHOP", "received", 1)))
    await consumer.handle(Msg(order_event("ORD-E1", "P-EDI", "received", 1)))  # not wanted by `quiet`
    await consumer.handle(Msg(order_event("ORD-E1", "P-EDI", "confirmed", 2)))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        assert await repo.take_on_all(domain.matches, batch=4) is True  # busy has 6 new: 4 now, 2 left
        assert await repo.take_on_all(domain.matches, batch=4) is False
        assert await repo.take_on_all(domain.matches, batch=4) is False  # nothing new: nothing happens
        assert (await repo.endpoint(busy.endpoint_id)).cursor == 6
        assert (await repo.endpoint(quiet.endpoint_id)).cursor == 2
        heads = await repo.due_heads(dt.datetime.now(dt.UTC), per_endpoint=2)
    by_endpoint = {}
    for h in heads:
        by_endpoint.setdefault(h["endpoint_id"], []).append(h["order_id"])
    assert by_endpoint == {busy.endpoint_id: ["ORD-S0", "ORD-S1"], quiet.endpoint_id: ["ORD-E1"]}
    assert {h["url"] for h in heads} == {"https://hooks.example.com/busy", "https://hooks.example.com/quiet"}
    await service.pause(busy.endpoint_id, "P-SHOP")  # a paused endpoint's deliveries wait
    async with db.read() as conn:
        heads = await NotifierRepository(conn).due_heads(dt.datetime.now(dt.UTC), per_endpoint=2)
    assert [h["endpoint_id"] for h in heads] == [quiet.endpoint_id]


async def test_another_partners_endpoint_is_not_found(notifier):
    db, service, consumer = notifier
    endpoint, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/in", ["*"], "")
    for call in (
        service.endpoint(endpoint.endpoint_id, "P-EDI"),
        service.pause(endpoint.endpoint_id, "P-EDI"),
        service.rotate_secret(endpoint.endpoint_id, "P-EDI"),
        service.delete(endpoint.endpoint_id, "P-EDI"),
        service.deliveries(endpoint.endpoint_id, "P-EDI", "", 10, ""),
        service.replay_range(endpoint.endpoint_id, "P-EDI", 1, 2),
    ):
        with pytest.raises(errors.NotFound):
            await call
    assert (await service.endpoints("P-EDI"))[0] == []
    assert [e.endpoint_id for e in (await service.endpoints("P-SHOP"))[0]] == [endpoint.endpoint_id]


async def test_private_targets_are_refused_unless_allowed(make_database):
    db = await make_database(MIGRATIONS)

    async def loopback(host, port):
        return ["127.0.0.1"]

    strict = NotifierService(db, resolver=loopback)
    with pytest.raises(errors.InvalidArgument) as caught:
        await strict.create_endpoint("P-SHOP", "http://internal.example/hook", ["*"], "")
    assert caught.value.violations[0].field == "url" and "loopback" in caught.value.violations[0].description
    relaxed = NotifierService(db, allowed_networks=domain.LOOPBACK, resolver=loopback)
    endpoint, _ = await relaxed.create_endpoint("P-SHOP", "http://internal.example/hook", ["*"], "")
    assert endpoint.status == "active"
    # The allow-list never opens link-local (cloud metadata), nor plain http to a public address.

    async def metadata(host, port):
        return ["169.254.169.254"]

    async def public(host, port):
        return ["93.184.216.34"]

    anywhere = domain.parse_networks("10.0.0.0/8,127.0.0.0/8")
    with pytest.raises(errors.InvalidArgument) as caught:
        await NotifierService(db, allowed_networks=anywhere, resolver=metadata).create_endpoint(
            "P-SHOP", "https://metadata.example/hook", ["*"], ""
        )
    assert "link-local" in caught.value.violations[0].description
    with pytest.raises(errors.InvalidArgument) as caught:
        await NotifierService(db, allowed_networks=anywhere, resolver=public).create_endpoint(
            "P-SHOP", "http://hooks.example/hook", ["*"], ""
        )
    assert caught.value.violations[0].reason == "https_required"
    async with db.read() as conn:  # refused: nothing stored
        assert (await conn.execute(sa.text("SELECT count(*) FROM endpoints"))).scalar() == 1


# --- the workers against a local receiver ---------------------------------------------------------
class Receiver:
    """A partner's webhook receiver: answers from a script of statuses (then 200), verifies signatures."""

    def __init__(self, secret_holder: dict, script: list[int] | None = None):
        self.secret_holder = secret_holder
        self.script = list(script or [])
        self.got: list[dict] = []
        self.statuses: list[int] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not domain.verify(
            self.secret_holder["secret"],
            request.headers[domain.SIGNATURE_HEADER],
            raw,
            now=dt.datetime.now(dt.UTC).timestamp(),
        ):
            self.bad_signatures += 1
        status = self.script.pop(0) if self.script else 200
        self.statuses.append(status)
        if status == 200:
            self.got.append({"body": json.loads(raw), "headers": dict(request.headers), "raw": raw})
        return web.Response(status=status, text=f"answer {status}")


async def serve(receiver: Receiver) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


def settings(**overrides) -> WebhookSettings:
    values = dict(
        allow_networks="127.0.0.0/8",
        max_attempts=3,
        backoff=0.05,
        max_backoff=0.2,
        timeout=2.0,
        concurrency=8,
    )
    return WebhookSettings(**{**values, **overrides})


async def until(check, timeout=15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


async def test_workers_deliver_in_order_retry_park_replay_and_stop_on_410(make_database):
    db = await make_database(MIGRATIONS)
    service = NotifierService(db, allowed_networks=domain.LOOPBACK)
    consumer = EventConsumer(db, None, Subscription("notifier-feed", "orderdesk.>", service.on_event))
    dispatcher = Dispatcher(db, service, settings())
    held_secret: dict = {}
    flaky = Receiver(held_secret, script=[500, 500])  # fails twice, then takes everything
    gone = Receiver({"secret": "whsec_unused_0000000000"}, script=[410])
    runners = []
    runner, flaky_url = await serve(flaky)
    runners.append(runner)
    runner, gone_url = await serve(gone)
    runners.append(runner)
    task = asyncio.create_task(dispatcher.run())
    try:
        endpoint, held_secret["secret"] = await service.create_endpoint("P-SHOP", flaky_url, ["order.*"], "")
        gone_endpoint, _ = await service.create_endpoint("P-SHOP", gone_url, ["*"], "")
        dead_endpoint, _ = await service.create_endpoint("P-SHOP", "http://127.0.0.1:9/closed", ["*"], "")
        order_id = f"ORD-{uuid.uuid4().hex[:8]}"
        for n, status in enumerate(("received", "confirmed", "allocated"), start=1):
            await consumer.handle(Msg(order_event(order_id, "P-SHOP", status, n)))

        async def flaky_has_all():
            return len(flaky.got) == 3

        await until(flaky_has_all)
        assert [g["body"]["type"] for g in flaky.got] == [
            "order.received",
            "order.confirmed",
            "order.allocated",
        ]
        assert [g["headers"][domain.ORDER_SEQUENCE_HEADER] for g in flaky.got] == ["1", "2", "3"]
        assert flaky.statuses == [500, 500, 200, 200, 200] and flaky.bad_signatures == 0

        async def dead_parked():
            rows, _, _ = await service.deliveries(dead_endpoint.endpoint_id, "P-SHOP", PARKED, 10, "")
            return len(rows) == 3

        await until(dead_parked)
        rows, attempts, _ = await service.deliveries(dead_endpoint.endpoint_id, "P-SHOP", PARKED, 10, "")
        assert all(
            len(attempts[r["delivery_id"]]) == 3 and attempts[r["delivery_id"]][0]["error"] for r in rows
        )

        async def gone_disabled():
            found, _ = await service.endpoint(gone_endpoint.endpoint_id, "P-SHOP")
            return found.status == "disabled"

        await until(gone_disabled)
        gone_rows, _, _ = await service.deliveries(gone_endpoint.endpoint_id, "P-SHOP", "", 10, "")
        first_gone = gone_rows[-1]  # newest first: the last row is the first event
        assert (first_gone["status"], first_gone["last_status_code"]) == (FAILED, 410)
        assert all(r["status"] == PENDING for r in gone_rows[:-1])
        assert gone.statuses == [410]  # nothing more was sent to it

        # The flaky endpoint is unaffected and keeps receiving; a replay sends the first event again.
        first = (await service.deliveries(endpoint.endpoint_id, "P-SHOP", DELIVERED, 10, ""))[0][-1]
        await service.replay(endpoint.endpoint_id, "P-SHOP", first["delivery_id"])

        async def replayed():
            return len(flaky.got) == 4

        await until(replayed)
        assert flaky.got[3]["body"]["sequence"] == first["sequence"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for r in runners:
            await r.cleanup()


async def test_a_feed_wakes_deliveries_only_for_partners_with_endpoints_and_a_missed_change_still_delivers(
    make_database, monkeypatch
):
    """A feed growing wakes the dispatcher only for a partner with an active endpoint. An endpoint created on
    another replica whose poke never came still gets its deliveries: the timed round takes them on and reads
    the partners again."""
    from services.notifier import delivery

    monkeypatch.setattr(delivery, "MAX_WAIT_SECONDS", 0.5)
    monkeypatch.setattr(delivery, "REFRESH_SECONDS", 0.5)
    db = await make_database(MIGRATIONS)
    here = NotifierService(db, allowed_networks=domain.LOOPBACK)
    elsewhere = NotifierService(db, allowed_networks=domain.LOOPBACK)  # another replica: no poke reaches us
    consumer = EventConsumer(db, None, Subscription("notifier-feed", "orderdesk.>", here.on_event))
    dispatcher = Dispatcher(db, here, settings())
    held: dict = {}
    receiver = Receiver(held)
    runner, url = await serve(receiver)
    await here.create_endpoint("P-HOOKED", url, ["*"], "whsec_" + "h" * 32)
    await dispatcher.round()  # reads the partners with endpoints
    dispatcher._wake.clear()
    await consumer.handle(Msg(order_event("ORD-QUIET", "P-QUIET", "received", 1)))
    assert not dispatcher._wake.is_set()  # no endpoint: no round
    await consumer.handle(Msg(order_event("ORD-HOOKED", "P-HOOKED", "received", 1)))
    assert dispatcher._wake.is_set()
    dispatcher._wake.clear()

    _, held["secret"] = await elsewhere.create_endpoint("P-QUIET", url, ["*"], "whsec_" + "q" * 32)
    await consumer.handle(Msg(order_event("ORD-QUIET", "P-QUIET", "confirmed", 2)))
    assert not dispatcher._wake.is_set()  # the change was missed here ...
    task = asyncio.create_task(dispatcher.run())
    try:

        async def quiet_delivered():
            return any(g["body"]["order_id"] == "ORD-QUIET" for g in receiver.got)

        await until(quiet_delivered)  # ... and the timed round delivers all the same
        # an endpoint takes what comes after its creation: the event the missed change made no round for
        assert [g["body"]["type"] for g in receiver.got if g["body"]["order_id"] == "ORD-QUIET"] == [
            "order.confirmed"
        ]

        async def quiet_watched():  # read again within REFRESH_SECONDS: its next events wake a round
            return "P-QUIET" in (dispatcher._watched or set())

        await until(quiet_watched)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


async def test_an_attempt_whose_round_failed_is_recorded_by_the_next(notifier, monkeypatch):
    """The POST happened; if the round that should record it fails (database away), the outcome is kept
    and recorded by the next round rather than lost (which would leave the delivery in flight for good)."""
    db, service, consumer = notifier
    endpoint, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/in", ["order.*"], "")
    await consumer.handle(Msg(order_event("ORD-R", "P-SHOP", "received", 1)))
    dispatcher = Dispatcher(db, service, settings())
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches)
        (head,) = await repo.heads(endpoint.endpoint_id, 10)
    dispatcher.in_flight[head["delivery_id"]] = endpoint.endpoint_id
    target = Target(endpoint.endpoint_id, endpoint.url, ("whsec_x",))
    dispatcher.finished.append(
        (
            Attempt(head["delivery_id"], 1, 204, 1.0, "", "", DELIVERED, 1, None, at=dt.datetime.now(dt.UTC)),
            target,
            dict(head),
            domain.Outcome.DELIVERED,
        )
    )
    real = NotifierRepository.take_on_all

    async def database_away(self, *args, **kwargs):
        raise ConnectionError("database away")

    monkeypatch.setattr(NotifierRepository, "take_on_all", database_away)
    with pytest.raises(ConnectionError):
        await dispatcher.round()
    assert head["delivery_id"] in dispatcher.in_flight and len(dispatcher.finished) == 1
    monkeypatch.setattr(NotifierRepository, "take_on_all", real)
    await dispatcher.round()
    assert dispatcher.in_flight == {} and dispatcher.finished == []
    rows, attempts, _ = await service.deliveries(endpoint.endpoint_id, "P-SHOP", DELIVERED, 10, "")
    assert [r["delivery_id"] for r in rows] == [head["delivery_id"]] and len(
        attempts[head["delivery_id"]]
    ) == 1


async def test_an_orders_deliveries_over_every_endpoint_oldest_first_for_the_desk(notifier):
    db, service, consumer = notifier
    shop_a, _ = await service.create_endpoint("P-SHOP", "https://a.example.com/in", ["*"], "")
    shop_b, _ = await service.create_endpoint("P-SHOP", "https://b.example.com/in", ["order.confirmed"], "")
    edi, _ = await service.create_endpoint("P-EDI", "https://c.example.com/in", ["*"], "")
    for event in [
        order_event("ORD-1", "P-SHOP", "received", 1),
        order_event("ORD-9", "P-SHOP", "received", 1),
        order_event("ORD-1", "P-SHOP", "confirmed", 2),
        order_event("ORD-2", "P-EDI", "received", 1),
    ]:
        await consumer.handle(Msg(event))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        for endpoint in (shop_a, shop_b, edi):
            await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches)

    rows, attempts = await service.order_deliveries("ORD-1", "", 0)
    assert sorted((r["endpoint_id"], r["event_type"]) for r in rows) == sorted(
        [
            (shop_a.endpoint_id, "order.received"),
            (shop_a.endpoint_id, "order.confirmed"),
            (shop_b.endpoint_id, "order.confirmed"),
        ]
    )
    assert {r["order_id"] for r in rows} == {"ORD-1"} and set(attempts) == {r["delivery_id"] for r in rows}
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    assert (await service.order_deliveries("ORD-1", "P-EDI", 0))[0] == []  # scoped to a partner's endpoints
    assert len((await service.order_deliveries("ORD-1", "P-SHOP", 2))[0]) == 2
    with pytest.raises(errors.InvalidArgument):
        await service.order_deliveries("ORD-1", "", 1000)


async def test_a_partner_may_register_only_so_many_endpoints(make_database):
    db = await make_database(MIGRATIONS)
    service = NotifierService(db, resolver=public_only, max_endpoints=2)
    for n in range(2):
        await service.create_endpoint("P-SHOP", f"https://hooks.example.com/{n}", ["*"], "")
    with pytest.raises(errors.FailedPrecondition) as caught:
        await service.create_endpoint("P-SHOP", "https://hooks.example.com/2", ["*"], "")
    assert caught.value.rule == "endpoint_limit"
    assert len((await service.endpoints("P-SHOP"))[0]) == 2  # the refused one was not stored
    # Another partner has its own allowance; a deleted endpoint gives one back.
    await service.create_endpoint("P-EDI", "https://hooks.example.com/edi", ["*"], "")
    first = (await service.endpoints("P-SHOP"))[0][0]
    await service.delete(first.endpoint_id, "P-SHOP")
    await service.create_endpoint("P-SHOP", "https://hooks.example.com/again", ["*"], "")


# --- secrets sealed at rest, and a rotation's overlap --------------------------------------------
async def stored_secrets(db, endpoint_id: str) -> tuple[str, str]:
    async with db.read() as conn:
        row = (
            await conn.execute(
                sa.select(endpoints.c.secret, endpoints.c.previous_secret).where(
                    endpoints.c.endpoint_id == endpoint_id
                )
            )
        ).one()
    return row.secret, row.previous_secret


async def test_a_secret_is_stored_sealed_and_a_rotation_signs_with_both_for_the_overlap(notifier):
    db, _, consumer = notifier
    service = NotifierService(db, allowed_networks=domain.LOOPBACK, secret_overlap=dt.timedelta(hours=1))
    consumer = EventConsumer(db, None, Subscription("notifier-feed", "orderdesk.>", service.on_event))
    held: dict = {}
    receiver = Receiver(held)
    runner, url = await serve(receiver)
    dispatcher = Dispatcher(db, service, settings())
    task = asyncio.create_task(dispatcher.run())
    try:
        endpoint, held["secret"] = await service.create_endpoint("P-SHOP", url, ["order.*"], "")
        stored, previous = await stored_secrets(db, endpoint.endpoint_id)
        assert sealing.is_sealed(stored) and held["secret"] not in stored and previous == ""

        old = held["secret"]
        _, new = await service.rotate_secret(endpoint.endpoint_id, "P-SHOP")
        stored, previous = await stored_secrets(db, endpoint.endpoint_id)
        assert new not in stored and old not in previous and sealing.box().open(previous) == old
        order_id = f"ORD-{uuid.uuid4().hex[:8]}"
        await consumer.handle(Msg(order_event(order_id, "P-SHOP", "received", 1)))

        async def delivered():
            return len(receiver.got) == 1

        await until(delivered)
        # During the overlap a receiver still on the old secret and one already on the new both verify.
        header, raw = receiver.got[0]["headers"][domain.SIGNATURE_HEADER], receiver.got[0]["raw"]
        now = dt.datetime.now(dt.UTC).timestamp()
        assert len(parse_header(header)[1]) == 2 and receiver.bad_signatures == 0
        assert domain.verify(old, header, raw, now=now) and domain.verify(new, header, raw, now=now)

        # Once the overlap is over only the new secret signs.
        async with db.transaction() as tx:
            await tx.conn.execute(
                sa.update(endpoints)
                .where(endpoints.c.endpoint_id == endpoint.endpoint_id)
                .values(previous_secret_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        held["secret"] = new
        await consumer.handle(Msg(order_event(order_id, "P-SHOP", "confirmed", 2)))

        async def both_delivered():
            return len(receiver.got) == 2

        await until(both_delivered)
        header, raw = receiver.got[1]["headers"][domain.SIGNATURE_HEADER], receiver.got[1]["raw"]
        now = dt.datetime.now(dt.UTC).timestamp()
        assert len(parse_header(header)[1]) == 1 and receiver.bad_signatures == 0
        assert domain.verify(new, header, raw, now=now) and not domain.verify(old, header, raw, now=now)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await runner.cleanup()


async def test_secrets_stored_plain_by_an_older_orderdesk_are_sealed_at_start(notifier):
    db, service, _ = notifier
    endpoint, secret = await service.create_endpoint("P-SHOP", "https://hooks.example.com/in", ["*"], "")
    async with db.transaction() as tx:  # as an orderdesk before notifier 0007 stored it
        await tx.conn.execute(
            sa.update(endpoints).where(endpoints.c.endpoint_id == endpoint.endpoint_id).values(secret=secret)
        )
    assert await service.seal_stored_secrets() == 1
    stored, _ = await stored_secrets(db, endpoint.endpoint_id)
    assert sealing.is_sealed(stored) and sealing.box().open(stored) == secret
    assert await service.seal_stored_secrets() == 0  # nothing left to seal


async def test_attempts_of_deliveries_gone_meanwhile_are_dropped_and_the_pass_reads_count_them(notifier):
    db, service, consumer = notifier
    endpoint, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/in", ["*"], "")
    for n in (1, 2):
        await consumer.handle(Msg(order_event(f"ORD-G{n}", "P-SHOP", "received", 1)))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        assert await repo.lag() == 2
        assert await repo.partners_with_active_endpoints() == {"P-SHOP"}
        assert await repo.take_on(await repo.endpoint(endpoint.endpoint_id), domain.matches) == 2
        assert await repo.lag() == 0
        ids = [d["delivery_id"] for d in await repo.list_deliveries(endpoint.endpoint_id, PENDING, 10, None)]
        recorded = await repo.record_attempts(
            [Attempt(d, 1, 200, 1.0, "", "ok", DELIVERED, 1, None) for d in [*ids, "dlv_gone"]]
        )
        assert sorted(a.delivery_id for a in recorded) == sorted(ids)
        assert (await repo.count_by_status())[DELIVERED] == 2
