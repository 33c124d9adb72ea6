"""Erasing a customer's personal data in the partners' feeds on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from orderdesk import erasure, events
from orderdesk.personal_data import ERASED, token
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2
from services.notifier.erasure import NotifierErasure
from tests.integration.notifier.test_notifier_store import Msg, feed_of, notifier, shipment_event  # noqa: F401

ADDRESS = dict(
    name="Ada Lovelace", line1="12 Marylebone Road", city="London", postal_code="NW1 5LR", country="GB"
)


def order_event(order_id: str, status: str, version: int, customer: str = "C-ERASE") -> events_pb2.Event:
    order = orders_pb2.Order(
        order_id=order_id,
        partner_id="P-SHOP",
        customer_id=customer,
        status=status,
        ship_to=common_pb2.Address(**ADDRESS, phone="+44 20 7946 0001"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        total_amount="6.50",
    )
    changes = [orders_pb2.FieldChange(field="ship_to.city", before="Leeds", after="London")]
    return events.new_event(
        f"order.{status}",
        aggregate_id=order_id,
        version=version,
        order_id=order_id,
        reason="ship_to.city: Leeds -> London" if status == "changed" else "",
        order=events_pb2.OrderEvent(
            status=status, order=order, changes=changes if status == "changed" else []
        ),
    )


def ask(order_ids, request_id: str = "ER-1") -> erasure.Request:
    return erasure.Request.from_proto(
        common_pb2.EraseCustomerRequest(
            customer_id="C-ERASE",
            scope="expired",
            request_id=request_id,
            actor=common_pb2.Actor(id="key:desk@P-ADMIN"),
            order_ids=order_ids,
            whole_customer=True,
        )
    )


async def test_the_feed_entries_of_the_orders_named_lose_the_personal_data(notifier):  # noqa: F811
    db, service, consumer = notifier
    for event in (
        order_event("ORD-E", "received", 1),
        order_event("ORD-E", "changed", 2),
        shipment_event("ORD-E", "shipped"),
        order_event("ORD-E", "completed", 3),
        order_event("ORD-KEEP", "received", 1),
    ):
        await consumer.handle(Msg(event))
    before = await feed_of(service, "P-SHOP")
    assert len(before) == 5 and all(
        "Marylebone" in e["body"] for e in before if e["type"].startswith("order.")
    )

    report = await NotifierErasure(db).erase(ask(["ORD-E"]))
    assert report.erased == {"feed": 3} and report.order_ids == ("ORD-E",)
    after = await feed_of(service, "P-SHOP")
    assert [(e["sequence"], e["event_id"], e["type"], e["order_id"]) for e in after] == [
        (e["sequence"], e["event_id"], e["type"], e["order_id"]) for e in before
    ]
    import json

    for entry in after:
        body = json.loads(entry["body"])
        if entry["order_id"] == "ORD-KEEP":
            assert body["data"]["ship_to"]["name"] == "Ada Lovelace"
            continue
        for value in ("Ada Lovelace", "Marylebone", "London", "Leeds", "NW1 5LR", "7946"):
            assert value not in entry["body"]
        if entry["type"].startswith("order."):
            assert body["data"]["ship_to"] == {
                "name": token("C-ERASE"),
                "line1": ERASED,
                "city": ERASED,
                "postal_code": ERASED,
                "country": "GB",
                "phone": ERASED,
            }
            assert body["data"]["lines"] == [{"sku": "A", "quantity": "2", "unit_price": "3.25"}]
            assert body["data"]["total_amount"] == "6.50" and body["status"] == entry["type"].split(".")[1]
    changed = json.loads(after[1]["body"])
    assert changed["changes"] == [{"field": "ship_to.city", "before": ERASED, "after": ERASED}]
    assert changed["reason"] == f"ship_to.city: {ERASED} -> {ERASED}"

    again = await NotifierErasure(db).erase(ask(["ORD-E"], request_id="ER-2"))
    assert again.erased == {"feed": 0}
    assert await feed_of(service, "P-SHOP") == after
