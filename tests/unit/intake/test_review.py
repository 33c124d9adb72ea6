"""intake.ReviewChange on a fake unit of work: the checks a change request can fail, run on the
changed order without storing anything (the credit check on stored exposure also runs on real
databases in tests/integration/intake/test_review_change.py)."""

from __future__ import annotations

from orderdesk import errors
from orderdesk.v1 import common_pb2, events_pb2, intake_pb2, orders_pb2
from services.intake import consumers
from services.intake.review import review_change
from tests.unit.intake.fakes import intake_service

ADDRESS = common_pb2.Address(
    name="Customer 0001 Ltd",
    line1="33 Harbour Road",
    city="Lyon",
    postal_code="69001",
    country="FR",
    phone="+1-555-1001",
)


def changed(lines, status: str = "allocated", requested: str = "", ship_to=ADDRESS) -> orders_pb2.Order:
    return orders_pb2.Order(
        order_id="ORD-R1",
        partner_id="P-SHOP",
        customer_id="C0001",
        ship_to=ship_to,
        payment_terms="NET30",
        status=status,
        requested_delivery_date=requested,
        lines=[orders_pb2.OrderLine(sku=s, quantity=q, unit_price=p) for s, q, p in lines],
    )


def review(order, added=(), previous_total="0", ship_to_changed=False) -> intake_pb2.ReviewChangeRequest:
    return intake_pb2.ReviewChangeRequest(
        order=order,
        previous_total=previous_total,
        ship_to_changed=ship_to_changed,
        added=[intake_pb2.ReviewLine(sku=s, quantity=q) for s, q in added],
    )


async def open_order(service, amount: str) -> None:
    subscription = consumers.subscriptions(service)[0]  # intake-order-exposure
    event = events_pb2.Event(
        event_id="e-1",
        type="order.allocated",
        aggregate_type="order",
        aggregate_id="ORD-R1",
        aggregate_version=3,
        order_id="ORD-R1",
        order=events_pb2.OrderEvent(
            status="allocated",
            order=orders_pb2.Order(
                order_id="ORD-R1",
                customer_id="C0001",
                total_amount=amount,
                payment_terms="NET30",
                status="allocated",
            ),
        ),
    )
    async with service.db.transaction() as tx:
        await subscription.handler(tx, event)


async def test_a_clean_change_passes():
    service = await intake_service()
    await open_order(service, "63.14")
    reasons = await review_change(
        service, review(changed([("BRK-001", 4, "31.57")]), [("BRK-001", 2)], "63.14")
    )
    assert reasons == []


async def test_price_only_for_the_lines_the_change_adds_to():
    service = await intake_service()
    order = changed([("BRK-001", 2, "1.00"), ("BRK-002", 1, "1.00")])
    reasons = await review_change(service, review(order, [("BRK-002", 1)]))
    assert [(r.code, r.field) for r in reasons if r.code == "price_mismatch"] == [
        ("price_mismatch", "lines[1].unit_price")
    ]


async def test_a_new_address_is_checked():
    service = await intake_service()
    bad = common_pb2.Address(name="X", line1="1 Road", city="Nowhere", postal_code="1", country="ZZ")
    reasons = await review_change(
        service, review(changed([("BRK-001", 2, "31.57")], ship_to=bad), ship_to_changed=True)
    )
    assert "country_unknown" in [r.code for r in reasons]


async def test_an_unknown_added_product_is_invalid():
    service = await intake_service()
    try:
        await review_change(service, review(changed([("NOPE-1", 1, "1.00")]), [("NOPE-1", 1)]))
    except errors.InvalidArgument as exc:
        assert exc.violations[0].field == "lines[0].sku"
    else:
        raise AssertionError("an unknown SKU must be refused")
