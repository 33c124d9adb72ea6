"""Intake's tables: the master data it checks orders against, the idempotency keys and partner
references it has seen, and the open credit exposure of each customer's orders."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from orderdesk import personal_data
from orderdesk.calendar_store import calendar_columns, warehouse_record, warehouse_values
from orderdesk.db import (
    Listed,
    Repository,
    RowsInsert,
    RowsUpdate,
    UtcDateTime,
    by_unique_keys,
    insert_ignoring_conflicts,
    upsert,
    utcnow,
)
from orderdesk.masterdata import Customer, CustomerPrice, Product, Warehouse
from orderdesk.retention import Prunable
from services.intake.domain.money import Document, overdue, uses_credit_micros

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
    Index("ix_idempotency_keys_created", "created_at"),  # migration 0004: retention walks it
)

# Kept ORDERDESK_RETENTION_IDEMPOTENCY_DAYS, at least as long as a partner may retry (README "Retention");
# a retry after that makes a new order (held as a duplicate when it repeats its external_ref).
PRUNABLE = (Prunable("idempotency_keys", idempotency_keys, "created_at", "idempotency_days"),)

# --- migration 0002 ---------------------------------------------------------------------------
customer_prices = Table(
    "customer_prices",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("sku", String(64), primary_key=True),
    Column("unit_price", String, nullable=False),  # a decimal string
    Column("currency", String, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Intake's copy of the warehouses (inventory's master data): calendars and transit days for date checks.
warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse", String(64), primary_key=True),
    Column("name", String, nullable=False),
    Column("country", String, nullable=False),
    *calendar_columns(),  # time zone, local cut-off, working days (orderdesk.calendar_store)
    Column("transit_days_domestic", Integer, nullable=False),
    Column("transit_days_international", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# The first (partner, external_ref): the primary key decides a race between two
# submissions of one reference under different idempotency keys.
external_refs = Table(
    "external_refs",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("external_ref", String(128), primary_key=True),
    Column("idempotency_key", String(200), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# One row per order that uses the customer's credit. Amounts in millionths (prices have at
# most 6 decimals) so the database sums them exactly on both backends. `version` is the
# order's aggregate version of the last event applied; intake's own row at approval is 0.
order_exposure = Table(
    "order_exposure",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("open", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("invoiced_micros", BigInteger, nullable=False, server_default="0"),  # migration 0007
    Column("settled_micros", BigInteger, nullable=False, server_default="0"),  # paid + credited (0007)
    Index("ix_order_exposure_customer_open", "customer_id", "open"),
)

# --- migration 0003 ---------------------------------------------------------------------------
# Each customer's open exposure as a running total (the sum of its open order_exposure rows),
# so a credit decision reads one row instead of summing every open order, and a group of
# approvals reads and grows it with the row locked (ExposureRepository.add_to_totals).
customer_exposure = Table(
    "customer_exposure",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("open_micros", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# --- migration 0007 ---------------------------------------------------------------------------
# What finance reported for each order: invoices, payments and credit notes (refunds), one row per
# document, keyed by the order's partner, the kind and finance's own number (sent again: nothing changes).
finance_documents = Table(
    "finance_documents",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),  # invoice | payment | credit_note
    Column("number", String(64), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("amount_micros", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("issued_on", Date, nullable=False),
    Column("due_on", Date, nullable=True),  # invoices only
    Column("note", String, nullable=False),
    Column("recorded_by", String, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_finance_documents_order", "order_id"),
    Index("ix_finance_documents_customer", "customer_id", "kind"),
    Index("ix_finance_documents_kind_issued", "kind", "issued_on"),
)
# order_exposure gains invoiced_micros and settled_micros (paid + credited): see ExposureRepository.

# Rows per statement: keeps a big import well under PostgreSQL's 32767 bind parameters.
UPSERT_CHUNK = 500

# What every order reads and claims, as templates built once and executed with their parameters
# (see orderdesk.db): a statement built per call with its values costs several times the Python work.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))
_PRODUCTS = select(products).where(products.c.sku.in_(bindparam("skus", expanding=True)))
_PRICE_LIST = select(customer_prices).where(customer_prices.c.customer_id == bindparam("customer_id"))
_PRICES = _PRICE_LIST.where(customer_prices.c.sku.in_(bindparam("skus", expanding=True)))
_KEY = select(idempotency_keys).where(
    idempotency_keys.c.partner_id == bindparam("partner_id"),
    idempotency_keys.c.idempotency_key == bindparam("idempotency_key"),
)


@functools.cache
def _keys_seen(pairs: int):
    """Which of `pairs` (partner, key) pairs are claimed, one statement whatever the number of partners: an
    OR of the pairs, each read off the primary key (PostgreSQL's BitmapOr, SQLite's MULTI-INDEX OR). Not
    a row-value IN: SQLite scans the whole index for `(a, b) IN (VALUES ...)`."""
    c = idempotency_keys.c
    return select(c.partner_id, c.idempotency_key).where(
        or_(
            *(
                and_(c.partner_id == bindparam(f"p{n}"), c.idempotency_key == bindparam(f"k{n}"))
                for n in range(pairs)
            )
        )
    )


_REF_HOLDERS = select(
    external_refs.c.external_ref, external_refs.c.idempotency_key, external_refs.c.order_id
).where(
    external_refs.c.partner_id == bindparam("partner_id"),
    external_refs.c.external_ref.in_(bindparam("refs", expanding=True)),
)


def _product(r) -> Product:
    return Product(
        sku=r["sku"],
        name=r["name"],
        unit_price=Decimal(r["unit_price"]),
        currency=r["currency"],
        make_to_order=r["make_to_order"],
        production_lead_time_days=r["production_lead_time_days"],
        min_order_qty=r["min_order_qty"],
        order_multiple=r["order_multiple"],
        status=r["status"],
    )


def _customer(row) -> Customer:
    return Customer(
        customer_id=row["customer_id"],
        name=row["name"],
        tier=row["tier"],
        status=row["status"],
        credit_limit=Decimal(row["credit_limit"]),
        currency=row["currency"],
        payment_terms=tuple(row["payment_terms"].split()),
        email=row["email"],
        phone=row["phone"],
        ship_to_line1=row["ship_to_line1"],
        ship_to_city=row["ship_to_city"],
        ship_to_postal_code=row["ship_to_postal_code"],
        ship_to_country=row["ship_to_country"],
    )


class MasterDataRepository(Repository):
    async def upsert_customers(self, records: list[Customer]) -> None:
        now = utcnow()
        rows = [
            {
                "customer_id": c.customer_id,
                "name": c.name,
                "tier": c.tier,
                "status": c.status,
                "credit_limit": str(c.credit_limit),
                "currency": c.currency,
                "payment_terms": " ".join(c.payment_terms),
                "email": c.email,
                "phone": c.phone,
                "ship_to_line1": c.ship_to_line1,
                "ship_to_city": c.ship_to_city,
                "ship_to_postal_code": c.ship_to_postal_code,
                "ship_to_country": c.ship_to_country,
                "updated_at": now,
            }
            for c in records
        ]
        await self._upsert(customers, rows, ["customer_id"])

    async def upsert_products(self, records: list[Product]) -> None:
        now = utcnow()
        rows = [
            {
                "sku": p.sku,
                "name": p.name,
                "unit_price": str(p.unit_price),
                "currency": p.currency,
                "make_to_order": p.make_to_order,
                "production_lead_time_days": p.production_lead_time_days,
                "min_order_qty": p.min_order_qty,
                "order_multiple": p.order_multiple,
                "status": p.status,
                "updated_at": now,
            }
            for p in records
        ]
        await self._upsert(products, rows, ["sku"])

    async def upsert_prices(self, records: list[CustomerPrice]) -> None:
        now = utcnow()
        rows = [
            {
                "customer_id": p.customer_id,
                "sku": p.sku,
                "unit_price": str(p.unit_price),
                "currency": p.currency,
                "updated_at": now,
            }
            for p in records
        ]
        await self._upsert(customer_prices, rows, ["customer_id", "sku"])

    async def upsert_warehouses(self, records: list[Warehouse]) -> None:
        now = utcnow()
        rows = [warehouse_values(w) | {"updated_at": now} for w in records]
        await self._upsert(warehouses, rows, ["warehouse"])

    async def _upsert(self, table: Table, rows: list[dict], keys: list[str]) -> None:
        columns = [c.name for c in table.columns if c.name not in keys]
        for start in range(0, len(rows), UPSERT_CHUNK):
            chunk = rows[start : start + UPSERT_CHUNK]
            await self.conn.execute(upsert(self.conn.dialect.name, table, chunk, keys, columns))

    async def customer(self, customer_id: str) -> Customer | None:
        row = (await self.conn.execute(_CUSTOMER, {"customer_id": customer_id})).mappings().first()
        return None if row is None else _customer(row)

    async def search_customers(self, words: str, limit: int, after: str) -> list[tuple[Customer, Decimal]]:
        """Customers whose id starts with `words` or whose name holds it (any case), by id after `after`, each
        with its open exposure; `limit` of them at most."""
        query = (
            select(customers, customer_exposure.c.open_micros)
            .outerjoin(customer_exposure, customer_exposure.c.customer_id == customers.c.customer_id)
            .order_by(customers.c.customer_id)
            .limit(limit)
        )
        if words:
            pattern = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(
                or_(
                    func.lower(customers.c.customer_id).like(pattern + "%", escape="\\"),
                    func.lower(customers.c.name).like("%" + pattern + "%", escape="\\"),
                )
            )
        if after:
            query = query.where(customers.c.customer_id > after)
        rows = (await self.conn.execute(query)).mappings().all()
        return [(_customer(row), Decimal(int(row["open_micros"] or 0)) / MICROS) for row in rows]

    async def products(self, skus: set[str]) -> dict[str, Product]:
        if not skus:
            return {}
        rows = (await self.conn.execute(_PRODUCTS, {"skus": sorted(skus)})).mappings().all()
        return {r["sku"]: _product(r) for r in rows}

    async def search_products(self, words: str, limit: int) -> list[Product]:
        """Products whose name holds `words` (any case), by SKU; `limit` of them at most."""
        pattern = words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            select(products)
            .where(func.lower(products.c.name).like("%" + pattern + "%", escape="\\"))
            .order_by(products.c.sku)
            .limit(limit)
        )
        return [_product(r) for r in (await self.conn.execute(query)).mappings().all()]

    async def customer_prices(self, customer_id: str, skus: set[str] | None) -> dict[str, CustomerPrice]:
        """The customer's prices for `skus`, or its whole price list when `skus` is None."""
        if skus is not None and not skus:
            return {}
        if skus is None:
            found = await self.conn.execute(_PRICE_LIST, {"customer_id": customer_id})
        else:
            found = await self.conn.execute(_PRICES, {"customer_id": customer_id, "skus": sorted(skus)})
        rows = found.mappings().all()
        return {
            r["sku"]: CustomerPrice(
                customer_id=r["customer_id"],
                sku=r["sku"],
                unit_price=Decimal(r["unit_price"]),
                currency=r["currency"],
            )
            for r in rows
        }

    async def warehouses(self) -> dict[str, Warehouse]:
        rows = (await self.conn.execute(select(warehouses))).mappings().all()
        return {r["warehouse"]: warehouse_record(r) for r in rows}

    async def erase_customer(self, customer_id: str) -> int | None:
        """The customer's master record with its personal fields erased (orderdesk/personal_data.py: the name
        a token, e-mail, phone and address lines "[erased]", the country, tier, terms and credit kept).
        Returns the rows changed (0: already erased), None when there is no such customer."""
        row = (
            (await self.conn.execute(select(customers).where(customers.c.customer_id == customer_id)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        found: set[str] = set()
        address = personal_data.erase_address(
            {
                "name": row["name"],
                "line1": row["ship_to_line1"],
                "city": row["ship_to_city"],
                "postal_code": row["ship_to_postal_code"],
                "phone": row["phone"],
            },
            customer_id,
            found,
        )
        email = personal_data.ERASED if row["email"] else ""
        if not found and email == row["email"]:
            return 0
        await self.conn.execute(
            update(customers)
            .where(customers.c.customer_id == customer_id)
            .values(
                name=address["name"],
                email=email,
                phone=address["phone"],
                ship_to_line1=address["line1"],
                ship_to_city=address["city"],
                ship_to_postal_code=address["postal_code"],
                updated_at=utcnow(),
            )
        )
        return 1


@dataclass(frozen=True)
class IdempotencyRecord:
    partner_id: str
    idempotency_key: str
    request_hash: str
    order_id: str
    create_request: bytes


class IdempotencyRepository(Repository):
    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord:
        """Stores the record unless the key is taken; returns the record that holds the key."""
        (holder,) = await self.claim_many([record])
        return holder

    async def claim_many(self, records: Sequence[IdempotencyRecord]) -> list[IdempotencyRecord]:
        """`claim` of each record, in one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (what it
        inserted are the records that now hold their keys); the holder of each record's key, in order.

        Rows go in key order, so two claims at once wait for each other in one direction only; a conflict
        waits on PostgreSQL for the holder to commit, and is then read. A key twice in `records`: the
        first holds it."""
        if not records:
            return []
        rows = [
            (r.partner_id, r.idempotency_key, r.request_hash, r.order_id, r.create_request)
            for r in sorted(records, key=lambda r: (r.partner_id, r.idempotency_key))
        ]
        found = await _claiming(self.conn.dialect.name, idempotency_keys).returned(
            self.conn, rows, created_at=utcnow()
        )
        inserted = {tuple(row) for row in found}
        holders = []
        for record in records:
            if (record.partner_id, record.idempotency_key, record.order_id) in inserted:
                holders.append(record)
                continue
            existing = await self.get(record.partner_id, record.idempotency_key)
            if existing is None:  # pragma: no cover - a conflict means the row exists
                raise RuntimeError("idempotency key conflict without a row")
            holders.append(existing)
        return holders

    async def seen(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of the (partner, idempotency key) pairs are already claimed, in one read for a group from
        any number of partners."""
        pairs = sorted(set(keys))
        if not pairs:
            return set()
        parameters = {}
        for n, (partner_id, key) in enumerate(pairs):
            parameters[f"p{n}"], parameters[f"k{n}"] = partner_id, key
        rows = await self.conn.execute(_keys_seen(len(pairs)), parameters)
        return {(r.partner_id, r.idempotency_key) for r in rows}

    async def get(self, partner_id: str, idempotency_key: str) -> IdempotencyRecord | None:
        row = (
            (await self.conn.execute(_KEY, {"partner_id": partner_id, "idempotency_key": idempotency_key}))
            .mappings()
            .first()
        )
        if row is None:
            return None
        return IdempotencyRecord(
            partner_id=row["partner_id"],
            idempotency_key=row["idempotency_key"],
            request_hash=row["request_hash"],
            order_id=row["order_id"],
            create_request=bytes(row["create_request"]),
        )

    async def erase_requests(self, order_ids: list[str], customer_id: str) -> int:
        """The stored requests of these orders (what a replay re-sends) with their addresses erased; the request
        hash stays, so a retry of the same body still finds its order. Returns the rows changed."""
        from orderdesk.v1 import orders_pb2

        changed = 0
        for start in range(0, len(order_ids), 500):
            rows = await self.conn.execute(
                select(
                    idempotency_keys.c.partner_id,
                    idempotency_keys.c.idempotency_key,
                    idempotency_keys.c.create_request,
                ).where(idempotency_keys.c.order_id.in_(order_ids[start : start + 500]))
            )
            for row in rows.all():
                request = orders_pb2.CreateOrderRequest.FromString(row.create_request)
                if personal_data.erase_message(request, customer_id):
                    await self.conn.execute(
                        update(idempotency_keys)
                        .where(
                            idempotency_keys.c.partner_id == row.partner_id,
                            idempotency_keys.c.idempotency_key == row.idempotency_key,
                        )
                        .values(create_request=request.SerializeToString())
                    )
                    changed += 1
        return changed


@dataclass(frozen=True)
class ExternalRefHolder:
    idempotency_key: str
    order_id: str


@dataclass(frozen=True)
class ExternalRefClaim:
    partner_id: str
    external_ref: str
    idempotency_key: str
    order_id: str


class ExternalRefRepository(Repository):
    async def claim_many(self, claims: Sequence[ExternalRefClaim]) -> list[ExternalRefHolder]:
        """Records each reference unless the partner sent it before, in one multi-row INSERT ... ON CONFLICT
        DO NOTHING RETURNING and, for the references sent before, one read of their holders per partner; who
        holds each, in order.

        Rows go in reference order (a reference twice keeps its claims' order, so the first holds it), and
        two claims at once wait for each other in one direction only."""
        if not claims:
            return []
        rows = [
            (c.partner_id, c.external_ref, c.idempotency_key, c.order_id)
            for c in sorted(claims, key=lambda c: (c.partner_id, c.external_ref))
        ]
        found = await _claiming(self.conn.dialect.name, external_refs).returned(
            self.conn, rows, created_at=utcnow()
        )
        inserted = {tuple(row) for row in found}
        taken: dict[str, set[str]] = {}
        for c in claims:
            if (c.partner_id, c.external_ref, c.order_id) not in inserted:
                taken.setdefault(c.partner_id, set()).add(c.external_ref)
        holders: dict[tuple[str, str], ExternalRefHolder] = {}
        for partner_id, refs in sorted(taken.items()):
            found = await self.conn.execute(_REF_HOLDERS, {"partner_id": partner_id, "refs": sorted(refs)})
            holders.update(
                ((partner_id, r.external_ref), ExternalRefHolder(r.idempotency_key, r.order_id))
                for r in found
            )
        return [
            holders.get((c.partner_id, c.external_ref), ExternalRefHolder(c.idempotency_key, c.order_id))
            for c in claims
        ]


# A claim's row as the tuple claim_many makes of it; created_at is one for all.
_CLAIM_COLUMNS = {
    "idempotency_keys": ("partner_id", "idempotency_key", "request_hash", "order_id", "create_request"),
    "external_refs": ("partner_id", "external_ref", "idempotency_key", "order_id"),
}


@functools.cache
def _claiming(dialect_name: str, table: Table) -> RowsInsert:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING the key and order id of each row it inserted: which
    claims hold their keys."""
    template = insert_ignoring_conflicts(dialect_name, table).returning(
        *table.primary_key.columns, table.c.order_id
    )
    return RowsInsert(template, _CLAIM_COLUMNS[table.name], constants=("created_at",))


MICROS = Decimal(1_000_000)
# Far above any credit limit; keeps one absurd order from overflowing a 64-bit sum.
MAX_AMOUNT_MICROS = 10**18


def to_micros(amount: Decimal) -> int:
    return min(int((amount * MICROS).to_integral_value()), MAX_AMOUNT_MICROS)


@dataclass(frozen=True)
class ApprovalBooking:
    """What an approval booked: the order's row as it was (customer, micros, open) or None if it had none."""

    order_id: str
    customer_id: str
    micros: int
    version: int
    previous: tuple[str, int, bool] | None


@dataclass(frozen=True)
class ExposureChange:
    """What one order event says of the order's exposure (ExposureRepository.record's arguments)."""

    order_id: str
    customer_id: str
    amount: Decimal
    is_open: bool
    version: int


@dataclass(frozen=True)
class _ExposureRow:
    """An order_exposure row as a batch of changes reads and leaves it (record_many)."""

    customer_id: str
    amount_micros: int
    open: bool
    version: int
    invoiced_micros: int
    settled_micros: int

    def uses(self) -> int:
        return uses_credit_micros(self.amount_micros, self.invoiced_micros, self.settled_micros, self.open)


def _uses(row) -> int:
    """What an order_exposure row adds to its customer's total (domain.uses_credit_micros)."""
    if row is None:
        return 0
    return uses_credit_micros(row.amount_micros, row.invoiced_micros, row.settled_micros, bool(row.open))


class ExposureRepository:
    """The customers' open orders by what they still use of the credit, as intake approved them, as orders
    reports them since and as finance reports their invoices, payments and credit notes.

    order_exposure holds one row per order (its amount, whether it is open, what was invoiced and what
    was paid or credited); customer_exposure the running total of what each customer's rows use
    (domain.uses_credit). Every change to an order's row adjusts the total in the same transaction, so
    the two always agree. A row is read FOR UPDATE (PostgreSQL) before it changes, so an event and a
    payment of one order at once cannot both compute their change from the same old row."""

    def __init__(self, conn):
        self.conn = conn
        self._statements = _exposure_statements(conn.dialect.name)

    async def open_exposure(self, customer_id: str) -> Decimal:
        total = (await self.conn.execute(self._statements.total, {"customer_id": customer_id})).scalar()
        return Decimal(int(total or 0)) / MICROS

    async def open_exposures(self, customer_ids: Collection[str]) -> dict[str, Decimal]:
        """`open_exposure` of several customers in one read (a customer with no row: 0)."""
        found = {customer_id: Decimal(0) for customer_id in customer_ids}
        if found:
            query, encode = self._statements.totals
            rows = await self.conn.execute(query, {"customer_ids": encode(sorted(found))})
            for customer_id, micros in rows:
                found[customer_id] = Decimal(int(micros or 0)) / MICROS
        return found

    async def open_orders(self, customer_id: str) -> int:
        """How many of the customer's orders use its credit now (confirmed, not closed, not yet paid)."""
        return (
            await self.conn.execute(
                select(func.count())
                .select_from(order_exposure)
                .where(
                    order_exposure.c.customer_id == customer_id,
                    order_exposure.c.open.is_(True),
                    or_(
                        order_exposure.c.amount_micros > order_exposure.c.settled_micros,
                        order_exposure.c.invoiced_micros > order_exposure.c.settled_micros,
                    ),
                )
            )
        ).scalar_one()

    async def add_to_totals(self, deltas: Mapping[str, int]) -> dict[str, int]:
        """Adds each customer's delta (millionths) to its open total, making its row when it has none, in one
        multi-row upsert that returns the new totals. The rows stay locked until the transaction ends
        (PostgreSQL; SQLite has one writer), so they stay as returned while the caller decides what to book;
        customers go in id order, so two transactions wait for each other in one direction only."""
        if not deltas:
            return {}
        found = await self._statements.add_returning.returned(
            self.conn, sorted(deltas.items()), updated_at=utcnow()
        )
        return {row.customer_id: row.open_micros for row in found}

    async def add_orders(self, booked: Sequence[tuple[str, str, int]]) -> None:
        """The rows of orders intake just approved, (order id, customer, micros), open at version 0, in one
        multi-row insert; their amounts are in their customers' totals (`add_to_totals`)."""
        if not booked:
            return
        await self._statements.add_orders.execute(
            self.conn,
            [(order_id, customer_id, micros, True, 0) for order_id, customer_id, micros in booked],
            updated_at=utcnow(),
        )

    async def book_approval(
        self, order_id: str, customer_id: str, amount: Decimal, limit: Decimal | None
    ) -> ApprovalBooking | None:
        """Books a held order the desk is approving as open exposure, before orders confirms it, so two
        approvals at once cannot together pass the limit: the customer's total grows by what the order adds
        (what it uses open, less what its row already counts) with one conditional UPDATE, which PostgreSQL
        re-evaluates on the row's latest version after the row lock and SQLite runs under its single
        writer. `limit` None: the approver accepted the excess, booked unconditionally. None, booking
        nothing, when the limit would be passed; else what `release_approval` needs to undo it."""
        micros = to_micros(amount)
        row = await self._row(order_id)
        invoiced, settled = (row.invoiced_micros, row.settled_micros) if row is not None else (0, 0)
        delta = uses_credit_micros(micros, invoiced, settled, True) - _uses(row)
        if delta > 0 and limit is not None:
            await self.conn.execute(
                insert_ignoring_conflicts(self.conn.dialect.name, customer_exposure),
                {"customer_id": customer_id, "open_micros": 0, "updated_at": utcnow()},
            )
            grown = await self.conn.execute(
                self._statements.grow_within,
                {"cid": customer_id, "delta": delta, "limit": to_micros(limit), "updated_at": utcnow()},
            )
            if grown.rowcount != 1:
                return None
        elif delta:
            await self._adjust(customer_id, delta)
        version = 0 if row is None else row.version
        written = self._statements.add_orders if row is None else self._statements.update_orders
        await written.execute(
            self.conn, [(order_id, customer_id, micros, True, version)], updated_at=utcnow()
        )
        previous = None if row is None else (row.customer_id, row.amount_micros, bool(row.open))
        return ApprovalBooking(order_id, customer_id, micros, version, previous)

    async def release_approval(self, booking: ApprovalBooking) -> bool:
        """Undoes `book_approval` when orders did not approve the order after all, unless an event of the
        order was applied since (it then says what the order uses). True when it undid the booking."""
        row = await self._row(booking.order_id)
        if (
            row is None
            or row.version != booking.version
            or row.amount_micros != booking.micros
            or not row.open
        ):
            return False
        await self._adjust(row.customer_id, -_uses(row))
        if booking.previous is None and not (row.invoiced_micros or row.settled_micros):
            await self.conn.execute(self._statements.drop_order, {"oid": booking.order_id})
            return True
        customer_id, micros, was_open = booking.previous or (row.customer_id, row.amount_micros, False)
        await self._statements.update_orders.execute(
            self.conn,
            [(booking.order_id, customer_id, micros, was_open, booking.version)],
            updated_at=utcnow(),
        )
        restored = uses_credit_micros(micros, row.invoiced_micros, row.settled_micros, was_open)
        if restored:
            await self._adjust(customer_id, restored)
        return True

    async def record(
        self, order_id: str, customer_id: str, amount: Decimal, is_open: bool, version: int
    ) -> bool:
        """Applies an order event's state unless a newer one was applied; True when it changed the row. The
        batch's rule for a batch of one: a change moves the totals the same way alone or with others."""
        return await self.record_many([ExposureChange(order_id, customer_id, amount, is_open, version)]) == 1

    async def record_many(self, changes: Sequence[ExposureChange]) -> int:
        """`record` of each change in turn (a batch of order events, in their order), with one read of all
        their rows (FOR UPDATE, in order id order) and multi-row writes: the new rows in one INSERT, the
        changed ones in one UPDATE executed with each row's values, and one adjustment per customer of the
        sum of its deltas. A change older than what its row holds (the row as the batch left it so far) is
        skipped, as `record` skips it. How many changes were applied."""
        if not changes:
            return 0
        ids = sorted({change.order_id for change in changes})
        query, encode = self._statements.order_rows
        found = await self.conn.execute(query, {"order_ids": encode(ids)})
        rows: dict[str, _ExposureRow] = {
            row.order_id: _ExposureRow(
                row.customer_id,
                row.amount_micros,
                bool(row.open),
                row.version,
                row.invoiced_micros,
                row.settled_micros,
            )
            for row in found
        }
        new: set[str] = set()
        touched: dict[str, None] = {}  # in the order first changed
        deltas: dict[str, int] = {}
        applied = 0
        for change in changes:
            micros = to_micros(change.amount)
            row = rows.get(change.order_id)
            if row is None:
                new.add(change.order_id)
                deltas[change.customer_id] = deltas.get(change.customer_id, 0) + (
                    micros if change.is_open else 0
                )
                rows[change.order_id] = _ExposureRow(
                    change.customer_id, micros, change.is_open, change.version, 0, 0
                )
            elif row.version >= change.version:
                continue
            else:
                was = row.uses()
                uses = uses_credit_micros(micros, row.invoiced_micros, row.settled_micros, change.is_open)
                if row.customer_id != change.customer_id:  # as `record`: both customers' totals stay right
                    deltas[row.customer_id] = deltas.get(row.customer_id, 0) - was
                    deltas[change.customer_id] = deltas.get(change.customer_id, 0) + uses
                else:
                    deltas[change.customer_id] = deltas.get(change.customer_id, 0) + uses - was
                rows[change.order_id] = _ExposureRow(
                    change.customer_id,
                    micros,
                    change.is_open,
                    change.version,
                    row.invoiced_micros,
                    row.settled_micros,
                )
            touched[change.order_id] = None
            applied += 1
        now = utcnow()
        added, changed = [], []
        for order_id in touched:
            row = rows[order_id]
            values = (order_id, row.customer_id, row.amount_micros, row.open, row.version)
            (added if order_id in new else changed).append(values)
        await self._statements.add_orders.execute(self.conn, added, updated_at=now)
        await self._statements.update_orders.execute(self.conn, changed, updated_at=now)
        adjustments = [(customer_id, delta) for customer_id, delta in sorted(deltas.items()) if delta]
        await self._statements.adjust_totals.execute(self.conn, adjustments, updated_at=now)
        return applied

    async def settle(
        self, order_id: str, customer_id: str, amount: Decimal, invoiced: Decimal, settled: Decimal
    ) -> None:
        """Adds what finance reported for the order (`invoiced`, and `settled`: paid or credited) to its row
        and what the order uses to its customer's total. An order intake has no row for yet (held, or its
        confirmation not yet applied) gets a closed one with its `amount`, which its events then open."""
        await self._statements.add_orders.execute(
            self.conn, [(order_id, customer_id, to_micros(amount), False, 0)], updated_at=utcnow()
        )
        row = await self._row(order_id)
        assert row is not None
        more_invoiced, more_settled = to_micros(invoiced), to_micros(settled)
        await self.conn.execute(
            self._statements.settle,
            {
                "oid": order_id,
                "more_invoiced": more_invoiced,
                "more_settled": more_settled,
                "updated_at": utcnow(),
            },
        )
        uses = uses_credit_micros(
            row.amount_micros,
            row.invoiced_micros + more_invoiced,
            row.settled_micros + more_settled,
            bool(row.open),
        )
        if uses != _uses(row):
            await self._adjust(row.customer_id, uses - _uses(row))

    async def _row(self, order_id: str):
        return (await self.conn.execute(self._statements.order_row, {"order_id": order_id})).first()

    async def _adjust(self, customer_id: str, delta_micros: int) -> None:
        await self._statements.adjust_totals.execute(
            self.conn, [(customer_id, delta_micros)], updated_at=utcnow()
        )

    async def get(self, order_id: str) -> tuple[str, Decimal, bool, int] | None:
        row = (
            await self.conn.execute(select(order_exposure).where(order_exposure.c.order_id == order_id))
        ).first()
        if row is None:
            return None
        return row.customer_id, Decimal(row.amount_micros) / MICROS, bool(row.open), row.version

    async def settled(self, order_id: str) -> Decimal:
        """What finance reported paid or credited on the order (0 when nothing)."""
        found = (
            await self.conn.execute(
                select(order_exposure.c.settled_micros).where(order_exposure.c.order_id == order_id)
            )
        ).scalar()
        return Decimal(int(found or 0)) / MICROS

    async def is_open(self, order_id: str) -> bool:
        row = await self._row(order_id)
        return row is not None and bool(row.open)


@dataclass(frozen=True)
class _ExposureStatements:
    total: object
    totals: Listed  # db.by_unique_keys: the query, how to give the keys
    add_returning: RowsInsert
    add_orders: RowsInsert
    update_orders: RowsUpdate
    adjust_totals: RowsInsert
    order_row: object
    order_rows: Listed
    settle: object
    grow_within: object
    drop_order: object


_EXPOSURE_STATEMENTS: dict[str, _ExposureStatements] = {}


def _exposure_statements(dialect_name: str) -> _ExposureStatements:
    """Built once per dialect: these run for every order (see orderdesk.db on statement reuse)."""
    if dialect_name not in _EXPOSURE_STATEMENTS:
        from sqlalchemy import bindparam
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if dialect_name == "postgresql" else sqlite
        adjust = dialect.insert(customer_exposure)
        adjust = adjust.on_conflict_do_update(
            index_elements=["customer_id"],
            set_={
                "open_micros": customer_exposure.c.open_micros + adjust.excluded.open_micros,
                "updated_at": adjust.excluded.updated_at,
            },
        )
        totals_columns = ("customer_id", "open_micros")  # a customer's total: rows of adjustments
        order_state = ("customer_id", "amount_micros", "open", "version")  # what an event sets of a row
        order_columns = (  # what an order's exposure row holds, read alone or a batch's at once
            order_exposure.c.customer_id,
            order_exposure.c.amount_micros,
            order_exposure.c.open,
            order_exposure.c.version,
            order_exposure.c.invoiced_micros,
            order_exposure.c.settled_micros,
        )
        _EXPOSURE_STATEMENTS[dialect_name] = _ExposureStatements(
            total=select(customer_exposure.c.open_micros).where(
                customer_exposure.c.customer_id == bindparam("customer_id")
            ),
            # A group's customers and a batch's orders as one parameter each (db.by_unique_keys): one
            # statement, prepared once, for any number of them (an expanding IN is one for each number).
            totals=by_unique_keys(
                dialect_name,
                select(customer_exposure.c.customer_id, customer_exposure.c.open_micros),
                customer_exposure.c.customer_id,
                "customer_ids",
            ),
            # An approval group's bookings: the new totals, the rows locked (ExposureRepository.add_to_totals).
            add_returning=RowsInsert(
                adjust.returning(customer_exposure.c.customer_id, customer_exposure.c.open_micros),
                totals_columns,
                constants=("updated_at",),
            ),
            # Rows as tuples (orderdesk.db.RowsInsert), updated_at one for all.
            add_orders=RowsInsert(
                insert_ignoring_conflicts(dialect_name, order_exposure),
                ("order_id", *order_state),
                constants=("updated_at",),
            ),
            # "oid" names the row (a bind parameter may not share a name with a column the statement sets).
            update_orders=RowsUpdate(
                update(order_exposure).where(order_exposure.c.order_id == bindparam("oid")),
                ("oid", *order_state),
                constants=("updated_at",),
            ),
            adjust_totals=RowsInsert(adjust, totals_columns, constants=("updated_at",)),
            order_row=select(*order_columns)
            .where(order_exposure.c.order_id == bindparam("order_id"))
            .with_for_update(),
            # A batch of events' rows at once (ExposureRepository.record_many), locked in order id order (the
            # ids given sorted: each row is locked as its id is looked up).
            order_rows=by_unique_keys(
                dialect_name,
                select(order_exposure.c.order_id, *order_columns).with_for_update(),
                order_exposure.c.order_id,
                "order_ids",
            ),
            settle=update(order_exposure)
            .where(order_exposure.c.order_id == bindparam("oid"))
            .values(
                invoiced_micros=order_exposure.c.invoiced_micros + bindparam("more_invoiced"),
                settled_micros=order_exposure.c.settled_micros + bindparam("more_settled"),
            ),
            # A desk approval's booking: the total grows by `delta` only while it stays within `limit`.
            grow_within=update(customer_exposure)
            .where(
                customer_exposure.c.customer_id == bindparam("cid"),
                customer_exposure.c.open_micros + bindparam("delta") <= bindparam("limit"),
            )
            .values(open_micros=customer_exposure.c.open_micros + bindparam("delta")),
            drop_order=delete(order_exposure).where(order_exposure.c.order_id == bindparam("oid")),
        )
    return _EXPOSURE_STATEMENTS[dialect_name]


def _document(row) -> Document:
    return Document(
        kind=row.kind,
        number=row.number,
        order_id=row.order_id,
        amount=Decimal(row.amount_micros) / MICROS,
        currency=row.currency,
        issued_on=row.issued_on,
        due_on=row.due_on,
        note=row.note,
    )


@dataclass(frozen=True)
class CreditNoteRow:
    document: Document
    partner_id: str
    customer_id: str
    recorded_by: str


# An order's credit check reads these when overdue invoices hold orders (templates: see orderdesk.db).
_UNPAID = select(order_exposure.c.order_id, order_exposure.c.settled_micros).where(
    order_exposure.c.customer_id == bindparam("customer_id"),
    order_exposure.c.invoiced_micros > order_exposure.c.settled_micros,
)
_INVOICES_DUE = select(
    finance_documents.c.order_id, finance_documents.c.amount_micros, finance_documents.c.due_on
).where(
    finance_documents.c.kind == "invoice",
    finance_documents.c.order_id.in_(bindparam("order_ids", expanding=True)),
    finance_documents.c.due_on < bindparam("today"),
)


class FinanceRepository(Repository):
    """Finance's documents per order (finance_documents)."""

    async def add(self, partner_id: str, customer_id: str, document: Document, recorded_by: str) -> Document:
        """Stores the document unless its (partner, kind, number) is taken; returns the one that holds it
        (the primary key decides between two at once: on PostgreSQL the second waits for the first)."""
        inserted = await self.conn.execute(
            insert_ignoring_conflicts(self.dialect, finance_documents),
            {
                "partner_id": partner_id,
                "kind": document.kind,
                "number": document.number,
                "order_id": document.order_id,
                "customer_id": customer_id,
                "amount_micros": to_micros(document.amount),
                "currency": document.currency,
                "issued_on": document.issued_on,
                "due_on": document.due_on,
                "note": document.note,
                "recorded_by": recorded_by,
                "created_at": utcnow(),
            },
        )
        if inserted.rowcount == 1:
            return document
        held = await self.get(partner_id, document.kind, document.number)
        assert held is not None, "the conflict was on this key"
        return held

    async def get(self, partner_id: str, kind: str, number: str) -> Document | None:
        row = (
            await self.conn.execute(
                select(finance_documents).where(
                    finance_documents.c.partner_id == partner_id,
                    finance_documents.c.kind == kind,
                    finance_documents.c.number == number,
                )
            )
        ).first()
        return None if row is None else _document(row)

    async def for_order(self, order_id: str) -> list[Document]:
        rows = await self.conn.execute(
            select(finance_documents)
            .where(finance_documents.c.order_id == order_id)
            .order_by(
                finance_documents.c.issued_on, finance_documents.c.created_at, finance_documents.c.number
            )
        )
        return [_document(r) for r in rows]

    async def credit_notes(
        self, issued_from: dt.date, issued_to: dt.date, partner_id: str
    ) -> list[CreditNoteRow]:
        """Credit notes issued from `issued_from` to `issued_to` (both included), by date and number; one
        partner's when `partner_id` is set."""
        query = (
            select(finance_documents)
            .where(
                finance_documents.c.kind == "credit_note",
                finance_documents.c.issued_on >= issued_from,
                finance_documents.c.issued_on <= issued_to,
            )
            .order_by(finance_documents.c.issued_on, finance_documents.c.number)
        )
        if partner_id:
            query = query.where(finance_documents.c.partner_id == partner_id)
        rows = await self.conn.execute(query)
        return [CreditNoteRow(_document(r), r.partner_id, r.customer_id, r.recorded_by) for r in rows]

    async def overdue(self, customer_id: str, today: dt.date) -> Decimal:
        """What the customer's open orders have past their invoices' due dates and not yet settled."""
        unpaid = (await self.conn.execute(_UNPAID, {"customer_id": customer_id})).all()
        if not unpaid:
            return Decimal(0)
        settled = {r.order_id: Decimal(r.settled_micros) / MICROS for r in unpaid}
        invoices: dict[str, list[tuple[Decimal, dt.date | None]]] = {}
        ids = sorted(settled)
        for start in range(0, len(ids), 500):
            rows = await self.conn.execute(
                _INVOICES_DUE, {"order_ids": ids[start : start + 500], "today": today}
            )
            for r in rows:
                invoices.setdefault(r.order_id, []).append((Decimal(r.amount_micros) / MICROS, r.due_on))
        return sum(
            (overdue(found, settled[order_id], today) for order_id, found in invoices.items()), Decimal(0)
        )
