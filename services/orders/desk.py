"""Use cases for change requests and exceptions (issue 4): the rules are in changes.py and exceptions.py.

A change request: load the order, check the caller's version (If-Match), apply the change
in memory (the policy table refuses what the status forbids), let intake review what can
make a check fail (price, credit, delivery date), adjust the reservation when the order
holds stock, then save the order with its order.changed event in one transaction. A lost
race after inventory was asked gives the old reservation back.

Exceptions are recorded on the order (order.exception); resolutions act through inventory
(re-allocate, reship, split delivery) or shipping (change carrier, reship and accept delay, from
the order.exception event), and are recorded on the exception. A split delivery creates the linked
order with the parent in one transaction; an accepted delay moves the order's promised date.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import logging
import uuid
from collections.abc import Callable

import grpc

from orderdesk import errors, metrics, rpc
from orderdesk.v1 import intake_pb2, inventory_pb2, orders_pb2, shipping_pb2
from services.orders import exceptions as ex
from services.orders.changes import (
    ChangeRequest,
    NewLine,
    apply_change,
    needs_review,
    record_allocation_change,
)
from services.orders.domain import Allocation, Order, ShipmentView, Status
from services.orders.proto import order_to_proto
from services.orders.service import OrdersService, count_transitions, publish_transitions
from services.orders.store import OrderRepository

log = logging.getLogger("orders.desk")
ATTEMPTS = 3


def change_request(req: orders_pb2.ChangeOrderRequest) -> ChangeRequest:
    return ChangeRequest(
        ship_to={f: getattr(req.ship_to, f) for f in ("name", "line1", "city", "postal_code", "country", "phone")}
        if req.change_ship_to else None,
        quantities={line.sku: line.quantity for line in req.lines},
        add_lines=[NewLine(line.sku, line.quantity, line.unit_price) for line in req.add_lines],
        remove_skus=list(req.remove_lines),
        cancel={line.sku: line.quantity for line in req.cancel_lines},
        reason=req.actor.reason,
    )


def wanted(order: Order, extra: dict[str, int] | None = None) -> dict[str, int]:
    totals: dict[str, int] = dict(extra or {})
    for line in order.lines:
        totals[line.sku] = totals.get(line.sku, 0) + line.quantity
    return totals


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


def stale(order: Order, expected: int) -> errors.FailedPrecondition:
    metrics.ORDER_CHANGES.labels("stale").inc()
    return errors.FailedPrecondition(
        f"order {order.order_id} is at version {order.version}, not {expected}; read it again and retry",
        rule="stale_version", subject=order.order_id)


class Desk:
    def __init__(self, service: OrdersService, inventory, timeout: float, *, intake=None, shipping=None,
                 wake_allocator: Callable[..., None] | None = None):
        self.service = service
        self.inventory = inventory
        self.intake = intake
        self.shipping = shipping
        self.timeout = timeout
        self.wake_allocator = wake_allocator or (lambda **_: None)
        self._locks: dict[str, list] = {}  # order id -> [lock, users]

    # --- change requests ----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, order_id: str):
        """Change requests and resolutions of one order run one after the other in this process, so a
        stale editor is refused before anything is reserved (the version guard still decides across
        replicas, and a loser then puts the reservation back as the saved order needs it)."""
        entry = self._locks.setdefault(order_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[order_id]

    async def change(self, req: orders_pb2.ChangeOrderRequest) -> Order:
        async with self._one_at_a_time(req.order_id):
            return await self._change(req)

    async def _change(self, req: orders_pb2.ChangeOrderRequest) -> Order:
        return await self._apply(req.order_id, req.partner_id, req.expected_version, change_request(req),
                                 req.actor.id or req.partner_id or "unknown")

    async def _apply(self, order_id: str, partner_id: str, expected_version: int, request: ChangeRequest,
                     actor: str, then: Callable[[Order], object] | None = None) -> Order:
        """One change request: policy, intake's review, reservation, then save with its events.
        `then` runs on the changed order before the save (a resolution recorded with its change)."""
        for attempt in range(ATTEMPTS):
            order = await self._load(order_id, partner_id)
            if expected_version and order.version != expected_version:
                raise stale(order, expected_version)
            before = wanted(order)
            previous_total = str(order.total_amount)
            await self._current_shipments(order)
            try:
                record = apply_change(order, request, at=self.service.clock(), actor=actor)
            except errors.FailedPrecondition:
                metrics.ORDER_CHANGES.labels("refused").inc()
                raise
            if record is None and not order.transitions and then is None:
                return order  # nothing to change
            if record is not None and needs_review(record):
                await self._review(order, record, before, previous_total)
            reserved = False
            if record is not None and order.lines_changed and order.status is Status.ALLOCATED:
                await self._reserve_or_refuse(order, before)
                reserved = True
            if then is not None:
                then(order)
            try:
                async with self.service.db.transaction() as tx:
                    await OrderRepository(tx.conn).save(order)
                    await publish_transitions(tx, order)
            except errors.Conflict:
                if reserved:  # another writer saved first: hold what the order as saved needs
                    await self._reserve(order, wanted(await self._load(order_id, partner_id)))
                if expected_version or attempt == ATTEMPTS - 1:
                    raise stale(order, expected_version) from None
                continue
            break
        count_transitions(order)
        if order.status in (Status.CONFIRMED, Status.SCHEDULED):
            self.wake_allocator(scheduled=True)  # the allocator reserves the new quantities
        return order

    async def _current_shipments(self, order: Order) -> None:
        """The policy table looks at how far the goods are; orders' copy of the shipments follows shipping's
        events and may lag a step, so an allocated order asks shipping (with a deadline) first. In memory only:
        the copy itself still changes only from shipping's events."""
        if self.shipping is None or order.status is not Status.ALLOCATED or not order.shipments:
            return
        answer = await self.shipping.ListShipments(shipping_pb2.ListShipmentsRequest(order_id=order.order_id),
                                                   timeout=self.timeout, metadata=rpc.metadata())
        for s in answer.items:
            view = order.shipments.get(s.shipment_id)
            if view is None:
                order.shipments[s.shipment_id] = ShipmentView(s.shipment_id, s.warehouse, s.status,
                                                              lines={x.sku: x.quantity for x in s.lines})
            else:
                view.status = s.status

    async def _review(self, order: Order, record, before: dict[str, int], previous_total: str) -> None:
        """Intake's checks on the changed order (price, credit, delivery date, address); a failure
        refuses the change (409, rule change_fails_check, the reasons in the detail): the partner
        asked for it and can adjust it, so nothing is held behind the partner's back."""
        if self.intake is None:
            return
        after = wanted(order)
        added = [intake_pb2.ReviewLine(sku=s, quantity=q - before.get(s, 0))
                 for s, q in sorted(after.items()) if q > before.get(s, 0)]
        answer = await self.intake.ReviewChange(
            intake_pb2.ReviewChangeRequest(order=order_to_proto(order), previous_total=previous_total, added=added,
                                           ship_to_changed=any(c.field.startswith("ship_to.") for c in record.changes)),
            timeout=self.timeout, metadata=rpc.metadata())
        if answer.hold_reasons:
            metrics.ORDER_CHANGES.labels("refused").inc()
            raise errors.FailedPrecondition(
                "the changed order fails intake's checks: "
                + "; ".join(f"{r.code}: {r.message}" for r in answer.hold_reasons),
                rule="change_fails_check", subject=order.order_id)

    async def _reserve(self, order: Order, quantities: dict[str, int]) -> inventory_pb2.ReserveResponse:
        return await self.inventory.Reserve(
            inventory_pb2.ReserveRequest(
                order_id=order.order_id, priority=order.priority,
                lines=[inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in sorted(quantities.items()) if q > 0]),
            timeout=self.timeout, metadata=rpc.metadata())

    async def _reserve_or_refuse(self, order: Order, before: dict[str, int]) -> None:
        """An allocated order holds stock: the reservation follows the new quantities (target state).
        An increase that stock cannot cover now is refused (an allocated order does not go back to
        a backorder), and the reservation is put back as it was."""
        answer = await self._reserve(order, wanted(order))
        missing = {b.sku: b.quantity for b in answer.backordered if b.quantity}
        if missing:
            await self._reserve(order, before)
            metrics.ORDER_CHANGES.labels("refused").inc()
            raise errors.FailedPrecondition(
                "not enough stock for the change: " + ", ".join(f"{s} short by {q}" for s, q in sorted(missing.items())),
                rule="change_needs_stock", subject=order.order_id)
        record_allocation_change(order, [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations])

    # --- exceptions -------------------------------------------------------------------------
    async def record_exception(self, req: orders_pb2.RecordExceptionRequest) -> Order:
        exception = ex.OrderException.create(
            exception_id=exception_id(req), type=req.type, cause=req.cause, at=self.service.clock(),
            actor=req.actor.id or req.partner_id or "unknown", source=req.source or "desk",
            expected_date=req.expected_date, sku=req.sku, warehouse=req.warehouse, quantity=req.quantity,
            shipment_id=req.shipment_id)
        return await self._update(req.order_id, req.partner_id, lambda order: self._check_names(order, exception)
                                  or ex.record(order, exception))

    @staticmethod
    def _check_names(order: Order, exception: ex.OrderException) -> None:
        violations = []
        if exception.sku and exception.sku not in {line.sku for line in order.lines}:
            violations.append(errors.FieldViolation("sku", f"the order has no line for {exception.sku!r}",
                                                    "unknown_line"))
        if exception.shipment_id and exception.shipment_id not in order.shipments:
            violations.append(errors.FieldViolation("shipment_id", "not a shipment of this order", "unknown_shipment"))
        if violations:
            raise errors.InvalidArgument("the exception names what the order does not have", violations)

    async def record_exception_in(self, tx, order_id: str, exception: ex.OrderException) -> None:
        """For consumers (a carrier delay or a lost parcel from shipping): inside their transaction."""
        await self.service.apply_to_order(tx, order_id, lambda order: ex.record(order, exception))

    async def resolve_exception(self, req: orders_pb2.ResolveExceptionRequest) -> Order:
        async with self._one_at_a_time(req.order_id):
            return await self._resolve_exception(req)

    async def _resolve_exception(self, req: orders_pb2.ResolveExceptionRequest) -> Order:
        actor = req.actor.id or req.partner_id or "unknown"
        details = dict(req.details)
        order = await self._load(req.order_id, req.partner_id)
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
                raise errors.InvalidArgument("which shipment changes carrier?", [
                    errors.FieldViolation("details.shipment_id", "required: the exception names no shipment")])

        def resolve(o: Order) -> None:
            if allocations is not None:
                record_allocation_change(o, allocations, actor=actor, at=self.service.clock(),
                                         reason=f"re-allocated for {exception.exception_id}")
            if action is ex.Action.ACCEPT_DELAY:  # the accepted date becomes the promise
                o.accept_delay(details["expected_date"], at=self.service.clock(), actor=actor,
                               reason=_because(f"delay accepted ({exception.exception_id})", req.note))
            ex.resolve(o, req.exception_id, req.action, at=self.service.clock(), actor=actor, note=req.note,
                       details=details)

        return await self._update(req.order_id, req.partner_id, resolve)

    async def _substitute(self, order: Order, exception: ex.OrderException, req, actor: str,
                          details: dict[str, str]) -> Order:
        """The customer agreed to an equivalent SKU: the exception's line becomes a line of the substitute
        (same quantity and price), as a change request would (policy, intake's review, reservation), and
        the resolution is saved with it."""
        line = next((x for x in order.lines if x.sku == exception.sku), None)
        if line is None:
            raise errors.FailedPrecondition("substitution needs the exception to name a line of the order (sku)",
                                            rule="substitute_needs_sku", subject=exception.exception_id)
        substitute = details["substitute_sku"].strip()
        request = ChangeRequest(remove_skus=[line.sku],
                                add_lines=[NewLine(substitute, line.quantity, str(line.unit_price))],
                                reason=f"substitute {substitute} for {line.sku} ({exception.exception_id}); "
                                       f"consent: {details['customer_consent']}")

        def resolve(o: Order) -> None:
            ex.resolve(o, exception.exception_id, ex.Action.SUBSTITUTE.value, at=self.service.clock(), actor=actor,
                       note=req.note, details=details)

        return await self._apply(order.order_id, req.partner_id, 0, request, actor, then=resolve)

    async def _split_delivery(self, order: Order, exception: ex.OrderException, req, actor: str,
                              details: dict[str, str]) -> Order:
        """Deliver what is reserved now, the rest later as a linked order (Order.split_delivery).

        Inventory is asked what it holds for the order now (Reserve with the same target), then to hold
        only that (the order's backorder goes); for an allocated order short at picking, the missing
        units are written off at the short warehouse instead (Reallocate, write_off_only). The order,
        its new linked order and the resolution commit together. The allocator then reserves the
        linked order (backordered, filled by receipts by priority). A failure after inventory was
        asked gives the order as saved its reservation back (Reserve for its lines)."""
        order.check_split_delivery()
        date = exception.expected_date or order.expected_delivery_date
        reason = _because(f"split delivery for {exception.exception_id}", req.note)

        def dry_run(held: list[Allocation]) -> None:  # refused (nothing to split) before anything moves
            copy.deepcopy(order).split_delivery(held, at=self.service.clock(), actor=actor, delivery_date=date,
                                                reason=reason)

        if order.status is Status.ALLOCATED and exception.type is ex.ExceptionType.STOCK_SHORTAGE_AT_PICK:
            # Units the books show are not on the shelf: inventory releases and writes them off at the
            # short warehouse (reserving nothing elsewhere); the order keeps the rest of its reservation.
            short = (exception.sku, exception.warehouse)
            dry_run([Allocation(a.sku, a.warehouse, a.quantity - exception.quantity * ((a.sku, a.warehouse) == short))
                     for a in order.allocations])
            answer = await self._inventory_reallocate(
                inventory_pb2.ReallocateRequest(order_id=order.order_id, sku=exception.sku,
                                                warehouse=exception.warehouse, quantity=exception.quantity,
                                                reference=exception.exception_id, write_off_only=True))
        else:
            now = await self._reserve(order, wanted(order))
            held = [Allocation(r.sku, r.warehouse, r.quantity) for r in now.reservations]
            dry_run(held)
            kept: dict[str, int] = {}
            for a in held:
                kept[a.sku] = kept.get(a.sku, 0) + a.quantity
            answer = await self._reserve(order, kept)
        allocations = [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]
        try:
            for attempt in range(ATTEMPTS):
                try:
                    async with self.service.db.transaction() as tx:
                        repo = OrderRepository(tx.conn)
                        parent = await repo.get(order.order_id, req.partner_id)
                        if parent is None:
                            raise errors.NotFound(f"order {order.order_id} not found")
                        child = parent.split_delivery(allocations, at=self.service.clock(), actor=actor,
                                                      delivery_date=date, reason=reason)
                        ex.resolve(parent, exception.exception_id, ex.Action.SPLIT_DELIVERY.value,
                                   at=self.service.clock(), actor=actor, note=req.note,
                                   details={**details, "split_into": child.order_id})
                        await repo.save(parent)
                        await publish_transitions(tx, parent)
                        await repo.add(child)
                        await publish_transitions(tx, child)
                    break
                except errors.Conflict:
                    if attempt == ATTEMPTS - 1:
                        raise
        except Exception:
            with contextlib.suppress(Exception):  # the order as saved keeps what it holds and its backorder
                await self._reserve(order, wanted(await self._load(order.order_id, req.partner_id)))
            raise
        # The allocator may have asked for the whole order meanwhile: the parent holds only what it keeps.
        with contextlib.suppress(Exception):
            await self._reserve(parent, wanted(parent))
        count_transitions(parent)
        count_transitions(child)
        self.wake_allocator(scheduled=True)  # the linked order is reserved (or backordered) by priority
        return parent

    async def _reallocate(self, order: Order, exception: ex.OrderException) -> list[Allocation]:
        if not (exception.sku and exception.warehouse and exception.quantity):
            raise errors.FailedPrecondition(
                "re-allocation needs the exception's SKU, warehouse and quantity",
                rule="reallocate_needs_sku_warehouse_quantity", subject=exception.exception_id)
        answer = await self._inventory_reallocate(
            inventory_pb2.ReallocateRequest(order_id=order.order_id, sku=exception.sku, warehouse=exception.warehouse,
                                            quantity=exception.quantity, reference=exception.exception_id))
        return [Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations]

    async def _inventory_reallocate(self, request: inventory_pb2.ReallocateRequest) -> inventory_pb2.ReserveResponse:
        """Inventory's refusals (no_stock_elsewhere, not_held_at_warehouse) reach the desk as they are (409)."""
        try:
            return await self.inventory.Reallocate(request, timeout=self.timeout, metadata=rpc.metadata())
        except grpc.RpcError as exc:
            raise rpc.passed_on(exc) from exc

    async def _reserve_reship(self, order: Order, exception: ex.OrderException) -> str:
        """Reserves the lost shipment's units again (shipped units count towards Reserve's target,
        so the target grows by them); returns where they are held: "SKU@WH=qty;..."."""
        lost = order.shipments.get(exception.shipment_id)
        if lost is None or lost.status not in ("shipped", "delivered"):
            raise errors.FailedPrecondition("only a shipment that left the warehouse can be reshipped",
                                            rule="reship_needs_shipped_shipment", subject=exception.exception_id)
        held_before = {(r.sku, r.warehouse): r.quantity for r in (await self._reserve(order, wanted(order))).reservations}
        previous = reshipped(order)  # earlier reships count towards the target too
        extra = dict(previous)
        for sku, qty in lost.lines.items():
            extra[sku] = extra.get(sku, 0) + qty
        answer = await self._reserve(order, wanted(order, extra))
        if any(b.quantity for b in answer.backordered):
            await self._reserve(order, wanted(order, previous))
            raise errors.FailedPrecondition("not enough stock to reship", rule="reship_needs_stock",
                                            subject=exception.exception_id)
        plan = [(r.sku, r.warehouse, r.quantity - held_before.get((r.sku, r.warehouse), 0))
                for r in answer.reservations]
        return ";".join(f"{s}@{w}={q}" for s, w, q in plan if q > 0)

    # --- plumbing ------------------------------------------------------------------------------
    async def _load(self, order_id: str, partner_id: str) -> Order:
        async with self.service.db.read() as conn:
            order = await OrderRepository(conn).get(order_id, partner_id)
        if order is None:
            raise errors.NotFound(f"order {order_id} not found")
        return order

    async def _update(self, order_id: str, partner_id: str, change: Callable[[Order], object]) -> Order:
        for attempt in range(ATTEMPTS):
            try:
                async with self.service.db.transaction() as tx:
                    repo = OrderRepository(tx.conn)
                    order = await repo.get(order_id, partner_id)
                    if order is None:
                        raise errors.NotFound(f"order {order_id} not found")
                    change(order)
                    await repo.save(order)
                    await publish_transitions(tx, order)
                break
            except errors.Conflict:
                if attempt == ATTEMPTS - 1:
                    raise
        count_transitions(order)
        return order

