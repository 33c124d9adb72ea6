"""inventory: supply — products' supply attributes, backorders, production runs; order ship-to country and placement time

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("make_to_order", sa.Boolean, nullable=False),
        sa.Column("lead_time_days", sa.Integer, nullable=False),
    )
    op.create_table(
        "backorders",
        sa.Column("order_id", sa.String(40), primary_key=True),
        sa.Column("sku", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.CheckConstraint("quantity > 0", name="ck_backorder_positive"),
    )
    op.create_index("ix_backorders_sku", "backorders", ["sku"])
    op.create_table(
        "production_runs",
        sa.Column("production_id", sa.String(40), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("warehouse", sa.String(32), nullable=False),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("expected_date", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.CheckConstraint("quantity > 0", name="ck_production_positive"),
    )
    op.create_index("ix_production_runs_sku_status", "production_runs", ["sku", "status"])
    op.add_column(
        "order_states", sa.Column("country", sa.String(2), nullable=False, server_default=sa.text("''"))
    )
    op.add_column("order_states", sa.Column("placed_at", UtcDateTime, nullable=True))


def downgrade() -> None:
    op.drop_column("order_states", "placed_at")
    op.drop_column("order_states", "country")
    op.drop_index("ix_production_runs_sku_status", "production_runs")
    op.drop_table("production_runs")
    op.drop_index("ix_backorders_sku", "backorders")
    op.drop_table("backorders")
    op.drop_table("products")
