"""The returns service's decided refunds become credit notes (services/intake/consumers.py, durable
intake-return-credit) on a real database (SQLite and PostgreSQL) and a real JetStream: the same event
delivered twice, and a later event of the same RMA, make one credit note; its amount leaves the customer's
exposure once; finance posting the same number later is the same document."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal

import nats
import pytest
from sqlalchemy import func, select

from orderdesk import errors, events
from orderdesk.consumers import EventConsumer
from orderdesk.v1 import events_pb2, intake_pb2, orders_pb2, returns_pb2
from services.intake import consumers, finance
from services.intake.domain import IntakeConfig
from services.intake.store import finance_documents
from tests.integration.intake.test_checks_service import deliver, exposure, order_event
from tests.integration.intake.test_finance import Ledger, document, record
from tests.integration.intake.test_intake_service import intake

DECIDED_AT = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
async def js(nats_url):
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await events.ensure_streams(js)
    yield js
    await nc.close()


def return_event(
    order_id: str, rma_id: str, event_type: str = "return.refunded", **fields
) -> events_pb2.Event:
    return events.new_event(
        event_type,
        aggregate_id=rma_id,
        version=5,
        order_id=order_id,
        at=DECIDED_AT,
        return_=events_pb2.ReturnEvent(
            **{
                "return": returns_pb2.Return(
                    **{
                        "rma_id": rma_id,
                        "order_id": order_id,
                        "partner_id": "P1",
                        "status": "refunded",
                        "refund_amount": "42.50",
                        "currency": "USD",
                        "version": 5,
                        **fields,
                    }
                )
            }
        ),
    )


def ledger() -> tuple[Ledger, str]:
    """Orders' GetOrder for one order of its own (the stream is shared: events of earlier runs stay on
    their orders' subjects)."""
    orders = Ledger()
    order_id = f"ORD-T{uuid.uuid4().hex[:10].upper()}"
    orders.known[order_id] = orders_pb2.Order()
    orders.known[order_id].CopyFrom(orders.known["ORD-A"])
    orders.known[order_id].order_id = order_id
    return orders, order_id


async def credit_notes(service, order_id: str) -> list[tuple[str, int, str]]:
    async with service.db.read() as conn:
        rows = await conn.execute(
            select(
                finance_documents.c.number, finance_documents.c.amount_micros, finance_documents.c.recorded_by
            ).where(finance_documents.c.order_id == order_id, finance_documents.c.kind == "credit_note")
        )
        return [tuple(r) for r in rows]


async def consume(service, js, order_id: str, *published: events_pb2.Event) -> None:
    """intake's own subscription, on a durable of the test's and this order's subject, until it has
    nothing pending."""
    (subscription,) = [s for s in consumers.subscriptions(service) if s.durable == "intake-return-credit"]
    assert subscription.filter_subject == "orderdesk.return.>"
    subscription = dataclasses.replace(
        subscription, durable=f"test-{uuid.uuid4().hex[:8]}", filter_subject=f"orderdesk.return.{order_id}.>"
    )
    consumer = EventConsumer(service.db, js, subscription)
    await consumer.start()
    for e in published:
        await js.publish(events.subject(e), e.SerializeToString())
    task = asyncio.create_task(consumer.run())
    try:
        for _ in range(300):
            info = await js.consumer_info(events.STREAM, subscription.durable)
            if info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the consumer did not catch up")
    finally:
        consumer.stop()
        task.cancel()
        await js.delete_consumer(events.STREAM, subscription.durable)


async def test_a_refund_delivered_twice_is_one_credit_note_and_lowers_the_exposure_once(make_database, js):
    orders, order_id = ledger()
    service = await intake(make_database, orders, config=IntakeConfig(exposure_until="payment"))
    await deliver(
        service,
        order_event(order_id, "confirmed", 2, "1000.00"),
        order_event(order_id, "completed", 7, "1000.00"),
    )
    assert await exposure(service) == Decimal("1000.00")
    rma_id = f"RMA-{uuid.uuid4().hex[:12].upper()}"
    refunded = return_event(order_id, rma_id)
    # The same event twice (a redelivery), then a later event of the refunded RMA.
    later = return_event(order_id, rma_id, "return.exchange_created", exchange_order_id="ORD-X")
    await consume(service, js, order_id, refunded, refunded, later)

    assert await credit_notes(service, order_id) == [(f"CN-{rma_id}", 42_500_000, "returns")]
    assert await exposure(service) == Decimal("957.50")
    account = await finance.get(service, intake_pb2.GetOrderAccountRequest(order_id=order_id))
    assert (account.refunded, account.uses_credit) == ("42.50", "957.50")
    (note,) = account.documents
    assert (note.kind, note.number, note.amount, note.currency, note.issued_on) == (
        "credit_note",
        f"CN-{rma_id}",
        "42.50",
        "USD",
        "2026-12-03",
    )
    assert note.note == f"refund 42.50 of return {rma_id}"
    listed = await finance.credit_notes(
        service, intake_pb2.ListCreditNotesRequest(issued_from="2026-12-03", issued_to="2026-12-03")
    )
    assert [(i.document.number, i.recorded_by, i.partner_id) for i in listed.items] == [
        (f"CN-{rma_id}", "returns", "P1")
    ]

    # Finance posting the number later is the same document: replayed, or refused with other content.
    again = await record(
        service, order_id, document("credit_note", f"CN-{rma_id}", "42.50", issued_on="2026-12-03")
    )
    assert again.replayed and again.refunded == "42.50"
    with pytest.raises(errors.FailedPrecondition) as reused:
        await record(
            service, order_id, document("credit_note", f"CN-{rma_id}", "40.00", issued_on="2026-12-03")
        )
    assert reused.value.rule == "document_number_reused"
    assert await exposure(service) == Decimal("957.50")


async def test_a_credit_note_finance_posted_first_stands(make_database, js):
    orders, order_id = ledger()
    service = await intake(make_database, orders, config=IntakeConfig(exposure_until="payment"))
    await deliver(service, order_event(order_id, "confirmed", 2, "1000.00"))
    rma_id = f"RMA-{uuid.uuid4().hex[:12].upper()}"
    await record(service, order_id, document("credit_note", f"CN-{rma_id}", "40.00", issued_on="2026-12-02"))
    assert await exposure(service) == Decimal("960.00")
    # An exchange's credit on top of the refund: finance's number stands, nothing is added.
    await consume(service, js, order_id, return_event(order_id, rma_id, to_credit="7.50"))
    assert await credit_notes(service, order_id) == [(f"CN-{rma_id}", 40_000_000, "key:finance@P1")]
    assert await exposure(service) == Decimal("960.00")
    async with service.db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(finance_documents))).scalar() == 1


async def test_an_exchange_credit_and_a_claim_refund_are_credit_notes_too(make_database, js):
    """An exchange for a cheaper replacement credits the difference with the refund; a claim, published in
    the returns' vocabulary under a type of its own, is credited from the same fields."""
    orders, order_id = ledger()
    service = await intake(make_database, orders, config=IntakeConfig(exposure_until="payment"))
    await deliver(service, order_event(order_id, "confirmed", 2, "1000.00"))
    exchange, claim = (f"RMA-{uuid.uuid4().hex[:12].upper()}" for _ in range(2))
    await consume(
        service,
        js,
        order_id,
        return_event(order_id, exchange, refund_amount="10.00", to_credit="5.25", to_charge="0.00"),
        return_event(order_id, claim, "return.claim_resolved", refund_amount="100.00"),
        return_event(order_id, f"RMA-{uuid.uuid4().hex[:8]}", refund_amount="0.00", to_charge="9.00"),
    )
    assert sorted(await credit_notes(service, order_id)) == sorted(
        [(f"CN-{exchange}", 15_250_000, "returns"), (f"CN-{claim}", 100_000_000, "returns")]
    )
    assert await exposure(service) == Decimal("884.75")
    account = await finance.get(service, intake_pb2.GetOrderAccountRequest(order_id=order_id))
    assert account.refunded == "115.25"
    assert {d.number: d.note for d in account.documents}[f"CN-{exchange}"] == (
        f"refund 10.00 and exchange credit 5.25 of return {exchange}"
    )
