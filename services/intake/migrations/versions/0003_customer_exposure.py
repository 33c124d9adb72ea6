"""intake: each customer's open exposure as a running total

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "customer_exposure",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("open_micros", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    # The totals of what is open today; from here on every change keeps them current.
    op.execute(
        "INSERT INTO customer_exposure (customer_id, open_micros, updated_at) "
        "SELECT customer_id, SUM(amount_micros), CURRENT_TIMESTAMP FROM order_exposure "
        "WHERE open = TRUE GROUP BY customer_id"
    )


def downgrade() -> None:
    op.drop_table("customer_exposure")
