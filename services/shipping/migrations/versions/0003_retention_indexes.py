"""shipping: indexes the retention job's deletes walk (orderdesk.retention)

Revision ID: 0003
"""

from alembic import op

from orderdesk.retention import create_inbox_age_index, drop_inbox_age_index

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    create_inbox_age_index(op)


def downgrade() -> None:
    drop_inbox_age_index(op)
