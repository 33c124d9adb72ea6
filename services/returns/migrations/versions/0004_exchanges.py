"""returns: exchanges (issue 14): a line's resolution and its replacement, the RMA's replacement order

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("returns", sa.Column("exchange_order_id", sa.String(40), nullable=False, server_default=""))
    op.add_column("returns", sa.Column("exchange_mode", sa.String(16), nullable=False, server_default=""))
    op.add_column("returns", sa.Column("return_due_on", sa.String(10), nullable=False, server_default=""))
    op.add_column(
        "returns", sa.Column("unreturned_charge", sa.String(32), nullable=False, server_default="0.00")
    )
    # the deadline job's walk: advance exchanges still waiting for their goods
    op.create_index("ix_returns_due", "returns", ["exchange_mode", "status", "return_due_on"])
    # RMAs from before exchanges were all refunds
    op.add_column(
        "return_lines", sa.Column("resolution", sa.String(16), nullable=False, server_default="refund")
    )
    op.add_column("return_lines", sa.Column("exchange_sku", sa.String(64), nullable=False, server_default=""))
    op.add_column(
        "return_lines", sa.Column("exchange_quantity", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column(
        "return_lines", sa.Column("exchange_unit_price", sa.String(32), nullable=False, server_default="0.00")
    )


def downgrade() -> None:
    with op.batch_alter_table("return_lines") as batch:
        for column in ("exchange_unit_price", "exchange_quantity", "exchange_sku", "resolution"):
            batch.drop_column(column)
    with op.batch_alter_table("returns") as batch:
        batch.drop_index("ix_returns_due")
        for column in ("unreturned_charge", "return_due_on", "exchange_mode", "exchange_order_id"):
            batch.drop_column(column)
