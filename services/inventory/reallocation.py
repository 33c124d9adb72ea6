"""Re-allocation after a shortage found at picking (an exception the desk resolves).

The warehouse reports that units the books show are not on the shelf. In one transaction:
the order's reservation of those units at the short warehouse is released, the missing
units are written off there (on hand drops, so nobody else is promised them), and the
same quantity is reserved for the order at other warehouses by the usual strategy
(plan_allocation). When the other warehouses cannot cover it all, nothing changes and
the call is refused (rule no_stock_elsewhere), so the desk can choose another resolution.
The write-off is recorded once per reference (the exception id) in the receipts book as
a negative receipt, so a retried call changes nothing. A split delivery (write_off_only) releases
and writes off the missing units without reserving them elsewhere: a new linked order asks for them.
"""

from __future__ import annotations

from orderdesk import errors, metrics
from orderdesk.db import Database
from services.inventory.domain import ReservationPlan, plan_allocation
from services.inventory.store import StockRepository


def check_request(order_id: str, sku: str, warehouse: str, quantity: int, reference: str) -> None:
    violations = [
        errors.FieldViolation(name, "required", "required")
        for name, value in (
            ("order_id", order_id),
            ("sku", sku),
            ("warehouse", warehouse),
            ("reference", reference),
        )
        if not value
    ]
    if quantity <= 0:
        violations.append(errors.FieldViolation("quantity", "must be positive"))
    if violations:
        raise errors.InvalidArgument("invalid reallocation", violations)


async def reallocate(
    db: Database,
    order_id: str,
    sku: str,
    warehouse: str,
    quantity: int,
    reference: str,
    *,
    write_off_only: bool = False,
) -> list[tuple[str, str, int]]:
    """Moves `quantity` of the order's `sku` away from `warehouse`; returns what the order holds now.
    With `write_off_only` (a split delivery) the units are released and written off, nothing is
    reserved elsewhere: the order holds less."""
    check_request(order_id, sku, warehouse, quantity, reference)
    async with db.transaction() as tx:
        repo = tx.repo(StockRepository)
        order = await repo.lock_order(order_id)
        order.require_reservable()
        levels = {lv.warehouse: lv for lv in await repo.lock_levels(sku)}
        if not await repo.record_receipt(f"shortage:{reference}", sku, warehouse, -quantity):
            return order.reservations()  # applied before: a retry
        held_here = order.held.get((sku, warehouse), 0)
        if held_here < quantity:
            raise errors.FailedPrecondition(
                f"order {order_id} holds {held_here} of {sku} at {warehouse}, not {quantity}",
                rule="not_held_at_warehouse",
                subject=order_id,
            )
        elsewhere = {wh: lv.available for wh, lv in levels.items() if wh != warehouse}
        picks = [] if write_off_only else plan_allocation(quantity, elsewhere)
        if not write_off_only and sum(q for _, q in picks) < quantity:
            raise errors.FailedPrecondition(
                f"the other warehouses have {sum(max(a, 0) for a in elsewhere.values())} of {sku} available, "
                f"not {quantity}",
                rule="no_stock_elsewhere",
                subject=order_id,
            )
        await repo.unreserve(order_id, sku, warehouse, quantity)
        here = levels[warehouse]
        _, counted = await repo.count(sku, warehouse, here.on_hand - quantity)  # the write-off
        if counted is None:
            raise errors.Conflict(f"{sku} at {warehouse} changed meanwhile; retry")
        for wh, qty in picks:
            await repo.reserve(order_id, sku, wh, qty)
        order.apply(
            ReservationPlan(release=[(sku, warehouse, quantity)], reserve=[(sku, wh, q) for wh, q in picks])
        )
        await repo.save_order_state(order)
        await repo.drop_empty_reservations(order_id)
    metrics.STOCK_UNITS_MOVED.labels("written_off").inc(quantity)
    return order.reservations()
