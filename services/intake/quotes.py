"""The desk's order entry (issue 16): what each line being typed names, at what price, how many are in stock
and the earliest date it can arrive. Read only; the same master data, stock and supply answers and the same
delivery planning SubmitOrder checks a requested date with (IntakeService.delivery_facts, domain.earliest_dates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from orderdesk.errors import FieldViolation, InvalidArgument, NotFound
from orderdesk.masterdata import Product
from services.intake import domain
from services.intake.service import IntakeService
from services.intake.store import MasterDataRepository

MAX_LINES = 100
MAX_QUERY_CHARS = 200
MAX_MATCHES = 10


@dataclass(frozen=True)
class Query:
    product: str  # a SKU, or a part of a product's name
    quantity: int


@dataclass
class LineQuote:
    product: Product | None = None
    unit_price: Decimal | None = None
    available: int = -1  # all warehouses; -1: not known
    earliest: str = ""  # ISO date, "" unknown
    matches: list[Product] = field(default_factory=list)  # a name that matched several products


def _check(customer_id: str, queries: list[Query]) -> None:
    violations = []
    if not customer_id:
        violations.append(FieldViolation("customer_id", "required"))
    if len(queries) > MAX_LINES:
        violations.append(FieldViolation("lines", f"at most {MAX_LINES} lines"))
    for i, q in enumerate(queries):
        if len(q.product) > MAX_QUERY_CHARS or not q.product.isprintable():
            violations.append(
                FieldViolation(f"lines[{i}].product", f"at most {MAX_QUERY_CHARS} printable characters")
            )
    if violations:
        raise InvalidArgument("invalid quote request", violations)


async def quote(
    service: IntakeService, customer_id: str, country: str, queries: list[Query]
) -> list[LineQuote]:
    _check(customer_id, queries)
    quotes = [LineQuote() for _ in queries]
    async with service.db.reading() as work:
        repo = work.repo(MasterDataRepository)
        customer = await repo.customer(customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        wanted = {q.product.strip() for q in queries if q.product.strip()}
        by_sku = await repo.products(wanted)
        for q, found in zip(queries, quotes, strict=True):
            text = q.product.strip()
            if not text:
                continue
            if text in by_sku:
                found.product = by_sku[text]
                continue
            named = await repo.search_products(text, MAX_MATCHES + 1)
            if len(named) == 1:
                found.product = named[0]
            else:
                found.matches = named[:MAX_MATCHES]
        chosen = {f.product.sku: f.product for f in quotes if f.product is not None}
        prices = await repo.customer_prices(customer_id, set(chosen))
        book = await service.masterdata.book(work)
    for found in quotes:
        if found.product is not None:
            price = prices.get(found.product.sku)
            found.unit_price = price.unit_price if price else found.product.unit_price
    if not chosen:
        return quotes
    country = (country or customer.ship_to_country).upper()
    lines = [
        domain.OrderLine(f.product.sku, max(q.quantity, 1), found_price(f))
        for q, f in zip(queries, quotes, strict=True)
        if f.product is not None
    ]
    now = service.clock()
    stock, supply = (None, None)
    if book.warehouses:
        stock, supply = await service.delivery_facts(lines, chosen, book, country, now)
    if stock is not None:
        for f in quotes:
            if f.product is not None:
                f.available = sum(max(v, 0) for v in stock.get(f.product.sku, {}).values())
    if stock is not None and supply is not None:
        dates = iter(domain.earliest_dates(lines, chosen, stock, book, country, now, supply))
        for f in quotes:
            if f.product is not None:
                date = next(dates)
                f.earliest = date.isoformat() if date else ""
    return quotes


def found_price(f: LineQuote) -> Decimal:
    return f.unit_price if f.unit_price is not None else Decimal(0)
