"""Erasing a customer's personal data in intake on a real database (SQLite and PostgreSQL): the master
record and the stored requests lose the personal fields, the rest stays, a replay still finds its order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orderdesk import erasure, errors
from orderdesk.personal_data import ERASED, token
from orderdesk.v1 import common_pb2, orders_pb2
from services.intake.erasure import IntakeErasure
from services.intake.store import ExposureRepository, MasterDataRepository, customers, idempotency_keys
from tests.integration.intake.test_intake_service import intake
from tests.unit.intake.test_service import request, submit

PERSONAL = (
    "Customer 0001 Ltd",
    "orders@customer0001.example",
    "+1-555-1001",
    "33 Harbour Road",
    "Lyon",
    "69001",
)


def ask(order_ids=(), *, whole: bool, request_id: str = "ER-1", customer: str = "C0001") -> erasure.Request:
    return erasure.Request.from_proto(
        common_pb2.EraseCustomerRequest(
            customer_id=customer,
            scope="expired",
            request_id=request_id,
            actor=common_pb2.Actor(id="key:desk@P-ADMIN"),
            order_ids=list(order_ids),
            whole_customer=whole,
        )
    )


async def stored(service, customer_id: str = "C0001") -> tuple[dict, list[bytes]]:
    async with service.db.read() as conn:
        row = (
            (await conn.execute(select(customers).where(customers.c.customer_id == customer_id)))
            .mappings()
            .one()
        )
        requests = [r.create_request for r in (await conn.execute(select(idempotency_keys))).all()]
    return dict(row), requests


async def test_the_master_record_and_the_stored_requests_lose_the_personal_fields(make_database):
    service = await intake(make_database)
    first = await submit(service, request("K-1"))
    other = await submit(service, request("K-2", customer_id="C0002"))
    async with service.db.read() as conn:
        exposure_before = await ExposureRepository(conn).open_exposure("C0001")
    row_before, _ = await stored(service)
    erasing = IntakeErasure(service.db, on_erased=service.masterdata.clear)

    # Only the orders named: the master record stays while the customer has orders that keep their data.
    report = await erasing.erase(ask([first.order.order_id], whole=False))
    assert report.erased == {"customers": 0, "idempotency_keys": 1}
    row, requests = await stored(service)
    assert row == row_before
    by_order = {orders_pb2.CreateOrderRequest.FromString(r).order_id: r for r in requests}
    mine = orders_pb2.CreateOrderRequest.FromString(by_order[first.order.order_id])
    assert (
        mine.ship_to.name == token("C0001") and mine.ship_to.line1 == ERASED and mine.ship_to.country == "FR"
    )
    assert [(x.sku, x.quantity, x.unit_price) for x in mine.lines] == [("BRK-001", 2, "31.57")]
    assert b"Harbour Road" in by_order[other.order.order_id]  # another customer's request is untouched

    # The whole customer: the master record's personal fields go, its terms and credit stay.
    report = await erasing.erase(ask([first.order.order_id], whole=True, request_id="ER-2"))
    assert report.erased == {"customers": 1, "idempotency_keys": 0} and report.whole_customer
    row, _ = await stored(service)
    assert [p for p in PERSONAL if p in str(row)] == []
    assert (row["name"], row["email"], row["phone"], row["ship_to_line1"]) == (
        token("C0001"),
        ERASED,
        ERASED,
        ERASED,
    )
    assert {
        k: row[k] for k in ("tier", "status", "credit_limit", "currency", "payment_terms", "ship_to_country")
    } == {
        k: row_before[k]
        for k in ("tier", "status", "credit_limit", "currency", "payment_terms", "ship_to_country")
    }
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).open_exposure("C0001") == exposure_before
        assert (await MasterDataRepository(conn).customer("C0001")).name == token("C0001")

    # A replay of the first submission still answers its order (the request hash is unchanged).
    again = await submit(service, request("K-1"))
    assert again.order.order_id == first.order.order_id

    # Asked again: nothing changes; the same request id answers its first report.
    assert (
        sum((await erasing.erase(ask([first.order.order_id], whole=True, request_id="ER-3"))).erased.values())
        == 0
    )
    assert (await erasing.erase(ask([first.order.order_id], whole=True, request_id="ER-2"))) == report
    assert (await stored(service))[0] == row

    with pytest.raises(errors.NotFound):
        await erasing.erase(ask([], whole=True, request_id="ER-4", customer="C-NOBODY"))
