"""The desk's numbers end to end: a few scripted orders through the gateway, then the report over the API
and the CLI's CSV must show the figures worked out by hand, and the orders service's Prometheus counters
must have moved by the same amounts."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import os
import subprocess
import sys
import urllib.request
import uuid

import pytest

from tests.e2e.test_lifecycle import add_product, order_body, ship_everything, submit, wait_status
from tests.e2e.test_metrics import value

pytestmark = pytest.mark.e2e

CUSTOMER = "C0005"  # no other e2e test orders for this customer: its group holds only this test's orders
STAGES = ("received_to_confirmed", "confirmed_to_shipped", "shipped_to_delivered", "received_to_delivered")


def scrape(url: str) -> str:
    return urllib.request.urlopen(url, timeout=5).read().decode()


def counters(text: str) -> dict[str, float]:
    """The counters behind the report's formulas (README "The desk's numbers")."""
    got = {
        "received": value(text, "orderdesk_order_status_transitions_total", status="received"),
        "on_hold": value(text, "orderdesk_order_status_transitions_total", status="on_hold"),
        "cancelled": value(text, "orderdesk_order_status_transitions_total", status="cancelled"),
        "completed": value(text, "orderdesk_orders_completed_total"),
        "on_time": value(text, "orderdesk_orders_completed_total", on_time="true"),
        "lines": value(text, "orderdesk_order_lines_first_allocated_total"),
        "lines_filled": value(text, "orderdesk_order_lines_first_allocated_total", filled="true"),
        "units": value(text, "orderdesk_order_units_first_allocated_total"),
        "units_filled": value(text, "orderdesk_order_units_first_allocated_total", outcome="filled"),
        "hold_price_mismatch": value(text, "orderdesk_order_hold_reasons_total", reason="price_mismatch"),
        "cancel_out_of_stock": value(text, "orderdesk_order_cancellations_total", reason="out_of_stock"),
        "cancelled_units_out_of_stock": value(
            text, "orderdesk_order_units_cancelled_total", reason="out_of_stock"
        ),
        "delivered_units": value(text, "orderdesk_order_units_delivered_total"),
        "returned_damaged": value(text, "orderdesk_order_units_returned_total", reason="damaged"),
    }
    for stage in STAGES:
        got[f"{stage}_count"] = value(text, "orderdesk_order_cycle_seconds_count", stage=stage)
        got[f"{stage}_sum"] = value(text, "orderdesk_order_cycle_seconds_sum", stage=stage)
    return got


def rfc3339(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


async def test_report_figures_match_a_scripted_history(stack, shop, warehouse_operator, admin, eventually):
    metrics_url = f"http://127.0.0.1:{stack.metrics_ports['orders']}/metrics"
    ok_sku, scarce_sku = f"KPI-{uuid.uuid4().hex[:8].upper()}", f"KPI-{uuid.uuid4().hex[:8].upper()}"
    await add_product(admin, ok_sku, price="5.00", stock={"WH-CHI": 100})
    await add_product(admin, scarce_sku, price="7.00", stock={"WH-CHI": 2})

    async def quiet():  # earlier tests' orders still waiting for their first reservation would count in the window
        code, page, _ = await admin.get("/v1/orders?status=confirmed&limit=1")
        return code == 200 and not page["items"]

    await eventually(quiet, timeout=120)
    before = counters(scrape(metrics_url))
    start = dt.datetime.now(dt.UTC)

    # 1. delivered on time; 2. delivered, then one unit returned as damaged.
    delivered = []
    for quantity in (2, 3):
        code, created, _ = await submit(shop, order_body(ok_sku, quantity, price="5.00", customer=CUSTOMER))
        assert code == 201 and created["status"] == "confirmed", created
        await wait_status(shop, created["order_id"], "allocated", eventually)
        await ship_everything(shop, warehouse_operator, created["order_id"], eventually)
        await wait_status(shop, created["order_id"], "completed", eventually)
        delivered.append(created["order_id"])
    code, rma, _ = await shop.post(
        f"/v1/orders/{delivered[1]}/returns",
        json={
            "lines": [{"sku": ok_sku, "quantity": 1, "reason": "damaged: crushed box"}],
            "resolution": "refund",
        },
    )
    assert code == 201, rma
    assert (await warehouse_operator.post(f"/v1/returns/{rma['rma_id']}/receive"))[0] == 200
    code, body, _ = await warehouse_operator.post(
        f"/v1/returns/{rma['rma_id']}/inspect",
        json={"lines": [{"sku": ok_sku, "quantity": 1, "outcome": "restock"}]},
    )
    assert code == 200 and body["status"] == "refunded", body

    async def returned_on_order():
        _, order, _ = await shop.get(f"/v1/orders/{delivered[1]}")
        return order["lines"][0]["returned_quantity"] == 1

    await eventually(returned_on_order)

    # 3. short on the scarce SKU at its first reservation (2 of 5), then cancelled by the customer.
    body = order_body(ok_sku, 1, price="5.00", customer=CUSTOMER)
    body["lines"].append({"sku": scarce_sku, "quantity": 5, "unit_price": "7.00"})
    code, created, _ = await submit(shop, body)
    assert code == 201 and created["status"] == "confirmed", created
    short = await wait_status(shop, created["order_id"], "scheduled", eventually)
    assert [x["allocated_quantity"] for x in short["lines"]] == [1, 2], short["lines"]
    code, cancelled, _ = await shop.post(
        f"/v1/orders/{created['order_id']}/cancel", json={"reason": "out_of_stock: cannot wait"}
    )
    assert code == 200 and cancelled["status"] == "cancelled", cancelled

    # 4. held: the price differs from the customer's.
    code, held, _ = await submit(shop, order_body(ok_sku, 1, price="4.00", customer=CUSTOMER))
    assert code == 201 and held["status"] == "on_hold", held
    assert [r["code"] for r in held["hold_reasons"]] == ["price_mismatch"]

    end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    query = f"from={rfc3339(start)}&to={rfc3339(end)}".replace("+", "%2B")
    code, report, _ = await admin.get(f"/v1/reports/kpis?{query}")
    assert code == 200, report
    t = report["total"]
    # Received: the four orders; value 2x5 + 3x5 + (1x5 + 5x7) + 1x4 = 10 + 15 + 40 + 4 = 69.00 USD.
    assert t["orders_received"] == 4
    assert t["order_value"] == [{"currency": "USD", "amount": "69.00"}]
    # First reservations: order 1 (2 of 2), order 2 (3 of 3), order 3 (1 of 1 and 2 of 5); the held order has none.
    # Lines 3 of 4 filled; units 2 + 3 + 1 + 2 = 8 of 2 + 3 + 1 + 5 = 11.
    assert (t["lines_first_allocated"], t["lines_filled"], t["units_first_allocated"], t["units_filled"]) == (
        4,
        3,
        11,
        8,
    )
    assert t["line_fill_rate"] == 0.75 and t["unit_fill_rate"] == pytest.approx(8 / 11)
    # Both delivered orders arrived by the promised date.
    assert (t["orders_delivered"], t["orders_on_time"], t["on_time_rate"]) == (2, 2, 1.0)
    assert (t["orders_cancelled"], t["cancellation_rate"], t["orders_held"], t["hold_rate"]) == (
        1,
        0.25,
        1,
        0.25,
    )
    assert report["holds_by_reason"] == [{"reason": "price_mismatch", "orders": 1, "units": 0}]
    assert report["cancellations_by_reason"] == [{"reason": "out_of_stock", "orders": 1, "units": 6}]
    # Cancelled 5 of the 5 scarce units ordered, 1 of the 2 + 3 + 1 + 1 = 7 others.
    assert report["cancellations_by_sku"] == [
        {"sku": scarce_sku, "units": 5, "base_units": 5, "rate": 1.0},
        {"sku": ok_sku, "units": 1, "base_units": 7, "rate": pytest.approx(1 / 7)},
    ]
    # Sold (not cancelled or rejected): 2 + 3 + 1 (held) = 6 units for 10 + 15 + 4 = 29.00.
    assert report["best_sellers"] == [{"sku": ok_sku, "currency": "USD", "units": 6, "value": "29.00"}]
    # Returned 1 of the 2 + 3 = 5 units delivered.
    assert report["returns_by_sku"] == [{"sku": ok_sku, "units": 1, "base_units": 5, "rate": 0.2}]
    assert report["returns_by_reason"] == [{"reason": "damaged", "orders": 1, "units": 1}]
    stages = {c["stage"]: c for c in report["cycle_times"]}
    # Three orders were confirmed (at once, by intake); two shipped and were delivered.
    assert [stages[s]["count"] for s in STAGES] == [3, 2, 2, 2]
    assert stages["received_to_confirmed"]["average_seconds"] == pytest.approx(0, abs=0.01)
    assert 0 < stages["received_to_delivered"]["average_seconds"] < (end - start).total_seconds()
    assert (
        stages["received_to_delivered"]["p90_seconds"] >= stages["received_to_delivered"]["average_seconds"]
    )

    # Grouped by channel and by customer: one group each (api, this test's customer), equal to the total.
    for group_by, key in (("channel", "api"), ("customer", CUSTOMER)):
        code, grouped, _ = await admin.get(f"/v1/reports/kpis?{query}&group_by={group_by}")
        assert code == 200 and [g["key"] for g in grouped["groups"]] == [key], grouped
        assert {k: v for k, v in grouped["groups"][0].items() if k != "key"} == {
            k: v for k, v in t.items() if k != "key"
        }

    # The SRE's counters moved by exactly the report's figures.
    async def metrics_caught_up():
        after = counters(scrape(metrics_url))
        return after if after["returned_damaged"] - before["returned_damaged"] >= 1 else None

    after = await eventually(metrics_caught_up)
    moved = {k: after[k] - before[k] for k in after}
    assert (moved["received"], moved["on_hold"], moved["cancelled"]) == (4, 1, 1)
    assert (moved["completed"], moved["on_time"]) == (t["orders_delivered"], t["orders_on_time"])
    assert (moved["lines"], moved["lines_filled"]) == (t["lines_first_allocated"], t["lines_filled"])
    assert (moved["units"], moved["units_filled"]) == (t["units_first_allocated"], t["units_filled"])
    assert (
        moved["hold_price_mismatch"],
        moved["cancel_out_of_stock"],
        moved["cancelled_units_out_of_stock"],
    ) == (1, 1, 6)
    assert (moved["delivered_units"], moved["returned_damaged"]) == (5, 1)
    for stage in STAGES:
        assert moved[f"{stage}_count"] == stages[stage]["count"], stage
        assert moved[f"{stage}_sum"] == pytest.approx(
            stages[stage]["average_seconds"] * stages[stage]["count"], abs=1e-3
        ), stage

    # The CLI's CSV for spreadsheets says the same.
    env = {**os.environ, **stack.env(), "ORDERDESK_API_KEY": "demo-admin-key"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "report", "--from", rfc3339(start), "--to", rfc3339(end), "--csv"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    cells = {(r["section"], r["group"], r["item"], r["figure"]): r["value"] for r in rows}
    assert cells[("headline", "total", "", "orders_received")] == "4"
    assert cells[("headline", "total", "USD", "order_value")] == "69.00"
    assert cells[("headline", "total", "", "line_fill_rate")] == "0.75"
    assert float(cells[("headline", "total", "", "unit_fill_rate")]) == pytest.approx(8 / 11)
    assert cells[("headline", "total", "", "on_time_rate")] == "1.0"
    assert cells[("headline", "total", "", "cancellation_rate")] == "0.25"
    assert cells[("headline", "total", "", "hold_rate")] == "0.25"
    assert cells[("holds_by_reason", "", "price_mismatch", "orders")] == "1"
    assert cells[("returns_by_sku", "", ok_sku, "rate")] == "0.2"
    assert cells[("cycle_time", "", "shipped_to_delivered", "count")] == "2"
    people = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "cli", "report", "--from", rfc3339(start), "--to", rfc3339(end)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert people.returncode == 0 and "75.0% (3/4)" in people.stdout, people.stdout + people.stderr


async def test_report_refuses_bad_periods_and_non_admins(shop, admin):
    code, problem, headers = await admin.get("/v1/reports/kpis?from=yesterday&group_by=year")
    assert code == 422 and headers["Content-Type"].startswith("application/problem+json"), problem
    assert sorted(e["field"] for e in problem["errors"]) == ["from", "group_by"]
    code, problem, _ = await admin.get("/v1/reports/kpis?from=2026-11-02&to=2026-11-01")
    assert code == 422 and [e["field"] for e in problem["errors"]] == ["to"], problem
    code, problem, _ = await shop.get("/v1/reports/kpis")
    assert code == 403, problem
    code, empty, _ = await admin.get("/v1/reports/kpis?from=2001-01-01&to=2001-01-31&group_by=week")
    assert code == 200 and empty["total"]["orders_received"] == 0 and empty["groups"] == []
    assert empty["total"]["hold_rate"] is None and empty["total"]["on_time_rate"] is None
