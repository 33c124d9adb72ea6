"""orders: delivery proposals and the urgent flag from intake

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # Server defaults fill the rows that exist; new rows always get both from the repository.
    op.add_column("orders", sa.Column("proposals", sa.JSON, nullable=False, server_default=sa.text("'[]'")))
    op.add_column("orders", sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # SQLite drops columns since 3.35 (alembic emits plain DROP COLUMN).
    op.drop_column("orders", "urgent")
    op.drop_column("orders", "proposals")
