"""orders: the order_facts ledger (first allocations, holds, cancellations, returns) for the desk's numbers

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "order_facts",
        sa.Column("order_id", sa.String(40), sa.ForeignKey("orders.order_id"), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("ref", sa.String(64), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("filled", sa.Integer, nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_order_facts_at", "order_facts", ["at"])
    # The report finds the orders with events in a period by time.
    op.create_index("ix_order_history_at", "order_history", ["at"])


def downgrade() -> None:
    op.drop_index("ix_order_history_at", "order_history")
    op.drop_table("order_facts")
