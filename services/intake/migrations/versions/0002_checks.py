"""intake: customer prices, warehouses, partner references, credit exposure

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "customer_prices",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("unit_price", sa.String, nullable=False),
        sa.Column("currency", sa.String, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "warehouses",
        sa.Column("warehouse", sa.String(64), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("country", sa.String, nullable=False),
        sa.Column("cutoff_hour_utc", sa.Integer, nullable=False),
        sa.Column("transit_days_domestic", sa.Integer, nullable=False),
        sa.Column("transit_days_international", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "external_refs",
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("external_ref", sa.String(128), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "order_exposure",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_order_exposure_customer_open", "order_exposure", ["customer_id", "open"])


def downgrade() -> None:
    op.drop_index("ix_order_exposure_customer_open", "order_exposure")
    for table in ("order_exposure", "external_refs", "warehouses", "customer_prices"):
        op.drop_table(table)
