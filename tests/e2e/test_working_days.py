"""Working days through every real process: a suite whose clock reads Friday 4 December 2026, 16:30 in
Hamburg (past its 15:00 cut-off), with the demo's calendars (Hamburg closed on Monday the 7th for its
stocktake). A partner's order placed then is promised on a working day, never on the weekend or the
closed Monday; the date it asks for is checked on the same calendar. Its own NATS and databases, and
ORDERDESK_CLOCK_AT instead of waiting for a Friday."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from devtools.devstack import Stack
from devtools.http import client_session
from orderdesk import masterdata
from orderdesk.calendar import CalendarBook, is_working_day
from tests.e2e.conftest import KEYS, WEBHOOK_ENV, Partner, _eventually, running_stack

pytestmark = pytest.mark.e2e

FRIDAY = "2026-12-04T15:30:00Z"
CUSTOMER = "C0006"  # standard, active, NET30, ships to DE: BRK-001 comes from Hamburg
DEMO = Path(__file__).resolve().parents[2] / "demo"
BOOK = CalendarBook(
    masterdata.parse("warehouses", (DEMO / "warehouses.csv").read_text()),
    masterdata.parse("calendars", (DEMO / "calendars.csv").read_text()),
)


@pytest.fixture(scope="module")
async def friday(tmp_path_factory, request):
    """Its own NATS and databases (PostgreSQL with ORDERDESK_TEST_E2E_BACKEND=postgresql, as the suite's)."""
    folder = tmp_path_factory.mktemp("working-days")
    # every process (and a restarted one) agrees: the clock read FRIDAY when the suite started
    clock = {"ORDERDESK_CLOCK_AT": FRIDAY, "ORDERDESK_CLOCK_SINCE": dt.datetime.now(dt.UTC).isoformat()}
    async with running_stack(
        request, lambda urls: Stack(data_dir=folder, database_urls=urls, extra_env={**WEBHOOK_ENV, **clock})
    ) as suite:
        async with client_session(total=30) as http:
            yield (
                Partner(http, suite.gateway_url, KEYS["shop"]),
                Partner(http, suite.gateway_url, KEYS["3pl"]),
            )


def order_body(**extra) -> dict:
    return {
        "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
        "customer_id": CUSTOMER,
        "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": "31.57"}],
        "payment_terms": "NET30",
        **extra,
    }


async def place(shop: Partner, body: dict) -> dict:
    code, order, _ = await shop.post("/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert code == 201, order
    return order


async def test_an_order_placed_on_a_friday_before_a_closed_monday_is_promised_on_a_working_day(friday):
    shop, operator = friday
    order = await place(shop, order_body())
    code, read, _ = await shop.get(f"/v1/orders/{order['order_id']}")
    assert code == 200 and read["history"][0]["at"].startswith("2026-12-04T15:3"), read  # the suite's clock

    async def shipment():
        code, body, _ = await operator.get(f"/v1/shipments?order_id={order['order_id']}")
        return body["items"][0] if code == 200 and body["items"] else None

    shipped_from = await _eventually(shipment)
    assert shipped_from["warehouse"] == "WH-HAM"
    promised = dt.date.fromisoformat(shipped_from["promised_delivery_date"])
    # past Friday's cut-off; Monday the 7th is the stocktake: it ships Tuesday, 2 working days: Thursday
    assert promised == dt.date(2026, 12, 10)
    assert is_working_day(promised, BOOK.destination("DE"))


async def test_the_date_a_partner_asks_for_is_checked_on_the_same_calendar(friday):
    shop, _ = friday
    # Wednesday the 9th is one working day too early: held, with Thursday the 10th proposed
    held = await place(shop, order_body(requested_delivery_date="2026-12-09"))
    assert held["status"] == "on_hold", held
    assert [r["code"] for r in held["hold_reasons"]] == ["delivery_date_infeasible"], held
    earliest = next(p["delivery_date"] for p in held["proposals"] if p["kind"] == "earliest_date")
    assert earliest == "2026-12-10"
    # Thursday the 10th is accepted as asked
    accepted = await place(shop, order_body(requested_delivery_date="2026-12-10"))
    assert accepted["hold_reasons"] == [] and accepted["status"] != "on_hold", accepted
