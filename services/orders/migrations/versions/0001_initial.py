"""orders: orders, lines, history, outbox and inbox

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
        "orders",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(40), nullable=False, unique=True),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("external_ref", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("ship_to", sa.JSON, nullable=False),
        sa.Column("requested_delivery_date", sa.String(10), nullable=False),
        sa.Column("payment_terms", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hold_reasons", sa.JSON, nullable=False),
        sa.Column("allocations", sa.JSON, nullable=False),
        sa.Column("shipments", sa.JSON, nullable=False),
        sa.Column("total_amount", sa.String(32), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_orders_partner_seq", "orders", ["partner_id", "seq"])
    op.create_index("ix_orders_status_priority", "orders", ["status", "priority", "seq"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.String(32), nullable=False),
        sa.Column("allocated", sa.Integer, nullable=False),
        sa.Column("shipped", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("returned", sa.Integer, nullable=False),
    )
    op.create_table(
        "order_history",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in ("inbox", "outbox", "order_history", "order_lines", "orders"):
        op.drop_table(table)
