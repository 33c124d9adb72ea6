"""The console in Simplified Chinese: by the switch (kept on the account), and by the browser's language."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.desk import DEMO, shot, sign_in


def test_switch_to_chinese_and_it_stays_with_the_account(page, browser, suite):
    sign_in(page, "approver")
    expect(page.get_by_role("heading", name="Today", level=1)).to_be_visible()
    page.get_by_label("Language").select_option(label="简体中文")
    page.get_by_role("button", name="Change language").click()
    expect(page.get_by_role("heading", name="今日", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    shot(page, "today-in-chinese")

    elsewhere = browser.new_context(base_url=suite.console_url, java_script_enabled=False, locale="en-GB")
    other = elsewhere.new_page()
    sign_in(other, "approver")  # another browser, English by its Accept-Language: the account decides
    expect(other.get_by_role("heading", name="今日", level=1)).to_be_visible()
    other.get_by_label("语言").select_option(label="English")
    other.get_by_role("button", name="切换语言").click()
    expect(other.get_by_role("heading", name="Today", level=1)).to_be_visible()
    elsewhere.close()


def test_a_chinese_browser_gets_the_sign_in_page_in_chinese(browser, suite):
    context = browser.new_context(base_url=suite.console_url, java_script_enabled=False, locale="zh-CN")
    page = context.new_page()
    page.goto("/signin")
    expect(page.get_by_role("heading", name="登录", level=1)).to_be_visible()
    email, password, _ = DEMO["viewer"]
    page.get_by_label("电子邮件地址").fill(email)
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("电子邮件地址或密码不正确。")
    shot(page, "signin-in-chinese")
    context.close()
