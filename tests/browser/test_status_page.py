"""The end customer's status page: a link made through the partner API shows that order's status, the date to
expect and the parcels with tracking, in the visitor's language, and nothing else; a tampered, expired or
unknown link shows nothing; the page needs no sign-in and takes no POST."""

from __future__ import annotations

import datetime as dt
import time
import uuid

from babel.dates import format_date
from playwright.sync_api import expect

from orderdesk import statuslinks
from tests.browser.desk import WAREHOUSE_KEY, gateway_get, gateway_post, shot, submit_order

PRICE = "31.57"
REQUESTED = dt.date.today() + dt.timedelta(days=30)  # the date to expect: the customer's requested one


def shipped_order(suite) -> tuple[dict, str, str]:
    """An order of the shop, its parcel shipped by the warehouse: (the order, its PO number, the tracking number)."""
    reference = f"PO-{uuid.uuid4().hex[:8]}"
    order = submit_order(
        suite,
        {
            "external_ref": reference,
            "customer_id": "C0002",
            "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": PRICE}],
            "payment_terms": "NET30",
            "requested_delivery_date": REQUESTED.isoformat(),
        },
    )
    assert order["status"] in ("confirmed", "allocated"), order
    deadline = time.monotonic() + 60
    while not (
        found := gateway_get(suite, f"/v1/shipments?order_id={order['order_id']}", WAREHOUSE_KEY)["items"]
    ):
        assert time.monotonic() < deadline, "no shipment for the order within a minute"
        time.sleep(0.5)
    tracking = f"TRK{uuid.uuid4().hex[:8].upper()}"
    for step in (
        {"type": "picked"},
        {"type": "packed"},
        {"type": "shipped", "carrier": "DHL", "tracking_number": tracking},
    ):
        gateway_post(suite, f"/v1/shipments/{found[0]['shipment_id']}/events", step, WAREHOUSE_KEY)
    while (
        gateway_get(suite, f"/v1/orders/{order['order_id']}")["status"] != "shipped"
    ):  # by the shipping event
        assert time.monotonic() < deadline, "the order did not become shipped within a minute"
        time.sleep(0.5)
    return order, reference, tracking


def status_link(suite, order_id: str) -> str:
    return gateway_post(suite, f"/v1/orders/{order_id}/status-link", {"expires_in_days": 3})["url"]


def test_a_status_link_shows_status_and_tracking_in_the_visitors_language(page, browser, suite):
    order, reference, tracking = shipped_order(suite)
    url = status_link(suite, order["order_id"])
    assert url.startswith(suite.console_url + "/status/")

    page.goto(url)  # a fresh browser: no desk session
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Your order {order['order_id']}")
    expect(page.locator("dl.facts")).to_contain_text("Shipped")
    expect(page.locator("dl.facts")).to_contain_text(format_date(REQUESTED, "long", locale="en"))
    parcels = page.get_by_role("table", name="The parcels of this order, with their tracking numbers")
    expect(parcels.locator("tbody").get_by_role("row")).to_have_count(1)
    expect(parcels.locator("tbody").get_by_role("row").first).to_contain_text("DHL")
    expect(parcels.locator("tbody").get_by_role("row").first).to_contain_text(tracking)
    body = page.locator("body").inner_text()
    for private in ("$", PRICE, "63.14", reference, "C0002", "P-SHOP"):  # no prices, references, parties
        assert private not in body, f"the status page shows {private!r}"
    expect(page.get_by_role("navigation")).to_have_count(0)  # none of the desk's console
    expect(page.get_by_role("button")).to_have_count(0)
    assert page.context.cookies() == []  # nothing kept about the visitor
    shot(page, "status-page-english")

    chinese = browser.new_context(java_script_enabled=False, locale="zh-CN")  # Accept-Language: zh-CN
    visitor = chinese.new_page()
    try:
        visitor.goto(url)
        expect(visitor.locator("html")).to_have_attribute("lang", "zh-Hans")
        expect(visitor.get_by_role("heading", level=1)).to_have_text(f"您的订单 {order['order_id']}")
        expect(visitor.locator("dl.facts")).to_contain_text("已发货")
        expect(visitor.locator("dl.facts")).to_contain_text(format_date(REQUESTED, "long", locale="zh_Hans"))
        row = visitor.get_by_role("table", name="此订单的包裹及其运单号").locator("tbody").get_by_role("row")
        expect(row).to_contain_text(tracking)
        shot(visitor, "status-page-chinese")
    finally:
        chinese.close()


def test_a_tampered_expired_or_unknown_link_shows_nothing(page, suite):
    order, _, tracking = shipped_order(suite)
    url = status_link(suite, order["order_id"])
    token = url.rsplit("/", 1)[1]
    encoded, expiry, mac = token.split(".")
    other = statuslinks.sign("ORD-SOMEONE-ELSE", dt.datetime.now(dt.UTC) + dt.timedelta(days=1), "x" * 32)
    links = {
        "tampered signature": f"{encoded}.{expiry}.{mac[:-2]}{'AA' if not mac.endswith('AA') else 'BB'}",
        "longer validity": f"{encoded}.{int(expiry) + 86400}.{mac}",
        "another order": f"{other.split('.')[0]}.{expiry}.{mac}",
        "expired": statuslinks.sign(
            order["order_id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), suite.status_link_secret
        ),
        "unknown order": statuslinks.sign(
            "ORD-NOT-THERE", dt.datetime.now(dt.UTC) + dt.timedelta(days=1), suite.status_link_secret
        ),
        "nonsense": "not-a-token",
    }
    for why, bad in links.items():
        answer = page.goto(f"/status/{bad}")
        assert answer is not None and answer.status == 404, why
        expect(page.get_by_role("heading", level=1)).to_have_text("This link is not valid")
        body = page.locator("body").inner_text()
        assert order["order_id"] not in body and tracking not in body and "DHL" not in body, why
    shot(page, "status-page-not-valid")

    posted = page.request.post(url, form={"status": "cancelled"})  # the page takes no POST
    assert posted.status == 405
    assert tracking not in posted.text() and order["order_id"] not in posted.text()
    page.goto(url)  # and the genuine link still shows the order, unchanged
    expect(page.get_by_role("table")).to_contain_text(tracking)
    expect(page.locator("dl.facts")).to_contain_text("Shipped")
