"""returns: the advance exchange's deadline as a moment (return_due_at), so it may be a fraction of a day

Rows from before keep their meaning: due by the end of their return_due_on day (UTC).

Revision ID: 0006
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.add_column("returns", sa.Column("return_due_at", UtcDateTime, nullable=True))
    returns = sa.table(
        "returns",
        sa.column("rma_id", sa.String),
        sa.column("return_due_on", sa.String),
        sa.column("return_due_at", UtcDateTime),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(returns.c.rma_id, returns.c.return_due_on).where(returns.c.return_due_on != "")
    )
    for rma_id, due_on in rows.all():
        end_of_day = dt.datetime.combine(dt.date.fromisoformat(due_on), dt.time.max, tzinfo=dt.UTC)
        bind.execute(returns.update().where(returns.c.rma_id == rma_id).values(return_due_at=end_of_day))
    op.drop_index("ix_returns_due", table_name="returns")
    op.create_index("ix_returns_due_at", "returns", ["exchange_mode", "status", "return_due_at"])


def downgrade() -> None:
    op.drop_index("ix_returns_due_at", table_name="returns")
    op.create_index("ix_returns_due", "returns", ["exchange_mode", "status", "return_due_on"])
    with op.batch_alter_table("returns") as batch:
        batch.drop_column("return_due_at")
