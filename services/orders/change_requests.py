"""Change requests on a placed order: the use case (the rules are `Order.change` and changes.py).

Load the order, check the caller's version (If-Match), apply the change in memory (the policy
table refuses what the status forbids), let intake review what can make a check fail (price,
credit, delivery date), adjust the reservation when the order holds stock, then save the order
with its order.changed event in one transaction. A lost race after inventory was asked gives the
old reservation back.

A partially shipped order holds stock for its remainder only: inventory's Reserve counts the units it
has shipped towards the order (target state), so the same Reserve follows a change of the remainder.
Inventory books a shipment from shipping's event, orders from another: before the reservation moves,
orders waits (briefly) until inventory holds no more than the units orders knows are not yet shipped,
so a release never takes units a parcel already carries. A cancel of the whole order is a cancel of
its remainder there (`cancel_remainder`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from orderdesk import errors, metrics, rpc, usecase
from orderdesk.domain import address_dict, units_per_sku
from orderdesk.v1 import intake_pb2, inventory_pb2, orders_pb2, shipping_pb2
from services.orders.changes import ChangeRecord, ChangeRequest, NewLine, needs_review
from services.orders.domain import Allocation, Order, ShipmentView, Status
from services.orders.proto import order_to_proto
from services.orders.service import OrdersService, count_transitions, publish_transitions, quantities, stale
from services.orders.store import OrderRepository

HOLDS_STOCK = (Status.ALLOCATED, Status.PARTIALLY_SHIPPED)
# How long a change of a partially shipped order waits for inventory to book a shipment orders knows left.
BOOKING_WAITS = (0.05, 0.1, 0.2, 0.4, 0.8)


def change_request(req: orders_pb2.ChangeOrderRequest) -> ChangeRequest:
    return ChangeRequest(
        ship_to=address_dict(req.ship_to) if req.change_ship_to else None,
        quantities={line.sku: line.quantity for line in req.lines},
        add_lines=[NewLine(line.sku, line.quantity, line.unit_price) for line in req.add_lines],
        remove_skus=list(req.remove_lines),
        cancel={line.sku: line.quantity for line in req.cancel_lines},
        reason=req.actor.reason,
    )


async def load(db, order_id: str, partner_id: str) -> Order:
    return await usecase.load(
        db, OrderRepository, (order_id, partner_id), missing=f"order {order_id} not found"
    )


class OrderLocks:
    """Change requests and resolutions of one order run one after the other in this process, so a
    stale editor is refused before anything is reserved (the version guard still decides across
    replicas, and a loser then puts the reservation back as the saved order needs it)."""

    def __init__(self) -> None:
        self._locks: dict[str, list] = {}  # order id -> [lock, users]

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, order_id: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(order_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[order_id]


class ChangeRequests:
    def __init__(
        self,
        service: OrdersService,
        inventory,
        timeout: float,
        *,
        intake=None,
        shipping=None,
        wake_allocator: Callable[..., None] | None = None,
        locks: OrderLocks | None = None,
    ):
        self.service = service
        self.inventory = inventory
        self.intake = intake
        self.shipping = shipping
        self.timeout = timeout
        self.wake_allocator = wake_allocator or (lambda **_: None)
        self.locks = locks or OrderLocks()

    async def change(self, req: orders_pb2.ChangeOrderRequest) -> Order:
        async with self.locks.one_at_a_time(req.order_id):
            return await self.apply(
                req.order_id,
                req.partner_id,
                req.expected_version,
                change_request(req),
                req.actor.id or req.partner_id or "unknown",
            )

    async def cancel_remainder(
        self, order_id: str, partner_id: str, expected_version: int, actor: str, reason: str
    ) -> Order:
        """The cancel of a partially shipped order: every unit not yet shipped (Order.remainder_cancel)."""
        async with self.locks.one_at_a_time(order_id):
            return await self.apply(
                order_id, partner_id, expected_version, lambda order: order.remainder_cancel(reason), actor
            )

    async def apply(
        self,
        order_id: str,
        partner_id: str,
        expected_version: int,
        request: ChangeRequest | Callable[[Order], ChangeRequest],
        actor: str,
        then: Callable[[Order], object] | None = None,
    ) -> Order:
        """One change request: policy, intake's review, reservation, then save with its events.
        `request` may be made from the order as loaded (a cancel of the remainder);
        `then` runs on the changed order before the save (a resolution recorded with its change).

        Intake and inventory are asked outside any transaction, so an attempt that lost the race
        (another writer saved first) is prepared again from a fresh read, not only saved again; a
        lost race first gives the order as saved its reservation back, and with If-Match it is
        stale at once. Hence its own loop, not `usecase.retrying`, which runs all of an attempt
        inside its transaction (no remote call may hold one open) and retries a Conflict as it is."""
        for attempt in range(usecase.ATTEMPTS):
            order = await load(self.service.db, order_id, partner_id)
            if expected_version and order.version != expected_version:
                raise stale(order, expected_version)
            before = quantities(order)
            open_before = order.open_units()
            holds_stock = order.status in HOLDS_STOCK
            previous_total = str(order.total_amount)
            await self.current_shipments(order)
            try:
                asked = request(order) if callable(request) else request
                record = order.change(asked, at=self.service.clock(), actor=actor)
            except errors.FailedPrecondition:
                metrics.ORDER_CHANGES.labels("refused").inc()
                raise
            if record is None and not order.transitions and then is None:
                return order  # nothing to change
            if record is not None and needs_review(record):
                await self._review(order, record, before, previous_total)
            reserved = False
            if record is not None and order.lines_changed and holds_stock:
                if open_before != before:  # some of it shipped
                    await self.wait_for_booking(order, before, open_before)
                await self._reserve_or_refuse(order, before)
                reserved = True
            if then is not None:
                then(order)
            try:
                async with self.service.db.transaction() as tx:
                    await tx.repo(OrderRepository).save(order)
                    await publish_transitions(tx, order)
            except errors.Conflict:
                if reserved:  # another writer saved first: hold what the order as saved needs
                    await self.reserve(order, quantities(await load(self.service.db, order_id, partner_id)))
                if expected_version or attempt == usecase.ATTEMPTS - 1:
                    raise stale(order, expected_version) from None
                continue
            break
        count_transitions(order)
        if order.status in (Status.CONFIRMED, Status.SCHEDULED):
            self.wake_allocator(scheduled=True)  # the allocator reserves the new quantities
        return order

    async def reserve(self, order: Order, wanted: dict[str, int]) -> inventory_pb2.ReserveResponse:
        """Inventory's Reserve (target state): hold `wanted` units per SKU for the order."""
        return await self.inventory.Reserve(
            inventory_pb2.ReserveRequest(
                order_id=order.order_id,
                priority=order.priority,
                lines=[
                    inventory_pb2.ReserveLine(sku=s, quantity=q) for s, q in sorted(wanted.items()) if q > 0
                ],
            ),
            timeout=self.timeout,
            metadata=rpc.metadata(),
        )

    async def current_shipments(self, order: Order) -> None:
        """The policy table looks at how far the goods are; orders' copy of the shipments follows shipping's
        events and may lag a step, so an allocated order asks shipping (with a deadline) first. In memory only:
        the copy itself still changes only from shipping's events."""
        if self.shipping is None or order.status not in HOLDS_STOCK or not order.shipments:
            return
        answer = await self.shipping.ListShipments(
            shipping_pb2.ListShipmentsRequest(order_id=order.order_id),
            timeout=self.timeout,
            metadata=rpc.metadata(),
        )
        for s in answer.items:
            view = order.shipments.get(s.shipment_id)
            if view is None:
                order.shipments[s.shipment_id] = ShipmentView(
                    s.shipment_id, s.warehouse, s.status, lines={x.sku: x.quantity for x in s.lines}
                )
            else:
                view.status = s.status

    async def wait_for_booking(
        self, order: Order, before: dict[str, int], open_units: dict[str, int]
    ) -> None:
        """Some of the order shipped: inventory must have booked those parcels (moved their units out of the
        order's reservation) before the reservation follows the change, else a release could take units
        a parcel carries. Reserve of the quantities as they are changes nothing and answers what is held;
        more held than is open means a shipment is not booked yet: wait a little, then 503 (retry)."""
        for pause in (*BOOKING_WAITS, None):
            answer = await self.reserve(order, before)
            held = units_per_sku(answer.reservations)
            if all(units <= open_units.get(sku, 0) for sku, units in held.items()):
                return
            if pause is None:
                raise errors.Unavailable(
                    f"inventory has not yet booked the shipped goods of order {order.order_id}; try again"
                )
            await asyncio.sleep(pause)

    async def _review(
        self, order: Order, record: ChangeRecord, before: dict[str, int], previous_total: str
    ) -> None:
        """Intake's checks on the changed order (price, credit, delivery date, address); a failure
        refuses the change (409, rule change_fails_check, the reasons in the detail): the partner
        asked for it and can adjust it, so nothing is held behind the partner's back."""
        if self.intake is None:
            return
        after = quantities(order)
        added = [
            intake_pb2.ReviewLine(sku=s, quantity=q - before.get(s, 0))
            for s, q in sorted(after.items())
            if q > before.get(s, 0)
        ]
        answer = await self.intake.ReviewChange(
            intake_pb2.ReviewChangeRequest(
                order=order_to_proto(order),
                previous_total=previous_total,
                added=added,
                ship_to_changed=any(c.field.startswith("ship_to.") for c in record.changes),
            ),
            timeout=self.timeout,
            metadata=rpc.metadata(),
        )
        if answer.hold_reasons:
            metrics.ORDER_CHANGES.labels("refused").inc()
            raise errors.FailedPrecondition(
                "the changed order fails intake's checks: "
                + "; ".join(f"{r.code}: {r.message}" for r in answer.hold_reasons),
                rule="change_fails_check",
                subject=order.order_id,
            )

    async def _reserve_or_refuse(self, order: Order, before: dict[str, int]) -> None:
        """An allocated order holds stock: the reservation follows the new quantities (target state).
        An increase that stock cannot cover now is refused (an allocated order does not go back to
        a backorder), and the reservation is put back as it was."""
        answer = await self.reserve(order, quantities(order))
        missing = {b.sku: b.quantity for b in answer.backordered if b.quantity}
        if missing:
            await self.reserve(order, before)
            metrics.ORDER_CHANGES.labels("refused").inc()
            raise errors.FailedPrecondition(
                "not enough stock for the change: "
                + ", ".join(f"{s} short by {q}" for s, q in sorted(missing.items())),
                rule="change_needs_stock",
                subject=order.order_id,
            )
        order.follow_reservation([Allocation(r.sku, r.warehouse, r.quantity) for r in answer.reservations])
