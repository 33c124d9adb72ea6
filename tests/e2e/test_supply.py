"""Supply through every real process: backorders filled by a receipt in priority order, a
make-to-order product scheduled with its production date and completed (at once, or in part), available
to promise."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from orderdesk import masterdata
from orderdesk.calendar import CalendarBook, add_working_days

pytestmark = pytest.mark.e2e

CUSTOMER = (
    "C0001"  # standard, active, NET30, ships to FR: nearest warehouse WH-HAM (the DE -> FR lane: 2 days)
)
DEMO = Path(__file__).resolve().parents[2] / "demo"
# The demo's calendars as the services hold them: dates below are working days of these.
BOOK = CalendarBook(
    masterdata.parse("warehouses", (DEMO / "warehouses.csv").read_text()),
    masterdata.parse("calendars", (DEMO / "calendars.csv").read_text()),
    masterdata.parse("lanes", (DEMO / "lanes.csv").read_text()),
)


def working_days_from_today(n: int, warehouse: str = "WH-HAM") -> set[str]:
    """`n` working days of the warehouse after its local today (or after tomorrow, for a test that
    crosses midnight there)."""
    calendar = BOOK.warehouse(warehouse)
    assert calendar is not None
    today = calendar.today(dt.datetime.now(dt.UTC))
    return {add_working_days(today + dt.timedelta(days=d), n, calendar).isoformat() for d in (0, 1)}


HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"


def new_sku(prefix: str = "SUP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


async def add_product(admin, sku: str, *, make_to_order: bool = False, lead_time_days: int = 3) -> None:
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=HEADER
        + f"{sku},Supply part {sku},10.00,USD,{str(make_to_order).lower()},{lead_time_days},1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body


async def submit(partner, sku: str, quantity: int, **extra) -> str:
    body = {
        "external_ref": f"PO-{uuid.uuid4().hex[:8]}",
        "customer_id": CUSTOMER,
        "payment_terms": "NET30",
        "lines": [{"sku": sku, "quantity": quantity, "unit_price": "10.00"}],
        **extra,
    }
    status, answer, _ = await partner.post(
        "/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert status == 201, answer
    return answer["order_id"]


async def wait_status(partner, order_id: str, wanted: str, eventually) -> dict:
    async def check():
        code, body, _ = await partner.get(f"/v1/orders/{order_id}")
        return body if code == 200 and body["status"] == wanted else None

    return await eventually(check)


async def test_a_receipt_fills_the_higher_priority_backorder_and_leaves_the_other_scheduled(
    shop, admin, eventually
):
    sku = new_sku()
    await add_product(admin, sku, lead_time_days=3)
    normal = await submit(shop, sku, 5)
    urgent = await submit(shop, sku, 5, urgent=True)  # same customer and tier: urgent ranks higher
    first = await wait_status(shop, normal, "scheduled", eventually)
    second = await wait_status(shop, urgent, "scheduled", eventually)
    assert second["priority"] > first["priority"]
    assert first["lines"][0]["allocated_quantity"] == 0 == second["lines"][0]["allocated_quantity"]
    assert (
        first["expected_delivery_date"] and second["expected_delivery_date"]
    )  # a run is planned (lead 3 days)

    receipt = {"warehouse": "WH-HAM", "sku": sku, "quantity": 5, "reference": f"GRN-{uuid.uuid4().hex[:8]}"}
    status, body, _ = await admin.post("/v1/admin/receipts", json=receipt)
    assert status == 200, body
    assert {w["warehouse"]: (w["on_hand"], w["reserved"]) for w in body["warehouses"]} == {"WH-HAM": (5, 5)}

    allocated = await wait_status(shop, urgent, "allocated", eventually)
    assert allocated["lines"][0]["allocated_quantity"] == 5 and allocated["expected_delivery_date"] == ""
    assert [a["warehouse"] for a in allocated["allocations"]] == ["WH-HAM"]
    code, still, _ = await shop.get(f"/v1/orders/{normal}")
    assert code == 200 and still["status"] == "scheduled" and still["lines"][0]["allocated_quantity"] == 0

    status, body, _ = await admin.post("/v1/admin/receipts", json=receipt)  # the same receipt again: nothing
    assert status == 200 and body["warehouses"][0]["on_hand"] == 5
    status, body, _ = await admin.post("/v1/admin/receipts", json={**receipt, "quantity": 6})
    assert status == 422 and body["errors"][0]["field"] == "reference", body
    status, body, _ = await shop.post("/v1/admin/receipts", json={**receipt, "reference": "GRN-NOT-YOURS"})
    assert status == 403, body
    status, body, _ = await admin.post("/v1/admin/receipts", json={**receipt, "quantity": 0})
    assert status == 422 and any(e["field"].endswith("quantity") for e in body["errors"]), body

    # the next receipt covers the other order: it moves on by itself
    status, body, _ = await admin.post(
        "/v1/admin/receipts", json={**receipt, "reference": f"GRN-{uuid.uuid4().hex[:8]}"}
    )
    assert status == 200, body
    await wait_status(shop, normal, "allocated", eventually)


async def test_a_make_to_order_product_is_scheduled_with_its_production_date_then_made(
    shop, admin, eventually
):
    sku = new_sku("MTO")
    await add_product(admin, sku, make_to_order=True, lead_time_days=10)
    order_id = await submit(shop, sku, 2)
    order = await wait_status(shop, order_id, "scheduled", eventually)
    # 10 working days of Hamburg (Monday to Friday, its holidays and stocktake)
    assert order["expected_ship_date"] in working_days_from_today(10)
    # made into the warehouse nearest the customer (WH-HAM for FR), shipped that day, the lane's 2
    # working days in France
    ready = dt.date.fromisoformat(order["expected_ship_date"])
    assert order["expected_delivery_date"] == BOOK.arrival_from(ready, "WH-HAM", "FR").isoformat()
    assert "expected delivery" in order["history"][-1]["reason"]

    status, runs, _ = await admin.get(f"/v1/admin/production?sku={sku}&status=open")
    assert status == 200 and len(runs["items"]) == 1, runs
    run = runs["items"][0]
    assert (run["warehouse"], run["quantity"], run["expected_date"]) == (
        "WH-HAM",
        2,
        order["expected_ship_date"],
    )

    status, done, _ = await admin.post(f"/v1/admin/production/{run['production_id']}/complete")
    assert status == 200 and done["status"] == "completed", done
    allocated = await wait_status(shop, order_id, "allocated", eventually)
    assert allocated["allocations"] == [{"sku": sku, "warehouse": "WH-HAM", "quantity": 2}]
    status, again, _ = await admin.post(f"/v1/admin/production/{run['production_id']}/complete")
    assert status == 200 and again["status"] == "completed"  # a repeat receives nothing twice
    status, level, _ = await admin.get(f"/v1/inventory/{sku}")
    assert status == 200 and level["warehouses"] == [
        {"warehouse": "WH-HAM", "on_hand": 2, "reserved": 2, "available": 0}
    ]
    status, body, _ = await admin.post("/v1/admin/production/PRD-unknown/complete")
    assert status == 404, body


async def test_a_run_completed_in_part_fills_the_first_order_and_keeps_the_rest_open(shop, admin, eventually):
    sku = new_sku("MTO")
    await add_product(admin, sku, make_to_order=True, lead_time_days=10)
    first = await submit(shop, sku, 4)
    await wait_status(shop, first, "scheduled", eventually)
    second = await submit(shop, sku, 2)
    await wait_status(shop, second, "scheduled", eventually)
    status, runs, _ = await admin.get(f"/v1/admin/production?sku={sku}&status=open")
    assert status == 200 and [r["quantity"] for r in runs["items"]] == [6], runs  # one run for the day
    path = f"/v1/admin/production/{runs['items'][0]['production_id']}/complete"

    status, problem, _ = await admin.post(path, json={"quantity": 4})  # a part needs its reference
    assert status == 422 and problem["errors"][0]["field"] == "reference", problem
    status, rest, _ = await admin.post(path, json={"quantity": 4, "reference": "batch-1"})
    assert status == 200 and (rest["status"], rest["quantity"]) == ("open", 2), rest
    await wait_status(shop, first, "allocated", eventually)  # first come, first filled
    status, again, _ = await admin.post(path, json={"quantity": 4, "reference": "batch-1"})
    assert status == 200 and again["quantity"] == 2, again  # the same part again receives nothing
    status, level, _ = await admin.get(f"/v1/inventory/{sku}")
    assert status == 200 and [w["on_hand"] for w in level["warehouses"]] == [4], level
    status, order, _ = await shop.get(f"/v1/orders/{second}")
    assert status == 200 and order["status"] == "scheduled", order

    status, done, _ = await admin.post(path)  # the rest
    assert status == 200 and done["status"] == "completed", done
    await wait_status(shop, second, "allocated", eventually)


async def test_available_to_promise_answers_partners_with_the_orders_scope(
    shop, admin, warehouse_operator, eventually
):
    sku = new_sku("ATP")
    await add_product(admin, sku, lead_time_days=5)
    status, body, _ = await admin.post(
        "/v1/admin/import/stock",
        data=f"sku,warehouse,on_hand\n{sku},WH-CHI,4\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    order_id = await submit(shop, sku, 6)  # takes 4, misses 2: a run of 2 in 5 days
    await wait_status(shop, order_id, "scheduled", eventually)

    status, atp, _ = await shop.get(f"/v1/inventory/{sku}/atp")
    assert status == 200, atp
    assert (atp["available_now"], atp["backordered"], atp["in_production"]) == (0, 2, 2)
    assert [d["quantity"] for d in atp["dates"]] == [0, 0]  # everything coming is promised already
    status, body, _ = await admin.post(
        "/v1/admin/receipts",
        json={"warehouse": "WH-SHA", "sku": sku, "quantity": 10, "reference": f"GRN-{uuid.uuid4().hex[:8]}"},
    )
    assert status == 200, body
    await wait_status(shop, order_id, "allocated", eventually)
    status, atp, _ = await shop.get(f"/v1/inventory/{sku}/atp")
    assert status == 200 and (atp["available_now"], atp["backordered"]) == (8, 0), atp
    today, later = atp["dates"]
    assert today["quantity"] == 8 and today["warehouses"] == [{"warehouse": "WH-SHA", "quantity": 8}]
    # + the run's 2 at its date: 5 working days of Hamburg (nearest to FR)
    assert later["quantity"] == 10 and later["date"] in working_days_from_today(5)

    status, body, _ = await warehouse_operator.get(f"/v1/inventory/{sku}/atp")
    assert status == 403, body
    status, body, _ = await shop.get("/v1/inventory/NO-SUCH-SKU-EVER/atp")
    assert status == 404, body


async def test_the_cli_receives_lists_completes_and_answers_atp(
    stack, shop, admin, eventually, monkeypatch, capsys
):
    import cli.main as cli

    sku = new_sku("CLI")
    await add_product(admin, sku, make_to_order=True, lead_time_days=4)
    order_id = await submit(shop, sku, 3)
    await wait_status(shop, order_id, "scheduled", eventually)
    monkeypatch.setenv("ORDERDESK_GATEWAY_URL", stack.gateway_url)
    monkeypatch.setenv("ORDERDESK_API_KEY", "demo-admin-key")

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = await run("supply", "production", "--sku", sku, "--status", "open", "--json")
    assert code == 0
    (run_,) = json.loads(out)["items"]
    code, out, _ = await run("supply", "atp", sku)
    assert code == 0 and f"{sku}: 0 available now, 3 owed to backorders, 3 in production" in out
    code, out, _ = await run("supply", "complete", run_["production_id"])
    assert code == 0 and "completed: 3 x" in out
    await wait_status(shop, order_id, "allocated", eventually)
    code, out, _ = await run(
        "supply",
        "receive",
        "--warehouse",
        "WH-CHI",
        "--sku",
        sku,
        "--quantity",
        "2",
        "--reference",
        f"GRN-{uuid.uuid4().hex[:8]}",
    )
    assert code == 0 and "WH-CHI" in out
    code, _, err = await run(
        "supply",
        "receive",
        "--warehouse",
        "WH-NOPE",
        "--sku",
        sku,
        "--quantity",
        "2",
        "--reference",
        f"GRN-{uuid.uuid4().hex[:8]}",
    )
    assert code == 1 and "warehouse" in err
    monkeypatch.setenv("ORDERDESK_API_KEY", "demo-shop-key")
    code, _, err = await run("supply", "complete", run_["production_id"])
    assert code == 1 and "403" in err
