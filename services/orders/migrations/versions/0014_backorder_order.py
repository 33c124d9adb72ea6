"""orders: the backorders queue's sort key (Order.queue_keys.expected_ship_key: the expected ship date, or
9999-12-31 for none) as an indexed column, so a page of backorders reads 51 rows of an index instead of
sorting every backordered order

Revision ID: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

NO_DATE = "9999-12-31"  # services/orders/domain.py Listing.NO_DATE, as this revision knows it


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        op.add_column(
            table,
            sa.Column(
                "expected_ship_key", sa.String(10), nullable=False, server_default=sa.text(f"'{NO_DATE}'")
            ),
        )
        op.execute(
            f"UPDATE {table} SET expected_ship_key = expected_ship_date WHERE expected_ship_date != ''"
        )
    op.create_index("ix_orders_status_expected_ship", "orders", ["status", "expected_ship_key", "seq"])


def downgrade() -> None:
    op.drop_index("ix_orders_status_expected_ship", "orders")
    for table in ("orders", "archived_orders"):
        op.drop_column(table, "expected_ship_key")
