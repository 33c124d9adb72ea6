"""The e2e suite runs secured, as `make run` does: its NATS has a user per service (orderdesk/natsauth.py),
each process connects with its own, and nobody without credentials gets in (issue 12)."""

from __future__ import annotations

import asyncio
import uuid

import nats
import pytest

from orderdesk import events, natsauth
from orderdesk.v1 import events_pb2

pytestmark = pytest.mark.e2e


async def _refused(url: str, **options) -> str:
    with pytest.raises(nats.errors.Error) as refused:
        await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **options)
    return str(refused.value)


async def test_the_stacks_nats_refuses_a_client_without_credentials(stack):
    assert stack.nats_passwords, "the e2e stack runs on a NATS without users"
    assert "Authorization Violation" in await _refused(stack.nats_url)
    assert "Authorization Violation" in await _refused(stack.nats_url, user="returns", password="wrong")
    # Each process is given its own user, the CLI the admin; the gateway never connects.
    assert stack.env("returns")["ORDERDESK_NATS_USER"] == "returns"
    assert stack.env()["ORDERDESK_NATS_USER"] == natsauth.ADMIN
    assert "ORDERDESK_NATS_USER" not in stack.env("gateway")


async def test_returns_cannot_publish_a_shipment_event_on_the_live_stack(stack, nc):
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    returns = await nats.connect(stack.nats_url, error_cb=on_error, **stack.nats_connect_options("returns"))
    try:
        order_id = f"ORD-N{uuid.uuid4().hex[:10].upper()}"
        forged = events.new_event(
            "shipment.delivered",
            aggregate_id=f"{order_id}-S1",
            version=3,
            order_id=order_id,
            shipment=events_pb2.ShipmentEvent(),
        )
        subject = events.subject(forged)
        assert subject == f"orderdesk.shipment.{order_id}.delivered"
        with pytest.raises(nats.errors.TimeoutError):  # the server drops it: no ack
            await returns.jetstream(timeout=2).publish(
                subject, forged.SerializeToString(), headers={"Nats-Msg-Id": forged.event_id}
            )
        for _ in range(50):
            # nats-py lowercases the server's error text, the subject with it
            if any(f'permissions violation for publish to "{subject.lower()}"' in e.lower() for e in errors):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"no permissions violation for {subject}: {errors}")
    finally:
        await returns.close()
    # Read back as the admin: nothing reached the stream for that order.
    sub = await nc.jetstream().subscribe(
        f"orderdesk.shipment.{order_id}.>", ordered_consumer=True, deliver_policy="all"
    )
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await sub.next_msg(timeout=1.0)
    finally:
        await sub.unsubscribe()
