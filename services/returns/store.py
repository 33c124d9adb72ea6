"""Returns' tables and the repository for the return aggregate (SQLAlchemy Core)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    false,
    func,
    select,
    text,
    update,
)

from orderdesk import masterdata
from orderdesk.db import Repository, UtcDateTime, insert_ignoring_conflicts, update_versioned, upsert, utcnow
from orderdesk.retention import Prunable
from services.returns.domain import CLAIM_KIND, RELEASED, Return, ReturnLine, Status
from services.returns.policy import HoldReason, ProductPolicy

metadata = MetaData()

returns = Table(
    "returns",
    metadata,
    Column("rma_id", String(40), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("partner_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolution", String(16), nullable=False),
    Column("refund_amount", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    # The caller's scope and key: the same key from the same caller finds the first RMA.
    Column("idempotency_scope", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("request_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # migration 0003, the return policy: why it was held (JSON list), the desk's note, the order's currency
    Column("hold_reasons", Text, nullable=False, server_default="[]"),
    Column("decision_note", String(1000), nullable=False, server_default=""),
    Column("currency", String(3), nullable=False, server_default=""),
    # migration 0004, exchanges: the replacement order once intake entered it
    Column("exchange_order_id", String(40), nullable=False, server_default=""),
    Column("exchange_mode", String(16), nullable=False, server_default=""),  # "" | on_receipt | advance
    Column("return_due_on", String(10), nullable=False, server_default=""),  # advance: YYYY-MM-DD (its day)
    Column("unreturned_charge", String(32), nullable=False, server_default="0.00"),
    # migration 0005, claims: an RMA of kind claim, its reason, evidence and who decided it
    Column("kind", String(16), nullable=False, server_default="return"),
    Column("claim_reason", String(32), nullable=False, server_default=""),
    Column("goods_back", Boolean, nullable=False, server_default=false()),
    Column("evidence", String(1000), nullable=False, server_default=""),
    Column("decided_by", String(128), nullable=False, server_default=""),
    # migration 0006: the advance exchange's deadline as a moment (a fraction of a day allowed)
    Column("return_due_at", UtcDateTime, nullable=True),
    Index("ix_returns_due_at", "exchange_mode", "status", "return_due_at"),  # the deadline job
    Index("ix_returns_order", "order_id"),
    Index("ix_returns_status", "status", "created_at"),  # migration 0003: the desk's held returns
    UniqueConstraint("idempotency_scope", "idempotency_key", name="uq_returns_idempotency"),
    Index(
        "ix_returns_idempotency_age",
        "created_at",
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),  # migration 0002: retention walks it
)

# The RMA stays; only its idempotency key is forgotten after ORDERDESK_RETENTION_IDEMPOTENCY_DAYS (at least
# as long as a partner may retry, README "Retention"). A retry after that is a new request.
PRUNABLE = (
    Prunable("idempotency_keys", returns, "created_at", "idempotency_days", forget=("idempotency_key",)),
)

return_lines = Table(
    "return_lines",
    metadata,
    Column("rma_id", String(40), ForeignKey("returns.rma_id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("reason", String(1000), nullable=False),
    Column("unit_price", String(32), nullable=False),
    Column("warehouse", String(32), nullable=False),
    Column("restocked", Integer, nullable=False),
    Column("scrapped", Integer, nullable=False),
    # migration 0003, the return policy
    Column("reason_code", String(32), nullable=False, server_default="other"),
    Column("refurbished", Integer, nullable=False, server_default="0"),
    Column("scrapped_customer", Integer, nullable=False, server_default="0"),
    # migration 0004, exchanges: refund | exchange, and the replacement priced by the policy
    Column("resolution", String(16), nullable=False, server_default="refund"),
    Column("exchange_sku", String(64), nullable=False, server_default=""),
    Column("exchange_quantity", Integer, nullable=False, server_default="0"),
    Column("exchange_unit_price", String(32), nullable=False, server_default="0.00"),
    # migration 0005, claims: a wrong-item line's SKU actually sent
    Column("sent_sku", String(64), nullable=False, server_default=""),
)

# Master data for the return policy (migration 0003): imported with products and customers.
return_products = Table(
    "return_products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("returnable", Boolean, nullable=False),
    Column("return_window_days", Integer, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)
return_customers = Table(
    "return_customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("tier", String(16), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per order that has returns. Authorising a return first bumps this row, which
# holds its lock until commit: two returns on one order are authorised one after the
# other, each seeing what the other took (never both from the same delivered units).
return_orders = Table(
    "return_orders",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class IdempotencyClaim:
    scope: str
    key: str
    request_hash: str


def _return_row(ret: Return) -> dict:
    return {
        "status": ret.status.value,
        "refund_amount": str(ret.refund_amount),
        "version": ret.version,
        "decision_note": ret.decision_note,
        "exchange_order_id": ret.exchange_order_id,
        "return_due_on": ret.return_due_on.isoformat() if ret.return_due_on else "",
        "return_due_at": ret.return_due_at,
        "unreturned_charge": str(ret.unreturned_charge),
        "updated_at": utcnow(),
    }


def _line_outcome(line: ReturnLine) -> dict:
    return {
        "restocked": line.restocked,
        "refurbished": line.refurbished,
        "scrapped": line.scrapped,
        "scrapped_customer": line.scrapped_customer,
    }


class ReturnRepository(Repository):
    """Loads and saves whole returns; saves are guarded by the version read."""

    async def lock_order(self, order_id: str) -> None:
        """Serialises authorisations per order: waits for any other one in flight, then holds the row."""
        await self.conn.execute(
            insert_ignoring_conflicts(
                self.dialect, return_orders, {"order_id": order_id, "version": 0, "updated_at": utcnow()}
            )
        )
        await self.conn.execute(
            update(return_orders)
            .where(return_orders.c.order_id == order_id)
            .values(version=return_orders.c.version + 1, updated_at=utcnow())
        )

    async def authorised_quantities(self, order_id: str) -> dict[str, int]:
        """Units per SKU on every RMA of the order but refused and cancelled ones (call after lock_order
        for a stable answer)."""
        rows = await self.conn.execute(
            select(return_lines.c.sku, func.sum(return_lines.c.quantity))
            .select_from(return_lines.join(returns, returns.c.rma_id == return_lines.c.rma_id))
            .where(returns.c.order_id == order_id, returns.c.status.not_in([s.value for s in RELEASED]))
            .group_by(return_lines.c.sku)
        )
        return {sku: int(total) for sku, total in rows}

    async def add(self, ret: Return, claim: IdempotencyClaim) -> None:
        await self.conn.execute(
            returns.insert().values(
                rma_id=ret.rma_id,
                order_id=ret.order_id,
                partner_id=ret.partner_id,
                resolution=ret.resolution,
                idempotency_scope=claim.scope,
                idempotency_key=claim.key or None,
                request_hash=claim.request_hash,
                created_at=ret.created_at,
                hold_reasons=json.dumps(
                    [{"code": r.code, "message": r.message, "field": r.field} for r in ret.hold_reasons]
                ),
                currency=ret.currency,
                exchange_mode=ret.exchange_mode,
                kind=ret.kind,
                claim_reason=ret.claim_reason,
                goods_back=ret.goods_back,
                evidence=ret.evidence,
                decided_by=ret.decided_by,
                **_return_row(ret),
            )
        )
        await self.conn.execute(
            return_lines.insert(),
            [
                {
                    "rma_id": ret.rma_id,
                    "line_no": i,
                    "sku": line.sku,
                    "quantity": line.quantity,
                    "reason": line.reason,
                    "unit_price": str(line.unit_price),
                    "warehouse": line.warehouse,
                    "reason_code": line.reason_code,
                    "resolution": line.resolution,
                    "exchange_sku": line.exchange_sku,
                    "exchange_quantity": line.exchange_quantity,
                    "exchange_unit_price": str(line.exchange_unit_price),
                    "sent_sku": line.sent_sku,
                    **_line_outcome(line),
                }
                for i, line in enumerate(ret.lines)
            ],
        )

    async def save(self, ret: Return) -> None:
        await update_versioned(
            self.conn,
            returns,
            returns.c.rma_id,
            ret.rma_id,
            ret.loaded_version,
            _return_row(ret),
            f"return {ret.rma_id}",
        )
        for i, line in enumerate(ret.lines):
            await self.conn.execute(
                update(return_lines)
                .where(and_(return_lines.c.rma_id == ret.rma_id, return_lines.c.line_no == i))
                .values(**_line_outcome(line))
            )

    async def get(self, rma_id: str, partner_id: str = "") -> Return | None:
        query = select(returns).where(returns.c.rma_id == rma_id)
        if partner_id:
            query = query.where(returns.c.partner_id == partner_id)
        row = (await self.conn.execute(query)).mappings().first()
        return await self._hydrate(row) if row is not None else None

    async def for_order(self, order_id: str, partner_id: str = "") -> list[Return]:
        return await self._oldest_first(returns.c.order_id == order_id, partner_id)

    async def in_status(self, status: str, partner_id: str, limit: int) -> list[Return]:
        return await self._oldest_first(returns.c.status == status, partner_id, limit)

    async def _oldest_first(self, condition, partner_id: str, limit: int | None = None) -> list[Return]:
        query = select(returns).where(condition)
        if partner_id:
            query = query.where(returns.c.partner_id == partner_id)
        query = query.order_by(returns.c.created_at, returns.c.rma_id).limit(limit)
        return [await self._hydrate(row) for row in (await self.conn.execute(query)).mappings().all()]

    async def overdue_advance(self, now: dt.datetime, limit: int) -> list[str]:
        """Advance exchanges whose goods were due before `now` and have not arrived nor been charged."""
        rows = await self.conn.execute(
            select(returns.c.rma_id)
            .where(
                returns.c.exchange_mode == "advance",
                returns.c.status == Status.AUTHORIZED.value,
                returns.c.return_due_at.is_not(None),
                returns.c.return_due_at < now,
                returns.c.unreturned_charge == "0.00",
            )
            .order_by(returns.c.return_due_at, returns.c.rma_id)
            .limit(limit)
        )
        return [r.rma_id for r in rows]

    async def by_idempotency_key(self, scope: str, key: str) -> tuple[Return, str] | None:
        """The RMA first made with this key by this caller, and the hash of that request."""
        row = (
            (
                await self.conn.execute(
                    select(returns).where(
                        and_(returns.c.idempotency_scope == scope, returns.c.idempotency_key == key)
                    )
                )
            )
            .mappings()
            .first()
        )
        return (await self._hydrate(row), row["request_hash"]) if row is not None else None

    async def _hydrate(self, row) -> Return:
        line_rows = (
            (
                await self.conn.execute(
                    select(return_lines)
                    .where(return_lines.c.rma_id == row["rma_id"])
                    .order_by(return_lines.c.line_no)
                )
            )
            .mappings()
            .all()
        )
        return Return(
            rma_id=row["rma_id"],
            order_id=row["order_id"],
            partner_id=row["partner_id"],
            resolution=row["resolution"],
            status=Status(row["status"]),
            refund_amount=Decimal(row["refund_amount"]),
            version=row["version"],
            created_at=row["created_at"],
            loaded_version=row["version"],
            hold_reasons=[HoldReason(**r) for r in json.loads(row["hold_reasons"])],
            decision_note=row["decision_note"],
            currency=row["currency"],
            exchange_order_id=row["exchange_order_id"],
            exchange_mode=row["exchange_mode"],
            return_due_at=row["return_due_at"],
            unreturned_charge=Decimal(row["unreturned_charge"]),
            kind=row["kind"],
            claim_reason=row["claim_reason"],
            goods_back=bool(row["goods_back"]),
            evidence=row["evidence"],
            decided_by=row["decided_by"],
            lines=[
                ReturnLine(
                    sku=r["sku"],
                    quantity=r["quantity"],
                    reason=r["reason"],
                    unit_price=Decimal(r["unit_price"]),
                    warehouse=r["warehouse"],
                    restocked=r["restocked"],
                    scrapped=r["scrapped"],
                    reason_code=r["reason_code"],
                    refurbished=r["refurbished"],
                    scrapped_customer=r["scrapped_customer"],
                    resolution=r["resolution"],
                    exchange_sku=r["exchange_sku"],
                    exchange_quantity=r["exchange_quantity"],
                    exchange_unit_price=Decimal(r["exchange_unit_price"]),
                    sent_sku=r["sent_sku"],
                    claimed=row["kind"] == CLAIM_KIND,
                )
                for r in line_rows
            ],
        )


class PolicyRepository(Repository):
    """The return policy's master data: products' return attributes and customers' tiers."""

    async def upsert_products(self, records: Iterable[masterdata.Product]) -> None:
        for p in records:
            await self.conn.execute(
                upsert(
                    self.dialect,
                    return_products,
                    {
                        "sku": p.sku,
                        "returnable": p.returnable,
                        "return_window_days": p.return_window_days,
                        "updated_at": utcnow(),
                    },
                    ["sku"],
                    ["returnable", "return_window_days", "updated_at"],
                )
            )

    async def upsert_customers(self, records: Iterable[masterdata.Customer]) -> None:
        for c in records:
            await self.conn.execute(
                upsert(
                    self.dialect,
                    return_customers,
                    {"customer_id": c.customer_id, "tier": c.tier, "updated_at": utcnow()},
                    ["customer_id"],
                    ["tier", "updated_at"],
                )
            )

    async def products(self, skus: Iterable[str]) -> dict[str, ProductPolicy]:
        """The known SKUs' policies (an unknown SKU takes the defaults: returnable, default window)."""
        rows = await self.conn.execute(select(return_products).where(return_products.c.sku.in_(list(skus))))
        return {r.sku: ProductPolicy(returnable=r.returnable, window_days=r.return_window_days) for r in rows}

    async def tier(self, customer_id: str) -> str:
        row = (
            await self.conn.execute(
                select(return_customers.c.tier).where(return_customers.c.customer_id == customer_id)
            )
        ).first()
        return row.tier if row is not None else ""
