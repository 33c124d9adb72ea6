"""shipping: a carrier's tracking timeline (tracking_events, one row per carrier event, unique by the
sender and its event id) and each shipment's last word; shipments found by tracking number

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("shipments") as batch:
        batch.add_column(sa.Column("tracking_status", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("tracked_at", UtcDateTime, nullable=True))
    op.create_index("ix_shipments_tracking_number", "shipments", ["tracking_number"])
    op.create_table(
        "tracking_events",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("shipment_id", sa.String(80), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("tracking_number", sa.String(128), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("carrier_status", sa.String(128), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("expected_delivery_date", sa.String(10), nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_tracking_events_shipment", "tracking_events", ["shipment_id", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_tracking_events_shipment", "tracking_events")
    op.drop_table("tracking_events")
    op.drop_index("ix_shipments_tracking_number", "shipments")
    with op.batch_alter_table("shipments") as batch:
        batch.drop_column("tracked_at")
        batch.drop_column("tracking_status")
