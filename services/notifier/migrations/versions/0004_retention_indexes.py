"""notifier: indexes the retention job's deletes walk (orderdesk.retention)

Revision ID: 0004
"""

from alembic import op

from orderdesk.retention import create_inbox_age_index, drop_inbox_age_index

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    create_inbox_age_index(op)
    op.create_index("ix_feed_appended", "feed", ["appended_at"])
    op.create_index("ix_deliveries_updated", "deliveries", ["updated_at"])
    op.create_index("ix_delivery_attempts_at", "delivery_attempts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_at", "delivery_attempts")
    op.drop_index("ix_deliveries_updated", "deliveries")
    op.drop_index("ix_feed_appended", "feed")
    drop_inbox_age_index(op)
