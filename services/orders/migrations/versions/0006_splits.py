"""orders: split deliveries (an accepted split proposal makes one order per delivery date)

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("split_from", sa.String(40), nullable=False, server_default=sa.text("''"))
    )
    op.add_column("orders", sa.Column("split_into", sa.JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    op.drop_column("orders", "split_into")
    op.drop_column("orders", "split_from")
