"""Stock, as the desk reads it and a clerk records goods in: a SKU per warehouse, a receipt read back, and a
viewer's receipt refused by the server."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.browser.desk import shot, sign_in


def available_in(page, warehouse: str) -> int:
    row = (
        page.get_by_role("table", name="Stock of BRK-003 per warehouse")
        .get_by_role("row")
        .filter(has=page.get_by_role("rowheader", name=warehouse, exact=True))
    )
    return int(row.get_by_role("cell").nth(2).inner_text().replace(",", ""))


def test_a_skus_stock_per_warehouse_is_read(page):
    sign_in(page, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Stock").click()
    page.get_by_label("SKU", exact=True).fill("BRK-001")
    page.get_by_role("button", name="Show stock").click()
    expect(page.get_by_role("heading", name="Stock of BRK-001", level=1)).to_be_visible()
    table = page.get_by_role("table", name="Stock of BRK-001 per warehouse")
    for warehouse in ("WH-SHA", "WH-HAM", "WH-CHI"):  # demo/stock.csv
        expect(table.get_by_role("rowheader", name=warehouse, exact=True)).to_be_visible()
    for warehouse in ("WH-SHA", "WH-HAM", "WH-CHI"):  # the figures add up (other tests order BRK-001 too)
        row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=warehouse, exact=True))
        on_hand, reserved, available = (
            int(row.get_by_role("cell").nth(i).inner_text().replace(",", "")) for i in range(3)
        )
        assert on_hand > 0 and on_hand - reserved == available, (warehouse, on_hand, reserved, available)
    expect(page.get_by_role("heading", name="Available to promise")).to_be_visible()
    expect(page.get_by_role("heading", name="Backorders waiting")).to_be_visible()
    expect(page.get_by_role("heading", name="Record a receipt")).to_have_count(0)  # a viewer records none
    shot(page, "stock-sku")


def test_a_clerk_records_a_receipt_and_reads_it_back(page):
    sign_in(page, "clerk")
    page.goto("/stock/BRK-003")
    before = available_in(page, "WH-HAM")
    reference = f"DN-{uuid.uuid4().hex[:8]}"

    page.get_by_label("Warehouse", exact=True).fill("WH-HAM")
    page.get_by_label("Units received").fill("twelve")
    page.get_by_label("Reference").fill(reference)
    page.get_by_role("button", name="Record receipt").click()
    expect(page.locator("#quantity-error")).to_contain_text("Enter a whole number of units")
    expect(page.get_by_label("Units received")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Reference")).to_have_value(reference)  # what was typed stays
    assert available_in(page, "WH-HAM") == before  # nothing changed

    page.get_by_label("Warehouse", exact=True).fill("WH-NOWHERE")
    page.get_by_label("Units received").fill("12")
    page.get_by_role("button", name="Record receipt").click()
    expect(page.locator("#warehouse-error")).to_contain_text("There is no warehouse with this code.")
    assert available_in(page, "WH-HAM") == before

    page.get_by_label("Warehouse", exact=True).fill("WH-HAM")
    page.get_by_role("button", name="Record receipt").click()
    expect(page.get_by_role("status")).to_contain_text("The receipt was recorded.")
    assert available_in(page, "WH-HAM") == before + 12
    # The receipt is on record under the clerk who recorded it.
    receipts = page.get_by_role("table", name=re.compile("The last receipts of BRK-003"))
    expect(receipts.get_by_role("row", name=re.compile(reference))).to_contain_text(
        "clerk@demo.example (Clerk)"
    )

    # The same reference again (a second click, a reload): nothing more is added.
    page.get_by_label("Warehouse", exact=True).fill("WH-HAM")
    page.get_by_label("Units received").fill("12")
    page.get_by_label("Reference").fill(reference)
    page.get_by_role("button", name="Record receipt").click()
    expect(page.get_by_role("status")).to_contain_text("The receipt was recorded.")
    assert available_in(page, "WH-HAM") == before + 12
    shot(page, "stock-receipt-recorded")


def test_a_viewers_receipt_is_refused_by_the_server(page):
    sign_in(page, "viewer")
    page.goto("/stock/BRK-003")
    before = available_in(page, "WH-HAM")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    answer = page.request.post(
        "/stock/BRK-003/receipts",
        form={"csrf_token": token, "warehouse": "WH-HAM", "quantity": "5", "reference": uuid.uuid4().hex},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "Clerk" in answer.text()  # the refusal names the roles that may
    page.reload()
    assert available_in(page, "WH-HAM") == before
