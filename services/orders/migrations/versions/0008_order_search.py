"""orders: indexes of the order search (external_ref, customer, channel, SKU, status, received time)

Each starts with the column a search narrows by and ends with `seq`, the keyset of the newest-first
listing, so a page is read from the index in order without sorting the matches.

Revision ID: 0008
"""

from alembic import op

revision = "0008"
down_revision = "0007"

ORDERS_INDEXES = {
    "ix_orders_status_seq": ["status", "seq"],
    "ix_orders_external_ref_seq": ["external_ref", "seq"],
    "ix_orders_customer_seq": ["customer_id", "seq"],
    "ix_orders_channel_seq": ["channel", "seq"],
    "ix_orders_created_at": ["created_at"],
}


def upgrade() -> None:
    for name, columns in ORDERS_INDEXES.items():
        op.create_index(name, "orders", columns)
    op.create_index("ix_order_lines_sku", "order_lines", ["sku", "order_id"])


def downgrade() -> None:
    op.drop_index("ix_order_lines_sku", table_name="order_lines")
    for name in reversed(ORDERS_INDEXES):
        op.drop_index(name, table_name="orders")
