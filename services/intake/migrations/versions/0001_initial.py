"""intake: customers, products (the price list), idempotency keys, outbox and inbox

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
        "customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("tier", sa.String, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("credit_limit", sa.String, nullable=False),
        sa.Column("currency", sa.String, nullable=False),
        sa.Column("payment_terms", sa.String, nullable=False),
        sa.Column("email", sa.String, nullable=False),
        sa.Column("phone", sa.String, nullable=False),
        sa.Column("ship_to_line1", sa.String, nullable=False),
        sa.Column("ship_to_city", sa.String, nullable=False),
        sa.Column("ship_to_postal_code", sa.String, nullable=False),
        sa.Column("ship_to_country", sa.String, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("unit_price", sa.String, nullable=False),
        sa.Column("currency", sa.String, nullable=False),
        sa.Column("make_to_order", sa.Boolean, nullable=False),
        sa.Column("production_lead_time_days", sa.Integer, nullable=False),
        sa.Column("min_order_qty", sa.Integer, nullable=False),
        sa.Column("order_multiple", sa.Integer, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("create_request", sa.LargeBinary, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in ("inbox", "outbox", "idempotency_keys", "products", "customers"):
        op.drop_table(table)
