"""Inventory's use cases, one transaction each: reserve, release, consume, restock, import.

Reserve locks the order's state row, then the stock rows of every SKU involved (in SKU
and warehouse order), plans from those numbers with the domain's rules and applies the
plan with guarded updates. The lock makes the plan hold; the guards make sure that even
a plan that did not hold could never oversell.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderdesk import errors, events, masterdata, metrics
from orderdesk.db import Database, Tx
from orderdesk.v1 import events_pb2
from services.inventory.domain import (
    MAX_LENGTH,
    OrderReservations,
    OrderState,
    ReservationPlan,
    StockBookError,
    StockLevel,
    check_column_widths,
    reference_reused,
    reservation_outcome,
    unknown_warehouse,
    validate_reserve_lines,
    validate_restock,
)
from services.inventory.store import StockRepository

# A guard that refuses a locked plan means a writer bypassed the lock; start over a few times.
RESERVE_ATTEMPTS = 3
INVENTORY_KINDS = ("stock", "warehouses")
IMPORT_WIDTHS = {
    "stock": {"sku": MAX_LENGTH["sku"], "warehouse": MAX_LENGTH["warehouse"]},
    "warehouses": {"warehouse": MAX_LENGTH["warehouse"], "name": 200, "country": 2},
}


@dataclass(frozen=True)
class ReserveResult:
    reservations: list[tuple[str, str, int]]  # (sku, warehouse, quantity) the order holds now
    backordered: dict[str, int]               # sku -> units still missing


@dataclass(frozen=True)
class Receipt:
    sku: str
    warehouse: str
    quantity: int
    reference: str


class InventoryService:
    def __init__(self, db: Database):
        self.db = db

    def _repo(self, tx_or_conn) -> StockRepository:
        return StockRepository(getattr(tx_or_conn, "conn", tx_or_conn), self.db.dialect)

    # --- reservations ---------------------------------------------------------------------------
    async def reserve(self, order_id: str, lines: list[tuple[str, int]], priority: int = 0) -> ReserveResult:
        """Makes the order hold min(requested, reservable) of each SKU (target state)."""
        wanted = validate_reserve_lines(order_id, lines)
        for attempt in range(RESERVE_ATTEMPTS):
            try:
                async with self.db.transaction() as tx:
                    order, plan = await self._reserve_in(tx, order_id, lines, wanted, priority)
                break
            except errors.Conflict:
                if attempt == RESERVE_ATTEMPTS - 1:
                    raise
        metrics.RESERVATIONS.labels(reservation_outcome(plan, order)).inc()
        if plan.units_reserved:
            metrics.UNITS_RESERVED.inc(plan.units_reserved)
        released = sum(q for _, _, q in plan.release)
        if released:
            metrics.STOCK_UNITS_MOVED.labels("released").inc(released)
        return ReserveResult(order.reservations(), plan.backordered)

    async def _reserve_in(
        self, tx: Tx, order_id: str, lines: list[tuple[str, int]], wanted: dict[str, int], priority: int
    ) -> tuple[OrderReservations, ReservationPlan]:
        repo = self._repo(tx)
        order = await repo.lock_order(order_id, priority)
        order.require_reservable()
        available: dict[str, dict[str, int]] = {}
        for sku in sorted(set(wanted) | order.skus()):
            available[sku] = {lv.warehouse: lv.available for lv in await repo.lock_levels(sku)}
        # A SKU with no stock record anywhere is simply not in stock yet: backordered, not an
        # error (intake has checked it against the catalogue; a receipt creates its first record).
        plan = order.plan(wanted, available)
        for sku, warehouse, qty in plan.release:
            await repo.unreserve(order_id, sku, warehouse, qty)
        for sku, warehouse, qty in plan.reserve:
            await repo.reserve(order_id, sku, warehouse, qty)
        order.apply(plan)
        if not plan.changes_nothing or order.priority != priority:
            order.priority = priority
            await repo.save_order_state(order)
            await repo.drop_empty_reservations(order_id)
        return order, plan

    async def release(self, tx: Tx, order_id: str) -> int:
        """The order is cancelled: give everything back and refuse any later Reserve for it.
        Runs in the consumer's transaction; returns the units released."""
        repo = self._repo(tx)
        order = await repo.lock_order(order_id)
        if order.state is OrderState.RELEASED and not order.held:
            return 0
        given_back = order.release_all()
        for sku, warehouse, qty in given_back:
            await repo.unreserve(order_id, sku, warehouse, qty)
        await repo.save_order_state(order)
        await repo.drop_empty_reservations(order_id)
        units = sum(q for _, _, q in given_back)
        if units:
            metrics.STOCK_UNITS_MOVED.labels("released").inc(units)
        return units

    async def consume_shipment(self, tx: Tx, shipment) -> None:
        """A shipment left its warehouse: its lines' reserved units leave the books.
        A line the order does not hold raises StockBookError (retried, then dead-lettered)."""
        quantities: dict[str, int] = {}
        for line in shipment.lines:
            quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
        repo = self._repo(tx)
        order = await repo.lock_order(shipment.order_id)
        state_before = order.state
        for sku, qty in sorted(quantities.items()):
            order.ship(sku, shipment.warehouse, qty)
            await repo.consume(shipment.order_id, sku, shipment.warehouse, qty)
        if order.state is not state_before:
            await repo.save_order_state(order)
        metrics.STOCK_UNITS_MOVED.labels("shipped").inc(sum(quantities.values()))

    # --- stock in -----------------------------------------------------------------------------------
    async def restock(self, sku: str, warehouse: str, quantity: int, reference: str) -> list[StockLevel]:
        """A receipt of goods: on hand grows once per reference; returns the SKU's levels."""
        validate_restock(sku, warehouse, quantity, reference)
        async with self.db.transaction() as tx:
            await self.receive(tx, [Receipt(sku, warehouse, quantity, reference)])
            return await self._repo(tx).levels(sku)

    async def restock_return(self, tx: Tx, ret) -> None:
        """A refunded return: each line's restocked units go back to the line's warehouse."""
        receipts = [
            Receipt(line.sku, line.warehouse, line.restocked_quantity, f"return:{ret.rma_id}:{n}")
            for n, line in enumerate(ret.lines)
            if line.restocked_quantity > 0
        ]
        for n, receipt in enumerate(receipts):
            if not receipt.sku or not receipt.warehouse:
                raise StockBookError(f"return {ret.rma_id} line {n} names no SKU or warehouse to restock")
        await self.receive(tx, receipts)

    async def receive(self, tx: Tx, receipts: list[Receipt]) -> None:
        """Applies receipts not applied before, then publishes one stock.restocked per receipt.
        Stock rows first, then the SKUs' event counters, both sorted: the store's lock order."""
        repo = self._repo(tx)
        known = await repo.warehouse_codes()
        applied: list[tuple[Receipt, StockLevel]] = []
        for receipt in sorted(receipts, key=lambda r: (r.sku, r.warehouse, r.reference)):
            if receipt.warehouse not in known:
                raise unknown_warehouse(receipt.warehouse)
            if not await repo.record_receipt(receipt.reference, receipt.sku, receipt.warehouse, receipt.quantity):
                if await repo.receipt(receipt.reference) != (receipt.sku, receipt.warehouse, receipt.quantity):
                    raise reference_reused(receipt.reference)
                continue  # applied before: a retry
            applied.append((receipt, await repo.receive(receipt.sku, receipt.warehouse, receipt.quantity)))
        for receipt, level in sorted(applied, key=lambda a: a[0].sku):
            await self._emit_restocked(tx, receipt.sku, level, receipt.quantity)
        if applied:
            metrics.STOCK_UNITS_MOVED.labels("restocked").inc(sum(r.quantity for r, _ in applied))

    async def _emit_restocked(self, tx: Tx, sku: str, level: StockLevel, delta: int) -> None:
        await tx.emit(events.new_event(
            "stock.restocked", aggregate_id=sku, version=await self._repo(tx).next_event_version(sku),
            reason=f"+{delta} at {level.warehouse}",
            stock=events_pb2.StockEvent(sku=sku, warehouse=level.warehouse, on_hand=level.on_hand,
                                        reserved=level.reserved, delta=delta),
        ))

    # --- reads and master data ---------------------------------------------------------------------
    async def levels(self, sku: str) -> list[StockLevel]:
        if not sku:
            raise errors.InvalidArgument("sku is required", [errors.FieldViolation("sku", "required")])
        async with self.db.read() as conn:
            levels = await self._repo(conn).levels(sku)
        if not levels:
            raise errors.NotFound(f"no stock records for SKU {sku!r}")
        return levels

    async def import_csv(self, kind: str, text: str) -> int:
        """Master data inventory owns. All or nothing: any bad row refuses the whole file."""
        if kind not in INVENTORY_KINDS:
            raise errors.InvalidArgument(
                f"inventory imports stock and warehouses, not {kind!r}",
                [errors.FieldViolation("kind", "one of " + ", ".join(INVENTORY_KINDS))],
            )
        records = masterdata.parse(kind, text)
        check_column_widths(records, IMPORT_WIDTHS[kind])
        async with self.db.transaction() as tx:
            if kind == "warehouses":
                for w in records:
                    await self._repo(tx).upsert_warehouse(dict(w.__dict__))
            else:
                await self._count_stock(tx, records)
        return len(records)

    async def _count_stock(self, tx: Tx, rows: list[masterdata.StockRow]) -> None:
        """Sets on hand per SKU and warehouse; a rise publishes stock.restocked (backorders may fill)."""
        repo = self._repo(tx)
        known = await repo.warehouse_codes()
        violations: list[errors.FieldViolation] = []
        risen: list[tuple[str, StockLevel, int]] = []
        numbered = sorted(enumerate(rows, start=2), key=lambda nr: (nr[1].sku, nr[1].warehouse))  # row 1: header
        for number, row in numbered:
            if row.warehouse not in known:
                violations.append(errors.FieldViolation(
                    f"row {number}.warehouse", f"unknown warehouse {row.warehouse!r}; import warehouses first"))
                continue
            before, after = await repo.count(row.sku, row.warehouse, row.on_hand)
            if after is None:
                violations.append(errors.FieldViolation(
                    f"row {number}.on_hand",
                    f"{row.on_hand} is less than the {before.reserved} units reserved for orders at {row.warehouse}"))
            elif after.on_hand > before.on_hand:
                risen.append((row.sku, after, after.on_hand - before.on_hand))
        if violations:  # raising rolls the whole import back
            violations.sort(key=lambda v: int(v.field.split(" ")[1].split(".")[0]))
            raise errors.InvalidArgument("stock import refused; nothing was imported", violations)
        for sku, level, delta in sorted(risen, key=lambda r: r[0]):
            await self._emit_restocked(tx, sku, level, delta)
