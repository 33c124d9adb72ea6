"""gateway: API keys peppered (HMAC-SHA256), with expiry and last use

Revision ID: 0002

Rows stored before this revision hold sha256(key): they are marked `hash_kind = 'sha256'` and keep working;
the gateway re-hashes each with the pepper (HMAC-SHA256) the first time it is used, since only then does it
hold the key itself. `orderdesk keys list` shows keys still on the old hash; rotate those never used.
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("hash_kind", sa.String(8), nullable=False, server_default="sha256"))
        batch.add_column(sa.Column("expires_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("last_used_at", UtcDateTime, nullable=True))
    # New rows say what they are: the server default only labels the rows that exist now.
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column(
            "hash_kind", server_default=None, existing_type=sa.String(8), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("hash_kind")
