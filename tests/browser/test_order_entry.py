"""Order entry, as the desk does it: a phone order for a customer, checked and submitted (read back through the
gateway: channel phone, the clerk as the actor); a double submit creates one order; refusals beside their
fields and nothing created; a customer's XLSX sheet with a bad row previewed, its good orders submitted
(and a re-submit creating nothing twice); a viewer refused by the server."""

from __future__ import annotations

import io
import json
import re
import urllib.parse
import urllib.request
import uuid

from playwright.sync_api import expect

from tests.browser.desk import shot, sign_in

ADMIN_KEY = "demo-admin-key"  # demo/partners.csv: the desk's own key sees every partner's orders


def gateway(suite, path: str) -> dict:
    request = urllib.request.Request(
        suite.gateway_url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def orders_with_ref(suite, ref: str) -> list[dict]:
    query = urllib.parse.urlencode({"external_ref": ref, "partner_id": "DESK"})
    return gateway(suite, f"/v1/orders?{query}")["items"]


def fill_line(page, n: int, product: str, quantity: str) -> None:
    page.get_by_label(f"Line {n}: SKU or product name").fill(product)
    page.get_by_label(f"Line {n}: quantity").fill(quantity)


def form_fields(page) -> dict[str, str]:
    """The entry form's fields as the browser would post them (what a second click sends again)."""
    form = page.locator("form[action='/orders/new']")
    fields = {}
    for control in form.locator("input[name], select[name]").all():
        name = control.get_attribute("name")
        if control.get_attribute("type") != "submit":
            fields[name] = control.input_value()
    return fields


def test_a_clerk_enters_a_phone_order_and_sees_it_confirmed(page, suite):
    ref = f"PHONE-{uuid.uuid4().hex[:8]}"
    sign_in(page, "clerk")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New order").click()
    expect(page.get_by_role("heading", name="New order", level=1)).to_be_visible()
    page.get_by_label("Customer (id or name)").fill("Customer 0003")
    fill_line(page, 1, "BRK-001", "2")
    fill_line(page, 2, "Brake pad set v3", "1")
    page.get_by_label("Came in by").select_option(label="Phone")
    page.get_by_label("Customer's reference (PO number)").fill(ref)
    page.get_by_role("button", name="Check").click()
    # The customer found by name, with ship-to, terms and open credit; each line's product, price, stock, date.
    expect(page.get_by_label("Customer (id or name)")).to_have_value("C0003")
    customer = page.get_by_label("The customer")
    expect(customer).to_contain_text("Customer 0003 Ltd")
    expect(customer).to_contain_text("Austin")
    expect(customer).to_contain_text("NET30")
    expect(customer).to_contain_text("available")
    expect(page.get_by_label("Line 2: SKU or product name")).to_have_value(
        "BRK-003"
    )  # the name found one SKU
    first = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="1", exact=True))
    expect(first).to_contain_text("Brake pad set v1")
    expect(first).to_contain_text("$31.57")
    expect(first).to_contain_text(re.compile(r"\d{4}"))  # the stock, a number
    expect(first).not_to_contain_text("unknown")  # and an earliest date
    shot(page, "order-entry-checked")

    page.get_by_role("button", name="Submit order").click()
    expect(page.get_by_role("status")).to_contain_text("The order was entered")
    order_id = page.get_by_role("heading", level=1).inner_text().removeprefix("Order ").strip()
    expect(page.get_by_text("desk:clerk@demo.example (clerk)")).to_be_visible()
    expect(page.get_by_role("link", name="Open the order's page")).to_have_attribute(
        "href", f"/orders/{order_id}"
    )
    order = gateway(suite, f"/v1/orders/{order_id}")
    assert (order["channel"], order["customer_id"], order["external_ref"]) == ("phone", "C0003", ref)
    assert order["history"][0]["actor"] == "desk:clerk@demo.example (clerk)"
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("BRK-001", 2), ("BRK-003", 1)]


def test_a_double_submit_creates_one_order(page, suite):
    ref = f"TWICE-{uuid.uuid4().hex[:8]}"
    sign_in(page, "clerk")
    page.goto("/orders/new")
    page.get_by_label("Customer (id or name)").fill("C0004")
    fill_line(page, 1, "BRK-001", "1")
    page.get_by_label("Customer's reference (PO number)").fill(ref)
    sent = {**form_fields(page), "action": "submit"}
    page.get_by_role("button", name="Submit order").click()
    expect(page.get_by_role("status")).to_contain_text("The order was entered")
    again = page.context.request.post("/orders/new", form=sent, max_redirects=0)  # the second click
    assert again.status == 303 and again.headers["location"] == urllib.parse.urlparse(page.url).path
    assert len(orders_with_ref(suite, ref)) == 1


def test_refusals_stand_beside_their_line_and_nothing_is_created(page, suite):
    ref = f"BAD-{uuid.uuid4().hex[:8]}"
    sign_in(page, "clerk")
    page.goto("/orders/new")
    page.get_by_label("Customer (id or name)").fill("C0001")
    page.get_by_label("Customer's reference (PO number)").fill(ref)
    fill_line(page, 1, "BRK-001", "0")  # intake refuses the quantity
    page.get_by_role("button", name="Submit order").click()
    expect(page.get_by_label("Line 1: quantity")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#line-0-quantity-error")).to_contain_text("Enter a whole number of units")
    fill_line(page, 1, "BRK-001", "1")
    fill_line(page, 2, "NOPE-404", "3")
    page.get_by_role("button", name="Submit order").click()
    expect(page.get_by_label("Line 2: SKU or product name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#line-1-product-error")).to_contain_text(
        "There is no product with this SKU or name."
    )
    expect(page.get_by_label("Line 2: SKU or product name")).to_have_value("NOPE-404")  # what was typed stays
    shot(page, "order-entry-refused")
    assert orders_with_ref(suite, ref) == []


def test_a_customers_sheet_with_a_bad_row_previewed_and_its_good_orders_submitted(page, suite):
    import openpyxl

    run = uuid.uuid4().hex[:6]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["external_ref", "customer_id", "sku", "quantity", "unit_price", "requested_delivery_date"])
    sheet.append([f"XL-A-{run}", "C0001", "BRK-001", 2, 31.57, None])
    sheet.append([f"XL-B-{run}", "C0002", "BRK-003", "two", 33.11, None])
    sheet.append([f"XL-C-{run}", "C0004", "BRK-001", 5, 31.57, None])
    sheet.append([f"XL-C-{run}", "C0004", "BRK-003", 1, 33.11, None])
    data = io.BytesIO()
    book.save(data)

    sign_in(page, "clerk")
    page.goto("/orders/upload")
    page.get_by_label("Sheet (CSV or XLSX, at most 2 MB and 1,000 rows)").set_input_files(
        files=[{"name": "orders.xlsx", "mimeType": "application/octet-stream", "buffer": data.getvalue()}]
    )
    page.get_by_label("Came in by").select_option(label="E-mail")
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("status")).to_contain_text("2 orders are ready to submit; 1 have bad cells")
    expect(page.get_by_role("listitem").filter(has_text="Row 3, column quantity:")).to_contain_text(
        "Write a whole number."
    )
    bad_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="3", exact=True))
    expect(bad_row.locator("td.invalid")).to_have_count(1)
    expect(bad_row.locator("td.invalid")).to_contain_text("two")
    expect(bad_row.locator("td.invalid")).to_contain_text("Error: Write a whole number.")
    shot(page, "order-upload-preview")
    sent = {
        control.get_attribute("name"): control.input_value()
        for control in page.locator("form[action='/orders/upload/submit'] input[name]").all()
    }
    page.get_by_role("button", name="Submit 2 good orders").click()
    expect(page.get_by_role("status")).to_have_text("2 orders were entered.")
    expect(page.get_by_role("row").filter(has_text=f"XL-B-{run}")).to_contain_text("Not submitted")
    shot(page, "order-upload-submitted")

    [a], [c] = orders_with_ref(suite, f"XL-A-{run}"), orders_with_ref(suite, f"XL-C-{run}")
    assert orders_with_ref(suite, f"XL-B-{run}") == []
    assert (a["channel"], a["customer_id"]) == ("email", "C0001")
    assert [(line["sku"], line["quantity"]) for line in c["lines"]] == [("BRK-001", 5), ("BRK-003", 1)]
    full = gateway(suite, f"/v1/orders/{a['order_id']}")
    assert full["history"][0]["actor"] == "desk:clerk@demo.example (clerk)"

    again = page.context.request.post("/orders/upload/submit", multipart=sent)  # submitted once more
    assert again.status == 200
    assert len(orders_with_ref(suite, f"XL-A-{run}")) == 1 and len(orders_with_ref(suite, f"XL-C-{run}")) == 1


def test_a_viewer_is_refused_order_entry_by_the_server(page, suite):
    sign_in(page, "viewer")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="New order")).to_have_count(0)
    response = page.goto("/orders/new")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("you need one of these roles")
    token = page.locator("input[name='csrf_token']").first.input_value()
    ref = f"VIEWER-{uuid.uuid4().hex[:8]}"
    posted = page.context.request.post(
        "/orders/new",
        form={
            "csrf_token": token,
            "idempotency_key": uuid.uuid4().hex,
            "customer": "C0001",
            "channel": "phone",
            "external_ref": ref,
            "line-0-product": "BRK-001",
            "line-0-quantity": "1",
            "action": "submit",
        },
        max_redirects=0,
    )
    assert posted.status == 403
    assert orders_with_ref(suite, ref) == []


def test_a_held_order_says_why_and_links_its_page(page, suite):
    sign_in(page, "clerk")
    page.goto("/orders/new")
    page.get_by_label("Customer (id or name)").fill("C0001")
    page.get_by_label("Came in by").select_option(label="E-mail")
    fill_line(page, 1, "BRK-001", "2000")  # $63,140 against a credit limit of $50,000
    page.get_by_role("button", name="Submit order").click()
    expect(page.get_by_role("status")).to_have_text("The order was entered and is on hold.")
    expect(page.get_by_role("region", name="Why it is on hold")).to_contain_text("Credit limit exceeded")
    order_id = page.get_by_role("heading", level=1).inner_text().removeprefix("Order ").strip()
    expect(page.get_by_role("link", name="Open the order's page")).to_have_attribute(
        "href", f"/orders/{order_id}"
    )
    order = gateway(suite, f"/v1/orders/{order_id}")
    assert (order["status"], order["channel"]) == ("on_hold", "email")
    assert "credit_limit_exceeded" in [r["code"] for r in order["hold_reasons"]]


def test_an_upload_is_capped_in_size_and_rows(page, suite):
    sign_in(page, "clerk")
    page.goto("/orders/upload")
    token = page.locator("input[name='csrf_token']").first.input_value()
    fields = {"csrf_token": token, "upload_key": uuid.uuid4().hex, "channel": "email"}
    huge = {"name": "big.csv", "mimeType": "text/csv", "buffer": b"x" * (4 * 1024 * 1024)}
    assert page.context.request.post("/orders/upload", multipart={**fields, "sheet": huge}).status == 413
    rows = "external_ref,customer_id,sku,quantity,unit_price\n" + "".join(
        f"MANY-{n // 10},C0001,BRK-001,1,31.57\n"
        for n in range(1001)  # 101 orders, 1,001 rows
    )
    many = {"name": "many.csv", "mimeType": "text/csv", "buffer": rows.encode()}
    answer = page.context.request.post("/orders/upload", multipart={**fields, "sheet": many})
    assert answer.status == 422 and "The file has too many rows for one upload; split it." in answer.text()
    assert orders_with_ref(suite, "MANY-0") == []


def test_with_javascript_a_line_shows_its_price_stock_and_date_as_it_is_typed(page_with_js):
    page = page_with_js
    sign_in(page, "clerk")
    page.goto("/orders/new")
    page.get_by_label("Customer (id or name)").fill("C0003")
    page.get_by_label("Line 1: quantity").fill("2")
    page.get_by_label("Line 1: SKU or product name").press_sequentially("BRK-001")
    expect(page.locator("#line-0-name")).to_have_text("Brake pad set v1")  # no Check pressed
    expect(page.locator("#line-0-price")).to_have_text("$31.57")
    expect(page.locator("#line-0-available")).to_have_text(re.compile(r"^[\d,]+$"))
    expect(page.locator("#line-0-earliest")).to_have_text(re.compile(r"\d{4}"))
    page.get_by_label("Line 2: SKU or product name").press_sequentially("NOPE-404")
    expect(page.locator("#line-1-name")).to_have_text("There is no product with this SKU or name.")
    shot(page, "order-entry-as-you-type")
