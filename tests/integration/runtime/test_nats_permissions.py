"""NATS users and permissions (orderdesk/natsauth.py) on a real nats-server started with the rendered
`authorization` block: a service publishes only its own aggregates' events, reads only through its own
consumers, and a service runtime works end to end with nothing but its own user (issue 12)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from devtools.localservers import LocalNats, free_port
from orderdesk import events, natsauth
from orderdesk.config import NatsCredentials
from orderdesk.consumers import Subscription
from orderdesk.runtime import ServiceRuntime
from orderdesk.v1 import events_pb2

SHIPPING_MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "shipping" / "migrations"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """A nats-server with a user per component; (url, passwords)."""
    passwords = natsauth.generate_passwords()
    server = LocalNats(
        tmp_path_factory.mktemp("nats-auth"), config=natsauth.render_authorization(passwords)
    ).start()
    yield server.url, passwords
    server.stop()


class Client:
    """A connection as one NATS user, keeping the errors the server sent it (permissions violations)."""

    def __init__(self, nc, errors: list[str]):
        self.nc, self.errors = nc, errors
        self.js = nc.jetstream(timeout=2)

    @classmethod
    async def connect(cls, secured, user: str) -> Client:
        url, passwords = secured
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        credentials = NatsCredentials(user, passwords[user])
        component = "" if user == natsauth.ADMIN else user
        nc = await nats.connect(url, error_cb=on_error, **credentials.connect_options(component))
        return cls(nc, errors)

    async def violation(self, subject: str, timeout: float = 5.0) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = [
                e
                for e in self.errors
                if "permissions violation" in e.lower() and subject.lower() in e.lower()
            ]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no permissions violation for {subject}; errors: {self.errors}")


@pytest.fixture
async def clients(secured):
    made: list[Client] = []

    async def connect(user: str) -> Client:
        made.append(await Client.connect(secured, user))
        return made[-1]

    admin = await connect(natsauth.ADMIN)
    await events.ensure_streams(admin.js)
    yield connect
    for client in made:
        await client.nc.close()


def _shipment_delivered(order_id: str) -> events_pb2.Event:
    return events.new_event(
        "shipment.delivered",
        aggregate_id=f"{order_id}-S1",
        version=3,
        order_id=order_id,
        shipment=events_pb2.ShipmentEvent(),
    )


async def stored(admin: Client, subject: str) -> list[str]:
    """The subjects of the stream's messages on `subject` (read back as the admin)."""
    sub = await admin.js.subscribe(subject, ordered_consumer=True, deliver_policy="all")
    got = []
    try:
        while True:
            got.append((await sub.next_msg(timeout=1.0)).subject)
    except nats.errors.TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return got


async def test_no_or_wrong_credentials_cannot_connect(secured):
    url, passwords = secured
    for options in (
        {},
        {"user": "shipping", "password": passwords["returns"]},
        {"user": "gateway", "password": "x"},
    ):
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(
                url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **options
            )


async def test_only_shipping_publishes_shipment_events(clients):
    admin, returns, shipping = (
        await clients(natsauth.ADMIN),
        await clients("returns"),
        await clients("shipping"),
    )
    order_id = f"ORD-P{uuid.uuid4().hex[:10].upper()}"
    forged = _shipment_delivered(order_id)
    subject = events.subject(forged)

    with pytest.raises(nats.errors.TimeoutError):  # the server drops it: no ack
        await returns.js.publish(
            subject, forged.SerializeToString(), headers={"Nats-Msg-Id": forged.event_id}
        )
    assert "permissions violation for publish" in (await returns.violation(subject)).lower()
    assert await stored(admin, f"orderdesk.shipment.{order_id}.>") == []

    real = _shipment_delivered(order_id)
    ack = await shipping.js.publish(subject, real.SerializeToString(), headers={"Nats-Msg-Id": real.event_id})
    assert ack.stream == events.STREAM and not ack.duplicate
    assert await stored(admin, f"orderdesk.shipment.{order_id}.>") == [subject]
    # Returns still publishes its own.
    ack = await returns.js.publish(f"orderdesk.return.{order_id}.requested", b"x")
    assert ack.stream == events.STREAM


async def test_a_service_reads_only_through_its_own_consumers(clients):
    orders, returns = await clients("orders"), await clients("returns")
    # Its own durable, with its own filter: made.
    own = ConsumerConfig(
        durable_name="orders-stock-restocked",
        filter_subject="orderdesk.stock.*.restocked",
        ack_policy=AckPolicy.EXPLICIT,
    )
    await orders.js.pull_subscribe(
        own.filter_subject, durable=own.durable_name, stream=events.STREAM, config=own
    )
    # The same name with a wider filter (every event of the stream): refused.
    wider = ConsumerConfig(durable_name="orders-stock-rescheduled", filter_subject="orderdesk.>")
    with pytest.raises(nats.errors.TimeoutError):
        await orders.js.pull_subscribe(
            "orderdesk.>", durable="orders-stock-rescheduled", stream=events.STREAM, config=wider
        )
    await orders.violation("$JS.API.CONSUMER.CREATE.ORDERDESK.orders-stock-rescheduled.orderdesk.>")
    # Another service's consumer: neither its messages nor its inboxes.
    with pytest.raises(nats.errors.TimeoutError):
        await returns.js.pull_subscribe(
            own.filter_subject, durable=own.durable_name, stream=events.STREAM, config=own
        )
    await returns.nc.subscribe("_INBOX.orders.>")
    await returns.violation("_INBOX.orders.>")
    # Nor a message read straight from the stream.
    with pytest.raises(nats.errors.TimeoutError):
        await returns.js.get_msg(events.STREAM, seq=1)


async def test_a_service_runtime_works_with_only_its_own_user(secured, clients, tmp_path, monkeypatch):
    """Shipping's runtime on its own credentials: makes the streams and its durable consumer, receives and
    acks orders' event, and its outbox relay publishes its own event through JetStream."""
    url, passwords = secured
    admin, orders = await clients(natsauth.ADMIN), await clients("orders")
    monkeypatch.setenv("ORDERDESK_NATS_URL", url)
    monkeypatch.setenv("ORDERDESK_NATS_USER", "shipping")
    monkeypatch.setenv("ORDERDESK_NATS_PASSWORD", passwords["shipping"])
    monkeypatch.setenv("ORDERDESK_SHIPPING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'shipping.db'}")
    monkeypatch.setenv("ORDERDESK_SHIPPING_METRICS_PORT", "0")
    monkeypatch.setenv("ORDERDESK_SHIPPING_ADDR", f"127.0.0.1:{free_port()}")
    order_id = f"ORD-P{uuid.uuid4().hex[:10].upper()}"
    handled: list[str] = []

    async def on_allocated(tx, event) -> None:  # as shipping does: a shipment for the allocated order
        handled.append(event.event_id)
        await tx.emit(
            events.new_event(
                "shipment.created",
                aggregate_id=f"{event.order_id}-S1",
                version=1,
                order_id=event.order_id,
                shipment=events_pb2.ShipmentEvent(),
            )
        )

    runtime = ServiceRuntime("shipping", SHIPPING_MIGRATIONS)
    await runtime.start()
    runtime.subscribe(Subscription("shipping-order-allocated", "orderdesk.order.*.allocated", on_allocated))
    serving = asyncio.create_task(runtime.serve())
    try:
        allocated = events.new_event(
            "order.allocated",
            aggregate_id=order_id,
            version=4,
            order_id=order_id,
            order=events_pb2.OrderEvent(status="allocated"),
        )
        await orders.js.publish(
            events.subject(allocated),
            allocated.SerializeToString(),
            headers={"Nats-Msg-Id": allocated.event_id},
        )
        deadline = asyncio.get_running_loop().time() + 30
        while not await stored(admin, f"orderdesk.shipment.{order_id}.>"):
            assert asyncio.get_running_loop().time() < deadline, "shipping's event never reached the stream"
            await asyncio.sleep(0.2)
        assert await stored(admin, f"orderdesk.shipment.{order_id}.>") == [
            f"orderdesk.shipment.{order_id}.created"
        ]
        assert handled == [allocated.event_id]
        info = await admin.js.consumer_info(events.STREAM, "shipping-order-allocated")
        assert info.config.filter_subject == "orderdesk.order.*.allocated"
        for _ in range(50):  # the ack follows the commit
            info = await admin.js.consumer_info(events.STREAM, "shipping-order-allocated")
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        assert info.num_ack_pending == 0 and info.num_pending == 0 and info.delivered.stream_seq > 0
    finally:
        runtime.stop()
        await asyncio.wait_for(serving, 30)


async def test_wakeups_stay_between_one_services_replicas(clients):
    shipping, returns = await clients("shipping"), await clients("returns")
    received: list[bytes] = []

    async def got(msg) -> None:
        received.append(msg.data)

    await shipping.nc.subscribe("_orderdesk.wake.outbox-shipping", cb=got)
    await shipping.nc.flush()
    await returns.nc.publish("_orderdesk.wake.outbox-shipping", b"from returns")
    await returns.violation("_orderdesk.wake.outbox-shipping")
    await shipping.nc.publish("_orderdesk.wake.outbox-shipping", b"from shipping")
    await shipping.nc.flush()
    for _ in range(50):
        if received:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert received == [b"from shipping"]
