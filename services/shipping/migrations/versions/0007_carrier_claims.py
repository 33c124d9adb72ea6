"""shipping: carrier claims (issue 14): a damaged-in-transit claim opens one on each shipment that carried
the goods, once per shipment and claim (RMA)

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "carrier_claims",
        sa.Column("claim_id", sa.String(80), primary_key=True),
        sa.Column("shipment_id", sa.String(80), nullable=False),
        sa.Column("rma_id", sa.String(40), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("tracking_number", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("shipment_id", "rma_id", name="uq_carrier_claims_shipment_rma"),
    )


def downgrade() -> None:
    op.drop_table("carrier_claims")
