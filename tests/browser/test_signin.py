"""Signing in and out of the console, as each role, with JavaScript blocked."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.desk import DEMO, shot, sign_in, submit_order


@pytest.mark.parametrize("role", ["viewer", "clerk", "approver", "admin"])
def test_each_role_signs_in_and_lands_on_today(page, role):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))  # not signed in: the sign-in page first
    sign_in(page, role)
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()
    name = DEMO[role][2]
    expect(page.get_by_text(re.compile(rf"Signed in as {name} \(\w+\)"))).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Today")).to_have_attribute(
        "aria-current", "page"
    )


def test_a_wrong_password_shows_the_forms_message_and_signs_nobody_in(page):
    page.goto("/signin")
    page.get_by_label("E-mail address").fill(DEMO["clerk"][0])
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The e-mail address or the password is not right.")
    expect(page.get_by_label("E-mail address")).to_have_value(DEMO["clerk"][0])
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin"))


def test_an_empty_field_is_named_beside_it(page):
    page.goto("/signin")
    page.get_by_label("E-mail address").fill(DEMO["clerk"][0])
    page.get_by_role("button", name="Sign in").click()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_have_text("Error: Enter your password.")


def test_sign_out_ends_the_session(page):
    sign_in(page, "viewer")
    expect(page.get_by_role("heading", name="Today")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/signin"))


def test_today_lists_a_held_order_with_its_reason_in_words(page, suite):
    reference = f"PO-{uuid.uuid4().hex[:8]}"
    answer = submit_order(
        suite,
        {
            "external_ref": reference,
            "customer_id": "C0001",
            "lines": [{"sku": "BRK-001", "quantity": 2, "unit_price": "1.00"}],  # the demo price is 31.57
            "payment_terms": "NET30",
        },
    )
    assert answer["status"] == "on_hold", answer
    sign_in(page, "viewer")
    row = page.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=re.compile(answer["order_id"]))
    )
    expect(row).to_contain_text("Price differs from the customer's price")
    expect(row).to_contain_text(f"PO {reference}")
    expect(row).to_contain_text("$2.00")
    shot(page, "today-held-orders")


def test_the_accessibility_check_finds_an_unnamed_control(page):
    from tests.browser.desk import accessibility_problems

    page.set_content("<label for=a>Name</label><input id=a><input id=b><table><tr><td>1</td></tr></table>")
    assert accessibility_problems(page) == [
        "textbox without a name: 'textbox'",
        "a table without header cells",
    ]
    page.goto("/signin")
    assert accessibility_problems(page) == []
