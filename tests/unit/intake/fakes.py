"""In-memory stand-ins for intake's repositories and for the services it calls, so its use
cases run in unit tests on tests/unit/fakes.FakeDatabase (the storage itself is tested on real
databases in tests/integration/intake).

    service = await intake_service()          # the demo master data, imported through the use case
    done = await service.submit(submission)
    assert service.db.repos[IdempotencyRepository].rows == {...}

The repository fakes keep what the real ones keep and answer as they do (a claim returns the
holder, a customer's total is grown as asked); like FakeDatabase they do not roll back.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import grpc

from orderdesk import masterdata
from orderdesk.calendar_store import CalendarRepository
from orderdesk.masterdata import Customer, CustomerPrice, Product, Warehouse
from orderdesk.v1 import inventory_pb2, orders_pb2
from services.intake.domain import IntakeConfig
from services.intake.service import IntakeService
from services.intake.store import (
    MICROS,
    ExposureRepository,
    ExternalRefClaim,
    ExternalRefHolder,
    ExternalRefRepository,
    IdempotencyRecord,
    IdempotencyRepository,
    MasterDataRepository,
    to_micros,
)
from tests.unit.fakes import FakeCalendars, FakeDatabase

DEMO = Path(__file__).resolve().parents[3] / "demo"
NOON = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


# --- the services intake calls ---------------------------------------------------------------
class Unavailable(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE

    def details(self):
        return "connection refused"


class NotFound(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.NOT_FOUND

    def details(self):
        return "no stock records"


class FakeOrders:
    """CreateOrder as orders implements it: a repeat of an order id returns the stored order."""

    def __init__(self, fail_first: int = 0):
        self.orders: dict[str, orders_pb2.Order] = {}
        self.calls: list[bytes] = []
        self.fail_first = fail_first

    async def CreateOrder(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        assert timeout, "every outgoing call has a deadline"
        self.calls.append(request.SerializeToString())
        if self.fail_first:
            self.fail_first -= 1
            raise Unavailable()
        await asyncio.sleep(0)  # let concurrent submissions interleave
        if request.order_id not in self.orders:
            self.orders[request.order_id] = orders_pb2.Order(
                order_id=request.order_id,
                partner_id=request.partner_id,
                customer_id=request.customer_id,
                status="on_hold" if request.hold_reasons else "confirmed",
                hold_reasons=request.hold_reasons,
                priority=request.priority,
                currency=request.currency,
                proposals=request.proposals,
                urgent=request.urgent,
                external_ref=request.external_ref,
                payment_terms=request.payment_terms,
                lines=request.lines,
            )
        return self.orders[request.order_id]

    async def CreateOrders(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        self.batches = getattr(self, "batches", 0) + 1
        return orders_pb2.CreateOrdersResponse(
            orders=[await self.CreateOrder(one, timeout=timeout) for one in request.orders]
        )


class FakeInventory:
    """GetStock as inventory answers it, from the demo stock: NOT_FOUND for a SKU without records;
    QuoteSupply from `supply` (sku -> the delivery date inventory's production plan gives; a SKU
    not in it: inventory cannot plan it)."""

    def __init__(
        self,
        stock: dict[str, dict[str, int]] | None = None,
        fail: bool = False,
        supply: dict[str, str] | None = None,
    ):
        self.supply = supply or {}
        self.quoted: list[tuple[str, str, int]] = []  # (country, sku, quantity) asked for
        if stock is None:
            stock = {}
            for row in masterdata.parse("stock", (DEMO / "stock.csv").read_text()):
                stock.setdefault(row.sku, {})[row.warehouse] = row.on_hand
        self.stock = stock
        self.fail = fail
        self.asked: list[str] = []

    async def GetStock(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        assert timeout, "every outgoing call has a deadline"
        self.asked.append(request.sku)
        if self.fail:
            raise Unavailable()
        if request.sku not in self.stock:
            raise NotFound()
        return inventory_pb2.StockLevel(
            sku=request.sku,
            warehouses=[
                inventory_pb2.WarehouseStock(warehouse=w, on_hand=q, available=q)
                for w, q in self.stock[request.sku].items()
            ],
        )

    async def QuoteSupply(self, request, timeout=None, metadata=None):  # noqa: ASYNC109 (the gRPC stub signature)
        assert timeout, "every outgoing call has a deadline"
        if self.fail:
            raise Unavailable()
        self.quoted += [(request.ship_to_country, line.sku, line.quantity) for line in request.lines]
        return inventory_pb2.QuoteSupplyResponse(
            quotes=[
                inventory_pb2.SupplyQuote(
                    sku=line.sku, quantity=line.quantity, delivery_date=self.supply.get(line.sku, "")
                )
                for line in request.lines
            ]
        )


# --- intake's repositories ---------------------------------------------------------------------
class FakeMasterData:
    def __init__(self):
        self.customers: dict[str, Customer] = {}
        self.products_by_sku: dict[str, Product] = {}
        self.prices: dict[tuple[str, str], CustomerPrice] = {}
        self.warehouses_by_id: dict[str, Warehouse] = {}

    async def upsert_customers(self, records: list[Customer]) -> None:
        self.customers.update((c.customer_id, c) for c in records)

    async def upsert_products(self, records: list[Product]) -> None:
        self.products_by_sku.update((p.sku, p) for p in records)

    async def upsert_prices(self, records: list[CustomerPrice]) -> None:
        self.prices.update(((p.customer_id, p.sku), p) for p in records)

    async def upsert_warehouses(self, records: list[Warehouse]) -> None:
        self.warehouses_by_id.update((w.warehouse, w) for w in records)

    async def customer(self, customer_id: str) -> Customer | None:
        return self.customers.get(customer_id)

    async def products(self, skus: set[str]) -> dict[str, Product]:
        return {sku: self.products_by_sku[sku] for sku in skus if sku in self.products_by_sku}

    async def customer_prices(self, customer_id: str, skus: set[str] | None) -> dict[str, CustomerPrice]:
        return {
            sku: p
            for (c, sku), p in self.prices.items()
            if c == customer_id and (skus is None or sku in skus)
        }

    async def warehouses(self) -> dict[str, Warehouse]:
        return dict(self.warehouses_by_id)


class FakeIdempotencyKeys:
    def __init__(self):
        self.rows: dict[tuple[str, str], IdempotencyRecord] = {}

    async def claim(self, record: IdempotencyRecord) -> IdempotencyRecord:
        return self.rows.setdefault((record.partner_id, record.idempotency_key), record)

    async def claim_many(self, records: list[IdempotencyRecord]) -> list[IdempotencyRecord]:
        return [await self.claim(record) for record in records]

    async def seen(self, keys) -> set[tuple[str, str]]:
        return {pair for pair in keys if pair in self.rows}

    async def get(self, partner_id: str, idempotency_key: str) -> IdempotencyRecord | None:
        return self.rows.get((partner_id, idempotency_key))


class FakeExternalRefs:
    def __init__(self):
        self.rows: dict[tuple[str, str], ExternalRefHolder] = {}

    async def claim_many(self, claims: list[ExternalRefClaim]) -> list[ExternalRefHolder]:
        return [
            self.rows.setdefault(
                (c.partner_id, c.external_ref), ExternalRefHolder(c.idempotency_key, c.order_id)
            )
            for c in claims
        ]


class FakeExposure:
    """Amounts in millionths as the real table keeps them; one running total per customer."""

    def __init__(self):
        self.orders: dict[str, tuple[str, int, bool, int]] = {}  # order id -> customer, micros, open, version
        self.totals: dict[str, int] = {}

    async def open_exposure(self, customer_id: str) -> Decimal:
        return Decimal(self.totals.get(customer_id, 0)) / MICROS

    async def open_exposures(self, customer_ids) -> dict[str, Decimal]:
        return {customer_id: await self.open_exposure(customer_id) for customer_id in customer_ids}

    async def settled(self, order_id: str) -> Decimal:
        return Decimal(0)  # finance's documents: tests/integration/intake/test_finance.py

    async def add_to_totals(self, deltas: dict[str, int]) -> dict[str, int]:
        for customer_id, delta in deltas.items():
            self.totals[customer_id] = self.totals.get(customer_id, 0) + delta
        return {customer_id: self.totals[customer_id] for customer_id in deltas}

    async def add_orders(self, booked: list[tuple[str, str, int]]) -> None:
        for order_id, customer_id, micros in booked:
            self.orders.setdefault(order_id, (customer_id, micros, True, 0))

    async def record(
        self, order_id: str, customer_id: str, amount: Decimal, is_open: bool, version: int
    ) -> bool:
        micros = to_micros(amount)
        row = self.orders.get(order_id)
        if row is not None and row[3] >= version:
            return False
        if row is not None:
            self.totals[row[0]] = self.totals.get(row[0], 0) - (row[1] if row[2] else 0)
        self.orders[order_id] = (customer_id, micros, is_open, version)
        self.totals[customer_id] = self.totals.get(customer_id, 0) + (micros if is_open else 0)
        return True

    async def get(self, order_id: str) -> tuple[str, Decimal, bool, int] | None:
        row = self.orders.get(order_id)
        if row is None:
            return None
        return row[0], Decimal(row[1]) / MICROS, row[2], row[3]


def fake_database() -> FakeDatabase:
    return FakeDatabase(
        {
            MasterDataRepository: FakeMasterData(),
            IdempotencyRepository: FakeIdempotencyKeys(),
            ExternalRefRepository: FakeExternalRefs(),
            ExposureRepository: FakeExposure(),
            CalendarRepository: FakeCalendars(),
        }
    )


async def intake_service(
    orders: FakeOrders | None = None,
    *,
    demo: bool = True,
    inventory: FakeInventory | None = None,
    config: IntakeConfig | None = None,
) -> IntakeService:
    """IntakeService on a fake database, with the demo's customers, products and warehouses imported."""
    service = IntakeService(
        fake_database(),
        orders or FakeOrders(),
        rpc_timeout=2.0,
        clock=lambda: NOON,
        inventory=inventory or FakeInventory(),
        config=config,
    )
    if demo:
        for kind in ("customers", "products", "warehouses"):
            await service.import_master_data(kind, (DEMO / f"{kind}.csv").read_text())
    return service
