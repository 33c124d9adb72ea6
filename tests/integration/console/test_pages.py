"""Error pages are pages: HTML in the person's language, never the framework's JSON."""

from __future__ import annotations


async def test_an_address_naming_nothing_is_a_page_not_json(console, browser_of):
    browser = await browser_of(console)
    await browser.sign_in("admin")
    status, page, headers = await browser.get("/accounts/not-a-number")
    assert status == 404 and headers["Content-Type"].startswith("text/html") and "Page not found" in page
    status, page, headers = await browser.get("/nowhere")
    assert status == 404 and headers["Content-Type"].startswith("text/html")
