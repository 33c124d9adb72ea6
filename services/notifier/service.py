"""The notifier's use cases: keep each partner's feed, manage its webhook endpoints, replay deliveries.

Each use case is one transaction. The feed is appended by a JetStream consumer (consumers.py) inside the
consumer's inbox transaction, so an event is appended exactly once; after the commit the delivery
workers of that partner and any long-polling feed readers are woken.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable

from orderdesk import logs, metrics
from orderdesk.aio import wait_event
from orderdesk.db import Database, Tx
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from orderdesk.parsing import whole_number
from orderdesk.v1 import events_pb2
from services.notifier import domain
from services.notifier.store import (
    ACTIVE,
    DELIVERY_STATUSES,
    DISABLED,
    PAUSED,
    EndpointRow,
    FeedEntry,
    NotifierRepository,
)

log = logging.getLogger("notifier.service")
MAX_FEED_PAGE = 500
MAX_WAIT_SECONDS = 30.0
MAX_DELIVERY_PAGE = 200
FEED_POLL_SECONDS = 1.0

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address a host name resolves to (an IP literal resolves to itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class NotifierService:
    def __init__(
        self,
        db: Database,
        *,
        allowed_networks: tuple[domain.Network, ...] = (),
        resolver: Resolver = resolve,
        feed_days: float = 0.0,
        max_endpoints: int = 0,
        secret_overlap: dt.timedelta = dt.timedelta(0),
    ):
        self.db = db
        # ORDERDESK_WEBHOOK_SECRET_OVERLAP_SECONDS: a rotated-out secret still signs beside the new one
        self.secret_overlap = secret_overlap
        self.feed_days = feed_days  # the replay window (ORDERDESK_RETENTION_FEED_DAYS; 0: kept forever)
        # ORDERDESK_WEBHOOKS_ALLOW_NETWORKS: non-public networks webhooks may reach (development only)
        self.allowed_networks = allowed_networks
        self.max_endpoints = max_endpoints  # ORDERDESK_WEBHOOK_MAX_ENDPOINTS per partner (0: no cap)
        self.resolver = resolver
        self._feed_waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.listeners: list[Callable[[str], None]] = []  # partner_id: its feed grew
        self.endpoint_listeners: list[
            Callable[[str], None]
        ] = []  # endpoint_id: created, resumed, replayed ...

    # --- the feed (the consumer's handler) -----------------------------------------------------
    async def on_event(self, tx: Tx, event: events_pb2.Event) -> None:
        """Appends an event about a partner's order to that partner's feed; other events are ignored."""
        repo = tx.repo(NotifierRepository)
        known: dict[str, str] = {}
        order_sequence = 0
        if domain.orders_to_look_up([event]):
            # A shipment or return event goes to its order's partner: read with the order's counter bump.
            bumped = await repo.bump_known_order(event.order_id)
            if bumped is not None:
                order_sequence, known[event.order_id] = bumped
        partner = domain.feed_partner(event, known)
        if not partner:
            return  # stock events and the like concern no partner (and no order counter was bumped)
        occurred = domain.utc_time(event.occurred_at)
        await repo.append(
            partner,
            event.event_id,
            event.type,
            event.order_id,
            occurred,
            event.SerializeToString(),
            order_sequence,
        )
        metrics.FEED_APPENDED.labels(event.aggregate_type or "unknown").inc()
        tx.after_commit.append(lambda: self.feed_grew(partner))

    async def on_events(self, tx: Tx, batch: list[events_pb2.Event]) -> None:
        """on_event for a consumer batch, in one go (same feed, same numbers)."""
        repo = tx.repo(NotifierRepository)
        # The batch's orders as the feed knows them, read once: their partners and their counters.
        orders = await repo.order_counters({e.order_id for e in batch if e.order_id})
        known = {order_id: partner for order_id, (partner, _seq) in orders.items()}
        partners = [domain.feed_partner(e, known) for e in batch]  # learns orders first seen here, in turn
        entries = [
            FeedEntry(
                partner, e.event_id, e.type, e.order_id, domain.utc_time(e.occurred_at), e.SerializeToString()
            )
            for e, partner in zip(batch, partners, strict=True)
            if partner
        ]
        if entries:
            await repo.append_many(entries, orders)
            kinds = [
                e.aggregate_type or "unknown" for e, partner in zip(batch, partners, strict=True) if partner
            ]
            tx.after_commit.append(lambda: self._appended(kinds, {e.partner_id for e in entries}))

    def _appended(self, kinds: list[str], partners: set[str]) -> None:
        for kind, count in Counter(kinds).items():  # a label lookup per kind, not per event
            metrics.FEED_APPENDED.labels(kind).inc(count)
        for partner_id in partners:
            self.feed_grew(partner_id)

    def feed_grew(self, partner_id: str) -> None:
        for waiter in self._feed_waiters.get(partner_id, ()):
            waiter.set()
        for listener in self.listeners:
            listener(partner_id)

    async def read_feed(self, partner_id: str, after: int, limit: int, wait: float) -> tuple[list, int]:
        """Entries after `after` (oldest first) and the partner's head; with `wait`, a long poll."""
        if after < 0:
            raise InvalidArgument("after must not be negative", [FieldViolation("after", "must be >= 0")])
        limit = min(limit or 100, MAX_FEED_PAGE)
        wait = min(max(wait, 0.0), MAX_WAIT_SECONDS)
        waiter = asyncio.Event()
        self._feed_waiters[partner_id].add(waiter)  # before reading: an append in between is not missed
        try:
            deadline = asyncio.get_running_loop().time() + wait
            while True:
                async with self.db.reading() as work:
                    repo = work.repo(NotifierRepository)
                    head = await repo.head(partner_id)  # first: entries up to it are committed (no gaps)
                    entries = await repo.read_feed(partner_id, after, limit)
                self._refuse_expired(after, head, entries)
                if entries:
                    head = max(head, entries[-1]["sequence"])
                remaining = deadline - asyncio.get_running_loop().time()
                if entries or remaining <= 0:
                    return entries, head
                waiter.clear()
                # woken by an append here; polled too, for appends made by another replica
                await wait_event(waiter, min(remaining, FEED_POLL_SECONDS))
        finally:
            self._feed_waiters[partner_id].discard(waiter)
            if not self._feed_waiters[partner_id]:
                self._feed_waiters.pop(partner_id, None)

    def _refuse_expired(self, after: int, head: int, entries) -> None:
        """A cursor older than the replay window is told so, never answered with silently fewer events."""
        resume_after = domain.expired_cursor(after, head, [e["sequence"] for e in entries[:1]])
        if resume_after is not None:
            raise FailedPrecondition(
                domain.expired_cursor_message(after, resume_after, self.feed_days),
                rule="feed_cursor_expired",
                subject=str(after),
            )

    async def _refuse_pruned_range(self, repo: NotifierRepository, partner_id: str, first: int) -> None:
        kept = await repo.first_kept(partner_id)
        oldest = kept if kept is not None else await repo.head(partner_id) + 1
        if first < oldest:
            window = f" (the feed keeps {self.feed_days:g} days of events)" if self.feed_days else ""
            raise FailedPrecondition(
                f"the events before sequence {oldest} are no longer kept{window}: replay from "
                f"sequence {oldest} on",
                rule="replay_window_passed",
                subject=str(first),
            )

    # --- endpoints --------------------------------------------------------------------------------
    async def check_target(self, url: str) -> None:
        host, port = domain.check_url(url)
        try:
            addresses = await self.resolver(host, port)
        except OSError:
            raise InvalidArgument(
                "the webhook URL is not usable",
                [FieldViolation("url", f"the host {host!r} does not resolve")],
            ) from None
        refused = domain.refused_targets(addresses, self.allowed_networks)
        if refused:
            address, why = refused[0]
            raise InvalidArgument(
                "the webhook URL is not usable",
                [
                    FieldViolation(
                        "url",
                        f"{host} resolves to a {why} address ({address}); webhooks go to public addresses only",
                        reason="forbidden_target",
                    )
                ],
            )
        if url.lower().startswith("http:") and not domain.plain_http_allowed(
            addresses, self.allowed_networks
        ):
            raise InvalidArgument(
                "the webhook URL is not usable",
                [FieldViolation("url", "must be an https:// URL", reason="https_required")],
            )

    async def create_endpoint(
        self, partner_id: str, url: str, event_types: list[str], secret: str
    ) -> tuple[EndpointRow, str]:
        _require_partner(partner_id)
        types = domain.check_event_types(event_types)
        secret = domain.check_secret(secret)
        await self.check_target(url)
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            if self.max_endpoints and len(await repo.endpoints_of(partner_id)) >= self.max_endpoints:
                raise FailedPrecondition(
                    f"a partner may register at most {self.max_endpoints} webhook endpoints; delete one first",
                    rule="endpoint_limit",
                    subject=partner_id,
                )
            endpoint = await repo.add_endpoint(partner_id, url, types, secret)
        log.info(
            "webhook endpoint created",
            extra=logs.fields(endpoint_id=endpoint.endpoint_id, partner_id=partner_id),
        )
        self._endpoint_changed(endpoint.endpoint_id)
        return endpoint, secret

    async def endpoints(self, partner_id: str) -> tuple[list[EndpointRow], dict[str, int]]:
        _require_partner(partner_id)
        async with self.db.reading() as work:
            repo = work.repo(NotifierRepository)
            return await repo.endpoints_of(partner_id), await repo.parked_counts(partner_id)

    async def endpoint(self, endpoint_id: str, partner_id: str) -> tuple[EndpointRow, int]:
        async with self.db.reading() as work:
            repo = work.repo(NotifierRepository)
            found = await _found(repo, endpoint_id, partner_id)
            return found, (await repo.parked_counts(partner_id)).get(endpoint_id, 0)

    async def pause(self, endpoint_id: str, partner_id: str) -> EndpointRow:
        return await self._set_status(endpoint_id, partner_id, PAUSED)

    async def resume(self, endpoint_id: str, partner_id: str) -> EndpointRow:
        """Active again (also after a 410 disabled it); what came meanwhile is delivered from the cursor on."""
        return await self._set_status(endpoint_id, partner_id, ACTIVE)

    async def disable(self, endpoint_id: str, reason: str) -> None:
        async with self.db.transaction() as tx:
            await tx.repo(NotifierRepository).set_endpoint(
                endpoint_id, status=DISABLED, disabled_reason=reason[:500]
            )

    async def _set_status(self, endpoint_id: str, partner_id: str, status: str) -> EndpointRow:
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            before = await _found(repo, endpoint_id, partner_id)
            if status == ACTIVE and before.status != ACTIVE:
                skipped, failed = await repo.skip_pruned(before)
                if skipped or failed:
                    log.warning(
                        "webhook endpoint resumed after the replay window: %d feed entries and %d pending "
                        "deliveries were pruned meanwhile",
                        skipped,
                        failed,
                        extra=logs.fields(endpoint_id=endpoint_id, partner_id=partner_id),
                    )
            await repo.set_endpoint(endpoint_id, status=status, disabled_reason="")
            endpoint = await repo.endpoint(endpoint_id)
        self._endpoint_changed(endpoint_id)
        return endpoint

    async def rotate_secret(self, endpoint_id: str, partner_id: str) -> tuple[EndpointRow, str]:
        secret = domain.new_secret()
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            await _found(repo, endpoint_id, partner_id)
            await repo.rotate_secret(endpoint_id, secret, self.secret_overlap)
            endpoint = await repo.endpoint(endpoint_id)
        log.info("webhook secret rotated", extra=logs.fields(endpoint_id=endpoint_id))
        return endpoint, secret

    async def seal_stored_secrets(self) -> int:
        """At start: secrets stored plain before sealing existed are sealed (and all re-sealed under the
        first key while an old key is still configured)."""
        async with self.db.transaction() as tx:
            changed = await tx.repo(NotifierRepository).seal_plain_secrets()
        if changed:
            log.info("webhook secrets sealed", extra=logs.fields(endpoints=changed))
        return changed

    async def delete(self, endpoint_id: str, partner_id: str) -> None:
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            await _found(repo, endpoint_id, partner_id)
            await repo.delete_endpoint(endpoint_id)
        self._endpoint_changed(endpoint_id)

    # --- deliveries -------------------------------------------------------------------------------
    async def deliveries(
        self, endpoint_id: str, partner_id: str, status: str, limit: int, cursor: str
    ) -> tuple[list, dict[str, list], str]:
        if status and status not in DELIVERY_STATUSES:
            raise InvalidArgument(
                "unknown delivery status",
                [FieldViolation("status", f"one of {', '.join(DELIVERY_STATUSES)}")],
            )
        if cursor and whole_number(cursor) is None:
            raise InvalidArgument(
                "bad cursor", [FieldViolation("cursor", "use next_cursor of the previous page")]
            )
        limit = min(limit or 50, MAX_DELIVERY_PAGE)
        async with self.db.reading() as work:
            repo = work.repo(NotifierRepository)
            await _found(repo, endpoint_id, partner_id)
            rows = await repo.list_deliveries(endpoint_id, status, limit + 1, int(cursor) if cursor else None)
            more = len(rows) > limit
            rows = rows[:limit]
            attempts = await repo.attempts_of([r["delivery_id"] for r in rows])
        return rows, attempts, (str(rows[-1]["sequence"]) if more else "")

    async def order_deliveries(
        self, order_id: str, partner_id: str, limit: int
    ) -> tuple[list, dict[str, list]]:
        """The webhook deliveries of one order, oldest first, with their attempts (the desk's timeline)."""
        if not 0 <= limit <= MAX_DELIVERY_PAGE:
            raise InvalidArgument(
                "bad limit", [FieldViolation("limit", f"1 to {MAX_DELIVERY_PAGE} (0: {MAX_DELIVERY_PAGE})")]
            )
        async with self.db.reading() as work:
            repo = work.repo(NotifierRepository)
            rows = await repo.order_deliveries(order_id, partner_id, limit or MAX_DELIVERY_PAGE)
            attempts = await repo.attempts_of([r["delivery_id"] for r in rows])
        return rows, attempts

    async def replay(self, endpoint_id: str, partner_id: str, delivery_id: str):
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            await _found(repo, endpoint_id, partner_id)
            found = await repo.delivery(endpoint_id, delivery_id)
            if found is None:
                raise NotFound(f"delivery {delivery_id} not found")
            if not await repo.has_entry(partner_id, found["sequence"]):
                await self._refuse_pruned_range(repo, partner_id, found["sequence"])
            await repo.replay(endpoint_id, delivery_id)
            row = await repo.delivery(endpoint_id, delivery_id)
            attempts = await repo.attempts_of([delivery_id])
        self._endpoint_changed(endpoint_id)
        return row, attempts[delivery_id]

    async def replay_range(self, endpoint_id: str, partner_id: str, first: int, last: int) -> int:
        violations = []
        if first < 1:
            violations.append(FieldViolation("from_sequence", "must be >= 1"))
        if last < first:
            violations.append(FieldViolation("to_sequence", "must be >= from_sequence"))
        if violations:
            raise InvalidArgument("bad replay range", violations)
        if last - first > 100_000:
            raise InvalidArgument(
                "bad replay range", [FieldViolation("to_sequence", "at most 100000 at once")]
            )
        async with self.db.transaction() as tx:
            repo = tx.repo(NotifierRepository)
            endpoint = await _found(repo, endpoint_id, partner_id)
            if endpoint.status == DISABLED:
                raise FailedPrecondition(
                    "the endpoint is disabled (it answered 410 Gone); resume it first",
                    rule="endpoint_disabled",
                    subject=endpoint_id,
                )
            await self._refuse_pruned_range(repo, partner_id, first)
            replayed = await repo.replay_range(endpoint, first, last, domain.matches)
        self._endpoint_changed(endpoint_id)
        return replayed

    def _endpoint_changed(self, endpoint_id: str) -> None:
        for listener in self.endpoint_listeners:
            listener(endpoint_id)


def _require_partner(partner_id: str) -> None:
    if not partner_id:
        raise InvalidArgument("partner_id is required", [FieldViolation("partner_id", "required")])


async def _found(repo: NotifierRepository, endpoint_id: str, partner_id: str) -> EndpointRow:
    """The partner's endpoint; another partner's is NOT_FOUND like a missing one."""
    _require_partner(partner_id)
    endpoint = await repo.endpoint(endpoint_id, partner_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint
