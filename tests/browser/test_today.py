"""Today, the desk's work queues, as a person uses them: each queue opens from its tab; the held queue narrows
by reason and customer and sorts (a plain GET form, JavaScript blocked); 51 held orders page to a second
page; and with JavaScript the counts on the tabs change by themselves when an order is held elsewhere."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import expect

from tests.browser.desk import gateway_post, shot, sign_in, submit_order, submit_orders
from tests.browser.test_order_detail import ADMIN_KEY, held_order, new_order

QUEUES = {
    "held": "Held orders",
    "exceptions": "Open exceptions",
    "at_risk": "Orders at risk",
    "backorders": "Backorders",
}


def tab(page, title: str):
    return page.get_by_role("navigation", name="Work queues").get_by_role("link", name=title)


def held_body(customer: str) -> dict:
    """An order of BRK-001 at a price other than the customer's: held for price_mismatch."""
    return {
        "external_ref": f"PO-{uuid.uuid4().hex[:6]}",
        "customer_id": customer,
        "lines": [{"sku": "BRK-001", "quantity": 1, "unit_price": "30.00"}],
        "payment_terms": "NET30",
    }


def reject_all(suite, order_ids) -> None:
    """Leaves the held queue as the test found it: the suite is shared by every browser test, and the queue
    lists 50 a page."""
    for order_id in order_ids:
        gateway_post(suite, f"/v1/orders/{order_id}/reject", {"reason": "test done"}, ADMIN_KEY)


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def test_each_queue_opens_from_its_tab_with_its_own_table(page, suite):
    order = new_order(suite, ("BRK-001", 1, "31.57"))  # at the customer's price: not held
    gateway_post(
        suite,
        f"/v1/orders/{order['order_id']}/exceptions",
        {"type": "production_delay", "cause": "the press is down"},
        ADMIN_KEY,
    )
    sign_in(page, "viewer")
    page.goto("/")
    expect(tab(page, "Held orders")).to_have_attribute("aria-current", "page")
    for key, title in QUEUES.items():
        tab(page, title).click()
        expect(page.get_by_role("heading", name=title, level=2)).to_be_visible()
        expect(tab(page, title)).to_have_attribute("aria-current", "page")
        assert query_of(page).get("queue", ["held"]) == [key]
    tab(page, "Open exceptions").click()
    page.get_by_role("combobox", name="Exception type").select_option("production_delay")
    page.get_by_role("button", name="Show").click()
    table = page.get_by_role("table", name="Orders with an open exception: Oldest first")
    row = table.get_by_role("row").filter(has=page.get_by_role("link", name=order["order_id"]))
    expect(row).to_contain_text("Production delay")
    shot(page, "today-exceptions")


def test_the_held_queue_narrows_by_reason_and_customer_and_sorts(page, suite):
    customer = "C0002"
    first = submit_order(suite, held_body(customer))
    second = submit_order(suite, held_body(customer))
    assert first["status"] == second["status"] == "on_hold", (first, second)
    sign_in(page, "clerk")
    page.goto("/")
    page.get_by_role("combobox", name="Hold reason").select_option("price_mismatch")
    page.get_by_label("Customer id").fill(customer)
    page.get_by_role("combobox", name="Sort", exact=True).select_option("oldest")
    page.get_by_role("button", name="Show").click()
    assert query_of(page)["reason"] == ["price_mismatch"] and query_of(page)["customer"] == [customer]
    table = page.get_by_role("table", name="Held orders: Oldest first")
    ids = [link.inner_text() for link in table.get_by_role("rowheader").get_by_role("link").all()]
    assert ids.index(first["order_id"]) < ids.index(second["order_id"]), ids
    assert all(cell == customer for cell in table.locator("tbody a[href^='/customers/']").all_inner_texts())
    page.get_by_role("combobox", name="Sort", exact=True).select_option("newest")
    page.get_by_role("button", name="Show").click()
    table = page.get_by_role("table", name="Held orders: Newest first")
    ids = [link.inner_text() for link in table.get_by_role("rowheader").get_by_role("link").all()]
    assert ids.index(second["order_id"]) < ids.index(first["order_id"]), ids
    shot(page, "today-held-filtered")
    # A customer with nothing held: the queue says so.
    page.get_by_label("Customer id").fill("C9999")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No order in this queue matches the filters.")).to_be_visible()
    reject_all(suite, [first["order_id"], second["order_id"]])


def test_the_held_queue_pages_to_the_next_page(page, suite):
    customer = "C0003"
    results = submit_orders(suite, [held_body(customer) for _ in range(51)])
    assert {r["order_status"] for r in results} == {"on_hold"}, results
    held = [r["order_id"] for r in sorted(results, key=lambda r: r["index"])]
    sign_in(page, "viewer")
    page.goto(f"/?queue=held&customer={customer}&sort=oldest")
    table = page.get_by_role("table", name="Held orders: Oldest first")
    expect(table.get_by_role("rowheader")).to_have_count(50)
    first_page = set(table.get_by_role("rowheader").get_by_role("link").all_inner_texts())
    page.get_by_role("link", name="Next page").click()
    assert query_of(page)["customer"] == [customer] and query_of(page)["cursor"]
    expect(table.get_by_role("rowheader")).to_have_count(1)
    (last,) = table.get_by_role("rowheader").get_by_role("link").all_inner_texts()
    assert first_page | {last} == set(held)  # every held order once, on one page or the other
    page.get_by_role("link", name="First page").click()
    expect(table.get_by_role("rowheader")).to_have_count(50)
    reject_all(suite, held)


def test_the_counts_change_by_themselves_when_an_order_is_held_elsewhere(page_with_js, suite):
    page = page_with_js
    sign_in(page, "viewer")
    page.goto("/")
    count = tab(page, "Held orders").locator("[data-count='held']")
    before = int(count.inner_text().replace(",", ""))
    page.evaluate("window.notReloaded = true")
    held = held_order(suite)["order_id"]
    expect(count).not_to_have_text(str(before), timeout=30_000)
    assert int(count.inner_text().replace(",", "")) > before
    assert page.evaluate("window.notReloaded") is True  # the same page: nothing reloaded it
    shot(page, "today-live-counts")
    reject_all(suite, [held])
