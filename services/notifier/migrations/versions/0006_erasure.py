"""notifier: the erasure register and an order's feed entries by index (orderdesk/erasure.py)

Revision ID: 0006
"""

from alembic import op

from orderdesk.erasure import create_register, drop_register

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_index("ix_feed_order", "feed", ["order_id"])
    create_register(op)


def downgrade() -> None:
    drop_register(op)
    op.drop_index("ix_feed_order", "feed")
