"""returns: claims (issue 14): an RMA of kind claim, its reason, evidence, decider; a wrong item's SKU sent

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    # RMAs from before claims were all returns
    op.add_column("returns", sa.Column("kind", sa.String(16), nullable=False, server_default="return"))
    op.add_column("returns", sa.Column("claim_reason", sa.String(32), nullable=False, server_default=""))
    op.add_column("returns", sa.Column("goods_back", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("returns", sa.Column("evidence", sa.String(1000), nullable=False, server_default=""))
    op.add_column("returns", sa.Column("decided_by", sa.String(128), nullable=False, server_default=""))
    op.add_column("return_lines", sa.Column("sent_sku", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("return_lines") as batch:
        batch.drop_column("sent_sku")
    with op.batch_alter_table("returns") as batch:
        for column in ("decided_by", "evidence", "goods_back", "claim_reason", "kind"):
            batch.drop_column(column)
