"""Webhook delivery: one dispatcher loop for all endpoints, POSTs with aiohttp, the attempt log.

Each round is one transaction: it records the attempts that finished since the last round, turns new
feed entries into pending deliveries for every endpoint that wants them, and picks what may go now: each
order's oldest pending delivery that is due, at most ORDERDESK_WEBHOOK_ENDPOINT_CONCURRENCY per endpoint and
ORDERDESK_WEBHOOK_PARTNER_CONCURRENCY per partner (domain.pick_launches). Those are POSTed as tasks
(ORDERDESK_WEBHOOK_CONCURRENCY in flight over all endpoints), and the next round
records them. So an order's events go in feed order (its next delivery becomes a head only once the one
before is recorded), a retrying delivery holds back only its own order on its own endpoint, a slow or dead
endpoint only ever holds its own few slots, a partner with many slow endpoints only its partner's, and the
order flow never waits for the notifier (it only reads
JetStream). Rounds cost one commit whatever the number of endpoints: at 100 endpoints the per-endpoint
workers this replaces spent ~9 transactions per event.

Targets are checked again at every connection: the resolver refuses a name with any non-public address
(unless in the development allow-list; link-local and metadata never) and aiohttp connects to the addresses
it returned, the checked ones; an IP literal is checked before the POST. So a name that resolved to a public
address at registration cannot be re-pointed at the network later. Plain http only with an allow-list.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from orderdesk import logs, metrics, sealing
from orderdesk.aio import wait_event
from orderdesk.config import WebhookSettings
from orderdesk.db import Database, utcnow
from services.notifier import domain
from services.notifier.domain import Outcome
from services.notifier.service import NotifierService
from services.notifier.store import (
    DELIVERED,
    DISABLED,
    FAILED,
    PARKED,
    PENDING,
    Attempt,
    NotifierRepository,
    rendered,
)

log = logging.getLogger("notifier.delivery")

# Longest sleep between rounds. Feeds growing and endpoints changing wake the dispatcher (another replica's
# change too: a poke over NATS, services/notifier/__main__.py), so this is only the safety net for a lost poke.
MAX_WAIT_SECONDS = 10.0
# How old the set of partners with active endpoints may get before a round reads it again (see _watched).
REFRESH_SECONDS = MAX_WAIT_SECONDS
MIN_ROUND_SECONDS = 0.1  # wake-ups within this gather into one round (one commit for many events)
TAKE_ON_BATCH = 500
GAUGE_SECONDS = 5.0
EXCERPT_BYTES = 500
USER_AGENT = "orderdesk-webhooks/1"

STATUS_AFTER = {
    Outcome.DELIVERED: DELIVERED,
    Outcome.RETRY: PENDING,
    Outcome.FAILED: FAILED,
    Outcome.PARKED: PARKED,
    Outcome.GONE: FAILED,
}


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing names that resolve to loopback/private/link-local/... addresses."""

    def __init__(self, allowed: tuple[domain.Network, ...]):
        self.inner = DefaultResolver()
        self.allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        answers = await self.inner.resolve(host, port, family)
        refused = domain.refused_targets([a["host"] for a in answers], self.allowed)
        if refused:
            address, why = refused[0]
            raise OSError(f"{host} resolves to a {why} address ({address}); refused")
        return answers

    async def close(self) -> None:
        await self.inner.close()


@dataclass(frozen=True)
class Target:
    """Where and how one delivery is POSTed (read with the delivery, so a rotated secret applies at once)."""

    endpoint_id: str
    url: str
    secrets: tuple[str, ...]  # the endpoint's secret, then the one a rotation replaced during its overlap


@functools.lru_cache(maxsize=4096)
def opened(stored: str) -> str:
    """A stored secret opened (orderdesk/sealing.py); cached, as every delivery of an endpoint signs with it."""
    return sealing.box().open(stored)


def signing_secrets(delivery, now: dt.datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with: the endpoint's, and the replaced one until its overlap ends."""
    current = opened(delivery["secret"])
    until = delivery["previous_secret_until"]
    if delivery["previous_secret"] and until is not None and now < until:
        return (current, opened(delivery["previous_secret"]))
    return (current,)


@functools.lru_cache(maxsize=4096)
def literal_refused(url: str, allowed: tuple[domain.Network, ...]) -> str:
    """aiohttp skips the resolver for an IP literal: check it here; and plain http without an allow-list."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not allowed:
        return "plain http is refused: webhooks go to https:// URLs"
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return ""
    refused = domain.refused_targets([host], allowed)
    return f"{host} is a {refused[0][1]} address; refused" if refused else ""


class Dispatcher:
    def __init__(self, db: Database, service: NotifierService, settings: WebhookSettings):
        self.db = db
        self.settings = settings
        self.allowed = domain.parse_networks(settings.allow_networks)
        self.policy = domain.RetryPolicy(
            max_attempts=settings.max_attempts, base_delay=settings.backoff, max_delay=settings.max_backoff
        )
        self.session: aiohttp.ClientSession | None = None
        self.per_endpoint = max(settings.endpoint_concurrency, 1)
        self.in_flight: dict[str, str] = {}  # delivery id -> endpoint id, until its attempt is recorded
        self.partner_of: dict[str, str] = {}  # endpoint id -> partner id, of the endpoints in flight
        self.finished: list[tuple[Attempt, Target, dict, Outcome]] = []  # to record in the next round
        self.tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        # The partners with an active endpoint, as a round last read them (None: read them next round). A feed
        # growing wakes a round only for them: a round is 3 statements and a commit, and most partners read
        # their feed rather than take webhooks. Safe if the set is stale (a change on a replica whose poke was
        # lost): every round, the timed ones too, takes on for every endpoint from its cursor, and the set is
        # read again at least every REFRESH_SECONDS.
        self._watched: set[str] | None = None
        self._watched_at = 0.0
        self._endpoint_changes = 0
        service.listeners.append(self._feed_grew)
        service.endpoint_listeners.append(lambda _endpoint_id: self.wake())  # created, resumed, replayed

    def wake(self) -> None:
        """A round now: an endpoint changed, here or on another replica (a poke from its API)."""
        self._endpoint_changes += 1
        self._watched = None
        self._wake.set()

    def _feed_grew(self, partner_id: str) -> None:
        if self._watched is None or partner_id in self._watched:
            self._wake.set()

    async def _watch(self, repo: NotifierRepository) -> None:
        """Reads the watched partners again when unknown or older than REFRESH_SECONDS."""
        now = time.monotonic()
        if self._watched is not None and now - self._watched_at < REFRESH_SECONDS:
            return
        changes = self._endpoint_changes
        found = await repo.partners_with_active_endpoints()
        if changes == self._endpoint_changes:  # no change since the read began: else it is read again
            self._watched, self._watched_at = found, now

    async def run(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.allowed),
            limit=self.settings.concurrency,
            ttl_dns_cache=60,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
        )
        loop = asyncio.get_running_loop()
        last_gauges = 0.0
        try:
            while True:
                started = loop.time()
                self._wake.clear()  # before the round: a wake-up during it makes another round
                try:
                    wait = await self.round()
                    if loop.time() - last_gauges > GAUGE_SECONDS:
                        await self.update_gauges()
                        last_gauges = loop.time()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database was busy or away: the next round tries again
                    log.warning("webhook dispatcher: %s", exc)
                    wait = 1.0
                await wait_event(self._wake, wait)
                await asyncio.sleep(max(MIN_ROUND_SECONDS - (loop.time() - started), 0))
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.session.close()

    async def round(self) -> float:
        """One transaction: record, take on, pick. Returns how long to sleep unless woken."""
        finished, self.finished = self.finished, []
        try:
            async with self.db.transaction() as tx:
                repo = tx.repo(NotifierRepository)
                recorded = {a.delivery_id for a in await repo.record_attempts([f[0] for f in finished])}
                for attempt, endpoint, _delivery, outcome in finished:
                    if outcome is Outcome.GONE and attempt.delivery_id in recorded:
                        await repo.set_endpoint(
                            endpoint.endpoint_id,
                            status=DISABLED,
                            disabled_reason=(f"the receiver answered 410 Gone at {utcnow().isoformat()}"),
                        )
                await self._watch(repo)
                more_to_take = await repo.take_on_all(domain.matches, TAKE_ON_BATCH)
                now = utcnow()
                room = len(self.in_flight) < self.settings.concurrency
                heads = await repo.due_heads(now, self.per_endpoint) if room else []
                next_due = await repo.next_due(now)
        except BaseException:
            self.finished[:0] = (
                finished  # not recorded: the next round tries again (they stay in flight till then)
            )
            raise
        for attempt, endpoint, delivery, outcome in finished:
            self.in_flight.pop(attempt.delivery_id, None)
            self.observe(attempt, endpoint, delivery, outcome)
        self.launch(heads)
        if more_to_take:
            return 0.0
        wait = MAX_WAIT_SECONDS if next_due is None else (next_due - utcnow()).total_seconds()
        return min(max(wait, 0.0), MAX_WAIT_SECONDS)

    def launch(self, heads) -> None:
        """POSTs the heads not in flight yet, within the per-endpoint, per-partner and overall limits."""
        chosen = domain.pick_launches(
            [h for h in heads if h["delivery_id"] not in self.in_flight],
            [(e, self.partner_of.get(e, "")) for e in self.in_flight.values()],
            room=self.settings.concurrency - len(self.in_flight),
            per_endpoint=self.per_endpoint,
            per_partner=self.settings.partner_concurrency,
        )
        for delivery in chosen:
            endpoint_id = delivery["endpoint_id"]
            self.partner_of[endpoint_id] = delivery["partner_id"]
            self.in_flight[delivery["delivery_id"]] = endpoint_id
            target = Target(endpoint_id, delivery["url"], signing_secrets(delivery, utcnow()))
            task = asyncio.create_task(self.attempt(target, dict(delivery)))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def update_gauges(self) -> None:
        async with self.db.reading() as work:
            repo = work.repo(NotifierRepository)
            counts = await repo.count_by_status()
            lag = await repo.lag()
        metrics.WEBHOOK_PARKED.set(counts.get(PARKED, 0))
        metrics.WEBHOOK_PENDING.set(counts.get(PENDING, 0))
        metrics.WEBHOOK_FEED_LAG.set(lag)

    async def attempt(self, endpoint: Target, delivery: dict) -> None:
        """One POST; its outcome is recorded by the next round (a crash before that sends it again)."""
        body = rendered(delivery)["body"].encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            domain.SIGNATURE_HEADER: domain.signature_header(
                endpoint.secrets[0], timestamp, body, *endpoint.secrets[1:]
            ),
            domain.EVENT_ID_HEADER: delivery["event_id"],
            domain.EVENT_TYPE_HEADER: delivery["event_type"],
            domain.SEQUENCE_HEADER: str(delivery["sequence"]),
            domain.ORDER_SEQUENCE_HEADER: str(delivery["order_sequence"]),
        }
        status, error, excerpt, retry_after = None, "", "", None
        started = time.perf_counter()
        try:
            refused = literal_refused(endpoint.url, self.allowed)
            if refused:
                raise OSError(refused)
            async with self.session.post(
                endpoint.url, data=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                excerpt = (await resp.content.read(EXCERPT_BYTES)).decode("utf-8", errors="replace")
                retry_after = domain.parse_retry_after(resp.headers.get("Retry-After"), utcnow())
        except asyncio.CancelledError:
            self.in_flight.pop(delivery["delivery_id"], None)
            raise
        except Exception as exc:  # no HTTP answer: refused, reset, timeout, TLS, refused target
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = time.perf_counter() - started
        round_attempt = delivery["attempts"] + 1
        decision = self.policy.decide(status, round_attempt, retry_after)
        now = utcnow()
        next_at = now + dt.timedelta(seconds=decision.delay) if decision.outcome is Outcome.RETRY else None
        attempt = Attempt(
            delivery["delivery_id"],
            delivery["total_attempts"] + 1,
            status or 0,
            latency * 1000,
            error,
            excerpt,
            STATUS_AFTER[decision.outcome],
            round_attempt,
            next_at,
            at=now,
        )
        self.finished.append((attempt, endpoint, delivery, decision.outcome))
        self._wake.set()

    def observe(self, attempt: Attempt, endpoint: Target, delivery: dict, outcome: Outcome) -> None:
        """Metrics and logs of a recorded attempt."""
        metrics.WEBHOOK_DELIVERIES.labels(outcome.value).inc()
        if attempt.status_code:
            metrics.WEBHOOK_ATTEMPT_LATENCY.observe(attempt.latency_ms / 1000)
        if outcome is Outcome.DELIVERED:
            metrics.WEBHOOK_EVENT_TO_DELIVERY.observe(
                max((attempt.at - delivery["occurred_at"]).total_seconds(), 0)
            )
        elif outcome in (Outcome.PARKED, Outcome.GONE, Outcome.FAILED):
            log.warning(
                "webhook delivery %s",
                outcome.value,
                extra=logs.fields(
                    endpoint_id=endpoint.endpoint_id,
                    delivery_id=attempt.delivery_id,
                    status_code=attempt.status_code,
                    error=attempt.error[:200],
                ),
            )
