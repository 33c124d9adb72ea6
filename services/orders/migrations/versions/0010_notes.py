"""orders: the desk's notes on an order (internal, or a message to the customer), hot and archived

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        op.add_column(table, sa.Column("notes", sa.JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    for table in ("archived_orders", "orders"):
        op.drop_column(table, "notes")
