"""orders: the promise watch (services/orders/watch.py): each order's current risks and when to look again

Revision ID: 0012
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0012"
down_revision = "0011"

SETTLED = ("completed", "cancelled", "rejected")


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        op.add_column(table, sa.Column("risks", sa.JSON, nullable=False, server_default=sa.text("'[]'")))
        # " code code " of the current risks ("" when none) and the largest slip: the at-risk listing's
        # filter and order, and the gauge's count, without reading the JSON.
        op.add_column(
            table, sa.Column("risk_codes", sa.String(200), nullable=False, server_default=sa.text("''"))
        )
        op.add_column(table, sa.Column("risk_slip", sa.Integer, nullable=False, server_default=sa.text("0")))
        # When the watch assesses the order next (every save sets it to "now"); NULL: settled, never.
        op.add_column(table, sa.Column("watch_at", UtcDateTime, nullable=True))
    op.create_index("ix_orders_watch_at", "orders", ["watch_at"])
    op.create_index("ix_orders_risk_codes", "orders", ["risk_codes"])
    orders = sa.table("orders", sa.column("status", sa.String), sa.column("watch_at", UtcDateTime))
    op.execute(
        orders.update()
        .where(orders.c.status.not_in(SETTLED))
        .values(watch_at=dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    )


def downgrade() -> None:
    op.drop_index("ix_orders_risk_codes", "orders")
    op.drop_index("ix_orders_watch_at", "orders")
    for table in ("archived_orders", "orders"):
        op.drop_column(table, "watch_at")
        op.drop_column(table, "risk_slip")
        op.drop_column(table, "risk_codes")
        op.drop_column(table, "risks")
