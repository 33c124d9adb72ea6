"""shipping: shipments, order states, warehouses, outbox and inbox

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime
from orderdesk.outbox import create_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "shipments",
        sa.Column("shipment_id", sa.String(80), primary_key=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("warehouse", sa.String(32), nullable=False),
        sa.Column("lines", sa.JSON, nullable=False),
        sa.Column("promised_delivery_date", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("tracking_number", sa.String(128), nullable=False),
        sa.Column("delivered_on", sa.String(10), nullable=False),
        sa.Column("on_time", sa.Boolean, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_shipments_order", "shipments", ["order_id"])
    op.create_table(
        "order_states",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "warehouses",
        sa.Column("warehouse", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("country", sa.String(16), nullable=False),
        sa.Column("cutoff_hour_utc", sa.Integer, nullable=False),
        sa.Column("transit_days_domestic", sa.Integer, nullable=False),
        sa.Column("transit_days_international", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in ("inbox", "outbox", "warehouses", "order_states", "shipments"):
        op.drop_table(table)
