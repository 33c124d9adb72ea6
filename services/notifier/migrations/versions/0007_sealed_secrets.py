"""notifier: webhook secrets sealed at rest (orderdesk/sealing.py: longer values), and the secret a rotation
replaced, still signing beside the new one until its overlap ends

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.alter_column("secret", type_=sa.Text, existing_type=sa.String(200), existing_nullable=False)
        batch.add_column(sa.Column("previous_secret", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("previous_secret_until", UtcDateTime, nullable=True))
    # Secrets stored before this revision are plain: each notifier seals them at start (it holds the key).


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret")
        batch.alter_column("secret", type_=sa.String(200), existing_type=sa.Text, existing_nullable=False)
