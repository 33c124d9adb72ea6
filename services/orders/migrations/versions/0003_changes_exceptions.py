"""orders: accepted change requests (before/after) and exceptions, as JSON on the order

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("orders", sa.Column("change_log", sa.JSON, nullable=False, server_default=sa.text("'[]'")))
    op.add_column("orders", sa.Column("exceptions", sa.JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    op.drop_column("orders", "exceptions")
    op.drop_column("orders", "change_log")
