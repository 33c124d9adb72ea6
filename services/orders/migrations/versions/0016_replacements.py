"""orders: the replacement orders entered for an order's returns and claims (issue 14), hot and archived

Revision ID: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        op.add_column(
            table, sa.Column("replacements", sa.JSON, nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    for table in ("archived_orders", "orders"):
        op.drop_column(table, "replacements")
