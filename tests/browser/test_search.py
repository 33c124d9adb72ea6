"""Order search, as the desk does it with a customer on the phone: "where is PO 4711?" answered in one search;
a bad date named beside its field; results paged by the service's cursor."""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from tests.browser.desk import DEMO, shot, sign_in, submit_order, submit_orders

# A customer and a product the other browser tests leave alone, so a search narrowed to both is this test's.
PAGING_CUSTOMER, PAGING_SKU, PAGING_PRICE = "C0057", "BLT-016", "107.52"


def results(page):
    return page.get_by_role("table").locator("tbody").get_by_role("row")


def order_ids(page) -> list[str]:
    return [text.strip() for text in results(page).get_by_role("rowheader").all_inner_texts()]


def test_search_by_po_number_finds_the_order(page, suite):
    reference = f"PO-{uuid.uuid4().hex[:8]}"
    answer = submit_order(
        suite,
        {
            "external_ref": reference,
            "customer_id": "C0003",
            "lines": [{"sku": "BRK-001", "quantity": 1, "unit_price": "31.57"}],
            "payment_terms": "NET30",
        },
    )
    submit_order(  # another order of the same customer: not what the search asks for
        suite,
        {
            "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
            "customer_id": "C0003",
            "lines": [{"sku": "BRK-001", "quantity": 1, "unit_price": "31.57"}],
            "payment_terms": "NET30",
        },
    )
    sign_in(page, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Search").click()
    page.get_by_label("Partner reference (PO number)").fill(reference)
    page.get_by_role("button", name="Search").click()

    # A GET form: the search is in the address (bookmark it, reload it).
    assert parse_qs(urlparse(page.url).query)["external_ref"] == [reference]
    expect(results(page)).to_have_count(1)
    row = results(page).first
    expect(row.get_by_role("rowheader")).to_have_text(answer["order_id"])
    expect(row).to_contain_text(reference)
    expect(row).to_contain_text("C0003")
    expect(row).to_contain_text("P-SHOP")
    expect(row).to_contain_text("$31.57")
    link = row.get_by_role("link", name=answer["order_id"])
    expect(link).to_have_attribute("href", f"/orders/{answer['order_id']}")
    expect(page.get_by_label("Partner reference (PO number)")).to_have_value(reference)
    shot(page, "search-by-po-number")

    page.get_by_label("Customer id or name").fill("Customer 000")  # a name several customers have
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="Which customer?")).to_be_visible()
    page.get_by_role("link", name="Customer 0003 Ltd (C0003)").click()
    expect(page.get_by_label("Customer id or name")).to_have_value("C0003")
    expect(results(page)).to_have_count(1)  # the PO number still narrows the search
    expect(results(page).first.get_by_role("rowheader")).to_have_text(answer["order_id"])

    page.get_by_label("Partner reference (PO number)").fill("")
    page.get_by_label("Customer id or name").fill("")
    page.get_by_label("Order id").fill(answer["order_id"])  # the order id alone: the same order
    page.get_by_role("button", name="Search").click()
    expect(results(page)).to_have_count(1)
    expect(results(page).first.get_by_role("rowheader")).to_have_text(answer["order_id"])

    page.get_by_label("Order id").fill("ORD-does-not-exist")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("No order has the id ORD-does-not-exist.")


def test_a_bad_date_is_named_beside_its_field_in_the_persons_language(page, browser, suite):
    sign_in(page, "clerk")
    page.goto("/search")
    page.get_by_label("SKU").fill("BRK-001")
    page.get_by_label("Received from").fill("2026-13-45")
    page.get_by_role("button", name="Search").click()
    received_from = page.get_by_label("Received from")
    expect(received_from).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#created_from-error")).to_have_text(
        "Error: Enter a date as YYYY-MM-DD, for example 2026-11-01."
    )
    expect(received_from).to_have_value("2026-13-45")  # what was typed stays, to correct it
    expect(page.get_by_label("SKU")).to_have_value("BRK-001")
    expect(page.get_by_role("table")).to_have_count(0)  # no results for a search that was not made
    shot(page, "search-bad-date")

    received_from.fill("2026-11-02")
    page.get_by_label("Received until (included)").fill("2026-11-01")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#created_to-error")).to_have_text(
        "Error: The end date cannot be before the start date."
    )
    expect(page.locator("#created_from-error")).to_have_count(0)

    # The same clerk in a Chinese browser (the account follows the browser: nothing changed on it).
    chinese = browser.new_context(base_url=suite.console_url, java_script_enabled=False, locale="zh-CN")
    try:
        other = chinese.new_page()
        email, password, _ = DEMO["clerk"]
        other.goto("/signin")
        other.get_by_label("电子邮件地址").fill(email)
        other.get_by_label("密码").fill(password)
        other.get_by_role("button", name="登录").click()
        other.goto("/search?created_from=yesterday")
        expect(other.get_by_label("接收日期自")).to_have_attribute("aria-invalid", "true")
        expect(other.locator("#created_from-error")).to_contain_text(
            "请按 YYYY-MM-DD 格式输入日期，例如 2026-11-01。"
        )
    finally:
        chinese.close()


def test_results_are_paged_by_the_services_cursor(page, suite):
    from console.screens.search import PAGE_SIZE

    line = {"sku": PAGING_SKU, "quantity": 1, "unit_price": PAGING_PRICE}
    answers = submit_orders(
        suite,
        [
            {"external_ref": f"PG-{uuid.uuid4().hex[:8]}", "customer_id": PAGING_CUSTOMER, "lines": [line]}
            for _ in range(PAGE_SIZE + 1)
        ],
    )
    assert all(a["status"] == "accepted" for a in answers), answers
    assert not [a for a in answers if a["order_status"] == "on_hold"], "held: they would crowd Today's queue"
    submitted = {a["order_id"] for a in answers}

    sign_in(page, "viewer")
    page.goto("/search")
    page.get_by_label("Customer id or name").fill(PAGING_CUSTOMER)
    page.get_by_label("SKU").fill(PAGING_SKU)
    page.get_by_role("button", name="Search").click()
    expect(results(page)).to_have_count(PAGE_SIZE)
    first = order_ids(page)
    expect(page.get_by_role("link", name="First page")).to_have_count(0)
    shot(page, "search-first-page")

    seen = list(first)
    while page.get_by_role("link", name="Next page").count():
        page.get_by_role("link", name="Next page").click()
        expect(page).to_have_url(re.compile(r"cursor="))
        expect(page.get_by_label("Customer id or name")).to_have_value(
            PAGING_CUSTOMER
        )  # the search goes along
        seen += order_ids(page)
    assert len(seen) == len(set(seen))  # no order on two pages
    assert submitted <= set(seen)  # and every one on some page
    assert set(first) <= submitted  # newest first: the last submitted lead

    page.get_by_role("link", name="First page").click()
    assert order_ids(page) == first
