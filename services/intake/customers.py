"""The desk's view of customers (issue 16): search by id or name, and one customer with its terms, credit
limit, open exposure and open orders. Read only; straight from intake's database (the desk wants what is
true now, not what the master data cache holds)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from orderdesk.db import Database
from orderdesk.errors import FieldViolation, InvalidArgument, NotFound
from orderdesk.masterdata import Customer
from services.intake.store import ExposureRepository, MasterDataRepository

DEFAULT_PAGE = 50
MAX_PAGE = 200
MAX_QUERY_CHARS = 100


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    open_exposure: Decimal  # the open orders' amounts in the customer's currency
    open_orders: int = -1  # orders using its credit now; -1: not counted (a search's items)

    @property
    def available_credit(self) -> Decimal:
        return max(self.customer.credit_limit - self.open_exposure, Decimal(0))


def _check(query: str, limit: int, cursor: str) -> None:
    violations = []
    if len(query) > MAX_QUERY_CHARS or not query.isprintable():
        violations.append(FieldViolation("query", f"at most {MAX_QUERY_CHARS} printable characters"))
    if not 0 <= limit <= MAX_PAGE:
        violations.append(FieldViolation("limit", f"1 to {MAX_PAGE} (0: {DEFAULT_PAGE})"))
    if len(cursor) > 64 or not cursor.isprintable():
        violations.append(FieldViolation("cursor", "use next_cursor of the previous page"))
    if violations:
        raise InvalidArgument("invalid customer search", violations)


async def search(db: Database, query: str, limit: int, cursor: str) -> tuple[list[CustomerView], str]:
    """Customers whose id starts with `query` or whose name holds it (any case), by id; one page and the
    next page's cursor ("" on the last)."""
    _check(query, limit, cursor)
    limit = limit or DEFAULT_PAGE
    async with db.reading() as work:
        found = await work.repo(MasterDataRepository).search_customers(query.strip(), limit + 1, cursor)
    page = [CustomerView(customer, exposure) for customer, exposure in found[:limit]]
    return page, (page[-1].customer.customer_id if len(found) > limit else "")


async def get(db: Database, customer_id: str) -> CustomerView:
    async with db.reading() as work:
        customer = await work.repo(MasterDataRepository).customer(customer_id)
        if customer is None:
            raise NotFound(f"customer {customer_id} not found")
        exposure = work.repo(ExposureRepository)
        return CustomerView(
            customer, await exposure.open_exposure(customer_id), await exposure.open_orders(customer_id)
        )
