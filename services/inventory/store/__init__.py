"""Inventory's storage (SQLAlchemy Core), by concern:

- tables.py: the tables and their CHECK constraints;
- levels.py: stock rows, their guarded changes, receipts and the SKUs' event versions;
- reservations.py: orders' state rows and reservations, and moves of a reservation with its stock;
- supply.py: backorders, products and production runs;
- warehouses.py: warehouse master data;
- repository.py: `StockRepository`, all of the above on one connection, and the lock order.
"""

from services.inventory.store.repository import StockRepository
from services.inventory.store.tables import (
    backorders,
    metadata,
    order_states,
    production_runs,
    products,
    receipts,
    reservations,
    sku_versions,
    stock,
    warehouses,
)

__all__ = [
    "StockRepository",
    "backorders",
    "metadata",
    "order_states",
    "production_runs",
    "products",
    "receipts",
    "reservations",
    "sku_versions",
    "stock",
    "warehouses",
]
