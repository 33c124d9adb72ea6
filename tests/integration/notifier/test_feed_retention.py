"""The notifier's retention on a real database (SQLite and PostgreSQL): old feed entries go only as a prefix
no active endpoint still needs, finished deliveries and attempts go after their retention, and a cursor,
replay or resume older than what is kept gets a clear answer instead of silently fewer events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select, update

from orderdesk import errors
from orderdesk.consumers import EventConsumer, Subscription
from orderdesk.db import utcnow
from orderdesk.retention import Pruner, RetentionSettings
from services.notifier import domain, store
from services.notifier.service import NotifierService
from services.notifier.store import DELIVERED, FAILED, PENDING, Attempt, NotifierRepository
from tests.integration.notifier.test_notifier_store import Msg, order_event, public_only

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "notifier" / "migrations"
OLD = utcnow() - dt.timedelta(days=30)


async def test_old_feed_entries_go_as_a_prefix_and_old_cursors_are_told_so(make_database):
    db = await make_database(MIGRATIONS)
    service = NotifierService(db, resolver=public_only, feed_days=14)
    consumer = EventConsumer(db, None, Subscription("notifier-feed", "orderdesk.>", service.on_event))
    active, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/a", ["*"], "")
    paused, _ = await service.create_endpoint("P-SHOP", "https://hooks.example.com/b", ["*"], "")
    for n in range(1, 11):
        await consumer.handle(Msg(order_event(f"ORD-S{n}", "P-SHOP", "received", 1)))
    for n in range(1, 4):
        await consumer.handle(Msg(order_event(f"ORD-E{n}", "P-EDI", "received", 1)))
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        assert await repo.take_on(await repo.endpoint(active.endpoint_id), domain.matches, batch=6) == 6
        assert await repo.take_on(await repo.endpoint(paused.endpoint_id), domain.matches, batch=2) == 2
        delivered = {
            r["sequence"]: r["delivery_id"]
            for r in await repo.list_deliveries(active.endpoint_id, PENDING, 10, None)
            if r["sequence"] <= 3
        }
        # 1..3 delivered long ago; 4 is being retried (pending), as are 5 and 6
        await repo.record_attempts(
            [Attempt(d, 1, 200, 1.0, "", "ok", DELIVERED, 1, None, at=OLD) for d in delivered.values()]
        )
        await tx.conn.execute(
            update(store.deliveries)
            .where(
                store.deliveries.c.sequence.in_([1, 2]), store.deliveries.c.endpoint_id == active.endpoint_id
            )
            .values(updated_at=OLD)
        )
        await tx.conn.execute(update(store.feed).where(store.feed.c.sequence <= 8).values(appended_at=OLD))
    await service.pause(paused.endpoint_id, "P-SHOP")  # its pending deliveries 1 and 2 do not hold the feed

    pruner = Pruner(
        db, "notifier", RetentionSettings(feed_days=14, webhook_attempts_days=14, batch=2), store.PRUNABLE
    )
    assert await pruner.prune() == {"feed": 3 + 3, "webhook_deliveries": 2, "webhook_attempts": 3}

    async with db.read() as conn:
        kept = (await conn.execute(select(store.feed.c.partner_id, store.feed.c.sequence))).all()
        left = {
            r.sequence: r.status
            for r in (
                await conn.execute(
                    select(store.deliveries).where(store.deliveries.c.endpoint_id == active.endpoint_id)
                )
            ).all()
        }
    # P-SHOP: 1..3 old and done with; 4 has a pending delivery, 7.. are not taken on yet: 4..10 stay.
    # P-EDI: no endpoint, all old: gone.
    assert sorted(kept) == [("P-SHOP", s) for s in range(4, 11)]
    assert left == {3: DELIVERED, 4: PENDING, 5: PENDING, 6: PENDING}

    # the feed: from the start is what is kept; a cursor in the window goes on; an older one is told where to go on
    entries, head = await service.read_feed("P-SHOP", 0, 100, 0)
    assert [e["sequence"] for e in entries] == list(range(4, 11)) and head == 10
    entries, _ = await service.read_feed("P-SHOP", 3, 100, 0)
    assert entries[0]["sequence"] == 4
    with pytest.raises(errors.FailedPrecondition) as expired:
        await service.read_feed("P-SHOP", 2, 100, 0)
    assert expired.value.rule == "feed_cursor_expired" and "after=3" in expired.value.message
    assert "14 days" in expired.value.message
    with pytest.raises(errors.FailedPrecondition, match="after=3"):  # everything pruned: go on from the head
        await service.read_feed("P-EDI", 1, 100, 0)
    assert (await service.read_feed("P-EDI", 3, 100, 0))[0] == []

    # replays: within the window they work, before it they are refused, saying from where
    with pytest.raises(errors.FailedPrecondition) as refused:
        await service.replay_range(active.endpoint_id, "P-SHOP", 1, 5)
    assert refused.value.rule == "replay_window_passed" and "sequence 4" in refused.value.message
    assert (
        await service.replay_range(active.endpoint_id, "P-SHOP", 4, 5) == 0
    )  # pending already: on their way
    with pytest.raises(errors.FailedPrecondition, match="no longer kept"):
        await service.replay(
            active.endpoint_id, "P-SHOP", delivered[3]
        )  # its delivery is kept, its event is not

    # the paused endpoint resumes past what was pruned; its deliveries of pruned events fail (never stuck)
    resumed = await service.resume(paused.endpoint_id, "P-SHOP")
    assert resumed.cursor == 3
    rows, _, _ = await service.deliveries(paused.endpoint_id, "P-SHOP", "", 50, "")
    assert {r["sequence"]: r["status"] for r in rows} == {1: FAILED, 2: FAILED}
    async with db.transaction() as tx:
        repo = NotifierRepository(tx.conn)
        assert await repo.take_on(await repo.endpoint(paused.endpoint_id), domain.matches) == 7
    # nothing old is left to prune
    assert await pruner.prune() == {"feed": 0, "webhook_deliveries": 0, "webhook_attempts": 0}
