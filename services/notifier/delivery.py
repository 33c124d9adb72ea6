"""Webhook delivery: one worker task per active endpoint, POSTs with aiohttp, the attempt log.

Each endpoint is worked on its own: its worker takes feed entries after the endpoint's cursor on as
pending deliveries and POSTs them in feed order per order: only an order's oldest pending delivery may
go, so a delivery waiting for its retry holds back the later events of its own order on its own
endpoint, nothing else. Up to ORDERDESK_WEBHOOK_ENDPOINT_CONCURRENCY orders' deliveries are in flight per
endpoint, and all POSTs share ORDERDESK_WEBHOOK_CONCURRENCY connections, so a slow or dead endpoint never
delays other partners; the order flow never waits for the notifier at all (it only reads JetStream).

Targets are checked again at connect time (the resolver refuses private addresses unless allowed),
so a name that resolved to a public address at registration cannot be re-pointed at the network later.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from orderdesk import logs, metrics
from orderdesk.config import WebhookSettings
from orderdesk.db import Database, utcnow
from services.notifier import domain
from services.notifier.domain import Outcome
from services.notifier.service import NotifierService
from services.notifier.store import ACTIVE, DELIVERED, DISABLED, FAILED, PARKED, PENDING, NotifierRepository

log = logging.getLogger("notifier.delivery")

MAX_WAIT_SECONDS = 10.0      # longest sleep of a worker with retries scheduled (re-reads then)
TAKE_ON_BATCH = 200
IDLE_POLL_SECONDS = 2.0       # wake-ups come from the feed at once; this only catches other replicas' work
RECONCILE_SECONDS = 2.0
GAUGE_SECONDS = 5.0
EXCERPT_BYTES = 500
USER_AGENT = "orderdesk-webhooks/1"

STATUS_AFTER = {Outcome.DELIVERED: DELIVERED, Outcome.RETRY: PENDING, Outcome.FAILED: FAILED,
                Outcome.PARKED: PARKED, Outcome.GONE: FAILED}


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing names that resolve to loopback/private/link-local/... addresses."""

    def __init__(self, allow_private: bool):
        self.inner = DefaultResolver()
        self.allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await self.inner.resolve(host, port, family)
        refused = domain.refused_targets([a["host"] for a in answers], self.allow_private)
        if refused:
            address, why = refused[0]
            raise OSError(f"{host} resolves to a {why} address ({address}); refused")
        return answers

    async def close(self) -> None:
        await self.inner.close()


def literal_refused(url: str, allow_private: bool) -> str:
    """aiohttp skips the resolver for an IP literal: check it here."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ""
    refused = domain.refused_targets([host], allow_private)
    return f"{host} is a {refused[0][1]} address; refused" if refused else ""


class Dispatcher:
    def __init__(self, db: Database, service: NotifierService, settings: WebhookSettings):
        self.db = db
        self.settings = settings
        self.policy = domain.RetryPolicy(max_attempts=settings.max_attempts, base_delay=settings.backoff,
                                         max_delay=settings.max_backoff)
        self.session: aiohttp.ClientSession | None = None
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.per_endpoint = max(settings.endpoint_concurrency, 1)
        self.workers: dict[str, asyncio.Task] = {}
        self.wakes: dict[str, asyncio.Event] = {}
        self.partners: dict[str, str] = {}  # endpoint -> partner, to wake a partner's workers
        self._changed = asyncio.Event()
        service.listeners.append(self.wake_partner)
        service.endpoint_listeners.append(self.wake_endpoint)

    # --- wake-ups -----------------------------------------------------------------------------------
    def wake_partner(self, partner_id: str) -> None:
        for endpoint_id, partner in self.partners.items():
            if partner == partner_id and endpoint_id in self.wakes:
                self.wakes[endpoint_id].set()

    def wake_endpoint(self, endpoint_id: str) -> None:
        if endpoint_id in self.wakes:
            self.wakes[endpoint_id].set()
        self._changed.set()

    # --- the supervisor -----------------------------------------------------------------------------
    async def run(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.settings.allow_private),
                                         limit=self.settings.concurrency, ttl_dns_cache=60)
        self.session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout))
        last_gauges = 0.0
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await self.reconcile()
                    if loop.time() - last_gauges > GAUGE_SECONDS:
                        await self.update_gauges()
                        last_gauges = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("webhook supervisor: %s", exc)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), RECONCILE_SECONDS)
        finally:
            for task in self.workers.values():
                task.cancel()
            await asyncio.gather(*self.workers.values(), return_exceptions=True)
            await self.session.close()

    async def reconcile(self) -> None:
        """A worker for every active endpoint; workers of paused, disabled or deleted ones stop."""
        async with self.db.read() as conn:
            active = set(await NotifierRepository(conn).active_endpoint_ids())
        for endpoint_id in active - set(self.workers):
            self.wakes[endpoint_id] = asyncio.Event()
            self.workers[endpoint_id] = asyncio.create_task(self.work(endpoint_id), name=f"webhook-{endpoint_id}")
        for endpoint_id in set(self.workers) - active:
            self.workers.pop(endpoint_id).cancel()
            self.wakes.pop(endpoint_id, None)
            self.partners.pop(endpoint_id, None)
        for endpoint_id, task in list(self.workers.items()):
            if task.done():  # ended (paused, disabled) or crashed: the next pass starts it again if still active
                self.workers.pop(endpoint_id)
                if not task.cancelled() and task.exception() is not None:
                    log.error("webhook worker %s failed: %r", endpoint_id, task.exception())

    async def update_gauges(self) -> None:
        async with self.db.read() as conn:
            repo = NotifierRepository(conn)
            counts = await repo.count_by_status()
            lag = await repo.lag()
        metrics.WEBHOOK_PARKED.set(counts.get(PARKED, 0))
        metrics.WEBHOOK_PENDING.set(counts.get(PENDING, 0))
        metrics.WEBHOOK_FEED_LAG.set(lag)

    # --- one endpoint -------------------------------------------------------------------------------
    async def work(self, endpoint_id: str) -> None:
        # One dispatcher runs at a time (the notifier's singleton lease), so no lock per endpoint is needed.
        wake = self.wakes[endpoint_id]
        while True:
            wake.clear()
            async with self.db.transaction() as tx:
                repo = NotifierRepository(tx.conn)
                endpoint = await repo.endpoint(endpoint_id)
                if endpoint is None or endpoint.status != ACTIVE:
                    return
                self.partners[endpoint_id] = endpoint.partner_id
                took = await repo.take_on(endpoint, domain.matches, TAKE_ON_BATCH)
                heads = await repo.heads(endpoint_id, 64)
            now = utcnow()
            due = [d for d in heads if d["next_attempt_at"] is None or d["next_attempt_at"] <= now]
            if not due:
                if took:
                    continue
                waits = [(d["next_attempt_at"] - now).total_seconds() for d in heads]
                await _wait(wake, min([*waits, IDLE_POLL_SECONDS if not heads else MAX_WAIT_SECONDS]))
                continue
            # Heads of different orders go together (at most per_endpoint); one order's events stay in order.
            batch = due[: self.per_endpoint]
            outcomes = await asyncio.gather(*(self.attempt(endpoint, d) for d in batch))
            if Outcome.GONE in outcomes:
                return
            if len(heads) == len(batch) and took < TAKE_ON_BATCH and Outcome.RETRY not in outcomes:
                await _wait(wake, IDLE_POLL_SECONDS)  # all sent; nothing more until the feed grows

    async def attempt(self, endpoint, delivery) -> Outcome:
        body = delivery["body"].encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            domain.SIGNATURE_HEADER: domain.signature_header(endpoint.secret, timestamp, body),
            domain.EVENT_ID_HEADER: delivery["event_id"],
            domain.EVENT_TYPE_HEADER: delivery["event_type"],
            domain.SEQUENCE_HEADER: str(delivery["sequence"]),
            domain.ORDER_SEQUENCE_HEADER: str(delivery["order_sequence"]),
        }
        status, error, excerpt, retry_after = None, "", "", None
        started = time.perf_counter()
        try:
            refused = literal_refused(endpoint.url, self.settings.allow_private)
            if refused:
                raise OSError(refused)
            async with self.slots:
                started = time.perf_counter()
                async with self.session.post(endpoint.url, data=body, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    excerpt = (await resp.content.read(EXCERPT_BYTES)).decode("utf-8", errors="replace")
                    retry_after = domain.parse_retry_after(resp.headers.get("Retry-After"), utcnow())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no HTTP answer: refused, reset, timeout, TLS, refused target
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = time.perf_counter() - started
        round_attempt = delivery["attempts"] + 1
        decision = self.policy.decide(status, round_attempt, retry_after)
        next_at = utcnow() + dt.timedelta(seconds=decision.delay) if decision.outcome is Outcome.RETRY else None
        async with self.db.transaction() as tx:
            repo = NotifierRepository(tx.conn)
            await repo.record_attempt(
                delivery["delivery_id"], delivery["total_attempts"] + 1, status_code=status or 0,
                latency_ms=latency * 1000, error=error, excerpt=excerpt, new_status=STATUS_AFTER[decision.outcome],
                attempts=round_attempt, next_attempt_at=next_at)
            if decision.outcome is Outcome.GONE:
                await repo.set_endpoint(endpoint.endpoint_id, status=DISABLED,
                                        disabled_reason=f"the receiver answered 410 Gone at {utcnow().isoformat()}")
        metrics.WEBHOOK_DELIVERIES.labels(decision.outcome.value).inc()
        if status is not None:
            metrics.WEBHOOK_ATTEMPT_LATENCY.observe(latency)
        if decision.outcome is Outcome.DELIVERED:
            metrics.WEBHOOK_EVENT_TO_DELIVERY.observe(max((utcnow() - delivery["occurred_at"]).total_seconds(), 0))
        elif decision.outcome in (Outcome.PARKED, Outcome.GONE, Outcome.FAILED):
            log.warning("webhook delivery %s", decision.outcome.value, extra=logs.fields(
                endpoint_id=endpoint.endpoint_id, delivery_id=delivery["delivery_id"],
                status_code=status or 0, error=error[:200]))
        return decision.outcome


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
