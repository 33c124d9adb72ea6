"""orders: the dates inventory expects a scheduled (backordered) order's missing units

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column(
        "orders", sa.Column("expected_ship_date", sa.String(10), nullable=False, server_default=sa.text("''"))
    )
    op.add_column(
        "orders",
        sa.Column("expected_delivery_date", sa.String(10), nullable=False, server_default=sa.text("''")),
    )


def downgrade() -> None:
    op.drop_column("orders", "expected_delivery_date")
    op.drop_column("orders", "expected_ship_date")
