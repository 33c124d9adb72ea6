"""notifier: index for an order's webhook deliveries over every endpoint (the desk's order timeline)

Revision ID: 0005
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_index("ix_deliveries_order", "deliveries", ["order_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_order", "deliveries")
