"""Customers, as the desk looks one up with them on the phone: found by name, their credit limit, what their
open orders use of it, the order on hold and their latest orders."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.browser.desk import shot, sign_in, submit_order

# A customer the other browser tests leave alone: its exposure is this test's orders only.
CUSTOMER, NAME = "C0046", "Customer 0046 Ltd"


def fact(page, term: str):
    """The <dd> of a <dt> in the page's facts."""
    return page.locator("dl.facts dt", has_text=re.compile(f"^{re.escape(term)}$")).locator("+ dd")


def test_a_customers_page_shows_the_credit_limit_exposure_and_the_order_on_hold(page, suite):
    confirmed = submit_order(
        suite,
        {
            "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
            "customer_id": CUSTOMER,
            "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": "31.57"}],
            "payment_terms": "NET30",
        },
    )
    assert confirmed["status"] != "on_hold", confirmed
    held_ref = f"PO-{uuid.uuid4().hex[:8]}"
    held = submit_order(
        suite,
        {
            "external_ref": held_ref,
            "customer_id": CUSTOMER,
            "lines": [{"sku": "BRK-001", "quantity": 3, "unit_price": "1.00"}],  # the demo price is 31.57
            "payment_terms": "NET30",
        },
    )
    assert held["status"] == "on_hold", held

    sign_in(page, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    page.get_by_label("Customer id or name").fill("customer 0046")  # any part of the name, any case
    page.get_by_role("button", name="Find customers").click()
    rows = page.get_by_role("table").locator("tbody").get_by_role("row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(CUSTOMER)
    expect(rows.first).to_contain_text("$50,000.00")
    expect(rows.first).to_contain_text("$63.14")  # the confirmed order's 2 × 31.57; a held one uses no credit
    shot(page, "customers-search")
    rows.first.get_by_role("link", name=NAME).click()

    expect(page.get_by_role("heading", name=NAME, level=1)).to_be_visible()
    expect(fact(page, "Credit limit")).to_have_text("$50,000.00")
    expect(fact(page, "Open exposure")).to_contain_text("$63.14")
    expect(fact(page, "Open exposure")).to_contain_text("(1 open order)")
    expect(fact(page, "Available credit")).to_contain_text("$49,936.86")
    held_table = page.get_by_role("table", name="This customer's held orders, highest priority first")
    held_row = held_table.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile(held["order_id"]))
    )
    expect(held_row).to_contain_text(f"PO {held_ref}")
    expect(held_row).to_contain_text("Price differs from the customer's price")
    expect(held_row).to_contain_text("$3.00")
    expect(held_table.get_by_role("rowheader", name=re.compile(confirmed["order_id"]))).to_have_count(0)
    recent = page.get_by_role("table", name="This customer's latest orders, newest first")
    expect(recent.locator("tbody").get_by_role("rowheader")).to_have_text(
        [held["order_id"], confirmed["order_id"]]
    )
    expect(recent.get_by_role("row").nth(1)).to_contain_text("On hold")
    shot(page, "customer-page")

    page.get_by_role("link", name="All of this customer's orders").click()
    expect(page.get_by_label("Customer id or name")).to_have_value(CUSTOMER)
    expect(page.get_by_role("table").locator("tbody").get_by_role("row")).to_have_count(2)


def test_an_unknown_customer_is_a_page_not_found(page, suite):
    sign_in(page, "viewer")
    answer = page.goto("/customers/C-NOBODY")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
