"""Erasing a customer's personal data in orders on a real database (SQLite and PostgreSQL): what goes, what
stays (quantities, amounts, statuses, the KPI report), the register, and the refusal while an order is open."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from orderdesk import erasure, errors
from orderdesk.erasure import erasures_table
from orderdesk.outbox import outbox_table
from orderdesk.personal_data import ERASED, token
from orderdesk.v1 import common_pb2, events_pb2, orders_pb2, shipping_pb2
from services.orders import changes
from services.orders.domain import Allocation
from services.orders.erasure import OrdersErasure
from services.orders.service import OrdersService
from services.orders.store import OrderRepository, order_history
from services.orders.store import orders as orders_table
from tests.integration.orders.test_store import MIGRATIONS

CUSTOMER = "C-ERASE"
ADDRESS = dict(
    name="Ada Lovelace", line1="12 Marylebone Road", city="London", postal_code="NW1 5LR", country="GB"
)
TODAY = dt.datetime.now(dt.UTC).date()
PERIOD = (str(TODAY - dt.timedelta(days=2)), str(TODAY + dt.timedelta(days=2)))  # a KPI report around now
PERSONAL = ("Ada Lovelace", "Marylebone", "London", "NW1 5LR", "+44 20 7946", "Leeds")


def request(order_id: str, customer: str = CUSTOMER) -> orders_pb2.CreateOrderRequest:
    return orders_pb2.CreateOrderRequest(
        order_id=order_id,
        partner_id="P-SHOP",
        channel="api",
        external_ref=f"PO-{order_id}",
        customer_id=customer,
        ship_to=common_pb2.Address(**ADDRESS, phone="+44 20 7946 0001"),
        lines=[orders_pb2.OrderLine(sku="A", quantity=2, unit_price="3.25")],
        priority=100,
        currency="GBP",
    )


async def completed_order(orders: OrdersService, order_id: str) -> None:
    """An order of the customer moved once (Leeds -> London), with a desk note and a message, then completed."""
    await orders.create(request(order_id))

    def moved_from_leeds(o) -> None:  # an accepted address change, as a change request records it
        o.change_log.append(
            changes.ChangeRecord(
                o.version + 1,
                o.created_at,
                "key:shop@P-SHOP",
                ("ship_to",),
                "Ada Lovelace moved",
                (changes.FieldChange("ship_to.city", "Leeds", "London"),),
            )
        )
        o.version += 1
        o.apply_reservation(o.created_at, [Allocation("A", "W1", 2)], {})

    async with orders.db.transaction() as tx:
        await orders.apply_to_order(tx, order_id, moved_from_leeds)
    for status in ("created", "shipped", "delivered"):
        async with orders.db.transaction() as tx:
            await orders.record_shipment(
                tx,
                shipping_pb2.Shipment(
                    shipment_id=f"SHP-{order_id}",
                    order_id=order_id,
                    warehouse="W1",
                    status=status,
                    lines=[shipping_pb2.ShipmentLine(sku="A", quantity=2)],
                    on_time=True,
                ),
            )

    async with orders.db.transaction() as tx:
        await orders.apply_to_order(
            tx,
            order_id,
            lambda o: o.add_note(o.created_at, "desk:ann@acme.example (clerk)", "Ada Lovelace phoned"),
        )
        await orders.apply_to_order(
            tx,
            order_id,
            lambda o: o.add_note(
                o.created_at, "desk:ann@acme.example (clerk)", "Dear Ada Lovelace, sent", "customer"
            ),
        )


def ask(scope: str = "all", request_id: str = "ER-1", customer: str = CUSTOMER) -> erasure.Request:
    return erasure.Request.from_proto(
        common_pb2.EraseCustomerRequest(
            customer_id=customer,
            scope=scope,
            request_id=request_id,
            actor=common_pb2.Actor(id="key:desk@P-ADMIN"),
        )
    )


async def snapshot(orders: OrdersService, order_id: str) -> dict:
    """What an erasure must not change (the version moves: it guards against a concurrent writer)."""
    order = await orders.get(order_id, "")
    async with orders.db.read() as conn:
        row = (
            (await conn.execute(select(orders_table).where(orders_table.c.order_id == order_id)))
            .mappings()
            .one()
        )
    return {
        **{
            k: v
            for k, v in row.items()
            if k not in ("ship_to", "change_log", "exceptions", "notes", "version")
        },
        "status": order.status.value,
        "lines": [
            (x.sku, x.quantity, str(x.unit_price), x.allocated, x.shipped, x.delivered) for x in order.lines
        ],
        "total": str(order.total_amount),
        "history": [(h.status.value, h.at) for h in order.history],
        "created_at": order.created_at,
        "customer_id": order.customer_id,
    }


async def order_payloads(orders: OrdersService, order_id: str) -> list[events_pb2.Event]:
    async with orders.db.read() as conn:
        rows = (await conn.execute(select(outbox_table.c.payload).order_by(outbox_table.c.id))).all()
    return [e for e in (events_pb2.Event.FromString(r.payload) for r in rows) if e.order_id == order_id]


async def stored_text(orders: OrdersService, order_id: str) -> str:
    """Everything orders keeps about the order, as text: its row, history and events."""
    async with orders.db.read() as conn:
        order = await OrderRepository(conn).get(order_id)
        reasons = (
            await conn.execute(select(order_history.c.reason).where(order_history.c.order_id == order_id))
        ).all()
    events = await order_payloads(orders, order_id)
    return json.dumps(
        [
            order.ship_to,
            [c.to_json() for c in order.change_log],
            [n.to_json() for n in order.notes],
            [r.reason for r in reasons],
        ]
    ) + "".join(str(e) for e in events)


@pytest.fixture
async def orders(make_database):
    return OrdersService(await make_database(MIGRATIONS))


async def test_erasure_takes_the_personal_data_of_closed_orders_and_leaves_the_books(orders):
    await completed_order(orders, "ORD-DONE")
    await orders.create(request("ORD-CANCEL"))
    await orders.decide("ORD-CANCEL", "", "cancel", "desk", "customer_request: Ada Lovelace called")
    await orders.create(request("ORD-OPEN"))
    await orders.create(request("ORD-OTHER", customer="C-OTHER"))
    before = {o: await snapshot(orders, o) for o in ("ORD-DONE", "ORD-CANCEL", "ORD-OPEN")}
    kpis_before = await orders.kpi_report(*PERIOD, "customer")
    erasing = OrdersErasure(orders.db, retention_days=0)

    # Refused while an order is open: nothing changes, nothing is recorded.
    with pytest.raises(errors.FailedPrecondition) as refused:
        await erasing.erase(ask("all"))
    assert refused.value.rule == "personal_data_retained"
    assert [v.field for v in refused.value.violations] == ["orders[ORD-OPEN]"]
    assert "Marylebone" in await stored_text(orders, "ORD-DONE")
    async with orders.db.read() as conn:
        assert (await conn.execute(select(erasures_table))).all() == []

    report = await erasing.erase(ask("expired"))
    assert report.order_ids == ("ORD-CANCEL", "ORD-DONE") and not report.whole_customer
    assert [(k.order_id, k.reason) for k in report.kept] == [("ORD-OPEN", "open")]
    assert report.erased["orders"] == 2 and report.erased["outbox"] > 0 and report.erased["reasons"] == 2

    for order_id in ("ORD-DONE", "ORD-CANCEL"):
        text = await stored_text(orders, order_id)
        assert not [p for p in PERSONAL if p in text], text
        assert await snapshot(orders, order_id) == before[order_id]  # quantities, amounts, statuses, dates
        order = await orders.get(order_id, "")
        assert order.ship_to["name"] == token(CUSTOMER) and order.ship_to["country"] == "GB"
        assert order.ship_to["line1"] == ERASED
        assert [e.order.order.ship_to.name for e in await order_payloads(orders, order_id)] == [
            token(CUSTOMER)
        ] * len(await order_payloads(orders, order_id))
    done = await orders.get("ORD-DONE", "")
    assert [(c.field, c.before, c.after) for c in done.change_log[0].changes] == [
        ("ship_to.city", ERASED, ERASED)
    ]
    assert done.change_log[0].reason == f"{ERASED} moved"
    assert [n.text for n in done.notes] == [f"{ERASED} phoned", f"Dear {ERASED}, sent"]
    messages = [
        e.order.message.text for e in await order_payloads(orders, "ORD-DONE") if e.type == "order.message"
    ]
    assert messages == [f"Dear {ERASED}, sent"]
    cancelled = await orders.get("ORD-CANCEL", "")
    assert cancelled.history[-1].reason == f"customer_request: {ERASED} called"
    # The open order and another customer's keep everything.
    assert "Marylebone" in await stored_text(orders, "ORD-OPEN")
    assert "Marylebone" in await stored_text(orders, "ORD-OTHER")
    assert await snapshot(orders, "ORD-OPEN") == before["ORD-OPEN"]
    assert await orders.kpi_report(*PERIOD, "customer") == kpis_before

    # The register: who asked, when, what was done.
    async with orders.db.read() as conn:
        (row,) = (await conn.execute(select(erasures_table))).all()
    assert (row.request_id, row.customer_id, row.scope, row.actor) == (
        "ER-1",
        CUSTOMER,
        "expired",
        "key:desk@P-ADMIN",
    )
    assert row.report["erased"]["orders"] == 2

    # The same request again answers the first report; a new one changes nothing.
    assert await erasing.erase(ask("expired")) == report
    text_after = await stored_text(orders, "ORD-DONE")
    again = await erasing.erase(ask("expired", request_id="ER-2"))
    assert sum(again.erased.values()) == 0 and again.order_ids == report.order_ids
    assert await stored_text(orders, "ORD-DONE") == text_after
    async with orders.db.read() as conn:
        assert len((await conn.execute(select(erasures_table))).all()) == 2


async def test_an_order_closed_within_the_retention_keeps_its_data_until_it_has_passed(orders):
    await completed_order(orders, "ORD-RECENT")
    erasing = OrdersErasure(orders.db, retention_days=30)
    with pytest.raises(errors.FailedPrecondition) as refused:
        await erasing.erase(ask("all"))
    assert refused.value.violations[0].reason == "within_retention"
    report = await erasing.erase(ask("expired"))
    assert report.order_ids == () and report.kept[0].reason == "within_retention"
    closed_at = (await orders.get("ORD-RECENT", "")).history[-1].at
    assert report.kept[0].until == closed_at + dt.timedelta(days=30)
    assert "Marylebone" in await stored_text(orders, "ORD-RECENT")
    # A customer with nothing in orders: nothing to erase, nothing stays.
    nobody = await erasing.erase(ask("all", request_id="ER-9", customer="C-NOBODY"))
    assert nobody.order_ids == () and nobody.whole_customer


async def test_archived_orders_are_erased_in_the_archive_and_stay_archived(orders):
    from orderdesk.config import ArchiveSettings
    from services.orders.archive.job import Archiver
    from services.orders.kpi.store import FACTS
    from services.orders.store import ARCHIVE

    await completed_order(orders, "ORD-ARCH")
    await orders.create(request("ORD-ARCH-C"))
    await orders.decide("ORD-ARCH-C", "", "cancel", "desk", "customer_request: Ada Lovelace called")
    await orders.create(request("ORD-NEWEST", customer="C-OTHER"))  # the archive never takes the newest
    archived = await Archiver(orders.db, ArchiveSettings(after_days=30)).run_pass(after_days=0)
    assert archived.archived == 2

    async def archived_rows(order_id: str) -> dict:
        async with orders.db.read() as conn:
            row = (
                (await conn.execute(select(ARCHIVE.orders).where(ARCHIVE.orders.c.order_id == order_id)))
                .mappings()
                .one()
            )
            reasons = [
                r.reason
                for table in (ARCHIVE.history, FACTS[True])
                for r in await conn.execute(select(table.c.reason).where(table.c.order_id == order_id))
            ]
        return {"row": dict(row), "reasons": reasons}

    before = {o: await archived_rows(o) for o in ("ORD-ARCH", "ORD-ARCH-C")}
    assert "Marylebone" in json.dumps(before["ORD-ARCH"]["row"]["ship_to"])
    kpis_before = await orders.kpi_report(*PERIOD, "customer")

    report = await OrdersErasure(orders.db, retention_days=0).erase(ask("all"))
    assert report.order_ids == ("ORD-ARCH", "ORD-ARCH-C") and report.whole_customer
    assert report.erased["archived_orders"] == 2 and report.erased["orders"] == 0
    assert report.erased["reasons"] == 2  # the cancellation's reason in the archived history and ledger

    for order_id in ("ORD-ARCH", "ORD-ARCH-C"):
        after = await archived_rows(order_id)
        assert not [p for p in PERSONAL if p in json.dumps(after, default=str)], after
        assert (
            after["row"]["ship_to"]["name"] == token(CUSTOMER) and after["row"]["ship_to"]["country"] == "GB"
        )
        unchanged = ("ship_to", "change_log", "exceptions", "notes", "version")
        assert {k: v for k, v in after["row"].items() if k not in unchanged} == {
            k: v for k, v in before[order_id]["row"].items() if k not in unchanged
        }
        order = await orders.get(order_id, "")  # still found by id, still archived
        assert order.archived and order.ship_to["line1"] == ERASED
    assert (await orders.get("ORD-ARCH-C", "")).history[-1].reason == f"customer_request: {ERASED} called"
    assert (await orders.get("ORD-ARCH", "")).change_log[0].changes[0].before == ERASED
    async with orders.db.read() as conn:
        assert (await conn.execute(select(orders_table.c.order_id))).scalars().all() == ["ORD-NEWEST"]
    assert await orders.kpi_report(*PERIOD, "customer") == kpis_before
    again = await OrdersErasure(orders.db, retention_days=0).erase(ask("all", request_id="ER-2"))
    assert sum(again.erased.values()) == 0
