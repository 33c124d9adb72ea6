"""Retention on a real database (SQLite and PostgreSQL): a pass prunes exactly the old rows, in bounded
batches, never an unpublished outbox row; idempotency keys go (intake) or are forgotten (returns); and two
runtimes on one database do not both prune (the lease)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select

from devtools.localservers import free_port
from orderdesk import metrics, retention
from orderdesk.db import Database, utcnow
from orderdesk.outbox import inbox_table, outbox_table
from orderdesk.retention import Pruner, RetentionSettings
from orderdesk.runtime import ServiceRuntime
from orderdesk.v1 import events_pb2
from services.intake import store as intake_store
from services.returns import store as returns_store

ROOT = Path(__file__).resolve().parents[3]
RETURNS_MIGRATIONS = ROOT / "services" / "returns" / "migrations"
INTAKE_MIGRATIONS = ROOT / "services" / "intake" / "migrations"
NOW = utcnow()
OLD = NOW - dt.timedelta(days=30)
RECENT = NOW - dt.timedelta(hours=1)


def _statements(db: Database, verb: str) -> list[str]:
    """The statements of `verb` (DELETE, UPDATE) the database runs from now on."""
    seen: list[str] = []

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(verb):
            seen.append(statement)

    return seen


def _pruned(service: str, what: str) -> float:
    return metrics.RETENTION_PRUNED.labels(service, what)._value.get()


async def _fill_messaging(db: Database, tag: str) -> dict[str, set[str]]:
    rows = {
        "old_inbox": {f"{tag}-oi{i}" for i in range(7)},
        "new_inbox": {f"{tag}-ni{i}" for i in range(2)},
        "old_published": {f"{tag}-op{i}" for i in range(5)},
        "old_unpublished": {f"{tag}-ou{i}" for i in range(2)},
        "new_published": {f"{tag}-np{i}" for i in range(2)},
    }
    async with db.begin() as conn:
        await conn.execute(
            insert(inbox_table),
            [
                {"consumer": "c", "event_id": e, "processed_at": OLD if e in rows["old_inbox"] else RECENT}
                for e in rows["old_inbox"] | rows["new_inbox"]
            ],
        )
        published = {
            **dict.fromkeys(rows["old_published"], OLD),
            **dict.fromkeys(rows["old_unpublished"], None),
            **dict.fromkeys(rows["new_published"], RECENT),
        }
        await conn.execute(
            insert(outbox_table),
            [
                {
                    "event_id": e,
                    "subject": f"orderdesk.test.{e}.made",
                    "payload": events_pb2.Event(event_id=e, type="test.made").SerializeToString(),
                    "created_at": OLD,
                    "published_at": at,
                }
                for e, at in published.items()
            ],
        )
    return rows


async def _ids(db: Database, column) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(column))).scalars())


async def test_a_pass_prunes_exactly_the_old_inbox_and_published_outbox_rows_in_batches(make_database):
    db = await make_database(RETURNS_MIGRATIONS)
    rows = await _fill_messaging(db, "m")
    async with db.begin() as conn:  # returns: keys older and newer than the retention, and one without
        await conn.execute(
            insert(returns_store.returns),
            [
                {
                    "rma_id": f"RMA-{n}",
                    "order_id": "ORD-1",
                    "partner_id": "P",
                    "status": "authorized",
                    "resolution": "refund",
                    "refund_amount": "0",
                    "version": 1,
                    "idempotency_scope": "P",
                    "idempotency_key": key,
                    "request_hash": "h",
                    "created_at": at,
                    "updated_at": at,
                }
                for n, (key, at) in enumerate(
                    [
                        ("k-old-0", OLD),
                        ("k-old-1", OLD),
                        ("k-old-2", OLD),
                        ("k-old-3", OLD),
                        ("k-new", RECENT),
                        (None, OLD),
                    ]
                )
            ],
        )
    settings = RetentionSettings(inbox_days=15, outbox_days=1, idempotency_days=7, batch=2)
    pruner = Pruner(db, "returns", settings, [*retention.MESSAGING, *returns_store.PRUNABLE])
    deletes, updates = _statements(db, "DELETE"), _statements(db, "UPDATE")
    before = {what: _pruned("returns", what) for what in ("inbox", "outbox", "idempotency_keys")}

    assert await pruner.prune() == {"inbox": 7, "outbox": 5, "idempotency_keys": 4}

    assert await _ids(db, inbox_table.c.event_id) == rows["new_inbox"]
    # never an unpublished row, however old
    assert await _ids(db, outbox_table.c.event_id) == rows["old_unpublished"] | rows["new_published"]
    async with db.read() as conn:
        keys = dict(
            (
                await conn.execute(
                    select(returns_store.returns.c.rma_id, returns_store.returns.c.idempotency_key)
                )
            ).all()
        )
    assert keys == {
        "RMA-0": None,
        "RMA-1": None,
        "RMA-2": None,
        "RMA-3": None,
        "RMA-4": "k-new",
        "RMA-5": None,
    }
    # in batches of 2: 7 inbox rows take 4 statements, 5 outbox rows 3; 4 keys 3 (the last finds none)
    assert sum("inbox" in s for s in deletes) == 4 and sum("outbox" in s for s in deletes) == 3
    assert len(updates) == 3
    assert {w: _pruned("returns", w) - before[w] for w in before} == {
        "inbox": 7,
        "outbox": 5,
        "idempotency_keys": 4,
    }
    assert metrics.RETENTION_PASS.labels("returns", "inbox")._sum.get() > 0
    # a second pass finds nothing more
    assert await pruner.prune() == {"inbox": 0, "outbox": 0, "idempotency_keys": 0}


async def test_intake_drops_idempotency_keys_after_their_retention_and_zero_keeps_everything(make_database):
    db = await make_database(INTAKE_MIGRATIONS)
    table = intake_store.idempotency_keys
    async with db.begin() as conn:
        await conn.execute(
            insert(table),
            [
                {
                    "partner_id": "P",
                    "idempotency_key": f"k{i}",
                    "request_hash": "h",
                    "order_id": f"ORD-{i}",
                    "create_request": b"r",
                    "created_at": at,
                }
                for i, at in enumerate([OLD, OLD, OLD, NOW - dt.timedelta(days=6), RECENT])
            ],
        )
    forever = Pruner(
        db,
        "intake",
        RetentionSettings(inbox_days=0, outbox_days=0, idempotency_days=0),
        [*retention.MESSAGING, *intake_store.PRUNABLE],
    )
    assert await forever.prune() == {}
    assert len(await _ids(db, table.c.idempotency_key)) == 5
    week = Pruner(db, "intake", RetentionSettings(idempotency_days=7, batch=2), intake_store.PRUNABLE)
    assert await week.prune() == {"idempotency_keys": 3}
    assert await _ids(db, table.c.idempotency_key) == {"k3", "k4"}
    # one day after, the six-day-old key has passed its week too
    assert await week.prune(now=NOW + dt.timedelta(days=1, minutes=1)) == {"idempotency_keys": 1}
    assert await _ids(db, table.c.idempotency_key) == {"k4"}


async def test_two_runtimes_on_one_database_do_not_both_prune(make_database, backend, nats_url, monkeypatch):
    if backend != "postgresql":
        pytest.skip("SQLite is one process per database file: its only runtime always prunes")
    db = await make_database(RETURNS_MIGRATIONS)
    monkeypatch.setenv("ORDERDESK_RETURNS_DATABASE_URL", db.url)
    monkeypatch.setenv("ORDERDESK_NATS_URL", nats_url)
    monkeypatch.setenv("ORDERDESK_RETURNS_METRICS_PORT", "0")
    runtimes, pruners, serving = [], [], []
    for _ in range(2):
        monkeypatch.setenv("ORDERDESK_RETURNS_ADDR", f"127.0.0.1:{free_port()}")
        rt = ServiceRuntime("returns", RETURNS_MIGRATIONS)
        await (
            rt.start()
        )  # as each __main__ does: started first (the lease needs the database), then registered
        pruners.append(retention.register(rt, settings=RetentionSettings(interval_seconds=0.1, batch=3)))
        runtimes.append(rt)
    try:
        serving = [asyncio.create_task(rt.serve()) for rt in runtimes]
        await _until(lambda: max(p.passes for p in pruners) >= 5)
        holder = max(range(2), key=lambda i: pruners[i].passes)
        other = 1 - holder
        assert pruners[other].passes == 0, "both replicas pruned"
        rows = await _fill_messaging(db, uuid.uuid4().hex[:6])
        await _until_async(lambda: _count_is(db, len(rows["new_inbox"])))
        assert pruners[other].passes == 0
        # the holder stops: the other takes the lease over and prunes from then on
        runtimes[holder].stop()
        await asyncio.wait_for(serving[holder], 30)
        await _until(lambda: pruners[other].passes >= 2)
    finally:
        for rt, task in zip(runtimes, serving, strict=False):
            rt.stop()
            await asyncio.gather(task, return_exceptions=True)


async def _count_is(db: Database, expected: int) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(inbox_table))).scalar_one() == expected


async def _until(check, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


async def _until_async(check, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("service", ["intake", "orders", "inventory", "shipping", "returns", "notifier"])
async def test_every_services_migrations_make_the_indexes_its_pruning_walks(make_database, service):
    db = await make_database(ROOT / "services" / service / "migrations")
    expected = {"inbox": {"ix_inbox_processed"}}
    expected |= {
        "intake": {"idempotency_keys": {"ix_idempotency_keys_created"}},
        "returns": {"returns": {"ix_returns_idempotency_age"}},
        "notifier": {
            "feed": {"ix_feed_appended"},
            "deliveries": {"ix_deliveries_updated"},
            "delivery_attempts": {"ix_delivery_attempts_at"},
        },
    }.get(service, {})

    def indexes(sync_conn):
        from sqlalchemy import inspect

        found = inspect(sync_conn)
        return {table: {i["name"] for i in found.get_indexes(table)} for table in expected}

    async with db.read() as conn:
        found = await conn.run_sync(indexes)
    assert all(expected[t] <= found[t] for t in expected), found
