"""orders: the sparse queues' indexes hold only the orders in their queue (partial indexes).

Every save that moves an order's status changes an indexed column, so PostgreSQL cannot update the row in
place (HOT) and adds the new row version to every index of the table, whether its columns changed or not,
except a partial index whose predicate the new version does not meet. Most orders are never held, at risk
or with an open exception, and only closed ones are the archive's candidates, so those indexes now hold
just the orders their queries look for:

- at risk: (risk_codes, status) and (risk_key, risk_slip DESC, seq) where risk_codes / risk_key > '';
- open exceptions: (exception_types) where exception_types > '';
- held: (status, hold_codes) where status = 'on_hold', for the counts per reason (the held queue's page
  reads ix_orders_status_priority);
- the promise watch's due orders: (watch_at) where watch_at IS NOT NULL (a settled order is never due);
- the archive's candidates: (updated_at) where the status is a closed one, instead of (status,
  updated_at) over every order.

The queries say the same predicates as literals (services/orders/store.py), so that a prepared statement's
generic plan (PostgreSQL) and SQLite can tell the partial index holds every row they look for.

Revision ID: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"

# services/orders/archive/rules.py CLOSED_VALUES, as this revision knows them
CLOSED = "status IN ('cancelled', 'completed', 'rejected')"


def _partial(name: str, columns: list, where: str) -> None:
    op.create_index(name, "orders", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where))


def upgrade() -> None:
    op.drop_index("ix_orders_risk_codes", "orders")
    _partial("ix_orders_risk_codes", ["risk_codes", "status"], "risk_codes > ''")
    op.drop_index("ix_orders_risk_key", "orders")
    _partial("ix_orders_risk_key", ["risk_key", sa.text("risk_slip DESC"), "seq"], "risk_key > ''")
    op.drop_index("ix_orders_exception_types", "orders")
    _partial("ix_orders_exception_types", ["exception_types"], "exception_types > ''")
    op.drop_index("ix_orders_status_hold_codes", "orders")
    _partial("ix_orders_status_hold_codes", ["status", "hold_codes"], "status = 'on_hold'")
    op.drop_index("ix_orders_watch_at", "orders")
    _partial("ix_orders_watch_at", ["watch_at"], "watch_at IS NOT NULL")
    op.drop_index("ix_orders_status_updated", "orders")
    _partial("ix_orders_closed_updated", ["updated_at"], CLOSED)


def downgrade() -> None:
    op.drop_index("ix_orders_closed_updated", "orders")
    op.create_index("ix_orders_status_updated", "orders", ["status", "updated_at"])
    op.drop_index("ix_orders_watch_at", "orders")
    op.create_index("ix_orders_watch_at", "orders", ["watch_at"])
    op.drop_index("ix_orders_status_hold_codes", "orders")
    op.create_index("ix_orders_status_hold_codes", "orders", ["status", "hold_codes"])
    op.drop_index("ix_orders_exception_types", "orders")
    op.create_index("ix_orders_exception_types", "orders", ["exception_types"])
    op.drop_index("ix_orders_risk_key", "orders")
    op.create_index("ix_orders_risk_key", "orders", ["risk_key", sa.text("risk_slip DESC"), "seq"])
    op.drop_index("ix_orders_risk_codes", "orders")
    op.create_index("ix_orders_risk_codes", "orders", ["risk_codes", "status"])
