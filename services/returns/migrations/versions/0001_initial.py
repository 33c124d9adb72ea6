"""returns: returns, return lines, per-order lock rows, outbox and inbox

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
        "returns",
        sa.Column("rma_id", sa.String(40), primary_key=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("partner_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.String(16), nullable=False),
        sa.Column("refund_amount", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("idempotency_scope", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_returns_idempotency"),
    )
    op.create_index("ix_returns_order", "returns", ["order_id"])
    op.create_table(
        "return_lines",
        sa.Column("rma_id", sa.String(40), sa.ForeignKey("returns.rma_id"), primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("unit_price", sa.String(32), nullable=False),
        sa.Column("warehouse", sa.String(32), nullable=False),
        sa.Column("restocked", sa.Integer, nullable=False),
        sa.Column("scrapped", sa.Integer, nullable=False),
    )
    op.create_table(
        "return_orders",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    create_messaging_tables(op)


def downgrade() -> None:
    for table in ("inbox", "outbox", "return_orders", "return_lines", "returns"):
        op.drop_table(table)
