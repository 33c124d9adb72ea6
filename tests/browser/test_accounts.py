"""Accounts, as an administrator does them: create one (a bad field first), change its role and limits,
disable it, reset its password; and what the person on the other end sees."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect

from tests.browser.desk import assert_accessible, create_account, shot, sign_in, sign_in_as


def unique_email(who: str) -> str:
    return f"{who}.{uuid.uuid4().hex[:6]}@acme.example"


def test_an_admin_creates_an_account_a_bad_field_named_beside_it_first(page, browser, suite):
    sign_in(page, "admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="New account").click()
    email = unique_email("mei")
    page.get_by_label("E-mail address").fill("mei at acme")
    page.get_by_label("Name", exact=True).fill("Mei Chen")
    page.get_by_label("Role", exact=True).select_option(label="Approver")
    page.get_by_label("Approval limits (approvers only)").fill("USD=7500")
    page.get_by_label("Preferred language").select_option(label="简体中文")
    page.get_by_label("First password").fill("too-short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("E-mail address")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#email-error")).to_contain_text("Enter an e-mail address such as ann@example.com.")
    expect(page.locator("#password-error")).to_contain_text("A password has at least 12 characters.")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Mei Chen")  # what was typed stays
    shot(page, "accounts-new-with-errors")
    assert_accessible(page)
    page.goto("/accounts")
    expect(page.get_by_role("table")).not_to_contain_text("Mei Chen")  # nothing was created

    page.goto("/accounts/new")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Name", exact=True).fill("Mei Chen")
    page.get_by_label("Role", exact=True).select_option(label="Approver")
    page.get_by_label("Approval limits (approvers only)").fill("USD=7500")
    page.get_by_label("Preferred language").select_option(label="简体中文")
    page.get_by_label("First password").fill("mei-chen-first-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_have_text("The account was created.")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Mei Chen"))
    expect(row).to_contain_text(email)
    expect(row).to_contain_text("Approver")
    expect(row).to_contain_text("$7,500.00")
    expect(row).to_contain_text("简体中文")

    person = browser.new_context(base_url=suite.console_url, java_script_enabled=False).new_page()
    sign_in_as(person, email, "mei-chen-first-password")
    expect(
        person.get_by_role("heading", name="今日", level=1)
    ).to_be_visible()  # her language, from her account
    expect(person.get_by_text("当前用户：Mei Chen（审批人）")).to_be_visible()
    person.context.close()


def test_an_admin_changes_a_role_disables_and_resets_a_password(page, browser, suite):
    email = unique_email("bo")
    create_account(suite, email, "Bo Lind", "clerk", "bo-lind-first-password")
    person = browser.new_context(base_url=suite.console_url, java_script_enabled=False).new_page()
    sign_in_as(person, email, "bo-lind-first-password")
    expect(person.get_by_text("Signed in as Bo Lind (Clerk)")).to_be_visible()

    sign_in(page, "admin")
    page.goto("/accounts")
    page.get_by_role("link", name="Bo Lind").click()
    page.get_by_label("Role", exact=True).select_option(label="Approver")
    page.get_by_label("Approval limits (approvers only)").fill("USD=2000 EUR=1500")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("The account was changed.")
    expect(page.get_by_label("Approval limits (approvers only)")).to_have_value("EUR=1500 USD=2000")
    person.goto("/")
    expect(person).to_have_url(re.compile(r"/signin"))  # a new role: signed in again, with what it now may do

    page.get_by_label("Disabled (signed out everywhere)").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("The account was changed.")
    sign_in_as(person, email, "bo-lind-first-password")
    expect(person.get_by_role("alert")).to_contain_text("This account is disabled. Ask an administrator.")

    page.get_by_label("Enabled", exact=True).check()
    page.get_by_role("button", name="Save changes").click()
    page.get_by_label("New password").fill("bo-lind-second-password")
    page.get_by_role("button", name="Reset password").click()
    expect(page.get_by_role("status")).to_contain_text("The password was reset")
    shot(page, "accounts-edit")
    assert_accessible(page)
    sign_in_as(person, email, "bo-lind-first-password")
    expect(person.get_by_role("alert")).to_contain_text("The e-mail address or the password is not right.")
    sign_in_as(person, email, "bo-lind-second-password")
    expect(person.get_by_text("Signed in as Bo Lind (Approver)")).to_be_visible()
    person.context.close()


def test_an_admin_cannot_lock_themselves_out(page):
    sign_in(page, "admin")
    page.goto("/accounts")
    page.get_by_role("link", name="Demo admin").click()
    page.get_by_label("Role", exact=True).select_option(label="Viewer")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "You cannot disable your own account or take away its administrator role."
    )
    page.goto("/accounts")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Demo admin"))
    expect(row).to_contain_text("Administrator")


def test_a_clerk_is_refused_the_accounts_by_the_server(page):
    sign_in(page, "clerk")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts")).to_have_count(0)
    response = page.goto("/accounts")
    assert response.status == 403
    expect(page.get_by_role("alert")).to_have_text(
        "To manage desk accounts you need one of these roles: Administrator. Nothing was changed."
    )
