"""intake: the erasure register (orderdesk/erasure.py)

Revision ID: 0006
"""

from alembic import op

from orderdesk.erasure import create_register, drop_register

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    create_register(op)


def downgrade() -> None:
    drop_register(op)
