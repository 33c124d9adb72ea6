"""notifier: a feed entry keeps the event as published and its JSON body is made when it is read

New entries store the Event (protobuf) in `event` and "" in `body`; entries from before keep their body
and a NULL event (services/notifier/store.py: rendered). A downgrade writes the bodies out first.

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.add_column("feed", sa.Column("event", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    from services.notifier.store import feed, rendered

    conn = op.get_bind()
    kept = sa.select(feed.c.partner_id, feed.c.sequence, feed.c.order_sequence, feed.c.body, feed.c.event)
    for row in conn.execute(kept.where(feed.c.event.is_not(None))).mappings().all():
        conn.execute(
            sa.update(feed)
            .where(feed.c.partner_id == row["partner_id"], feed.c.sequence == row["sequence"])
            .values(body=rendered(row)["body"], event=None)
        )
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("event")
