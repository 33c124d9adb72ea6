"""gateway: who made an API key (the desk person, when made in the console)

Revision ID: 0003

Keys made before this revision (the CSV import, the CLI) have none: "".
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("created_by", sa.String(300), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("created_by")
