"""returns: indexes the retention job's deletes walk (orderdesk.retention)

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.retention import create_inbox_age_index, drop_inbox_age_index

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_inbox_age_index(op)
    # only rows still holding a key: those already forgotten are never walked again
    op.create_index(
        "ix_returns_idempotency_age",
        "returns",
        ["created_at"],
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_returns_idempotency_age", "returns")
    drop_inbox_age_index(op)
