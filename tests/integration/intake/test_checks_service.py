"""Intake's checks on a real database (SQLite and PostgreSQL): credit exposure kept from orders' events
and booked under the credit limit, duplicate partner references under races and rollbacks, customer
prices and warehouses imported and read back. The rules these feed are tested on a fake unit of work in
tests/unit/intake/test_service.py."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from orderdesk import errors
from orderdesk.v1 import events_pb2, intake_pb2, orders_pb2
from services.intake import consumers
from services.intake.domain.config import IntakeConfig
from services.intake.store import ExposureRepository, MasterDataRepository, external_refs, order_exposure
from tests.integration.intake.test_intake_service import (
    DEMO,
    count,
    intake,
    request,
    submit,
)
from tests.unit.intake.test_service import codes

C0001_LIMIT = Decimal(50000)  # demo: standard, NET30


def order_event(
    order_id: str,
    status: str,
    version: int,
    amount: str = "100.00",
    customer: str = "C0001",
    terms: str = "NET30",
) -> events_pb2.Event:
    return events_pb2.Event(
        event_id=f"{order_id}-{version}",
        type=f"order.{status}",
        aggregate_type="order",
        aggregate_id=order_id,
        aggregate_version=version,
        order_id=order_id,
        order=events_pb2.OrderEvent(
            status=status,
            order=orders_pb2.Order(
                order_id=order_id,
                customer_id=customer,
                total_amount=amount,
                payment_terms=terms,
                status=status,
            ),
        ),
    )


async def deliver(service, *events) -> None:
    subscription = consumers.subscriptions(service)[0]
    assert (subscription.durable, subscription.filter_subject) == (
        "intake-order-exposure",
        "orderdesk.order.>",
    )
    for event in events:
        async with service.db.transaction() as tx:
            await subscription.handler(tx, event)


async def exposure(service, customer: str = "C0001") -> Decimal:
    async with service.db.read() as conn:
        return await ExposureRepository(conn).open_exposure(customer)


# --- exposure from orders' events ---------------------------------------------------------------
@pytest.mark.parametrize(("until", "after_completion"), [("payment", "1200.50"), ("completion", "0")])
async def test_order_events_open_and_close_exposure(make_database, until, after_completion):
    """Confirmation opens an order's exposure and cancellation closes it; completion closes it only where
    credit is kept until completion (the default keeps it until finance reports the payment)."""
    service = await intake(make_database, config=IntakeConfig(exposure_until=until))
    await deliver(
        service, order_event("ORD-A", "received", 1), order_event("ORD-A", "confirmed", 2, "1200.50")
    )
    await deliver(service, order_event("ORD-B", "received", 1), order_event("ORD-B", "on_hold", 2, "700"))
    assert await exposure(service) == Decimal("1200.50")  # a held order is no exposure yet
    await deliver(
        service, order_event("ORD-B", "confirmed", 3, "700"), order_event("ORD-B", "allocated", 4, "700")
    )
    assert await exposure(service) == Decimal("1900.50")
    await deliver(
        service,
        order_event("ORD-A", "shipped", 5, "1200.50"),
        order_event("ORD-A", "completed", 6, "1200.50"),
    )
    await deliver(service, order_event("ORD-B", "cancelled", 5, "700"))
    assert await exposure(service) == Decimal(after_completion)
    assert await exposure(service, "C0002") == 0


async def test_stale_and_repeated_events_change_nothing(make_database):
    service = await intake(make_database)
    await deliver(
        service, order_event("ORD-S", "confirmed", 2, "500"), order_event("ORD-S", "cancelled", 4, "500")
    )
    await deliver(
        service,
        order_event("ORD-S", "allocated", 3, "500"),
        order_event("ORD-S", "confirmed", 2, "500"),
        order_event("ORD-S", "cancelled", 4, "500"),
    )
    assert await exposure(service) == 0
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).get("ORD-S") == ("C0001", Decimal(500), False, 4)


async def test_prepaid_orders_never_count_as_exposure(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-P", "confirmed", 2, "999", terms="PREPAID"))
    assert await exposure(service) == 0 and await count(service.db, order_exposure) == 0


async def test_an_approved_order_counts_at_once_and_events_take_over(make_database):
    service = await intake(make_database)
    done = await submit(
        service, request(lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=10, unit_price="31.57")])
    )
    assert codes(done) == []
    assert await exposure(service) == Decimal("315.70")
    order_id = done.order.order_id
    await deliver(
        service,
        order_event(order_id, "received", 1, "315.70"),
        order_event(order_id, "confirmed", 2, "315.70"),
    )
    assert await exposure(service) == Decimal("315.70")
    await deliver(service, order_event(order_id, "cancelled", 3, "315.70"))
    assert await exposure(service) == 0


async def test_open_orders_plus_this_one_beyond_the_limit_are_held(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-OLD", "allocated", 3, "49900.00"))
    small = await submit(
        service, request(lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")])
    )
    assert codes(small) == []  # 49900 + 94.71 fits
    big = await submit(
        service, request(lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")])
    )
    assert codes(big) == ["credit_limit_exceeded"]  # 49994.71 + 94.71 does not
    assert "49994.71" in big.order.hold_reasons[0].message and "50000" in big.order.hold_reasons[0].message


async def test_a_burst_from_one_customer_cannot_overshoot_the_limit(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-OLD", "confirmed", 2, "49000.00"))
    line = [
        intake_pb2.SubmitLine(sku="BRK-001", quantity=10, unit_price="31.57")
    ]  # 315.70 each: 3 fit in 1000
    answers = await asyncio.gather(
        *[submit(service, request(external_ref=f"PO-{n}", lines=line)) for n in range(8)]
    )
    approved = [a for a in answers if not codes(a)]
    assert len(approved) == 3
    assert all(codes(a) == ["credit_limit_exceeded"] for a in answers if codes(a))
    assert await exposure(service) == Decimal("49000.00") + 3 * Decimal("315.70")
    assert await exposure(service) <= C0001_LIMIT


# --- duplicate partner references ----------------------------------------------------------------------
async def test_one_reference_raced_under_many_keys_passes_once(make_database):
    service = await intake(make_database)
    answers = await asyncio.gather(
        *[submit(service, request(key=f"race-{n}", external_ref="PO-RACE")) for n in range(6)]
    )
    assert sorted(len(codes(a)) for a in answers) == [0, 1, 1, 1, 1, 1]
    assert await count(service.db, external_refs) == 1


async def test_a_reused_key_leaves_no_reference_behind(make_database):
    service = await intake(make_database)
    await submit(service, request(key="k-same", external_ref="PO-1"))
    with pytest.raises(errors.InvalidArgument):
        await submit(service, request(key="k-same", external_ref="PO-2"))
    async with service.db.read() as conn:
        refs = (await conn.execute(select(external_refs.c.external_ref))).scalars().all()
    assert refs == ["PO-1"]


# --- customer prices ---------------------------------------------------------------------------------
PRICES_HEADER = "customer_id,sku,unit_price,currency\n"


async def test_customer_prices_import_and_replace_the_list_price(make_database):
    service = await intake(make_database)
    assert (
        await service.import_master_data(
            "prices", PRICES_HEADER + "C0001,BRK-001,29.90,USD\nC0002,BRK-001,30,USD\n"
        )
        == 2
    )
    line = lambda price: [intake_pb2.SubmitLine(sku="BRK-001", quantity=1, unit_price=price)]  # noqa: E731
    assert codes(await submit(service, request(lines=line("29.90")))) == []
    assert codes(await submit(service, request(lines=line("31.57")))) == ["price_mismatch"]  # the list price
    assert codes(await submit(service, request(customer_id="C0003", lines=line("31.57")))) == []
    # a second import updates by (customer, sku)
    await service.import_master_data("prices", PRICES_HEADER + "C0001,BRK-001,28.00,usd\n")
    async with service.db.read() as conn:
        prices = await MasterDataRepository(conn).customer_prices("C0001", {"BRK-001", "BRK-002"})
    assert {sku: (str(p.unit_price), p.currency) for sku, p in prices.items()} == {
        "BRK-001": ("28.00", "USD")
    }


async def test_a_bad_prices_csv_imports_nothing(make_database):
    service = await intake(make_database)
    with pytest.raises(errors.InvalidArgument) as err:
        await service.import_master_data(
            "prices", PRICES_HEADER + "C0001,BRK-001,1,USD\nC0001,BRK-002,free,USD\n"
        )
    assert [v.field for v in err.value.violations] == ["row 3.unit_price"]
    async with service.db.read() as conn:
        assert await MasterDataRepository(conn).customer_prices("C0001", {"BRK-001"}) == {}


# --- warehouses --------------------------------------------------------------------------------------------
async def test_warehouses_import_and_read_back(make_database):
    service = await intake(make_database)
    async with service.db.read() as conn:
        found = await MasterDataRepository(conn).warehouses()
    assert sorted(found) == ["WH-CHI", "WH-HAM", "WH-SHA"]
    chicago = found["WH-CHI"]
    assert (chicago.time_zone, chicago.cutoff, chicago.working_days) == (
        "America/Chicago",
        dt.time(14),
        frozenset(range(6)),
    )
    # the older format (a cut-off hour in UTC) still imports: UTC, Monday to Friday
    await service.import_master_data(
        "warehouses",
        "warehouse,name,country,cutoff_hour_utc,transit_days_domestic,transit_days_international\n"
        "WH-HAM,Hamburg DC,de,15,1,5\n",
    )
    async with service.db.read() as conn:
        found = await MasterDataRepository(conn).warehouses()
    ham = found["WH-HAM"]
    assert (ham.country, ham.time_zone, ham.cutoff, ham.working_days, ham.transit_days_domestic) == (
        "DE",
        "UTC",
        dt.time(15),
        frozenset(range(5)),
        1,
    )
    with pytest.raises(errors.InvalidArgument) as err:
        await service.import_master_data(
            "warehouses",
            "warehouse,name,country,time_zone,cutoff,working_days,transit_days_domestic,transit_days_international\n"
            "WH-X,X,DE,Europe/Hamburg,25:00,Mon-Funday,1,5\n",
        )
    assert [v.field for v in err.value.violations] == [
        "row 2.time_zone",
        "row 2.cutoff",
        "row 2.working_days",
    ]


# --- the demo data ---------------------------------------------------------------------------------------
async def test_the_demo_data_imports_into_intake(make_database):
    service = await intake(make_database, demo=False)
    for kind in ("customers", "products", "warehouses"):
        assert await service.import_master_data(kind, (DEMO / f"{kind}.csv").read_text()) > 0
