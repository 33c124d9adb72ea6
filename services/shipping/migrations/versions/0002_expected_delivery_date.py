"""shipping: a carrier's revised delivery date (tracking event "delayed")

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column(
        "shipments", sa.Column("expected_delivery_date", sa.String(10), nullable=False, server_default="")
    )


def downgrade() -> None:
    op.drop_column("shipments", "expected_delivery_date")
