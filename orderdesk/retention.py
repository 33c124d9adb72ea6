"""Retention: what grows without bound is pruned here, one way for every service.

Every service prunes its consumers' inbox and its published outbox rows; a service registers its own
prunable tables besides (its __main__: `retention.register(rt, *store.PRUNABLE)`). One replica per
database prunes at a time (the lease `retention-<service>`, see orderdesk.leases), once every
ORDERDESK_RETENTION_INTERVAL_SECONDS, oldest rows first, at most ORDERDESK_RETENTION_BATCH rows per
statement, each statement its own short transaction, with a pause between statements so the service's
own work goes first. Measured: orderdesk_retention_pruned_total and orderdesk_retention_pass_seconds
{service, what}.

How long each is kept and why (README "Retention"):
- inbox rows: a message is redelivered at most as long as the stream holds it (its max age), and a
  relay's re-publish within the duplicate window is dropped by JetStream; an inbox row must outlive
  both, or a redelivered event would be applied twice. Shorter settings are refused at start-up.
- published outbox rows: never needed again once JetStream acknowledged them; an unpublished row is
  never pruned.
- idempotency keys: at least as long as a partner may retry (IDEMPOTENCY_RETRY_HORIZON_DAYS).
- the notifier's feed and webhook deliveries: the partners' replay window.
Settings in days accept fractions; 0 keeps forever.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, FromClause, Table, delete, select, tuple_, update

from orderdesk import events, metrics
from orderdesk.db import Database, utcnow
from orderdesk.leases import PeriodicPasses
from orderdesk.outbox import inbox_table, outbox_table

if TYPE_CHECKING:
    from orderdesk.runtime import ServiceRuntime

log = logging.getLogger("orderdesk.retention")

DAY = 86400.0
# Partners may retry a request with the same Idempotency-Key for 24 hours (README "Retention"); keys
# are kept at least that long.
IDEMPOTENCY_RETRY_HORIZON_DAYS = 1.0
INBOX_AGE_INDEX = "ix_inbox_processed"


class RetentionSettingError(ValueError):
    """A retention setting that is unreadable or would break a guarantee: the process refuses to start."""


def inbox_floor_days(stream_max_age: float, duplicate_window: float) -> float:
    """The shortest inbox retention that keeps every redelivery a duplicate: the stream's max age
    plus its duplicate window, in days. 0 when the stream keeps messages forever (then so must the inbox)."""
    if stream_max_age <= 0:
        return 0.0
    return (stream_max_age + duplicate_window) / DAY


@dataclass(frozen=True)
class RetentionSettings:
    """ORDERDESK_RETENTION_* (README "Configuration"); days may be fractions, 0 keeps forever."""

    inbox_days: float = field(
        default=2 * inbox_floor_days(events.MAX_AGE_SECONDS, events.DUPLICATE_WINDOW_SECONDS)
    )
    outbox_days: float = 1.0
    feed_days: float = 14.0
    webhook_attempts_days: float = 14.0
    idempotency_days: float = 7.0
    interval_seconds: float = 900.0
    batch: int = 1000

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        stream_max_age: float | None = None,
        duplicate_window: float | None = None,
    ) -> RetentionSettings:
        """Reads the settings and checks them against the stream's; raises RetentionSettingError naming
        every bad variable."""
        environ = os.environ if environ is None else environ
        max_age = events.MAX_AGE_SECONDS if stream_max_age is None else stream_max_age
        window = events.DUPLICATE_WINDOW_SECONDS if duplicate_window is None else duplicate_window
        problems: list[str] = []
        values: dict[str, Any] = {}
        floor = inbox_floor_days(max_age, window)
        defaults = {"inbox_days": 2 * floor}  # 0 (forever) when the stream keeps messages forever
        for f in fields(cls):
            name = env_name(f.name)
            text = environ.get(name, "").strip()
            if not text:
                if f.name in defaults:
                    values[f.name] = defaults[f.name]
                continue
            try:
                values[f.name] = _parse(f.name, text)
            except ValueError as exc:
                problems.append(f"{name}={text!r}: {exc}")
        settings = cls(**values)
        problems += settings.violations(max_age, window)
        if problems:
            raise RetentionSettingError("refusing to start, retention settings: " + "; ".join(problems))
        return settings

    def violations(self, stream_max_age: float, duplicate_window: float) -> list[str]:
        """The settings that would break a guarantee (empty when none does)."""
        found = []
        floor = inbox_floor_days(stream_max_age, duplicate_window)
        if stream_max_age <= 0 and self.inbox_days != 0:
            found.append(
                f"{env_name('inbox_days')}={self.inbox_days:g}: the stream keeps messages forever "
                "(ORDERDESK_STREAM_MAX_AGE_SECONDS=0), so a redelivery can come at any time: the inbox must "
                "be kept forever (0)"
            )
        elif self.inbox_days != 0 and self.inbox_days < floor:
            found.append(
                f"{env_name('inbox_days')}={self.inbox_days:g} is shorter than the stream's max age plus its "
                f"duplicate window ({stream_max_age:g} s + {duplicate_window:g} s = {floor:.4g} days): an "
                f"event redelivered after its inbox row is pruned would be applied twice; set at least "
                f"{math.ceil(floor * 100) / 100:g} or 0 (forever)"
            )
        if self.idempotency_days != 0 and self.idempotency_days < IDEMPOTENCY_RETRY_HORIZON_DAYS:
            found.append(
                f"{env_name('idempotency_days')}={self.idempotency_days:g} is shorter than the "
                f"{IDEMPOTENCY_RETRY_HORIZON_DAYS:g} day(s) partners may retry with the same Idempotency-Key: "
                "a retry would make a second order or return; set at least "
                f"{IDEMPOTENCY_RETRY_HORIZON_DAYS:g} or 0 (forever)"
            )
        return found

    def keep(self, setting: str) -> dt.timedelta | None:
        """How long rows under `setting` are kept; None: forever."""
        days = float(getattr(self, setting))
        return None if days == 0 else dt.timedelta(days=days)

    def cutoff(self, setting: str, now: dt.datetime) -> dt.datetime | None:
        """Rows older than this go; None: nothing goes."""
        keep = self.keep(setting)
        return None if keep is None else now - keep


def env_name(setting: str) -> str:
    return "ORDERDESK_RETENTION_" + setting.upper()


def _parse(setting: str, text: str) -> float | int:
    if setting == "batch":
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be a whole number of rows") from None
        if not 1 <= value <= 100_000:
            raise ValueError("must be from 1 to 100000 rows per statement")
        return value
    try:
        number = float(text)
    except ValueError:
        raise ValueError("must be a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("must be a finite number, not negative")
    if setting == "interval_seconds" and number <= 0:
        raise ValueError("must be more than 0 seconds")
    return number


# --- what may be pruned ------------------------------------------------------------------------
@dataclass(frozen=True)
class Prunable:
    """A table whose old rows go: those whose `age` column is older than the cut-off of `setting`
    (a RetentionSettings field) and for which `where(row)` holds (built on an alias of the table)."""

    what: str  # the metric label: inbox, outbox, feed, idempotency_keys ...
    table: Table
    age: str  # the timestamp column compared with the cut-off
    setting: str  # e.g. "inbox_days"
    where: Callable[[FromClause], ColumnElement[bool]] | None = None
    forget: tuple[str, ...] = ()  # set these columns to NULL instead of deleting the row

    def statement(self, batch: int):
        """One bounded statement: the `batch` oldest matching rows (by primary key) deleted or forgotten;
        executed with {"cutoff": datetime}."""
        from sqlalchemy import bindparam

        row = self.table.alias("expired")
        conditions = [row.c[self.age] < bindparam("cutoff", type_=self.table.c[self.age].type)]
        conditions += [row.c[name].is_not(None) for name in self.forget]  # forgotten rows never match again
        if self.where is not None:
            conditions.append(self.where(row))
        key = list(self.table.primary_key.columns)
        victims = (
            select(*[row.c[c.name] for c in key]).where(*conditions).order_by(row.c[self.age]).limit(batch)
        )
        match = key[0].in_(victims) if len(key) == 1 else tuple_(*key).in_(victims)
        if self.forget:
            return update(self.table).where(match).values({name: None for name in self.forget})
        return delete(self.table).where(match)


INBOX = Prunable("inbox", inbox_table, "processed_at", "inbox_days")
# Only rows JetStream acknowledged: an unpublished row (published_at NULL) never matches.
OUTBOX = Prunable(
    "outbox", outbox_table, "published_at", "outbox_days", where=lambda row: row.c.published_at.is_not(None)
)
MESSAGING = (INBOX, OUTBOX)


class Pruner(PeriodicPasses):
    """Prunes a service's registered tables: `prune()` is one pass; `run()` passes forever (under the lease)."""

    what = "retention"
    logger = log
    BATCH_PAUSE_SECONDS = 0.05  # between two statements: the service's own work goes first

    def __init__(self, db: Database | None, service: str, settings: RetentionSettings, prunables):
        super().__init__()
        self.db = db  # None until the runtime has started (register() before rt.start())
        self.service = service
        self.settings = settings
        self.prunables = list(prunables)
        self.passes = 0
        self._statements = {p.what: p.statement(settings.batch) for p in self.prunables}

    async def prune(self, now: dt.datetime | None = None) -> dict[str, int]:
        """One pass over every registered table; rows pruned by what."""
        now = now or utcnow()
        pruned = {}
        for p in self.prunables:
            cutoff = self.settings.cutoff(p.setting, now)
            if cutoff is not None:
                pruned[p.what] = await self._prune_table(p, cutoff)
        self.passes += 1
        return pruned

    async def _prune_table(self, p: Prunable, cutoff: dt.datetime) -> int:
        assert self.db is not None, "the pruner runs on a started runtime's database"
        started = time.perf_counter()
        statement = self._statements[p.what]
        total = 0
        counter = metrics.RETENTION_PRUNED.labels(self.service, p.what)
        try:
            while True:
                async with self.db.begin() as conn:
                    count = max((await conn.execute(statement, {"cutoff": cutoff})).rowcount, 0)
                total += count
                counter.inc(count)
                if count < self.settings.batch:
                    break
                await asyncio.sleep(self.BATCH_PAUSE_SECONDS)
        finally:
            metrics.RETENTION_PASS.labels(self.service, p.what).observe(time.perf_counter() - started)
        if total:
            log.info("retention: %d %s row(s) older than %s pruned", total, p.what, cutoff.isoformat())
        return total

    def interval_seconds(self) -> float:
        return self.settings.interval_seconds

    async def one_pass(self) -> dict[str, int]:
        return await self.prune()


def job_name(service: str) -> str:
    return f"retention-{service}"


def register(rt: ServiceRuntime, *prunables: Prunable, settings: RetentionSettings | None = None) -> Pruner:
    """Prunes the service's inbox, published outbox rows and `prunables`, one replica at a time (the
    lease). Call it after `rt.start()` (the lease needs the database and NATS); a setting that would
    break a guarantee stops the process before it serves anything."""
    settings = settings or RetentionSettings.from_env()
    pruner = Pruner(rt.db, rt.name, settings, [*MESSAGING, *prunables])

    async def prune_while_held() -> None:
        pruner.db = pruner.db or rt.db  # started by now
        await pruner.run()

    rt.add_singleton(job_name(rt.name), prune_while_held, on_wake=lambda _payload: pruner.wake())
    return pruner


def create_inbox_age_index(op) -> None:
    """For each service's migration: the inbox's pruning walks processed_at."""
    op.create_index(INBOX_AGE_INDEX, "inbox", ["processed_at"])


def drop_inbox_age_index(op) -> None:
    op.drop_index(INBOX_AGE_INDEX, "inbox")
