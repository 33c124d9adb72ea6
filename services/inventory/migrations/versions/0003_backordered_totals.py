"""inventory: each SKU's backordered units as a running total (no SUM over its backorders per Reserve)

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column(
        "sku_versions", sa.Column("backordered", sa.Integer, nullable=False, server_default=sa.text("0"))
    )
    bind = op.get_bind()
    totals = bind.execute(
        sa.text(
            "SELECT b.sku, SUM(b.quantity) FROM backorders b JOIN order_states s ON s.order_id = b.order_id "
            "WHERE s.state <> 'released' GROUP BY b.sku"
        )
    ).all()
    known = {r[0] for r in bind.execute(sa.text("SELECT sku FROM sku_versions")).all()}
    for sku, total in totals:
        if sku not in known:
            bind.execute(
                sa.text("INSERT INTO sku_versions (sku, version, backordered) VALUES (:s, 0, 0)"), {"s": sku}
            )
        bind.execute(
            sa.text("UPDATE sku_versions SET backordered = :t WHERE sku = :s"), {"s": sku, "t": int(total)}
        )


def downgrade() -> None:
    op.drop_column("sku_versions", "backordered")
