"""intake: invoices, payments and credit notes per order; what of each order is invoiced and settled

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op

from orderdesk.db import UtcDateTime

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "finance_documents",
        sa.Column("partner_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("number", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("amount_micros", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_on", sa.Date, nullable=False),
        sa.Column("due_on", sa.Date, nullable=True),
        sa.Column("note", sa.String, nullable=False),
        sa.Column("recorded_by", sa.String, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_finance_documents_order", "finance_documents", ["order_id"])
    op.create_index("ix_finance_documents_customer", "finance_documents", ["customer_id", "kind"])
    op.create_index("ix_finance_documents_kind_issued", "finance_documents", ["kind", "issued_on"])
    # Nothing was invoiced or paid before: every open order keeps using its whole amount.
    op.add_column(
        "order_exposure", sa.Column("invoiced_micros", sa.BigInteger, nullable=False, server_default="0")
    )
    op.add_column(
        "order_exposure", sa.Column("settled_micros", sa.BigInteger, nullable=False, server_default="0")
    )


def downgrade() -> None:
    with op.batch_alter_table("order_exposure") as batch:
        batch.drop_column("settled_micros")
        batch.drop_column("invoiced_micros")
    op.drop_table("finance_documents")
