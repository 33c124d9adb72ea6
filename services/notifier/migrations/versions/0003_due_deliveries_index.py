"""notifier: index for "pending deliveries by when they are due" (the dispatcher's one query over all endpoints)

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_index("ix_deliveries_status_due", "deliveries", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_due", "deliveries")
