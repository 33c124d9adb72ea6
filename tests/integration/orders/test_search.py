"""The order search on a real database (SQLite and PostgreSQL): each filter, their combination with the
partner scope, keyset paging that stays put while orders arrive, and refusals naming the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from orderdesk import errors
from orderdesk.v1 import common_pb2, orders_pb2
from services.orders.service import OrdersService

MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "orders" / "migrations"
DAY0 = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self):
        self.now = DAY0

    def __call__(self) -> dt.datetime:
        return self.now


def order(order_id: str, **given) -> orders_pb2.CreateOrderRequest:
    skus = given.pop("skus", ("A",))
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id=given.get("partner", "P-SHOP"),
        channel=given.get("channel", "api"),
        external_ref=given.get("ref", "PO-1"),
        customer_id=given.get("customer", "C0001"),
        ship_to=common_pb2.Address(name="N", line1="L", city="C", postal_code="1", country="US"),
        lines=[orders_pb2.OrderLine(sku=sku, quantity=1, unit_price="2.00") for sku in skus],
        priority=given.get("priority", 100),
        currency="USD",
        hold_reasons=[common_pb2.Reason(code="price_mismatch", message="m")] if given.get("hold") else [],
    )


@pytest.fixture
async def desk(make_database):
    clock = Clock()
    service = OrdersService(await make_database(MIGRATIONS), clock=clock)
    # One order a day from Nov 1st: ids say what each one is.
    for n, (order_id, given) in enumerate(
        [
            ("ORD-1", {"ref": "4711", "customer": "C0001", "skus": ("A", "B")}),
            ("ORD-2", {"ref": "4712", "customer": "C0002", "skus": ("B",), "channel": "csv"}),
            ("ORD-3", {"ref": "4711", "customer": "C0002", "skus": ("C",), "partner": "P-EDI"}),
            ("ORD-4", {"ref": "4713", "customer": "C0001", "skus": ("A",), "channel": "batch", "hold": True}),
            ("ORD-5", {"ref": "4714", "customer": "C0003", "skus": ("B", "C"), "partner": "P-EDI"}),
            ("ORD-6", {"ref": "4711", "customer": "C0001", "skus": ("C",), "hold": True, "priority": 300}),
        ]
    ):
        clock.now = DAY0 + dt.timedelta(days=n)
        await service.create(order(order_id, **given))
    return service


async def ids(service: OrdersService, partner: str = "", status: str = "", **search) -> list[str]:
    found, _ = await service.list(partner, status, 50, "", **search)
    return [o.order_id for o in found]


async def test_each_filter_narrows_the_listing(desk):
    assert await ids(desk, external_ref="4711") == ["ORD-6", "ORD-3", "ORD-1"]
    assert await ids(desk, external_ref="471") == []  # exact, not a prefix
    assert await ids(desk, customer_id="C0002") == ["ORD-3", "ORD-2"]
    assert await ids(desk, sku="B") == ["ORD-5", "ORD-2", "ORD-1"]  # each order once, however many lines
    assert await ids(desk, sku="Z") == []
    assert await ids(desk, channel="csv") == ["ORD-2"]
    assert await ids(desk, channel="api") == ["ORD-6", "ORD-5", "ORD-3", "ORD-1"]
    # created_from includes its day from 00:00 UTC; created_to includes its whole day.
    assert await ids(desk, created_from="2026-11-04") == ["ORD-6", "ORD-5", "ORD-4"]
    assert await ids(desk, created_to="2026-11-02") == ["ORD-2", "ORD-1"]
    assert await ids(desk, created_from="2026-11-02", created_to="2026-11-03") == ["ORD-3", "ORD-2"]
    # An RFC 3339 end is excluded: ORD-2 was received at 09:00 on Nov 2nd.
    assert await ids(desk, created_from="2026-11-02T00:00:00Z", created_to="2026-11-02T09:00:00Z") == []
    assert await ids(desk, created_from="2026-11-02T10:00:00+01:00", created_to="2026-11-02T09:00:01Z") == [
        "ORD-2"
    ]


async def test_filters_combine_with_each_other_status_and_the_partner_scope(desk):
    assert await ids(desk, external_ref="4711", customer_id="C0001") == ["ORD-6", "ORD-1"]
    assert await ids(desk, external_ref="4711", sku="C") == ["ORD-6", "ORD-3"]
    assert await ids(desk, status="on_hold", customer_id="C0001") == ["ORD-6", "ORD-4"]
    assert await ids(desk, status="on_hold", sku="A", channel="batch") == ["ORD-4"]
    # A partner finds only its own orders, whatever it searches for.
    assert await ids(desk, "P-SHOP", external_ref="4711") == ["ORD-6", "ORD-1"]
    assert await ids(desk, "P-EDI", external_ref="4711") == ["ORD-3"]
    assert await ids(desk, "P-EDI", customer_id="C0001") == []
    assert await ids(desk, "P-SHOP", sku="C") == ["ORD-6"]
    assert await ids(desk, "P-EDI", created_from="2026-11-05") == ["ORD-5"]
    # The desk's queue, by priority, narrowed.
    queue, _ = await desk.list("", "on_hold", 50, "", order_by="priority", customer_id="C0001")
    assert [o.order_id for o in queue] == ["ORD-6", "ORD-4"]


async def test_paging_is_keyset_and_stable_while_orders_arrive(desk):
    first, cursor = await desk.list("", "", 2, "", sku="C")
    assert [o.order_id for o in first] == ["ORD-6", "ORD-5"] and cursor
    # A new match arrives between the pages: it is newer than the cursor, so the next page neither
    # repeats nor skips anything.
    desk.clock.now = DAY0 + dt.timedelta(days=10)
    await desk.create(order("ORD-7", skus=("C",)))
    second, cursor = await desk.list("", "", 2, cursor, sku="C")
    assert [o.order_id for o in second] == ["ORD-3"] and cursor == ""
    # By priority: the cursor keeps its place in (priority, arrival) order.
    page, cursor = await desk.list("", "", 1, "", order_by="priority", external_ref="4711")
    rest, end = await desk.list("", "", 5, cursor, order_by="priority", external_ref="4711")
    assert [o.order_id for o in page + rest] == ["ORD-6", "ORD-1", "ORD-3"] and end == ""


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-11-31"}, "created_to"),
        ({"created_from": "2026-11-02T10:00:00"}, "created_from"),  # no offset
        ({"created_from": "2026-11-03", "created_to": "2026-11-02"}, "created_to"),
        ({"external_ref": "x" * 129}, "external_ref"),
        ({"sku": "A\nB"}, "sku"),
        ({"customer_id": "C\x00"}, "customer_id"),
        ({"channel": "c" * 200}, "channel"),
    ],
)
async def test_bad_search_values_are_refused_naming_the_field(desk, given, field):
    with pytest.raises(errors.InvalidArgument) as refused:
        await desk.list("", "", 10, "", **given)
    assert [v.field for v in refused.value.violations] == [field]
