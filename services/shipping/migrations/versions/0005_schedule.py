"""shipping: each shipment's pick-by instant and deliver-by date (orders' promise watch) and the
destination country they are counted to

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("destination_country", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("pick_by", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("deliver_by", sa.String(10), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("deliver_by")
        batch.drop_column("pick_by")
        batch.drop_column("destination_country")
