"""The desk's order entry quote on a real database (SQLite and PostgreSQL): a line names its product by
SKU or by a part of its name, at the customer's price, with the stock and the earliest date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from orderdesk import errors
from services.intake import quotes
from services.intake.proto import line_quote_to_proto
from tests.integration.intake.test_intake_service import intake
from tests.unit.intake.fakes import FakeInventory


async def test_lines_by_sku_or_name_with_price_stock_and_earliest_date(make_database):
    inventory = FakeInventory(supply={"BRK-001": "2026-07-01"})
    service = await intake(make_database, inventory=inventory)
    await service.import_master_data(
        "prices", "customer_id,sku,unit_price,currency\nC0001,BRK-001,29.90,USD\n"
    )
    by_sku, by_name, several, none, empty, beyond = await quotes.quote(
        service,
        "C0001",
        "",
        [
            quotes.Query("BRK-001", 2),
            quotes.Query("brake pad set v12", 1),
            quotes.Query("Brake pad", 1),
            quotes.Query("NOPE-1", 1),
            quotes.Query("", 1),
            quotes.Query("BRK-001", 100_000),  # beyond the stock: the rest when inventory makes it
        ],
    )
    assert by_sku.product.sku == "BRK-001" and by_sku.unit_price == Decimal("29.90")  # the customer's price
    assert by_sku.available == sum(inventory.stock["BRK-001"].values())
    soon = dt.date.fromisoformat(by_sku.earliest)
    assert dt.date(2026, 6, 1) < soon < dt.date(2026, 7, 1)
    assert beyond.earliest == "2026-07-01"
    assert by_name.product.sku == "BRK-012" and by_name.unit_price == by_name.product.unit_price  # list price
    assert several.product is None and len(several.matches) == quotes.MAX_MATCHES
    assert all(m.name.startswith("Brake pad set") for m in several.matches)
    assert none.product is None and none.matches == [] and empty.product is None
    wire = line_quote_to_proto(by_sku)
    assert (wire.sku, wire.unit_price, wire.currency, wire.earliest_date) == (
        "BRK-001",
        "29.90",
        "USD",
        by_sku.earliest,
    )
    assert line_quote_to_proto(none).sku == ""


async def test_no_date_when_inventory_does_not_answer_and_bad_requests(make_database):
    service = await intake(make_database, inventory=FakeInventory(fail=True))
    [line] = await quotes.quote(service, "C0002", "", [quotes.Query("BRK-001", 1)])
    assert line.product.sku == "BRK-001" and line.available == -1 and line.earliest == ""
    with pytest.raises(errors.NotFound):
        await quotes.quote(service, "NOPE", "", [quotes.Query("BRK-001", 1)])
    with pytest.raises(errors.InvalidArgument) as refused:
        await quotes.quote(service, "C0001", "", [quotes.Query("x" * 201, 1)])
    assert [v.field for v in refused.value.violations] == ["lines[0].product"]
