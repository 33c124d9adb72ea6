"""Inventory's tables: stock rows, the orders inventory has heard of and their reservations,
receipts, the SKUs' event counters and backorder totals, products, backorders and production runs.

CHECK constraints state the stock book's invariants (reserved >= 0, on_hand >= reserved) under
the guarded updates of `levels` and `reservations`, so even a wrong statement cannot break them.
"""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Index, Integer, MetaData, String, Table

from orderdesk.calendar_store import calendar_columns
from orderdesk.db import UtcDateTime

metadata = MetaData()

warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    *calendar_columns(),  # time zone, local cut-off, working days (orderdesk.calendar_store)
    Column("transit_days_domestic", Integer, nullable=False),
    Column("transit_days_international", Integer, nullable=False),
)

stock = Table(
    "stock",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
    CheckConstraint("on_hand >= reserved", name="ck_stock_on_hand_covers_reserved"),
)

# The version of each SKU's stock.restocked events: one counter per SKU (the event's
# aggregate), so a consumer sees it increase whichever warehouse the stock went to.
sku_versions = Table(
    "sku_versions",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    # Units owed to the SKU's open backorders, kept as a running total (migration 0003).
    Column("backordered", Integer, nullable=False),
)

# One row per order inventory has heard of; locking it serialises the order's changes.
order_states = Table(
    "order_states",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("state", String(16), nullable=False),  # active | released | consumed
    Column("priority", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("country", String(2), nullable=False),  # ship-to, for the nearest warehouse (0002)
    Column("placed_at", UtcDateTime, nullable=True),  # first come within a priority (0002)
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("warehouse", String(32), primary_key=True),
    Column("quantity", Integer, nullable=False),  # held now
    Column("shipped", Integer, nullable=False),  # held once, then consumed by a shipment
    CheckConstraint("quantity >= 0", name="ck_reservation_not_negative"),
    CheckConstraint("shipped >= 0", name="ck_reservation_shipped_not_negative"),
)

# Receipts applied, by reference: a retried Restock (or a redelivered refund) adds nothing.
receipts = Table(
    "receipts",
    metadata,
    Column("reference", String(200), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("received_by", String(320), nullable=False, server_default=""),  # migration 0007
)


# Supply (migration 0002). Products: the supply attributes of the catalogue (intake owns the rest).
products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("make_to_order", Boolean, nullable=False),
    Column("lead_time_days", Integer, nullable=False),
)

# What an active order still misses of a SKU after its last Reserve (or fill).
backorders = Table(
    "backorders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="ck_backorder_positive"),
)

production_runs = Table(
    "production_runs",
    metadata,
    Column("production_id", String(40), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("expected_date", String(10), nullable=False),  # ISO date
    Column("status", String(16), nullable=False),  # open | completed
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    CheckConstraint("quantity > 0", name="ck_production_positive"),
)

# Migration 0006: a supplier's inbound receipts announced ahead (open until the receipt of that reference).
inbound_receipts = Table(
    "inbound_receipts",
    metadata,
    Column("reference", String(200), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("expected_date", String(10), nullable=False),  # ISO date
    Column("status", String(16), nullable=False),  # open | received
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("quantity > 0", name="ck_inbound_positive"),
    Index("ix_inbound_receipts_sku_status", "sku", "status"),
)
