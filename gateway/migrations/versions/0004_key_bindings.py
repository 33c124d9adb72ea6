"""gateway: a key tied to a warehouse (a 3PL's fulfillment key) or to a carrier; the carriers' signatures
seen lately (a replayed request is refused)

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("warehouse", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("carrier", sa.String(64), nullable=False, server_default=""))
    op.create_table(
        "carrier_signatures",
        sa.Column("carrier", sa.String(64), primary_key=True),
        sa.Column("signature", sa.String(64), primary_key=True),
        sa.Column("seen_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_carrier_signatures_seen_at", "carrier_signatures", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_carrier_signatures_seen_at", "carrier_signatures")
    op.drop_table("carrier_signatures")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("carrier")
        batch.drop_column("warehouse")
