"""inventory: a supplier's inbound receipts announced with their expected date (POST /v1/admin/inbound), supply
that backorders are promised from until the receipt of the same reference arrives

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "inbound_receipts",
        sa.Column("reference", sa.String(200), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("expected_date", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_inbound_positive"),
    )
    op.create_index("ix_inbound_receipts_sku_status", "inbound_receipts", ["sku", "status"])


def downgrade() -> None:
    op.drop_index("ix_inbound_receipts_sku_status", "inbound_receipts")
    op.drop_table("inbound_receipts")
