"""notifier: partner feeds, order -> partner map, webhook endpoints, deliveries and attempts, outbox and inbox

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
        "order_partners",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "feed_heads",
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "feed",
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("sequence", sa.BigInteger, primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("order_sequence", sa.BigInteger, nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("appended_at", UtcDateTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "endpoints",
        sa.Column("endpoint_id", sa.String(40), primary_key=True),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event_types", sa.Text, nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(500), nullable=False),
        sa.Column("cursor", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        sa.Column("lease_until", UtcDateTime, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_endpoints_partner", "endpoints", ["partner_id"])
    op.create_table(
        "deliveries",
        sa.Column("delivery_id", sa.String(40), primary_key=True),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("sequence", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("total_attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("last_status_code", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.Column("delivered_at", UtcDateTime, nullable=True),
        sa.UniqueConstraint("endpoint_id", "sequence", name="uq_deliveries_endpoint_sequence"),
    )
    op.create_index("ix_deliveries_endpoint_status", "deliveries", ["endpoint_id", "status", "sequence"])
    op.create_table(
        "delivery_attempts",
        sa.Column("delivery_id", sa.String(40), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.Column("response_excerpt", sa.String(500), nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in (
        "inbox",
        "outbox",
        "delivery_attempts",
        "deliveries",
        "endpoints",
        "feed",
        "feed_heads",
        "order_partners",
    ):
        op.drop_table(table)
