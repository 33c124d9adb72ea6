"""orders: the work queues read from their indexes (measured with 100,000 orders, a tenth held and at risk):

- the held queue, highest priority first then first come: an index in that order (priority descending),
  instead of sorting each priority's orders by seq per page (100 ms -> 1 ms);
- the at-risk queue: its sort key (the promised date, or 9999-12-31 for none, while the order is at risk;
  "" when it is not) as an indexed column with the largest slip first, instead of sorting every order at
  risk per page;
- the at-risk counts: (risk_codes, status) covering, instead of reading every order at risk (96 -> 9 ms).

Revision ID: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

NO_DATE = "9999-12-31"  # services/orders/domain.py Listing.NO_DATE, as this revision knows it


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        op.add_column(
            table, sa.Column("risk_key", sa.String(10), nullable=False, server_default=sa.text("''"))
        )
        op.execute(
            f"UPDATE {table} SET risk_key = COALESCE(NULLIF(requested_delivery_date, ''), '{NO_DATE}') "
            "WHERE risk_codes != ''"
        )
    op.drop_index("ix_orders_status_priority", "orders")
    op.create_index("ix_orders_status_priority", "orders", ["status", sa.text("priority DESC"), "seq"])
    op.drop_index("ix_orders_risk_codes", "orders")
    op.create_index("ix_orders_risk_codes", "orders", ["risk_codes", "status"])
    op.create_index("ix_orders_risk_key", "orders", ["risk_key", sa.text("risk_slip DESC"), "seq"])


def downgrade() -> None:
    op.drop_index("ix_orders_risk_key", "orders")
    op.drop_index("ix_orders_risk_codes", "orders")
    op.create_index("ix_orders_risk_codes", "orders", ["risk_codes"])
    op.drop_index("ix_orders_status_priority", "orders")
    op.create_index("ix_orders_status_priority", "orders", ["status", "priority", "seq"])
    for table in ("orders", "archived_orders"):
        op.drop_column(table, "risk_key")
