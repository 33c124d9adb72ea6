"""Intake's tables: the master data it checks orders against, and the idempotency keys it has seen."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    select,
)

from orderdesk.db import UtcDateTime, insert_ignoring_conflicts, upsert, utcnow
from orderdesk.masterdata import Customer, Product

metadata = MetaData()

# Master data text is not length-limited (the CSV format sets no limits); only the keys
# are, and the import checks them (domain.check_master_records).
customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("name", String, nullable=False),
    Column("tier", String, nullable=False),
    Column("status", String, nullable=False),
    Column("credit_limit", String, nullable=False),
    Column("currency", String, nullable=False),
    Column("payment_terms", String, nullable=False),  # allowed terms, space-separated, first is the default
    Column("email", String, nullable=False),
    Column("phone", String, nullable=False),
    Column("ship_to_line1", String, nullable=False),
    Column("ship_to_city", String, nullable=False),
    Column("ship_to_postal_code", String, nullable=False),
    Column("ship_to_country", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String, nullable=False),
    Column("unit_price", String, nullable=False),  # the list price, a decimal string
    Column("currency", String, nullable=False),
    Column("make_to_order", Boolean, nullable=False),
    Column("production_lead_time_days", Integer, nullable=False),
    Column("min_order_qty", Integer, nullable=False),
    Column("order_multiple", Integer, nullable=False),
    Column("status", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# One row per (partner, key): the primary key is what decides a race between two
# submissions with the same key. The stored CreateOrderRequest is what a replay re-sends.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("create_request", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Rows per statement: keeps a big import well under PostgreSQL's 32767 bind parameters.
UPSERT_CHUNK = 500


class MasterDataRepository:
    def __init__(self, conn):
        self.conn = conn

    async def upsert_customers(self, records: list[Customer]) -> None:
        now = utcnow()
        rows = [
            {
                "customer_id": c.customer_id, "name": c.name, "tier": c.tier, "status": c.status,
                "credit_limit": str(c.credit_limit), "currency": c.currency, "payment_terms": " ".join(c.payment_terms),
                "email": c.email, "phone": c.phone, "ship_to_line1": c.ship_to_line1, "ship_to_city": c.ship_to_city,
                "ship_to_postal_code": c.ship_to_postal_code, "ship_to_country": c.ship_to_country, "updated_at": now,
            }
            for c in records
        ]
        await self._upsert(customers, rows, "customer_id")

    async def upsert_products(self, records: list[Product]) -> None:
        now = utcnow()
        rows = [
            {
                "sku": p.sku, "name": p.name, "unit_price": str(p.unit_price), "currency": p.currency,
                "make_to_order": p.make_to_order, "production_lead_time_days": p.production_lead_time_days,
                "min_order_qty": p.min_order_qty, "order_multiple": p.order_multiple, "status": p.status,
                "updated_at": now,
            }
            for p in records
        ]
        await self._upsert(products, rows, "sku")

    async def _upsert(self, table: Table, rows: list[dict], key: str) -> None:
        columns = [c.name for c in table.columns if c.name != key]
        for start in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[start : start + UPSERT_CHUNK]
            await self.conn.execute(upsert(self.conn.dialect.name, table, chunk, [key], columns))

    async def customer(self, customer_id: str) -> Customer | None:
        row = (await self.conn.execute(select(customers).where(customers.c.customer_id == customer_id))).mappings().first()
        if row is None:
            return None
        return Customer(
            customer_id=row["customer_id"], name=row["name"], tier=row["tier"], status=row["status"],
            credit_limit=Decimal(row["credit_limit"]), currency=row["currency"],
            payment_terms=tuple(row["payment_terms"].split()), email=row["email"], phone=row["phone"],
            ship_to_line1=row["ship_to_line1"], ship_to_city=row["ship_to_city"],
            ship_to_postal_code=row["ship_to_postal_code"], ship_to_country=row["ship_to_country"],
        )

    async def products(self, skus: set[str]) -> dict[str, Product]:
        if not skus:
            return {}
        rows = (await self.conn.execute(select(products).where(products.c.sku.in_(sorted(skus))))).mappings().all()
        return {
            r["sku"]: Product(
                sku=r["sku"], name=r["name"], unit_price=Decimal(r["unit_price"]), currency=r["currency"],
                make_to_order=r["make_to_order"], production_lead_time_days=r["production_lead_time_days"],
                min_order_qty=r["min_order_qty"], order_multiple=r["order_multiple"], status=r["status"],
            )
            for r in rows
        }


@dataclass(frozen=True)
class IdempotencyRecord:
    partner_id: str
    idempotency_key: str
    request_hash: str
    order_id: str
    create_request: bytes


class IdempotencyRepository:
    def __init__(self, conn):
        self.conn = conn

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord:
        """Stores the record unless the key is taken; returns the record that holds the key.

        The insert ignores a conflict instead of failing, so on PostgreSQL a
        concurrent claim waits for the first to commit and then reads its row.
        """
        inserted = await self.conn.execute(
            insert_ignoring_conflicts(
                self.conn.dialect.name,
                idempotency_keys,
                {
                    "partner_id": record.partner_id, "idempotency_key": record.idempotency_key,
                    "request_hash": record.request_hash, "order_id": record.order_id,
                    "create_request": record.create_request, "created_at": utcnow(),
                },
            )
        )
        if inserted.rowcount == 1:
            return record
        existing = await self.get(record.partner_id, record.idempotency_key)
        if existing is None:  # pragma: no cover - a conflict means the row exists
            raise RuntimeError("idempotency key conflict without a row")
        return existing

    async def get(self, partner_id: str, idempotency_key: str) -> IdempotencyRecord | None:
        row = (
            await self.conn.execute(
                select(idempotency_keys).where(
                    and_(idempotency_keys.c.partner_id == partner_id,
                         idempotency_keys.c.idempotency_key == idempotency_key)
                )
            )
        ).mappings().first()
        if row is None:
            return None
        return IdempotencyRecord(
            partner_id=row["partner_id"], idempotency_key=row["idempotency_key"], request_hash=row["request_hash"],
            order_id=row["order_id"], create_request=bytes(row["create_request"]),
        )
