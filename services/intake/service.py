"""Intake's use cases: import master data; check an order, de-duplicate it by key, hand it to orders.

SubmitOrder in three steps:
1. read the customer and the products, decide (refuse, approve or hold) and build
   the CreateOrderRequest with a fresh order id;
2. one transaction claims the (partner, idempotency key) row, storing the request
   hash and the CreateOrderRequest bytes. If the key was claimed before, the
   stored request wins: same hash -> a replay, another hash -> refused;
3. call orders.CreateOrder with the request that holds the key. CreateOrder is
   idempotent by order id, so a replay, or a retry after a crash between 2 and 3,
   re-sends the same bytes and gets the same order back, never a second one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from orderdesk import errors, masterdata, metrics, rpc
from orderdesk.db import Database, utcnow
from orderdesk.v1 import orders_pb2
from services.intake import domain
from services.intake.domain import Submission
from services.intake.proto import create_order_request
from services.intake.store import IdempotencyRecord, IdempotencyRepository, MasterDataRepository

log = logging.getLogger("intake.service")

# Failures after which the same request may simply be sent again.
TRANSIENT = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
})


@dataclass(frozen=True)
class Submitted:
    order: orders_pb2.Order   # as the orders service answered: status and hold reasons are its own
    replayed: bool


class IntakeService:
    def __init__(
        self,
        db: Database,
        orders,  # orders_pb2_grpc.OrdersServiceStub, or anything with an async CreateOrder
        rpc_timeout: float,
        clock: Callable[[], dt.datetime] = utcnow,
        new_order_id: Callable[[], str] = domain.new_order_id,
    ):
        self.db = db
        self.orders = orders
        self.rpc_timeout = rpc_timeout
        self.clock = clock
        self.new_order_id = new_order_id

    # --- master data ---------------------------------------------------------------
    async def import_master_data(self, kind: str, text: str) -> int:
        """Upserts customers or products by key, all rows or none; returns the number of rows."""
        domain.check_master_kind(kind)
        records = masterdata.parse(kind, text)
        domain.check_master_records(kind, records)
        async with self.db.transaction() as tx:
            repo = MasterDataRepository(tx.conn)
            if kind == "customers":
                await repo.upsert_customers(records)
            else:
                await repo.upsert_products(records)
        log.info("imported %d %s", len(records), kind)
        return len(records)

    # --- orders --------------------------------------------------------------------
    async def submit(self, s: Submission) -> Submitted:
        channel = domain.metric_channel(s.channel)
        try:
            async with self.db.read() as conn:
                repo = MasterDataRepository(conn)
                customer = await repo.customer(s.customer_id) if s.customer_id else None
                products = await repo.products({line.sku for line in s.lines if line.sku})
            decision = domain.decide(s, customer, products, self.clock().date())
        except errors.InvalidArgument:
            metrics.ORDERS_RECEIVED.labels(channel, "invalid").inc()
            raise

        fresh = IdempotencyRecord(
            partner_id=s.partner_id,
            idempotency_key=s.idempotency_key,
            request_hash=domain.request_hash(s),
            order_id=(order_id := self.new_order_id()),
            create_request=create_order_request(order_id, s, decision).SerializeToString(),
        )
        async with self.db.transaction() as tx:
            holder = await IdempotencyRepository(tx.conn).claim(fresh)
        replayed = holder.order_id != fresh.order_id  # the key was claimed before, by this request or another
        if replayed and holder.request_hash != fresh.request_hash:
            metrics.ORDERS_RECEIVED.labels(channel, "invalid").inc()
            raise domain.key_reused()

        order = await self._create_order(orders_pb2.CreateOrderRequest.FromString(holder.create_request))
        outcome = "replayed" if replayed else "approved" if decision.approved else "held"
        metrics.ORDERS_RECEIVED.labels(channel, outcome).inc()
        return Submitted(order=order, replayed=replayed)

    async def _create_order(self, request: orders_pb2.CreateOrderRequest) -> orders_pb2.Order:
        try:
            return await self.orders.CreateOrder(request, timeout=self.rpc_timeout, metadata=rpc.metadata())
        except grpc.RpcError as exc:
            failure = rpc.describe(exc)
            log.warning("orders.CreateOrder %s failed: %s %s", request.order_id, failure.code, failure.message)
            if failure.code in TRANSIENT:
                # The key is claimed with this request: the same submission again completes it.
                raise errors.Unavailable(
                    "the order was accepted but not yet entered (orders did not answer); "
                    "send the same request with the same Idempotency-Key again"
                ) from exc
            raise
