"""`StockRepository`: inventory's one repository, put together from the parts of the store
(levels, reservations, supply, warehouses), so a use case takes it from its unit of work with
`tx.repo(StockRepository)` and a unit test hands in one fake.

Lock order, the same in every transaction so PostgreSQL never deadlocks:
    order_states rows (by order id) -> stock rows by (sku, warehouse) -> sku_versions rows by sku
    -> production_runs row.
Reserve plans from unlocked levels and updates its stock rows last (a hot row is locked only
from its guarded update to the commit); a guard that refuses is retried, the last time with
the levels locked first (FOR UPDATE), so it always goes through.
A batch of Reserves (ReserveMany, `deferring(locked=True)`) takes its locks up front in the same order:
its orders' rows, every stock row of its SKUs, then (at its first backorder) all its SKUs' counters.
A fill (a receipt, a count, a cancel giving units back) locks the orders waiting for its SKUs, then their
stock rows, and changes only orders it locked: if more began waiting while it locked the orders, it gives
those locks up (a savepoint) and takes them all again in order; one that begins waiting after that is
locked late only without waiting (SKIP LOCKED, so no cycle can form), else the fill starts over (Conflict).
SQLite runs each service on one connection, so its transactions are serial anyway.
"""

from __future__ import annotations

from services.inventory.store.reservations import Reservations
from services.inventory.store.supply import Supply
from services.inventory.store.warehouses import Warehouses


class StockRepository(Reservations, Supply, Warehouses):
    """Stock levels and receipts, orders' reservations, supply and warehouses on one connection."""
