"""A feed entry keeps its event as published and its JSON body is made when it is read (migration 0008), on a
real database (SQLite and PostgreSQL): the stored row, every way a body is read, entries written before the
migration, erasure and the downgrade."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import command

from orderdesk import migrations
from orderdesk.consumers import EventConsumer, Subscription
from services.notifier import domain
from services.notifier.store import NotifierRepository, feed, rendered
from tests.integration.notifier.test_erasure import ask, order_event
from tests.integration.notifier.test_notifier_store import (  # noqa: F401
    MIGRATIONS,
    Msg,
    feed_of,
    notifier,
    shipment_event,
)

PARTNER = "P-SHOP"


async def stored(db) -> list[dict]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(feed).order_by(feed.c.sequence))
        return [dict(row) for row in rows.mappings()]


async def test_an_entry_keeps_its_event_and_reads_with_the_body_the_append_would_have_written(notifier):  # noqa: F811
    db, service, consumer = notifier
    endpoint, _secret = await service.create_endpoint(
        PARTNER, "https://hooks.example.com/in", ["order.*"], ""
    )
    sent = [
        order_event("ORD-1", "received", 1),
        order_event("ORD-1", "confirmed", 2),
        shipment_event("ORD-1", "shipped"),
    ]
    batched = EventConsumer(
        db,
        None,
        Subscription(
            "notifier-feed",
            "orderdesk.>",
            service.on_event,
            group_commit=True,
            batch_handler=service.on_events,
        ),
    )
    await consumer.handle(Msg(sent[0]))  # one alone (on_event), two in a batch (on_events)
    assert await batched.handle_together([Msg(sent[1]), Msg(sent[2])])

    rows = await stored(db)
    assert [(r["sequence"], r["order_sequence"], r["body"]) for r in rows] == [
        (1, 1, ""),
        (2, 2, ""),
        (3, 3, ""),
    ]
    assert [r["event"] for r in rows] == [e.SerializeToString() for e in sent]

    expected = [domain.body(e, seq, seq).decode() for seq, e in enumerate(sent, start=1)]
    assert [e["body"] for e in await feed_of(service, PARTNER)] == expected
    assert json.loads(expected[2])["carrier"] == "DHL" and json.loads(expected[0])["order_sequence"] == 1

    # A webhook's deliveries carry the entry's event, and its POST the same body (delivery.attempt).
    async with db.transaction() as tx:
        repo = tx.repo(NotifierRepository)
        await repo.take_on_all(domain.matches)
        heads = await repo.heads(endpoint.endpoint_id, 10)
        due = await repo.due_heads(rows[-1]["appended_at"].replace(year=2999), 10)
    assert [rendered(h)["body"] for h in heads] == expected[:1]  # an order's oldest pending delivery first
    assert [rendered(h)["body"] for h in due] == expected[:1]


async def test_an_entry_written_before_the_migration_reads_as_stored(notifier):  # noqa: F811
    db, service, consumer = notifier
    await consumer.handle(Msg(order_event("ORD-1", "received", 1)))
    old_body = json.dumps({"id": "written-out", "sequence": 1})
    async with db.transaction() as tx:
        await tx.conn.execute(sa.update(feed).values(body=old_body, event=None))
    assert [e["body"] for e in await feed_of(service, PARTNER)] == [old_body]


async def test_erasure_writes_the_body_out_and_drops_the_event_it_kept(notifier):  # noqa: F811
    db, service, consumer = notifier
    for event in (
        order_event("ORD-E", "received", 1),
        shipment_event("ORD-E", "shipped"),
        order_event("ORD-KEEP", "received", 1),
    ):
        await consumer.handle(Msg(event))
    kept_before = (await stored(db))[2]

    from services.notifier.erasure import NotifierErasure

    report = await NotifierErasure(db).erase(ask(["ORD-E"]))
    assert report.erased == {"feed": 1}  # the shipment's body names nobody, but its event goes too
    erased, shipped, kept = await stored(db)
    assert erased["event"] is None and shipped["event"] is None
    assert "Marylebone" not in erased["body"] and json.loads(erased["body"])["order_id"] == "ORD-E"
    assert json.loads(shipped["body"])["type"] == "shipment.shipped"
    assert kept == kept_before and kept["event"] is not None and b"Marylebone" in kept["event"]


async def test_the_downgrade_writes_every_kept_body_out(notifier):  # noqa: F811
    db, service, consumer = notifier
    for event in (order_event("ORD-1", "received", 1), shipment_event("ORD-1", "shipped")):
        await consumer.handle(Msg(event))
    bodies = [e["body"] for e in await feed_of(service, PARTNER)]
    cfg = migrations.alembic_config(MIGRATIONS, db.engine.url.render_as_string(hide_password=False))

    def downgrade(connection):
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0007")

    async with db.begin() as conn:
        await conn.run_sync(downgrade)
        rows = await conn.execute(sa.text("SELECT body FROM feed ORDER BY sequence"))
        assert [r.body for r in rows] == bodies
        columns = await conn.run_sync(lambda c: [col["name"] for col in sa.inspect(c).get_columns("feed")])
    assert "event" not in columns
