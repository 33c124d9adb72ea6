"""orders: the erasure register (orderdesk/erasure.py); a customer's orders are found by ix_orders_customer_seq

Revision ID: 0011
"""

from alembic import op

from orderdesk.erasure import create_register, drop_register

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    create_register(op)


def downgrade() -> None:
    drop_register(op)
