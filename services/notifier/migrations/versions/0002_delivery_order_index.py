"""notifier: index for "the oldest pending delivery of each order" (per-order ordering, not per endpoint)

Revision ID: 0002
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_endpoint_order", "deliveries", ["endpoint_id", "order_id", "status", "sequence"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_endpoint_order", "deliveries")
