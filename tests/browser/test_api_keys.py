"""Partners' API keys, as an administrator manages them in the console: a bad field named beside it, a key
created (its secret shown once) that works against the gateway, revoked so that it stops; a clerk cannot
open the page. The console reaches the keys through the gateway's gRPC admin service only."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid

from playwright.sync_api import expect

from tests.browser.desk import shot, sign_in


def gateway_status(suite, key: str) -> int:
    request = urllib.request.Request(
        f"{suite.gateway_url}/v1/orders?limit=1", headers={"Authorization": f"Bearer {key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_an_admin_creates_a_key_that_works_and_revokes_it(page, suite):
    sign_in(page, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="New API key").click()
    name = f"shop-{uuid.uuid4().hex[:6]}"

    page.get_by_label("Partner", exact=True).select_option(label="Webshop sales channel (P-SHOP)")
    page.get_by_label("Key name", exact=True).fill("shop prod!")
    page.get_by_label("Orders: place and read the partner's orders").check()
    page.get_by_label("Expires", exact=True).fill("2020-01-01")
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#name-error")).to_contain_text("Use 1 to 100 letters")
    expect(page.locator("#expires_at-error")).to_contain_text("The expiry must be in the future.")
    expect(page.get_by_label("Key name", exact=True)).to_have_attribute("aria-invalid", "true")
    page.goto("/api-keys")
    expect(page.get_by_role("table")).not_to_contain_text("shop prod!")  # nothing was created

    page.goto("/api-keys/new")
    page.get_by_label("Partner", exact=True).select_option(label="Webshop sales channel (P-SHOP)")
    page.get_by_label("Key name", exact=True).fill(name)
    page.get_by_label("Orders: place and read the partner's orders").check()
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    secret = page.get_by_label("The API key").input_value()
    assert secret.startswith("odk_")
    shot(page, "api-key-created")
    assert gateway_status(suite, secret) == 200  # the new key works

    page.get_by_role("link", name="Back to API keys").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))
    expect(row).to_contain_text("P-SHOP")
    expect(row).to_contain_text("orders")
    expect(row).to_contain_text("by desk:admin@demo.example (admin)")  # the person who made it
    expect(row).not_to_contain_text(secret)
    row.get_by_role("button", name=f"Revoke {name} of P-SHOP").click()
    expect(page.get_by_role("status")).to_contain_text("The key was revoked.")
    expect(page.get_by_role("rowheader", name=name)).to_have_count(0)
    deadline = time.monotonic() + 5
    while gateway_status(suite, secret) != 401 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gateway_status(suite, secret) == 401  # the revoked key stops working
    shot(page, "api-key-revoked")


def test_a_clerk_cannot_open_the_keys_page(page):
    sign_in(page, "clerk")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys")).to_have_count(0)
    answer = page.goto("/api-keys")
    assert answer is not None and answer.status == 403
    expect(page.get_by_role("main")).to_contain_text("Administrator")
    shot(page, "api-keys-refused")
