"""inventory: who recorded each receipt (a desk person or a named key), and a SKU's receipts newest first

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("receipts") as batch:
        # Receipts recorded before this revision name nobody: "" reads as "not recorded".
        batch.add_column(sa.Column("received_by", sa.String(320), nullable=False, server_default=""))
    op.create_index("ix_receipts_sku_received_at", "receipts", ["sku", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_receipts_sku_received_at", "receipts")
    with op.batch_alter_table("receipts") as batch:
        batch.drop_column("received_by")
