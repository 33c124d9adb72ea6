"""The return policy on a real database (SQLite and PostgreSQL): master data, held RMAs stored and decided,
cancellation releasing the units, every step in the outbox."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from orderdesk import errors
from orderdesk.v1 import common_pb2, returns_pb2
from services.returns.api import ReturnsApi
from services.returns.policy import PolicySettings
from services.returns.service import ReturnsService
from tests.integration.returns.test_returns_store import MIGRATIONS, NOW, FakeOrders, return_events

PRODUCTS = (
    "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status,"
    "returnable,return_window_days\n"
    "A,Part A,12.50,USD,false,0,1,1,active,true,\n"
    "S,Sealed software,99.00,USD,false,0,1,1,active,false,\n"
    "Q,Quick part,5.00,USD,false,0,1,1,active,true,3\n"
)
CUSTOMERS = (
    "customer_id,name,tier,status,credit_limit,currency,payment_terms,email,phone,ship_to_line1,ship_to_city,"
    "ship_to_postal_code,ship_to_country\n"
    "C-KEY,Key account,key,active,1000,USD,NET30,,,,,,\n"
    "C-NEW,New account,new,active,1000,USD,NET30,,,,,,\n"
)


@pytest.fixture
async def orders():
    return FakeOrders()


@pytest.fixture
async def returns(make_database, orders):
    db = await make_database(MIGRATIONS)
    service = ReturnsService(
        db,
        orders,
        timeout=2.5,
        clock=lambda: NOW,
        policy=PolicySettings(tier_window_days={"key": 60}, value_thresholds={"USD": Decimal("200")}),
    )
    assert await service.import_csv("products", PRODUCTS) == 3
    assert await service.import_csv("customers", CUSTOMERS) == 2
    return service


def delivered(orders: FakeOrders, days_ago: int, customer: str = "C-NEW", **kwargs) -> str:
    order_id = orders.add(**kwargs)
    at = Timestamp()
    at.FromDatetime(NOW - dt.timedelta(days=days_ago))
    order = orders.orders[order_id]
    order.customer_id, order.currency = customer, "USD"
    order.history.add(status="completed", at=at)
    return order_id


def asked(order_id: str, *lines: tuple[str, int, str]) -> returns_pb2.CreateReturnRequest:
    return returns_pb2.CreateReturnRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        resolution="refund",
        lines=[returns_pb2.ReturnLine(sku=s, quantity=q, reason_code=r) for s, q, r in lines],
    )


async def test_a_late_return_is_held_stored_and_authorised_by_the_desk(returns, orders):
    order_id = delivered(orders, days_ago=40)
    rma = await returns.create(asked(order_id, ("A", 2, "no_longer_needed")))
    assert rma.status.value == "held" and [r.code for r in rma.hold_reasons] == ["outside_window"]

    stored = await returns.get(rma.rma_id, "P-SHOP")
    assert stored.hold_reasons == rma.hold_reasons and stored.currency == "USD"
    assert (str(stored.restocking_fee), str(stored.expected_refund)) == ("3.75", "21.25")
    with pytest.raises(errors.FailedPrecondition):
        await returns.receive(rma.rma_id, "P-SHOP", "dock")

    done = await returns.authorise(rma.rma_id, "desk:ann", "loyal customer")
    assert (done.status.value, done.decision_note, done.version) == ("authorized", "loyal customer", 2)
    assert (await returns.authorise(rma.rma_id, "desk:ann", "again")).version == 2  # a repeat
    await returns.receive(rma.rma_id, "P-SHOP", "dock")
    refunded = await returns.inspect(
        rma.rma_id, "P-SHOP", [returns_pb2.InspectionLine(sku="A", quantity=2, outcome="restock")], "qa"
    )
    assert str(refunded.refund_amount) == "21.25"
    events = await return_events(returns, order_id)
    assert [e.type for e in events] == [
        "return.held",
        "return.authorized",
        "return.received",
        "return.refunded",
    ]
    assert getattr(getattr(events[0], "return"), "return").hold_reasons[0].code == "outside_window"


async def test_the_tier_and_the_products_window_and_flag_decide(returns, orders):
    key_order = delivered(orders, days_ago=40, customer="C-KEY")
    assert (await returns.create(asked(key_order, ("A", 1, "")))).status.value == "authorized"
    quick = delivered(orders, days_ago=5, customer="C-KEY", lines=[("Q", 4, 4, "5.00")], allocations=[])
    assert [r.code for r in (await returns.create(asked(quick, ("Q", 1, "")))).hold_reasons] == [
        "outside_window"
    ]
    sealed = delivered(orders, days_ago=1, lines=[("S", 1, 1, "99.00")], allocations=[])
    assert [r.code for r in (await returns.create(asked(sealed, ("S", 1, "")))).hold_reasons] == [
        "not_returnable"
    ]
    dear = delivered(orders, days_ago=1, lines=[("A", 40, 40, "12.50")], allocations=[])
    assert [r.code for r in (await returns.create(asked(dear, ("A", 17, "")))).hold_reasons] == [
        "above_value_threshold"
    ]


async def test_the_window_counts_working_days_where_the_countrys_calendar_was_imported(returns, orders):
    calendars = "scope,code,date,name\ncountry,FR,2026-11-11,Armistice\n"
    assert await returns.import_csv("calendars", calendars) == 1
    # 40 calendar days before 2026-12-10 is 2026-10-31: 27 working days in France (less 11 November)
    french = delivered(orders, days_ago=40)
    orders.orders[french].ship_to.country = "FR"
    held = await returns.create(asked(french, ("A", 1, "")))
    assert held.status.value == "authorized", held.hold_reasons
    american = delivered(orders, days_ago=40)
    orders.orders[american].ship_to.country = "US"  # no calendar imported: 40 calendar days > 30
    assert [r.code for r in (await returns.create(asked(american, ("A", 1, "")))).hold_reasons] == [
        "outside_window"
    ]


async def test_a_refused_or_cancelled_rma_gives_its_units_back(returns, orders):
    order_id = delivered(orders, days_ago=40)
    held = await returns.create(asked(order_id, ("A", 4, "")))
    with pytest.raises(errors.InvalidArgument):
        await returns.refuse(held.rma_id, "desk:ann", "")
    refused = await returns.refuse(held.rma_id, "desk:ann", "too late, and used")
    assert (refused.status.value, refused.decision_note) == ("refused", "too late, and used")

    fresh = delivered(orders, days_ago=1)
    rma = await returns.create(asked(fresh, ("A", 4, "")))
    with pytest.raises(errors.InvalidArgument):
        await returns.create(asked(fresh, ("A", 1, "")))  # all four are on the RMA
    with pytest.raises(errors.NotFound):
        await returns.cancel(rma.rma_id, "P-OTHER", "P-OTHER", "not mine")
    cancelled = await returns.cancel(rma.rma_id, "P-SHOP", "P-SHOP", "customer kept them")
    assert cancelled.status.value == "cancelled"
    assert (await returns.get(rma.rma_id, "")).status.value == "cancelled"
    again = await returns.create(asked(fresh, ("A", 4, "")))  # the units are free again
    assert again.status.value == "authorized"
    assert [e.type for e in await return_events(returns, fresh)] == [
        "return.authorized",
        "return.cancelled",
        "return.authorized",
    ]


async def test_the_api_carries_the_policy_and_the_decisions(returns, orders):
    api = ReturnsApi(returns)
    order_id = delivered(orders, days_ago=40)
    rma = await api.CreateReturn(asked(order_id, ("A", 2, "no_longer_needed")), None)
    assert rma.status == "held" and rma.hold_reasons[0].code == "outside_window"
    assert (rma.restocking_fee, rma.expected_refund, rma.lines[0].restocking_fee) == ("3.75", "21.25", "3.75")
    assert rma.lines[0].reason_code == "no_longer_needed"
    refused = await api.RefuseReturn(
        returns_pb2.ReturnDecisionRequest(rma_id=rma.rma_id, actor="desk:ann", reason="worn"), None
    )
    assert (refused.status, refused.decision_note) == ("refused", "worn")
    with pytest.raises(errors.InvalidArgument):
        await api.ImportMasterData(
            common_pb2.ImportCsvRequest(kind="stock", csv="sku,warehouse,on_hand\n"), None
        )


async def test_the_desk_lists_the_held_returns_oldest_first(returns, orders):
    first = await returns.create(asked(delivered(orders, days_ago=40), ("A", 1, "")))
    through = await returns.create(asked(delivered(orders, days_ago=1), ("A", 1, "")))
    theirs = delivered(orders, days_ago=40, partner="P-EDI")
    other = await returns.create(
        returns_pb2.CreateReturnRequest(
            order_id=theirs,
            partner_id="P-EDI",
            resolution="refund",
            lines=[returns_pb2.ReturnLine(sku="A", quantity=1)],
        )
    )
    api = ReturnsApi(returns)
    held = await api.ListReturns(returns_pb2.ListReturnsRequest(status="held"), None)
    ids = [r.rma_id for r in held.items]
    assert first.rma_id in ids and other.rma_id in ids and through.rma_id not in ids
    mine = await api.ListReturns(returns_pb2.ListReturnsRequest(status="held", partner_id="P-SHOP"), None)
    assert other.rma_id not in [r.rma_id for r in mine.items]
    assert (
        len((await api.ListReturns(returns_pb2.ListReturnsRequest(status="held", limit=1), None)).items) == 1
    )
    for bad in (returns_pb2.ListReturnsRequest(status="lost"), returns_pb2.ListReturnsRequest()):
        with pytest.raises(errors.InvalidArgument):
            await api.ListReturns(bad, None)
