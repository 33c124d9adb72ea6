"""Exceptions on an order and how the desk resolves them: the use cases (the rules are exceptions.py
and the order's own methods).

Exceptions are recorded on the order (order.exception); resolutions act through inventory
(re-allocate, reship, split delivery) or shipping (change carrier, reship and accept delay, from
the order.exception event), and are recorded on the exception. A substitute is a change request
(services/orders/change_requests.py) saved with its resolution. A split delivery creates the linked
order with the parent in one transaction; an accepted delay moves the order's promised date.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import uuid
from collections.abc import Callable

import grpc

from orderdesk import errors, rpc, usecase
from orderdesk.db import Tx
from orderdesk.v1 import inventory_pb2, orders_pb2
from services.orders import exceptions as ex
from services.orders.change_requests import ChangeRequests, load
from services.orders.changes import ChangeRequest, NewLine
from services.orders.domain import SPLIT_LINES, Allocation, Order, Status, parse_split_lines
from services.orders.service import OrdersService, count_transitions, publish_transitions, quantities
from services.orders.store import OrderRepository


def reshipped(order: Order) -> dict[str, int]:
    """Units sent again by earlier reship resolutions (details "reship_lines": "SKU@WH=qty;...")."""
    units: dict[str, int] = {}
    for e in order.exceptions:
        if e.resolution and e.resolution.action is ex.Action.RESHIP:
            for part in filter(None, e.resolution.details.get("reship_lines", "").split(";")):
                where, qty = part.rsplit("=", 1)
                sku = where.rsplit("@", 1)[0]
                units[sku] = units.get(sku, 0) + int(qty)
    return units


def exception_id(req: orders_pb2.RecordExceptionRequest) -> str:
    """From the caller's idempotency key when it sent one (a retry finds the exception it recorded), else new."""
    if not req.idempotency_key:
        return f"EX-{uuid.uuid4().hex[:12]}"
    digest = hashlib.sha256(f"{req.order_id}\n{req.partner_id}\n{req.idempotency_key}".encode()).hexdigest()
    return f"EX-{digest[:12]}"


def _because(what: str, note: str) -> str:
    return f"{what}: {note}" if note else what


def _plus(wanted: dict[str, int], extra: dict[str, int]) -> dict[str, int]:
    """Units per SKU of `wanted` and `extra` together."""
    total = dict(extra)
    for sku, units in wanted.items():
        total[sku] = total.get(sku, 0) + units
    return total


def check_names(order: Order, exception: ex.OrderException) -> None:
    """An exception names only a line or a shipment the order has."""
    violations = []
    if exception.sku and exception.sku not in {line.sku for line in order.lines}:
        violations.append(
            errors.FieldViolation("sku", f"the order has no line for {exception.sku!r}", "unknown_line")
        )
    if exception.shipment_id and exception.shipment_id not in order.shipments:
        violations.append(
            errors.FieldViolation("shipment_id", "not a shipment of this order", "unknown_shipment")
        )
    if violations:
        raise errors.InvalidArgument("the exception names what the order does not have", violations)


class ExceptionResolutions:
    def __init__(
        self,
        service: OrdersService,
        inventory,
        timeout: float,
        *,
        change_requests: ChangeRequests,
        wake_allocator: Callable[..., None] | None = None,
    ):
        self.service = service
        self.inventory = inventory
        self.timeout = timeout
        self.change_requests = (
            change_requests  # a substitute is a change request; one lock per order for both
        )
        self.wake_allocator = wake_allocator or (lambda **_: None)

    # --- recording ------------------------------------------------------------------------------
    async def record(self, req: orders_pb2.RecordExceptionRequest) -> Order:
        exception = ex.OrderException.create(
            exception_id=exception_id(req),
            type=req.type,
            cause=req.cause,
            at=self.service.clock(),
            actor=req.actor.id or req.partner_id or "unknown",
            source=req.source or "desk",
            expected_date=req.expected_date,
            sku=req.sku,
            warehouse=req.warehouse,
            quantity=req.quantity,
            shipment_id=req.shipment_id,
        )

        def record(order: Order) -> None:
            check_names(order, exception)
            order.record_exception(exception)

        return await self._update(req.order_id, req.partner_id, record)

    # --- resolving ------------------------------------------------------------------------------
    async def resolve(self, req: orders_pb2.ResolveExceptionRequest) -> Order:
        async with self.change_requests.locks.one_at_a_time(req.order_id):
            return await self._resolve(req)

    async def _resolve(self, req: orders_pb2.ResolveExceptionRequest) -> Order:
        actor = req.actor.id or req.partner_id or "unknown"
        details = dict(req.details)
        order = await load(self.service.db, req.order_id, req.partner_id)
        exception = ex.find(order.exceptions, req.exception_id)
        action = exception.check_resolution(req.action, details)
        allocations: list[Allocation] | None = None
        if action is ex.Action.REALLOCATE:
            allocations = await self._reallocate(order, exception)
        elif action is ex.Action.RESHIP:
            details["reship_lines"] = await self._reserve_reship(order, exception)
        elif action is ex.Action.SUBSTITUTE:
            return await self._substitute(order, exception, req, actor, details)
        elif action is ex.Action.SPLIT_DELIVERY:
            return await self._split_delivery(order, exception, req, actor, details)
        elif action is ex.Action.ACCEPT_DELAY:
            details["expected_date"] = ex.accepted_date(exception, details)
        elif action is ex.Action.CHANGE_CARRIER:
            details.setdefault("shipment_id", exception.shipment_id)
            if not details["shipment_id"]:
                raise errors.InvalidArgument(
                    "which shipment changes carrier?",
                    [
                        errors.FieldViolation(
                            "details.shipment_id", "required: the exception names no shipment"
                        )
                    ],
                )

        def resolve(o: Order) -> None:
            if allocations is not None:
                o.reallocate(
                    allocations,
                    at=self.service.clock(),
                    actor=actor,
                    reason=f"re-allocated for {exception.exception_id}",
                )
            if action is ex.Action.ACCEPT_DELAY:  # the accepted date becomes the promise
                o.accept_delay(
                    details["expected_date"],
                    at=self.service.clock(),
                    actor=actor,
                    reason=_because(f"delay accepted ({exception.exception_id})", req.note),
                )
            self._resolve_on(o, req, req.action, actor, details)

        return await self._update(req.order_id, req.partner_id, resolve)

    def _resolve_on(
        self, order: Order, req: orders_pb2.ResolveExceptionRequest, action: str, actor: str, details: dict
    ) -> None:
        """Records the desk's resolution of `req.exception_id` on the order: now, by `actor`, with its note."""
        order.resolve_exception(
            req.exception_id, action, at=self.service.clock(), actor=actor, note=req.note, details=details
        )

    async def _substitute(
        self, order: Order, exception: ex.OrderException, req, actor: str, details: dict[str, str]
    ) -> Order:
        """The customer agreed to an equivalent SKU: the exception's line becomes a line of the substitute
        (same quantity and price), as a change request would (policy, intake's review, reservation), and
        the resolution is saved with it."""
        line = next((x for x in order.lines if x.sku == exception.sku), None)
        if line is None:
            raise errors.FailedPrecondition(
                "substitution needs the exception to name a line of the order (sku)",
                rule="substitute_needs_sku",
                subject=exception.exception_id,
            )
        substitute = details["substitute_sku"].strip()
        request = ChangeRequest(
            remove_skus=[line.sku],
            add_lines=[NewLine(substitute, line.quantity, str(line.unit_price))],
            reason=f"substitute {substitute} for {line.sku} ({exception.exception_id}); "
            f"consent: {details['customer_consent']}",
        )

        def resolve(o: Order) -> None:
            self._resolve_on(o, req, ex.Action.SUBSTITUTE.value, actor, details)

        return await self.change_requests.apply(
            order.order_id, req.partner_id, 0, request, actor, then=resolve
        )

    async def _split_delivery(
        self, order: Order, exception: ex.OrderException, req, actor: str, details: dict[str, str]
    ) -> Order:
        """Deliver what is reserved now, the rest later as a linked order (Order.split_delivery); or, with
        details.split_lines ("SKU=qty;..."), deliver those units later and the rest now.

        Inventory is asked what it holds for the order now (Reserve with the same target), then to hold
        only what the order keeps (the order's backorder goes); for an allocated order short at picking, the
        missing units are written off at the short warehouse instead (Reallocate, write_off_only). A
        partially shipped order splits its remainder only: first inventory must have booked the parcels that
        left (ChangeRequests.wait_for_booking), so nothing a parcel carries is released or written off; its
        shipped units count towards the target as always. The order, its new linked order and the resolution
        commit together. The allocator then reserves the linked order (backordered, filled by receipts by
        priority). A failure after inventory was asked gives the order as saved its reservation back
        (Reserve for its lines)."""
        order.check_split_delivery()
        later = parse_split_lines(details.get("split_lines", ""))
        date = exception.expected_date or order.expected_delivery_date
        reason = _because(f"split delivery for {exception.exception_id}", req.note)
        reserve = self.change_requests.reserve
        shortage = (
            order.status in (Status.ALLOCATED, Status.PARTIALLY_SHIPPED)
            and exception.type is ex.ExceptionType.STOCK_SHORTAGE_AT_PICK
        )
        if later and shortage:
            raise errors.InvalidArgument(
                "a shortage at picking splits off the units missing (the exception's quantity)",
                [errors.FieldViolation(SPLIT_LINES, "not with stock_shortage_at_pick", "not_for_shortage")],
            )
        if shortage:  # what left in a parcel is not on the shelf to miss: refused before anything moves
            order.check_shortage(exception.sku, exception.warehouse, exception.quantity)
        if later:
            await self.change_requests.current_shipments(order)  # the policy looks at how far the goods are

        def dry_run(held: list[Allocation]) -> Order:  # refused (nothing to split) before anything moves
            parent = copy.deepcopy(order)
            parent.split_delivery(
                held, at=self.service.clock(), actor=actor, delivery_date=date, reason=reason, later=later
            )
            return parent

        if later:
            dry_run(order.open_allocations())  # only unshipped units, not yet picked: before anything moves
        if order.status is Status.PARTIALLY_SHIPPED:
            await self.change_requests.wait_for_booking(order, quantities(order), order.open_units())
        if shortage:
            # Units the books show are not on the shelf: inventory releases and writes them off at the
            # short warehouse (reserving nothing elsewhere); the order keeps the rest of its reservation.
            short = (exception.sku, exception.warehouse)
            dry_run(
                [
                    Allocation(
                        a.sku, a.warehouse, a.quantity - exception.quantity * ((a.sku, a.warehouse) == short)
                    )
                    for a in order.open_allocations()
                ]
            )
            answer = await self._inventory_reallocate(order, exception, write_off_only=True)
        else:
            now = await reserve(order, quantities(order))
            held = [Allocation(r.sku, r.warehouse, r.quantity) for r in now.reservations]
            answer = await reserve(order, quantities(dry_run(held)))  # the units it keeps (shipped ones too)
        allocations = [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]

        async def split(tx: Tx) -> tuple[Order, Order]:
            repo = tx.repo(OrderRepository)
            parent = await repo.get(order.order_id, req.partner_id)
            if parent is None:
                raise errors.NotFound(f"order {order.order_id} not found")
            child = parent.split_delivery(
                allocations,
                at=self.service.clock(),
                actor=actor,
                delivery_date=date,
                reason=reason,
                later=later,
            )
            split_into = {**details, "split_into": child.order_id}
            self._resolve_on(parent, req, ex.Action.SPLIT_DELIVERY.value, actor, split_into)
            await repo.save(parent)
            await publish_transitions(tx, parent)
            await repo.add(child)
            await publish_transitions(tx, child)
            return parent, child

        try:
            parent, child = await usecase.retrying(self.service.db, split)
        except Exception:
            with contextlib.suppress(Exception):  # the order as saved keeps what it holds and its backorder
                await reserve(order, quantities(await load(self.service.db, order.order_id, req.partner_id)))
            raise
        # The allocator may have asked for the whole order meanwhile: the parent holds only what it keeps.
        with contextlib.suppress(Exception):
            await reserve(parent, quantities(parent))
        count_transitions(parent)
        count_transitions(child)
        self.wake_allocator(scheduled=True)  # the linked order is reserved (or backordered) by priority
        return parent

    async def _reallocate(self, order: Order, exception: ex.OrderException) -> list[Allocation]:
        if not (exception.sku and exception.warehouse and exception.quantity):
            raise errors.FailedPrecondition(
                "re-allocation needs the exception's SKU, warehouse and quantity",
                rule="reallocate_needs_sku_warehouse_quantity",
                subject=exception.exception_id,
            )
        answer = await self._inventory_reallocate(order, exception)
        return [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]

    async def _inventory_reallocate(
        self, order: Order, exception: ex.OrderException, *, write_off_only: bool = False
    ) -> inventory_pb2.ReserveResponse:
        """Inventory's Reallocate of the exception's units (SKU, warehouse, quantity; the exception is
        the reference). Its refusals (no_stock_elsewhere, not_held_at_warehouse) reach the desk as they
        are (409)."""
        request = inventory_pb2.ReallocateRequest(
            order_id=order.order_id,
            sku=exception.sku,
            warehouse=exception.warehouse,
            quantity=exception.quantity,
            reference=exception.exception_id,
            write_off_only=write_off_only,
        )
        try:
            return await self.inventory.Reallocate(request, timeout=self.timeout, metadata=rpc.metadata())
        except grpc.RpcError as exc:
            raise rpc.passed_on(exc) from exc

    async def _reserve_reship(self, order: Order, exception: ex.OrderException) -> str:
        """Reserves the lost shipment's units again (shipped units count towards Reserve's target,
        so the target grows by them); returns where they are held: "SKU@WH=qty;..."."""
        lost = order.shipments.get(exception.shipment_id)
        if lost is None or lost.status not in ("shipped", "delivered"):
            raise errors.FailedPrecondition(
                "only a shipment that left the warehouse can be reshipped",
                rule="reship_needs_shipped_shipment",
                subject=exception.exception_id,
            )
        reserve = self.change_requests.reserve
        held_before = {
            (r.sku, r.warehouse): r.quantity for r in (await reserve(order, quantities(order))).reservations
        }
        previous = reshipped(order)  # earlier reships count towards the target too
        answer = await reserve(order, _plus(quantities(order), _plus(previous, lost.lines)))
        if any(b.quantity for b in answer.backordered):
            await reserve(order, _plus(quantities(order), previous))
            raise errors.FailedPrecondition(
                "not enough stock to reship", rule="reship_needs_stock", subject=exception.exception_id
            )
        plan = [
            (r.sku, r.warehouse, r.quantity - held_before.get((r.sku, r.warehouse), 0))
            for r in answer.reservations
        ]
        return ";".join(f"{s}@{w}={q}" for s, w, q in plan if q > 0)

    # --- plumbing -------------------------------------------------------------------------------
    async def _update(self, order_id: str, partner_id: str, change: Callable[[Order], object]) -> Order:
        async def work(tx: Tx) -> Order:
            repo = tx.repo(OrderRepository)
            order = await repo.get(order_id, partner_id)
            if order is None:
                raise errors.NotFound(f"order {order_id} not found")
            change(order)
            await repo.save(order)
            await publish_transitions(tx, order)
            return order

        order = await usecase.retrying(self.service.db, work)
        count_transitions(order)
        return order
