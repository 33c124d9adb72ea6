"""inventory: warehouses, stock, event versions, order states, reservations, receipts, outbox and inbox

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime
from orderdesk.outbox import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "warehouses",
        sa.Column("warehouse", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("cutoff_hour_utc", sa.Integer, nullable=False),
        sa.Column("transit_days_domestic", sa.Integer, nullable=False),
        sa.Column("transit_days_international", sa.Integer, nullable=False),
    )
    op.create_table(
        "stock",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("warehouse", sa.String(32), primary_key=True),
        sa.Column("on_hand", sa.Integer, nullable=False),
        sa.Column("reserved", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("reserved >= 0", name="ck_stock_reserved_not_negative"),
        sa.CheckConstraint("on_hand >= reserved", name="ck_stock_on_hand_covers_reserved"),
    )
    op.create_table(
        "sku_versions",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "order_states",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("warehouse", sa.String(32), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("shipped", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity >= 0", name="ck_reservation_not_negative"),
        sa.CheckConstraint("shipped >= 0", name="ck_reservation_shipped_not_negative"),
    )
    op.create_table(
        "receipts",
        sa.Column("reference", sa.String(200), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in (
        "inbox",
        "outbox",
        "receipts",
        "reservations",
        "order_states",
        "sku_versions",
        "stock",
        "warehouses",
    ):
        op.drop_table(table)
