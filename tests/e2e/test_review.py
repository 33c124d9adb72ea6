"""The desk's review, end to end: every hold reason through the API, the work queue, approval
that re-checks stock and credit, and proposals accepted from the `orderdesk` CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import uuid

import pytest

from devtools.devstack import ROOT
from tests.e2e.test_lifecycle import new_sku, order_body, submit, wait_status

pytestmark = pytest.mark.e2e

PRODUCTS_HEADER = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
CUSTOMERS_HEADER = (
    "customer_id,name,tier,status,credit_limit,currency,payment_terms,email,phone,ship_to_line1,"
    "ship_to_city,ship_to_postal_code,ship_to_country\n"
)
KEY_CUSTOMER = "C0004"  # key tier, NET45, credit limit 200000
NEW_CUSTOMER = "C0007"  # new tier, PREPAID only
BLOCKED_CUSTOMER = "C0029"


async def import_csv(admin, kind: str, text: str) -> None:
    status, body, _ = await admin.post(
        f"/v1/admin/import/{kind}", data=text, headers={"Content-Type": "text/csv"}
    )
    assert status == 200, body


async def product(
    admin,
    *,
    price="10.00",
    currency="USD",
    lead_days=3,
    min_qty=1,
    multiple=1,
    status="active",
    stock: dict[str, int] | None = None,
) -> str:
    sku = new_sku()
    await import_csv(
        admin,
        "products",
        PRODUCTS_HEADER + f"{sku},Review part,{price},{currency},false,{lead_days},{min_qty},{multiple},"
        f"{status}\n",
    )
    if stock:
        await import_csv(
            admin,
            "stock",
            "sku,warehouse,on_hand\n" + "".join(f"{sku},{wh},{qty}\n" for wh, qty in stock.items()),
        )
    return sku


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**stack.env(), "ORDERDESK_API_KEY": "demo-admin-key", "ORDERDESK_GATEWAY_URL": stack.gateway_url}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def codes(order: dict) -> list[str]:
    return [r["code"] for r in order["hold_reasons"]]


async def test_every_hold_reason_is_reachable_through_the_api(shop, admin):
    """One order per reason; each is entered and held with that machine-readable code."""
    sku = await product(admin, stock={"WH-CHI": 1000})
    few = await product(admin, min_qty=10, multiple=5, stock={"WH-CHI": 1000})
    old = await product(admin, status="discontinued", stock={"WH-CHI": 10})
    euro = await product(admin, currency="EUR", stock={"WH-CHI": 10})
    slow = await product(admin, lead_days=40)  # no stock: made in 40 days
    mute = f"C9{uuid.uuid4().hex[:3].upper()}"
    await import_csv(
        admin,
        "customers",
        CUSTOMERS_HEADER + f"{mute},Silent Ltd,standard,active,50000,USD,NET30,,"
        f",1 Quiet Road,Lyon,69001,FR\n",
    )
    address = {
        "name": "Dock 4",
        "line1": "1 Rue A",
        "city": "Lyon",
        "postal_code": "69001",
        "country": "FR",
        "phone": "+33 4 00 00 00 00",
    }
    soon = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    ref = f"PO-{uuid.uuid4().hex[:6]}"
    cases = {
        "customer_blocked": order_body(sku, 1, customer=BLOCKED_CUSTOMER),
        "contact_missing": order_body(sku, 1, customer=mute),
        "ship_to_incomplete": order_body(sku, 1, ship_to={**address, "postal_code": ""}),  # FR needs one
        "country_unknown": order_body(sku, 1, ship_to={**address, "country": "XQ"}),
        "postal_code_invalid": order_body(sku, 1, ship_to={**address, "postal_code": "ABC"}),
        "payment_terms_not_allowed": order_body(sku, 1, payment_terms="NET90"),
        "sku_discontinued": order_body(old, 1),
        "duplicate_line": {
            **order_body(sku, 1),
            "lines": [{"sku": sku, "quantity": 1, "unit_price": "10.00"}] * 2,
        },
        "currency_mismatch": order_body(euro, 1),
        "price_mismatch": order_body(sku, 1, price="9.00"),
        "below_min_order_qty": order_body(few, 5),
        "not_order_multiple": order_body(few, 12),
        "delivery_date_infeasible": order_body(slow, 1, requested_delivery_date=soon),
        "credit_limit_exceeded": order_body(sku, 5001),  # 50,010 > C0001's 50,000
        "new_customer_review": {**order_body(sku, 1, customer=NEW_CUSTOMER), "payment_terms": "PREPAID"},
        "amount_review": {
            **order_body(sku, 10001, customer=KEY_CUSTOMER),
            "payment_terms": "NET45",
        },  # > 100,000
        "duplicate_external_ref": {**order_body(sku, 1), "external_ref": ref},
    }
    code, first, _ = await submit(shop, {**order_body(sku, 1), "external_ref": ref})
    assert code == 201 and first["status"] == "confirmed", first
    answers = await asyncio.gather(*[submit(shop, body) for body in cases.values()])
    for (reason, _), (code, body, _) in zip(cases.items(), answers, strict=True):
        assert code == 201, (reason, body)
        assert body["status"] == "on_hold" and reason in codes(body), (reason, body)
        held_for = next(r for r in body["hold_reasons"] if r["code"] == reason)
        assert held_for["message"] and held_for["field"], (reason, held_for)
    # The infeasible date came with proposals the desk can accept.
    late = answers[list(cases).index("delivery_date_infeasible")][1]
    assert {p["kind"] for p in late["proposals"]} == {"earliest_date"}


async def test_the_queue_is_worked_by_priority_and_filtered_by_reason_from_the_cli(stack, shop, admin):
    sku = await product(admin, stock={"WH-CHI": 100})
    _, standard, _ = await submit(shop, order_body(sku, 1, price="9.10"))
    _, urgent, _ = await submit(shop, order_body(sku, 1, price="9.20", urgent=True))
    _, key, _ = await submit(
        shop, {**order_body(sku, 1, price="9.30", customer=KEY_CUSTOMER), "payment_terms": "NET45"}
    )
    listed = cli(stack, "queue", "list", "--reason", "price_mismatch", "--limit", "500", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [o["order_id"] for o in json.loads(listed.stdout)["items"]]
    mine = [i for i in ids if i in {standard["order_id"], urgent["order_id"], key["order_id"]}]
    assert mine == [
        key["order_id"],
        urgent["order_id"],
        standard["order_id"],
    ]  # key tier, then urgent, then FIFO
    priorities = [o["priority"] for o in json.loads(listed.stdout)["items"]]
    assert priorities == sorted(priorities, reverse=True)
    text = cli(stack, "queue", "list", "--reason", "price_mismatch", "--limit", "500")
    assert "PRIORITY" in text.stdout and key["order_id"] in text.stdout and "price_mismatch" in text.stdout

    shown = cli(stack, "queue", "show", key["order_id"])
    assert (
        shown.returncode == 0 and "price_mismatch" in shown.stdout and "lines[0].unit_price" in shown.stdout
    )

    approved = cli(stack, "queue", "approve", key["order_id"], "--note", "agreed price with the buyer")
    assert approved.returncode == 0 and "confirmed" in approved.stdout, approved.stderr
    rejected = cli(stack, "queue", "reject", standard["order_id"], "--reason", "price not agreed")
    assert rejected.returncode == 0 and "rejected" in rejected.stdout, rejected.stderr
    again = cli(stack, "queue", "reject", standard["order_id"], "--reason", "twice")
    assert again.returncode == 1 and "409" in again.stderr and "reject_only_on_hold" in again.stderr

    _, order, _ = await admin.get(f"/v1/orders/{key['order_id']}")
    last = next(h for h in order["history"] if h["status"] == "confirmed")
    assert last["actor"] == "key:csv-import@P-ADMIN"  # the named key (the partners CSV's) and its partner
    assert last["reason"].startswith("agreed price with the buyer") and "re-checked" in last["reason"]
    _, order, _ = await admin.get(f"/v1/orders/{standard['order_id']}")
    assert order["status"] == "rejected" and order["history"][-1]["reason"] == "price not agreed"


async def test_approval_re_checks_stock_and_refuses_a_new_problem_until_acknowledged(shop, admin, eventually):
    sku = await product(admin, lead_days=30, stock={"WH-CHI": 5})
    date = (dt.date.today() + dt.timedelta(days=14)).isoformat()
    _, held, _ = await submit(shop, order_body(sku, 5, price="9.99", requested_delivery_date=date))
    assert codes(held) == ["price_mismatch"], held  # the date is fine today: 5 in stock
    _, other, _ = await submit(shop, order_body(sku, 5))  # ... until another order takes the stock
    await wait_status(shop, other["order_id"], "allocated", eventually)

    _, before, _ = await admin.get(f"/v1/orders/{held['order_id']}")
    code, refused, _ = await admin.post(
        f"/v1/orders/{held['order_id']}/approve", json={"note": "price agreed"}
    )
    assert code == 409, refused
    assert refused["rule"] == "approval_recheck_failed" and "delivery_date_infeasible" in refused["detail"]
    assert [(e["reason"], e["field"]) for e in refused["errors"]] == [
        ("delivery_date_infeasible", "requested_delivery_date")
    ]
    _, unchanged, _ = await admin.get(f"/v1/orders/{held['order_id']}")
    assert unchanged["status"] == "on_hold" and unchanged["version"] == before["version"]

    code, approved, _ = await admin.post(
        f"/v1/orders/{held['order_id']}/approve",
        json={
            "note": "price agreed; customer accepts a later delivery",
            "acknowledge": ["delivery_date_infeasible"],
        },
    )
    assert code == 200 and approved["status"] == "confirmed", approved
    confirmed = next(h for h in approved["history"] if h["status"] == "confirmed")
    assert "re-checked: delivery_date_infeasible accepted" in confirmed["reason"]


async def test_a_split_proposal_accepted_from_the_cli_gives_two_deliveries(
    stack, shop, admin, warehouse_operator, eventually
):
    sku = await product(admin, lead_days=20, stock={"WH-CHI": 3})
    date = (dt.date.today() + dt.timedelta(days=13)).isoformat()  # 3 in stock arrive in time, 7 must be made
    code, held, _ = await submit(shop, order_body(sku, 10, requested_delivery_date=date))
    assert code == 201 and codes(held) == ["delivery_date_infeasible"], held
    split = next(p for p in held["proposals"] if p["kind"] == "split")
    assert {(p["quantity"], p["delivery_date"] == date) for p in split["parts"]} == {(3, True), (7, False)}
    later_date = next(p["delivery_date"] for p in split["parts"] if p["delivery_date"] != date)

    shown = cli(stack, "queue", "show", held["order_id"])
    assert "proposal split" in shown.stdout and later_date in shown.stdout
    done = cli(
        stack, "queue", "approve", held["order_id"], "--accept", "split", "--note", "customer takes two"
    )
    assert done.returncode == 0, done.stderr
    first_id, second_id = held["order_id"], f"{held['order_id']}-2"
    assert second_id in done.stdout

    _, first, _ = await shop.get(f"/v1/orders/{first_id}")
    _, second, _ = await shop.get(f"/v1/orders/{second_id}")  # the partner sees its later delivery too
    assert [(x["sku"], x["quantity"]) for x in first["lines"]] == [(sku, 3)] and first["split_into"] == [
        second_id
    ]
    assert [(x["sku"], x["quantity"]) for x in second["lines"]] == [(sku, 7)] and second[
        "split_from"
    ] == first_id
    assert first["requested_delivery_date"] == date and second["requested_delivery_date"] == later_date
    assert "accepted a split" in next(h for h in first["history"] if h["status"] == "confirmed")["reason"]

    await wait_status(shop, first_id, "allocated", eventually)  # the first delivery ships from stock
    code, body, _ = await admin.post(
        "/v1/admin/receipts",
        json={  # the rest arrives
            "warehouse": "WH-CHI",
            "sku": sku,
            "quantity": 7,
            "reference": f"GRN-{sku}",
        },
    )
    assert code == 200, body
    await wait_status(shop, second_id, "allocated", eventually)

    async def shipments(order_id):
        code, body, _ = await warehouse_operator.get(f"/v1/shipments?order_id={order_id}")
        return body["items"] if code == 200 and body["items"] else None

    one, two = await eventually(lambda: shipments(first_id)), await eventually(lambda: shipments(second_id))
    assert [s["lines"][0]["quantity"] for s in one] == [3] and [s["lines"][0]["quantity"] for s in two] == [7]
    assert one[0]["promised_delivery_date"] <= date < two[0]["promised_delivery_date"]


async def test_accepting_the_earliest_date_moves_the_whole_order(stack, shop, admin, eventually):
    sku = await product(admin, lead_days=20)
    date = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    _, held, _ = await submit(shop, order_body(sku, 2, requested_delivery_date=date))
    earliest = next(p["delivery_date"] for p in held["proposals"] if p["kind"] == "earliest_date")
    code, body, _ = await admin.post(
        f"/v1/orders/{held['order_id']}/approve", json={"accept_proposal": "earliest_date", "note": "ok"}
    )
    assert code == 200 and body["status"] == "confirmed" and body["requested_delivery_date"] == earliest, body
    # What the desk was told sticks: read again after orders has restarted, the order keeps the new date.
    await asyncio.to_thread(stack.restart, "orders")
    code, again, _ = await admin.get(f"/v1/orders/{held['order_id']}")
    assert code == 200 and again["requested_delivery_date"] == earliest, again
    code, bad, _ = await admin.post(
        f"/v1/orders/{held['order_id']}/approve", json={"accept_proposal": "later"}
    )
    assert code == 422 and bad["errors"][0]["field"].endswith("accept_proposal"), bad


async def test_a_date_intake_cannot_verify_is_held_for_the_desk(stack, shop, admin, eventually):
    """delivery_date_unverified: inventory does not answer, so the date waits for a person."""
    import signal

    sku = await product(admin, stock={"WH-CHI": 10})
    date = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    await asyncio.to_thread(stack.kill, "inventory", signal.SIGTERM)
    try:
        code, held, _ = await submit(shop, order_body(sku, 1, requested_delivery_date=date))
    finally:
        await asyncio.to_thread(stack.restart, "inventory")
    assert code == 201 and codes(held) == ["delivery_date_unverified"], held
    assert held["hold_reasons"][0]["field"] == "requested_delivery_date"
    # Inventory is back: the others dial it again within seconds (not after gRPC's default backoff of up
    # to two minutes), so the next order is allocated as usual.
    code, body, _ = await submit(shop, order_body(sku, 1))
    assert code == 201, body
    await wait_status(shop, body["order_id"], "allocated", eventually)
