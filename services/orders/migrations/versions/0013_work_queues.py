"""orders: the desk's work queues (console Today): hold reasons, open exceptions' types and warehouses as
indexed " a b " columns (services/orders/domain.py Order.queue_keys), filled in for the orders there are

Revision ID: 0013
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

CLOSED = ("completed", "cancelled", "rejected")
COLUMNS = ("hold_codes", "exception_types", "warehouses")


def _tokens(codes) -> str:
    found = sorted({c for c in codes if c})
    return f" {' '.join(found)} " if found else ""


def _json(value):
    return json.loads(value) if isinstance(value, str) else (value or [])


def _keys(row) -> dict:
    """Order.queue_keys from the stored row (as the code of this revision reads it)."""
    shipments = _json(row.shipments)
    return {
        "hold_codes": _tokens(r.get("code", "") for r in _json(row.hold_reasons))
        if row.status == "on_hold"
        else "",
        "exception_types": ""
        if row.status in CLOSED
        else _tokens(e.get("type", "") for e in _json(row.exceptions) if not e.get("resolution")),
        "warehouses": _tokens(
            [a[1] for a in _json(row.allocations)]
            + [
                s.get("warehouse", "")
                for s in (shipments.values() if isinstance(shipments, dict) else shipments)
            ]
        ),
    }


def upgrade() -> None:
    for table in ("orders", "archived_orders"):  # the archive mirrors the orders' columns
        for name in COLUMNS:
            op.add_column(
                table, sa.Column(name, sa.String(200), nullable=False, server_default=sa.text("''"))
            )
    op.create_index("ix_orders_status_hold_codes", "orders", ["status", "hold_codes"])
    op.create_index("ix_orders_exception_types", "orders", ["exception_types"])
    # Only open orders are in a queue: the archive's (closed) keep "" but for their warehouses, which no
    # queue asks of an archived order.
    orders = sa.table(
        "orders",
        *(
            sa.column(c)
            for c in ("order_id", "status", "hold_reasons", "exceptions", "allocations", "shipments")
        ),
        *(sa.column(c) for c in COLUMNS),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            orders.c.order_id,
            orders.c.status,
            orders.c.hold_reasons,
            orders.c.exceptions,
            orders.c.allocations,
            orders.c.shipments,
        ).where(orders.c.status.not_in(CLOSED))
    ).all()
    update = orders.update().where(orders.c.order_id == sa.bindparam("oid"))
    for start in range(0, len(rows), 1000):
        batch = [{"oid": row.order_id, **_keys(row)} for row in rows[start : start + 1000]]
        bind.execute(update, batch)


def downgrade() -> None:
    for index in ("ix_orders_exception_types", "ix_orders_status_hold_codes"):
        op.drop_index(index, "orders")
    for table in ("archived_orders", "orders"):
        for name in reversed(COLUMNS):
            op.drop_column(table, name)
