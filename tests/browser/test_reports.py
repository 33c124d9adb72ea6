"""Reports, as the desk reads them: the figures of a period beside their charts, a bad period named beside
its field, and the CSV download holding the same figures as the partner API's GET /v1/reports/kpis."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import urllib.request
import uuid

from playwright.sync_api import expect

from tests.browser.desk import shot, sign_in, submit_order

ADMIN_KEY = "demo-admin-key"  # demo/partners.csv: the desk's admin key


def kpis(suite, query: str) -> dict:
    request = urllib.request.Request(
        f"{suite.gateway_url}/v1/reports/kpis?{query}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def flatten(report: dict) -> dict[tuple[str, str, str], str]:
    """GET /v1/reports/kpis's answer as (section, key, measure) -> value, the CSV's long form."""
    out: dict[tuple[str, str, str], str] = {}

    def put(section, key, measure, value):
        out[(section, key, measure)] = "" if value is None else str(value)

    put("period", "", "from", report["from"].replace("+00:00", "Z"))
    put("period", "", "to", report["to"].replace("+00:00", "Z"))
    put("period", "", "group_by", report["group_by"])
    for section, heads in (("total", [report["total"]]), ("group", report["groups"])):
        for h in heads:
            for name, value in h.items():
                if name == "order_value":
                    for m in value:
                        put(section, h["key"], f"order_value.{m['currency']}", m["amount"])
                elif name != "key":
                    put(section, h["key"], name, value)
    for c in report["cycle_times"]:
        for name in ("count", "average_seconds", "p90_seconds"):
            put("cycle_times", c["stage"], name, c[name])
    for section in ("cancellations_by_reason", "holds_by_reason", "returns_by_reason"):
        for r in report[section]:
            put(section, r["reason"], "orders", r["orders"])
            put(section, r["reason"], "units", r["units"])
    for section in ("cancellations_by_sku", "returns_by_sku"):
        for s in report[section]:
            for name in ("units", "base_units", "rate"):
                put(section, s["sku"], name, s[name])
    for section in ("best_sellers", "slow_sellers"):
        for s in report[section]:
            for name in ("currency", "units", "value"):
                put(section, s["sku"], name, s[name])
    return out


def same(csv_value: str, api_value: str) -> bool:
    if csv_value == api_value:
        return True
    try:
        return float(csv_value) == float(api_value)
    except ValueError:
        return False


def test_the_reports_show_a_periods_figures_and_the_csv_matches_the_api(page, suite):
    held = submit_order(
        suite,
        {
            "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
            "customer_id": "C0002",
            "lines": [{"sku": "BRK-002", "quantity": 10, "unit_price": "1.00"}],  # a price hold
            "payment_terms": "NET30",
        },
    )
    assert held["status"] == "on_hold", held
    today = dt.datetime.now(dt.UTC).date()
    start, end = (today - dt.timedelta(days=6)).isoformat(), today.isoformat()
    api = kpis(suite, f"from={start}&to={end}&group_by=day")
    assert api["total"]["orders_received"] >= 1

    sign_in(page, "viewer")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reports").click()
    page.get_by_label("From", exact=True).fill(start)
    page.get_by_label("To", exact=True).fill(end)
    page.get_by_label("Figures").select_option(label="Per day")
    page.get_by_role("button", name="Show the figures").click()

    totals = page.get_by_role("table", name="Totals of the period")
    received = totals.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Orders received"))
    expect(received).to_contain_text(f"{api['total']['orders_received']:,}")
    for chart in ("On-time rate", "Fill rate (units)", "Order volume", "Hold reasons", "Cycle times"):
        expect(page.get_by_role("heading", name=chart, level=2)).to_be_visible()
    expect(page.get_by_role("img", name="Order volume")).to_be_visible()  # the SVG, by its <title>
    volume = page.get_by_role("table", name="Order volume")
    today_row = volume.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=today.strftime("%b %-d, %Y"))
    )
    api_today = next(g for g in api["groups"] if g["key"] == end)
    expect(today_row.get_by_role("cell").first).to_have_text(f"{api_today['orders_received']:,}")
    holds = page.get_by_role("table", name="Hold reasons")
    expect(holds).to_contain_text("Price differs from the customer's price")
    shot(page, "reports-period")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download these figures as CSV").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert rows[0] == ["section", "key", "measure", "value"]
    figures = {(s, k, m): v for s, k, m, v in rows[1:]}
    expected = flatten(api)
    assert figures.keys() == expected.keys()
    wrong = {key: (figures[key], expected[key]) for key in expected if not same(figures[key], expected[key])}
    assert not wrong


def test_a_bad_period_is_named_beside_its_field(page):
    sign_in(page, "viewer")
    page.goto("/reports?from=2024-01-01&to=2026-01-01&group=week")
    expect(page.locator("#from-error")).to_contain_text("A report covers at most 366 days")
    expect(page.get_by_label("From", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("table", name="Totals of the period")).to_have_count(0)
    page.goto("/reports?from=2026-13-45&to=&group=day")
    expect(page.locator("#from-error")).to_contain_text("Enter a date as YYYY-MM-DD")
    shot(page, "reports-bad-period")
