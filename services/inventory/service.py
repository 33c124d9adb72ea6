"""Inventory's use cases, one transaction each: reserve, release, consume, restock, import."""

from __future__ import annotations

from orderdesk import errors, events, masterdata, metrics
from orderdesk.db import Database, Tx
from orderdesk.v1 import events_pb2
from services.inventory.domain import (
    OrderHold,
    StockLevel,
    plan_allocation,
    validate_quantity,
    validate_reserve_lines,
)
from services.inventory.store import StockRepository

# A lost race re-plans from fresh numbers; past this many losses for one SKU the rest is
# reported as backordered and the allocator asks again later.
MAX_PLAN_ATTEMPTS = 5


class InventoryService:
    def __init__(self, db: Database):
        self.db = db

    def _repo(self, tx_or_conn) -> StockRepository:
        return StockRepository(getattr(tx_or_conn, "conn", tx_or_conn), self.db.dialect)

    # --- reservations --------------------------------------------------------
    async def reserve(self, order_id: str, lines: list[tuple[str, int]]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """Makes the order hold min(requested, reservable) of each SKU; returns (held, backordered)."""
        if not order_id:
            raise errors.InvalidArgument("order_id is required", [errors.FieldViolation("order_id", "required")])
        wanted = validate_reserve_lines(lines)
        async with self.db.transaction() as tx:
            repo = self._repo(tx)
            hold = await repo.lock_hold(order_id)
            hold.require_reservable()
            backordered: dict[str, int] = {}
            reserved_now = 0
            # Sorted SKUs and warehouses: every transaction locks stock rows in one order (no deadlocks).
            for sku, requested in sorted(wanted.items()):
                for warehouse, qty in hold.excess(sku, requested):
                    await repo.unreserve(order_id, sku, warehouse, qty)
                    hold.held[(sku, warehouse)] -= qty
                missing = requested - hold.held_for(sku)
                for _ in range(MAX_PLAN_ATTEMPTS):
                    if missing <= 0:
                        break
                    plan = plan_allocation(missing, await repo.available(sku))
                    if not plan:
                        break
                    for warehouse, qty in sorted(plan):
                        if await repo.try_reserve(order_id, sku, warehouse, qty):
                            hold.held[(sku, warehouse)] = hold.held.get((sku, warehouse), 0) + qty
                            missing -= qty
                            reserved_now += qty
                if missing > 0:
                    backordered[sku] = missing
            for (sku, _), _qty in list(hold.held.items()):
                if sku not in wanted:  # a line the order no longer has
                    for warehouse, qty in hold.excess(sku, 0):
                        await repo.unreserve(order_id, sku, warehouse, qty)
                        hold.held[(sku, warehouse)] -= qty
            await repo.drop_empty_reservations(order_id)
        held = {k: q for k, q in hold.held.items() if q > 0}
        metrics.RESERVATIONS.labels("none" if not held else "partial" if backordered else "full").inc()
        if reserved_now:
            metrics.UNITS_RESERVED.inc(reserved_now)
        return held, backordered

    async def release(self, tx: Tx, order_id: str) -> None:
        """The order is cancelled: give back everything and refuse any later Reserve for it."""
        repo = self._repo(tx)
        hold = await repo.lock_hold(order_id)
        for (sku, warehouse), qty in hold.held.items():
            await repo.unreserve(order_id, sku, warehouse, qty)
        await repo.drop_empty_reservations(order_id)
        await repo.set_hold_state(order_id, OrderHold.RELEASED)

    async def consume_shipment(self, tx: Tx, shipment) -> None:
        repo = self._repo(tx)
        await repo.lock_hold(shipment.order_id)
        for line in shipment.lines:
            await repo.consume(shipment.order_id, line.sku, shipment.warehouse, line.quantity)
        await repo.drop_empty_reservations(shipment.order_id)

    # --- stock in ---------------------------------------------------------------
    async def restock(self, sku: str, warehouse: str, quantity: int, reference: str) -> list[StockLevel]:
        violations = []
        if not sku:
            violations.append(errors.FieldViolation("sku", "required"))
        if not warehouse:
            violations.append(errors.FieldViolation("warehouse", "required"))
        if not reference:
            violations.append(errors.FieldViolation("reference", "required: a receipt is applied once per reference"))
        if violations:
            raise errors.InvalidArgument("invalid restock", violations)
        validate_quantity(quantity)
        async with self.db.transaction() as tx:
            await self.restock_in(tx, sku, warehouse, quantity, reference)
            return await self._repo(tx).levels(sku)

    async def restock_in(self, tx: Tx, sku: str, warehouse: str, quantity: int, reference: str) -> None:
        repo = self._repo(tx)
        if not await repo.warehouse_exists(warehouse):
            raise errors.InvalidArgument(f"unknown warehouse {warehouse!r}",
                                         [errors.FieldViolation("warehouse", "unknown warehouse")])
        if not await repo.record_receipt(reference, sku, warehouse, quantity):
            return  # applied before
        await repo.add_on_hand(sku, warehouse, quantity)
        await self._emit_restocked(tx, sku, warehouse, quantity)

    async def restock_return(self, tx: Tx, ret) -> None:
        for n, line in enumerate(ret.lines):
            if line.restocked_quantity > 0:
                await self.restock_in(tx, line.sku, line.warehouse, line.restocked_quantity,
                                      f"return:{ret.rma_id}:{n}")

    async def _emit_restocked(self, tx: Tx, sku: str, warehouse: str, delta: int) -> None:
        repo = self._repo(tx)
        level = next(lv for lv in await repo.levels(sku) if lv.warehouse == warehouse)
        await tx.emit(events.new_event(
            "stock.restocked", aggregate_id=sku, version=await repo.version(sku, warehouse),
            stock=events_pb2.StockEvent(sku=sku, warehouse=warehouse, on_hand=level.on_hand,
                                        reserved=level.reserved, delta=delta),
        ))

    # --- reads and master data ------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        async with self.db.read() as conn:
            levels = await self._repo(conn).levels(sku)
        if not levels:
            raise errors.NotFound(f"no stock records for SKU {sku!r}")
        return levels

    async def import_csv(self, kind: str, text: str) -> int:
        if kind not in ("stock", "warehouses"):
            raise errors.InvalidArgument(
                f"inventory imports stock and warehouses, not {kind!r}",
                [errors.FieldViolation("kind", "one of stock, warehouses")],
            )
        records = masterdata.parse(kind, text)
        async with self.db.transaction() as tx:
            repo = self._repo(tx)
            if kind == "warehouses":
                for w in records:
                    await repo.upsert_warehouse(dict(w.__dict__))
                return len(records)
            violations = []
            for n, row in enumerate(records, start=2):
                applied, previous = await repo.set_on_hand(row.sku, row.warehouse, row.on_hand)
                if not applied:
                    violations.append(errors.FieldViolation(
                        f"row {n}.on_hand", f"{row.on_hand} is less than the units reserved for orders"))
                elif row.on_hand > previous:
                    await self._emit_restocked(tx, row.sku, row.warehouse, row.on_hand - previous)
            if violations:  # raising rolls the whole import back
                raise errors.InvalidArgument("stock import refused; nothing was imported", violations)
        return len(records)
