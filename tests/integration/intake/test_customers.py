"""The desk's customers on a real database (SQLite and PostgreSQL): search by id or name, paged, and one
customer with its terms, credit limit, open exposure and open orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderdesk import errors
from services.intake import customers
from services.intake.proto import customer_to_proto
from tests.integration.intake.test_checks_service import deliver, order_event
from tests.integration.intake.test_intake_service import intake

UNIQUE_NAME = "Zhāng & Söhne_100% GmbH"


async def desk(make_database):
    service = await intake(make_database)
    await service.import_master_data(
        "customers",
        "customer_id,name,tier,status,credit_limit,currency,payment_terms,email,phone,ship_to_line1,"
        "ship_to_city,ship_to_postal_code,ship_to_country\n"
        f'X-100,"{UNIQUE_NAME}",key,active,1000,EUR,NET45 NET30,a@zs.example,+49 1,Hafen 1,Hamburg,20457,DE\n',
    )
    return service


async def test_search_by_the_ids_beginning_or_any_part_of_the_name_paged(make_database):
    service = await desk(make_database)
    page, cursor = await customers.search(service.db, "c000", 5, "")
    assert [v.customer.customer_id for v in page] == ["C0001", "C0002", "C0003", "C0004", "C0005"]
    rest, end = await customers.search(service.db, "c000", 5, cursor)
    assert [v.customer.customer_id for v in rest] == ["C0006", "C0007", "C0008", "C0009"] and end == ""
    by_name, _ = await customers.search(service.db, "0042 ltd", 10, "")
    assert [v.customer.customer_id for v in by_name] == ["C0042"]
    assert [v.customer.customer_id for v in (await customers.search(service.db, "SÖHNE", 10, ""))[0]] == [
        "X-100"
    ]
    # % and _ are letters here, not wildcards.
    assert [v.customer.customer_id for v in (await customers.search(service.db, "_100%", 10, ""))[0]] == [
        "X-100"
    ]
    assert (await customers.search(service.db, "0_01", 10, ""))[0] == []
    everyone, cursor = await customers.search(service.db, "", 0, "")
    assert len(everyone) == 50 and cursor == "C0050"
    for bad, field in (
        ({"query": "x" * 101}, "query"),
        ({"limit": 500}, "limit"),
        ({"cursor": "\n"}, "cursor"),
    ):
        given = {"query": "", "limit": 10, "cursor": ""} | bad
        with pytest.raises(errors.InvalidArgument) as refused:
            await customers.search(service.db, **given)
        assert [v.field for v in refused.value.violations] == [field]


async def test_one_customer_with_terms_credit_exposure_and_open_orders(make_database):
    service = await desk(make_database)
    await deliver(
        service,
        order_event("ORD-1", "confirmed", 2, "250.50", customer="X-100", terms="NET45"),
        order_event("ORD-2", "confirmed", 2, "100.00", customer="X-100", terms="NET45"),
        order_event("ORD-3", "confirmed", 2, "40.00", customer="X-100", terms="NET45"),
        order_event("ORD-3", "cancelled", 9, "40.00", customer="X-100", terms="NET45"),
    )
    detail = customer_to_proto(await customers.get(service.db, "X-100"))
    assert (detail.name, detail.tier, detail.status, detail.currency) == (UNIQUE_NAME, "key", "active", "EUR")
    assert list(detail.payment_terms) == ["NET45", "NET30"]
    assert (detail.ship_to.line1, detail.ship_to.city, detail.ship_to.country) == ("Hafen 1", "Hamburg", "DE")
    assert Decimal(detail.credit_limit) == 1000 and Decimal(detail.open_exposure) == Decimal("350.50")
    assert Decimal(detail.available_credit) == Decimal("649.50") and detail.open_orders == 2
    found, _ = await customers.search(service.db, "söhne", 10, "")
    listed = customer_to_proto(found[0])
    assert Decimal(listed.open_exposure) == Decimal("350.50") and listed.open_orders == -1
    untouched = await customers.get(service.db, "C0003")
    assert untouched.open_exposure == 0 and untouched.open_orders == 0
    with pytest.raises(errors.NotFound):
        await customers.get(service.db, "NOPE")
