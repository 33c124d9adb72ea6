"""What the browser tests do as a desk person (sign in by the form's labels), as a partner (an order through
the gateway), and the screenshots they leave in var/screenshots/."""

from __future__ import annotations

import json
import re
import urllib.request
import uuid

from playwright.sync_api import Error as PlaywrightError

from devtools.devstack import ROOT, Stack

SCREENSHOTS = ROOT / "var" / "screenshots"
DEMO = {  # the demo accounts `make run` creates (README "Console")
    "viewer": ("viewer@demo.example", "viewer-demo-pass", "Demo viewer"),
    "clerk": ("clerk@demo.example", "clerk-demo-pass", "Demo clerk"),
    "approver": ("approver@demo.example", "approver-demo-pass", "Demo approver"),
    "admin": ("admin@demo.example", "admin-demo-pass", "Demo admin"),
}
SHOP_KEY = "demo-shop-key"
WAREHOUSE_KEY = "demo-3pl-key"  # P-3PL, the warehouse operator (fulfillment)


def file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def shot(page, name: str) -> None:
    """Saves the page as the README's screenshots. Chromium now and then answers a capture with "Unable to
    capture screenshot" when the machine is busy (a compositor frame not ready): the capture, an artifact
    rather than a check, is asked once more after a moment."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"{file_name(name)}.png")
    try:
        page.screenshot(path=path, full_page=True)
    except PlaywrightError as error:
        if "Unable to capture screenshot" not in str(error):
            raise
        page.wait_for_timeout(500)
        page.screenshot(path=path, full_page=True)


def sign_in(page, role: str) -> None:
    """Signs in with the role's demo account, the way a person does: the form, by its labels."""
    email, password, _ = DEMO[role]
    sign_in_as(page, email, password)


def gateway_post(suite: Stack, path: str, body: dict, key: str = SHOP_KEY, **headers: str) -> dict:
    """A partner's POST to the gateway (JSON both ways); the gateway's answer."""
    request = urllib.request.Request(
        suite.gateway_url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def gateway_get(suite: Stack, path: str, key: str = SHOP_KEY) -> dict:
    """A partner's GET from the gateway; the JSON answer."""
    request = urllib.request.Request(suite.gateway_url + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def submit_order(suite: Stack, body: dict, key: str = SHOP_KEY) -> dict:
    """A partner's order through the gateway (as partners send them); the gateway's answer."""
    return gateway_post(suite, "/v1/orders", body, key, **{"Idempotency-Key": uuid.uuid4().hex})


def submit_orders(suite: Stack, bodies: list[dict], key: str = SHOP_KEY) -> list[dict]:
    """Several of a partner's orders in one batch through the gateway; each order's result."""
    orders = [{**body, "idempotency_key": uuid.uuid4().hex} for body in bodies]
    return gateway_post(suite, "/v1/orders/batch", {"orders": orders}, key)["results"]


def create_account(suite: Stack, email: str, name: str, role: str, password: str, *limits: str) -> None:
    """A desk account made the way an operator does: `orderdesk users create`, the password on stdin."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "cli", "users", "create", "--email", email, "--name", name, "--role", role]
    for limit in limits:
        args += ["--limit", limit]
    subprocess.run(
        [*args, "--password-stdin"], input=password + "\n", text=True, env=suite.env(), cwd=ROOT, check=True
    )


def sign_in_as(page, email: str, password: str) -> None:
    page.goto("/signin")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


CONTROLS = (
    "textbox",
    "combobox",
    "button",
    "checkbox",
    "radio",
    "link",
    "listbox",
    "spinbutton",
    "searchbox",
)


def accessibility_problems(page) -> list[str]:
    """What the page's accessibility tree shows wrong: a control without an accessible name, a table
    without header cells. (The tree is what a screen reader reads, and what get_by_role finds.)"""
    problems = []
    tree = page.locator("body").aria_snapshot()
    for line in tree.splitlines():
        item = line.strip().removeprefix("- ")
        role = re.split(r"[ :\[]", item, maxsplit=1)[0]
        if role in CONTROLS and not re.match(rf'{role} "[^"]+"', item):
            problems.append(f"{role} without a name: {item!r}")
    for table in page.locator("table").all():
        if table.locator("th").count() == 0:
            problems.append("a table without header cells")
    return problems


def assert_accessible(page) -> None:
    problems = accessibility_problems(page)
    assert not problems, f"{page.url}: {problems}"
