"""returns: the return policy: hold reasons, the desk's note, reason codes, outcomes, policy master data
(products, customers' tiers, holidays)

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.calendar_store import holidays_table
from orderdesk.db import UtcDateTime

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("returns", sa.Column("hold_reasons", sa.Text, nullable=False, server_default="[]"))
    op.add_column("returns", sa.Column("decision_note", sa.String(1000), nullable=False, server_default=""))
    op.add_column("returns", sa.Column("currency", sa.String(3), nullable=False, server_default=""))
    op.create_index("ix_returns_status", "returns", ["status", "created_at"])  # the desk's held returns
    # RMAs from before the policy: "other" has no restocking fee, so their refunds stay as they were
    op.add_column(
        "return_lines", sa.Column("reason_code", sa.String(32), nullable=False, server_default="other")
    )
    op.add_column("return_lines", sa.Column("refurbished", sa.Integer, nullable=False, server_default="0"))
    op.add_column(
        "return_lines", sa.Column("scrapped_customer", sa.Integer, nullable=False, server_default="0")
    )
    op.create_table(
        "return_products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("returnable", sa.Boolean, nullable=False),
        sa.Column("return_window_days", sa.Integer, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "return_customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(holidays_table.name, *[c._copy() for c in holidays_table.columns])


def downgrade() -> None:
    op.drop_table(holidays_table.name)
    op.drop_table("return_customers")
    op.drop_table("return_products")
    with op.batch_alter_table("return_lines") as batch:
        for column in ("scrapped_customer", "refurbished", "reason_code"):
            batch.drop_column(column)
    with op.batch_alter_table("returns") as batch:
        batch.drop_index("ix_returns_status")
        for column in ("currency", "decision_note", "hold_reasons"):
            batch.drop_column(column)
