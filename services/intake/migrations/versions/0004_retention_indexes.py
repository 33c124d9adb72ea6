"""intake: indexes the retention job's deletes walk (orderdesk.retention)

Revision ID: 0004
"""

from alembic import op

from orderdesk.retention import create_inbox_age_index, drop_inbox_age_index

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    create_inbox_age_index(op)
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created", "idempotency_keys")
    drop_inbox_age_index(op)
