"""orders: the archive (closed orders, whole, out of the hot tables) and the index its job walks

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index("ix_orders_status_updated", "orders", ["status", "updated_at"])
    op.create_table(
        "archived_orders",
        sa.Column("seq", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("order_id", sa.String(40), primary_key=True),
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
        sa.Column("proposals", sa.JSON, nullable=False),
        sa.Column("urgent", sa.Boolean, nullable=False),
        sa.Column("change_log", sa.JSON, nullable=False),
        sa.Column("exceptions", sa.JSON, nullable=False),
        sa.Column("expected_ship_date", sa.String(10), nullable=False),
        sa.Column("expected_delivery_date", sa.String(10), nullable=False),
        sa.Column("split_from", sa.String(40), nullable=False),
        sa.Column("split_into", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("archived_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_archived_orders_partner_seq", "archived_orders", ["partner_id", "seq"])
    op.create_index("ix_archived_orders_external_ref_seq", "archived_orders", ["external_ref", "seq"])
    op.create_index("ix_archived_orders_customer_seq", "archived_orders", ["customer_id", "seq"])
    op.create_index("ix_archived_orders_channel_seq", "archived_orders", ["channel", "seq"])
    op.create_index("ix_archived_orders_created", "archived_orders", ["created_at", "order_id"])
    op.create_index("ix_archived_orders_archived", "archived_orders", ["archived_at", "order_id"])
    op.create_table(
        "archived_order_lines",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("archived_orders.order_id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("unit_price", sa.String(32), nullable=False),
        sa.Column("allocated", sa.Integer, nullable=False),
        sa.Column("shipped", sa.Integer, nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("returned", sa.Integer, nullable=False),
    )
    op.create_index("ix_archived_order_lines_sku", "archived_order_lines", ["sku", "order_id"])
    op.create_table(
        "archived_order_history",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("archived_orders.order_id"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
    )
    op.create_index("ix_archived_order_history_at", "archived_order_history", ["at"])
    op.create_table(
        "archived_order_facts",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("archived_orders.order_id"), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("filled", sa.Integer, nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_archived_order_facts_at", "archived_order_facts", ["at"])


def downgrade() -> None:
    for table in (
        "archived_order_facts",
        "archived_order_history",
        "archived_order_lines",
        "archived_orders",
    ):
        op.drop_table(table)
    op.drop_index("ix_orders_status_updated", "orders")
