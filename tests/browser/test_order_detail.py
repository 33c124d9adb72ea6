"""The order page, as the desk uses it: find a held order on Today and approve it with a note; reject one (a
reason is required); a clerk refused an approval, an approver refused beyond the limit; amend an address and
meet someone else's edit; raise and resolve an exception; cancel some units; authorise a return; decide two
held orders together from Today. Every change is read back through the gateway."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import urllib.error
import urllib.request
import uuid

from playwright.sync_api import expect

from orderdesk.signatures import signature_header
from tests.browser.desk import DEMO, shot, sign_in, submit_order

ADMIN_KEY = "demo-admin-key"
SHOP_KEY = "demo-shop-key"
OPERATOR_KEY = "demo-3pl-key"
PRICE = "31.57"  # BRK-001's price in the demo data: an order at another price is held (price_mismatch)


def gateway(suite, method: str, path: str, body=None, key: str = ADMIN_KEY, headers=None):
    """(status, document, headers) of one gateway call."""
    request = urllib.request.Request(
        suite.gateway_url + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None, answer.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def order_of(suite, order_id: str) -> dict:
    status, body, _ = gateway(suite, "GET", f"/v1/orders/{order_id}")
    assert status == 200, body
    return body


def wait_for(suite, order_id: str, check, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        order = order_of(suite, order_id)
        if check(order):
            return order
        assert time.monotonic() < deadline, f"order {order_id} never got there: {order}"
        time.sleep(0.3)


def new_order(suite, *lines: tuple[str, int, str], **extra) -> dict:
    """A partner's order of BRK-001 (and others) for C0001 (ship-to in Lyon): held when a price is off."""
    body = {
        "external_ref": f"PO-{uuid.uuid4().hex[:6]}",
        "customer_id": "C0001",
        "lines": [{"sku": s, "quantity": q, "unit_price": p} for s, q, p in lines],
        "payment_terms": "NET30",
        **extra,
    }
    return submit_order(suite, body)


def held_order(suite, quantity: int = 1) -> dict:
    order = new_order(suite, ("BRK-001", quantity, "30.00"))
    assert order["status"] == "on_hold", order
    return order


def allocated_order(suite, *lines: tuple[str, int, str]) -> dict:
    """An order the desk confirmed at once, allocated, with its shipments made (the order is quiet)."""
    order = new_order(suite, *lines)
    return wait_for(suite, order["order_id"], lambda o: o["status"] == "allocated" and o["shipments"])


def open_order(page, order_id: str) -> None:
    page.goto(f"/orders/{order_id}")
    expect(page.get_by_role("heading", name=f"Order {order_id}", level=1)).to_be_visible()


def timeline(page):
    return page.get_by_role("table", name="Everything that happened to this order, oldest first")


def test_a_held_order_is_found_on_today_approved_with_a_note_and_moves_on(page, suite):
    order_id = held_order(suite)["order_id"]
    sign_in(page, "approver")
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile(order_id)))
    expect(row).to_contain_text("Price differs from the customer's price")
    row.get_by_role("link", name=order_id).click()
    expect(page.get_by_role("heading", name=f"Order {order_id}", level=1)).to_be_visible()
    expect(page.locator("#order-status")).to_have_text("On hold")
    shot(page, "order-detail-held")

    page.get_by_label("Note on the approval (what you checked)").fill("price agreed by phone with the buyer")
    page.get_by_role("button", name="Approve the order").click()
    expect(page.get_by_role("status")).to_have_text("The order was approved.")
    expect(page.locator("#order-status")).not_to_have_text("On hold")
    expect(page.get_by_role("button", name="Approve the order")).to_have_count(0)  # no longer allowed
    expect(timeline(page)).to_contain_text("price agreed by phone with the buyer")
    expect(timeline(page)).to_contain_text("approver@demo.example (Approver)")

    after = order_of(suite, order_id)
    assert after["status"] in ("confirmed", "scheduled", "allocated"), after
    confirmed = next(h for h in after["history"] if h["status"] == "confirmed")
    assert confirmed["actor"] == "desk:approver@demo.example (approver)"
    assert confirmed["reason"].startswith("price agreed by phone with the buyer (re-checked")
    page.goto("/")
    expect(page.get_by_role("rowheader", name=re.compile(order_id))).to_have_count(0)  # it moved on


def import_csv(suite, kind: str, rows: str) -> None:
    """Master data as the admin imports it (POST /v1/admin/import/<kind>, CSV)."""
    request = urllib.request.Request(
        suite.gateway_url + f"/v1/admin/import/{kind}",
        data=rows.encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "text/csv"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def import_product(suite, lead_days: int) -> str:
    """A new product of the admin's, without stock: made in `lead_days`."""
    sku = f"BRW-{uuid.uuid4().hex[:6].upper()}"
    import_csv(
        suite,
        "products",
        "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,"
        f"status\n{sku},Browser part,10.00,USD,false,{lead_days},1,1,active\n",
    )
    return sku


def import_customer(suite, customer_id: str, credit_limit: int) -> None:
    import_csv(
        suite,
        "customers",
        "customer_id,name,tier,status,credit_limit,currency,payment_terms,email,phone,ship_to_line1,"
        "ship_to_city,ship_to_postal_code,ship_to_country\n"
        f"{customer_id},Browser Ltd,standard,active,{credit_limit},USD,NET30,buyer@browser.example,"
        "+33-1-5550100,1 Rue Test,Lyon,69001,FR\n",
    )


def test_an_approval_meets_a_new_finding_and_accepts_it_knowingly(page, suite):
    customer = f"CB{uuid.uuid4().hex[:6].upper()}"
    import_customer(suite, customer, 5000)
    held = new_order(suite, ("BRK-001", 10, "30.00"), customer_id=customer)  # 300.00, held for its price
    assert [r["code"] for r in held["hold_reasons"]] == ["price_mismatch"], held
    import_customer(suite, customer, 100)  # meanwhile the customer's credit is cut
    sign_in(page, "approver")
    open_order(page, held["order_id"])
    page.get_by_label("Note on the approval (what you checked)").fill("price agreed")
    page.get_by_role("button", name="Approve the order").click()
    expect(page.get_by_role("alert")).to_contain_text("checking stock and credit again found something new")
    acknowledge = page.get_by_label("Accept knowingly: Credit limit exceeded")
    expect(acknowledge).not_to_be_checked()
    shot(page, "order-detail-recheck-finding")
    assert order_of(suite, held["order_id"])["status"] == "on_hold"  # nothing changed

    acknowledge.check()
    page.get_by_role("button", name="Approve the order").click()
    expect(page.get_by_role("status")).to_have_text("The order was approved.")
    confirmed = next(h for h in order_of(suite, held["order_id"])["history"] if h["status"] == "confirmed")
    assert confirmed["reason"] == "price agreed (re-checked: credit_limit_exceeded accepted)"


def test_an_approval_accepts_the_earliest_date_proposal(page, suite):
    sku = import_product(suite, lead_days=20)
    wanted = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    held = new_order(suite, (sku, 2, "10.00"), requested_delivery_date=wanted)
    assert held["status"] == "on_hold", held
    earliest = next(p["delivery_date"] for p in order_of(suite, held["order_id"])["proposals"])
    sign_in(page, "approver")
    open_order(page, held["order_id"])
    expect(page.get_by_text("Requested date cannot be met")).to_be_visible()
    page.get_by_label("Accept a proposal").select_option(label="Earliest date for the whole order")
    page.get_by_label("Note on the approval (what you checked)").fill("the customer takes the later date")
    page.get_by_role("button", name="Approve the order").click()
    expect(page.get_by_role("status")).to_have_text("The order was approved.")
    after = order_of(suite, held["order_id"])
    assert after["status"] != "on_hold"
    assert after["requested_delivery_date"] == earliest


def test_the_promise_watchs_risk_shows_in_words_and_in_the_at_risk_queue(page, suite):
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()  # held now, it cannot arrive by then
    held = new_order(suite, ("BRK-001", 1, "30.00"), requested_delivery_date=tomorrow)
    assert held["status"] == "on_hold", held
    watched = wait_for(suite, held["order_id"], lambda o: o["risks"], timeout=60)
    assert [r["code"] for r in watched["risks"]] == ["hold_too_long"]
    sign_in(page, "viewer")
    open_order(page, held["order_id"])
    expect(page.get_by_text("On hold too long to keep the promise")).to_be_visible()
    expect(page.get_by_role("button", name="Approve the order")).to_have_count(0)  # a viewer only reads
    shot(page, "order-detail-at-risk")
    # Today's at-risk queue, narrowed to this risk and the order's customer, lists the order in words.
    page.goto("/")
    page.get_by_role("navigation", name="Work queues").get_by_role(
        "link", name=re.compile("^Orders at risk")
    ).click()
    page.get_by_label("Risk", exact=True).select_option("hold_too_long")
    page.get_by_label("Customer id").fill(watched["customer_id"])
    page.get_by_role("button", name="Show").click()
    today_queue = page.get_by_role("table", name=re.compile("^Orders at risk of missing their promised date"))
    row = today_queue.get_by_role("row", name=re.compile(held["order_id"]))
    expect(row).to_contain_text("On hold too long to keep the promise")
    shot(page, "today-at-risk")
    # The same risks are a search: narrowed to this risk and the order's PO number, it lists the order.
    page.goto("/search?risk=any")
    expect(page.get_by_label("At risk", exact=True)).to_have_value("any")
    page.get_by_label("At risk", exact=True).select_option(label="On hold too long to keep the promise")
    page.get_by_label("Partner reference (PO number)").fill(watched["external_ref"])
    page.get_by_role("button", name="Search", exact=True).click()
    queue = page.get_by_role("table", name="Orders at risk, most urgent first")
    expect(queue.get_by_role("row")).to_have_count(2)  # the header and the order
    expect(queue.get_by_role("rowheader")).to_have_text(held["order_id"])
    expect(queue).to_contain_text("On hold too long to keep the promise")
    shot(page, "search-at-risk")


def test_a_rejection_needs_a_reason_beside_the_field_and_changes_nothing_without_one(page, suite):
    order_id = held_order(suite)["order_id"]
    sign_in(page, "approver")
    open_order(page, order_id)
    page.get_by_role("button", name="Reject the order").click()
    field = page.get_by_label("Reason for rejecting (required)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#reject_reason-error")).to_have_text(
        "Error: Enter a reason: the customer and the partner will read it."
    )
    expect(page.locator("#order-status")).to_have_text("On hold")
    shot(page, "order-detail-reject-without-reason")
    assert order_of(suite, order_id)["status"] == "on_hold"  # nothing changed

    # The partner listens for rejections: the webhook sent about this order shows in its timeline.
    hook = f"http://127.0.0.1:9/rejections-{uuid.uuid4().hex[:6]}"
    status, endpoint, _ = gateway(
        suite, "POST", "/v1/webhooks", {"url": hook, "event_types": ["order.rejected"]}, key=SHOP_KEY
    )
    assert status == 201, endpoint
    try:
        field.fill("the customer ordered this twice")
        page.get_by_role("button", name="Reject the order").click()
        expect(page.get_by_role("status")).to_have_text("The order was rejected.")
        expect(page.locator("#order-status")).to_have_text("Rejected")
        after = order_of(suite, order_id)
        assert after["status"] == "rejected"
        assert after["history"][-1]["reason"] == "the customer ordered this twice"
        assert after["history"][-1]["actor"] == "desk:approver@demo.example (approver)"
        deadline = time.monotonic() + 30
        while "Webhook order.rejected" not in timeline(page).inner_text():
            assert time.monotonic() < deadline, "the webhook never showed in the timeline"
            time.sleep(0.5)
            page.reload()
        expect(timeline(page)).to_contain_text(f"Webhook order.rejected to {hook}")
    finally:
        gateway(suite, "DELETE", f"/v1/webhooks/{endpoint['id']}", key=SHOP_KEY)


def csrf_token(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value") or ""


def test_a_clerk_is_refused_an_approval_and_an_approver_beyond_the_limit(page, browser, suite):
    order_id = held_order(suite)["order_id"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    expect(page.get_by_role("button", name="Approve the order")).to_have_count(0)
    expect(page.get_by_text("it needs one of these roles: Approver")).to_be_visible()
    # The server refuses the approval itself, whatever the page offers: the clerk's own session and token.
    answer = page.request.post(
        f"/orders/{order_id}/approve", form={"csrf_token": csrf_token(page), "approve_note": "let me"}
    )
    assert answer.status == 403
    page.set_content(answer.text())
    expect(page.get_by_role("alert")).to_have_text(
        "To approve or reject held orders you need one of these roles: Approver. Nothing was changed."
    )
    shot(page, "order-detail-clerk-refused")
    assert order_of(suite, order_id)["status"] == "on_hold"

    big = held_order(suite, quantity=200)  # 200 x 30.00 = 6,000.00 USD; the demo approver's limit is 5,000
    approver = browser.new_context(base_url=suite.console_url, java_script_enabled=False).new_page()
    sign_in(approver, "approver")
    open_order(approver, big["order_id"])
    expect(
        approver.get_by_text("This order ($6,000.00) is beyond your approval limit of $5,000.00")
    ).to_be_visible()
    approver.get_by_role("button", name="Approve the order").click()
    expect(approver.get_by_role("alert")).to_have_text(
        "To approve or reject this order you need an approval limit of at least $6,000.00; "
        "yours is $5,000.00. Nothing was changed."
    )
    shot(approver, "order-detail-limit-refused")
    approver.context.close()
    assert order_of(suite, big["order_id"])["status"] == "on_hold"


def test_an_address_change_meets_someone_elses_edit_and_overwrites_nothing(page, suite):
    order_id = held_order(suite)["order_id"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    page.get_by_label("City").fill("Marseille")
    page.get_by_label("Postal code").fill("13001")
    page.get_by_label("Why the address changes").fill("new warehouse of the customer")

    # Meanwhile the partner changes the city through the API, at the version the page was rendered with.
    _, before, headers = gateway(suite, "GET", f"/v1/orders/{order_id}", key=SHOP_KEY)
    theirs = {**before["ship_to"], "city": "Villeurbanne", "postal_code": "69100"}
    status, body, _ = gateway(
        suite,
        "PATCH",
        f"/v1/orders/{order_id}",
        {"ship_to": theirs, "reason": "the buyer moved"},
        key=SHOP_KEY,
        headers={"If-Match": headers["ETag"]},
    )
    assert status == 200, body

    page.get_by_role("button", name="Save the address").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone else changed this order after you opened it")
    conflict = page.get_by_role("region", name="Their change")
    expect(conflict).to_contain_text("Delivery address: city: Lyon → Villeurbanne")
    expect(conflict).to_contain_text("Delivery address: postal code: 69001 → 69100")
    expect(conflict).to_contain_text("the buyer moved")
    expect(page.get_by_label("City")).to_have_value("Marseille")  # what the clerk typed is kept
    shot(page, "order-detail-conflict")
    assert order_of(suite, order_id)["ship_to"]["city"] == "Villeurbanne"  # nothing was overwritten

    page.get_by_role("button", name="Save the address").click()  # now knowingly, at the current version
    expect(page.get_by_role("status")).to_have_text("The order was changed.")
    after = order_of(suite, order_id)
    assert (after["ship_to"]["city"], after["ship_to"]["postal_code"]) == ("Marseille", "13001")
    assert after["changes"][-1]["actor"] == "desk:clerk@demo.example (clerk)"
    expect(timeline(page)).to_contain_text("Delivery address: city: Villeurbanne → Marseille")


def test_a_lines_quantity_is_changed(page, suite):
    order_id = allocated_order(suite, ("BRK-001", 1, PRICE))["order_id"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    quantity = page.get_by_label("New quantity of BRK-001 (0 removes the line)")
    quantity.fill("-1")
    page.get_by_role("button", name="Save the lines").click()
    expect(page.locator("#quantity-0-error")).to_have_text("Error: Enter a whole number of units, 0 or more.")
    assert order_of(suite, order_id)["lines"][0]["quantity"] == 1
    quantity.fill("3")
    page.get_by_label("Why the lines change").fill("the buyer wants three sets")
    page.get_by_role("button", name="Save the lines").click()
    expect(page.get_by_role("status")).to_have_text("The order was changed.")
    expect(timeline(page)).to_contain_text("Line BRK-001: quantity: 1 → 3")
    after = order_of(suite, order_id)
    assert after["lines"][0]["quantity"] == 3
    assert after["changes"][-1]["actor"] == "desk:clerk@demo.example (clerk)"


def test_an_exception_is_raised_and_resolved(page, suite):
    order_id = allocated_order(suite, ("BRK-001", 2, PRICE))["order_id"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    page.get_by_label("Type of exception").select_option(label="Production delay")
    page.get_by_role("button", name="Raise the exception").click()
    expect(page.locator("#exception_cause-error")).to_have_text("Error: Say what happened.")
    page.get_by_label("What happened (required)").fill("the paint line is down for two days")
    page.get_by_label("New expected delivery date, if known").fill("2031-03-02")
    page.get_by_role("button", name="Raise the exception").click()
    expect(page.get_by_role("status")).to_have_text("The exception was recorded.")
    expect(page.get_by_text("Yes: an exception is open")).to_be_visible()  # at risk, in words
    exception_id = order_of(suite, order_id)["exceptions"][0]["exception_id"]

    resolve = page.get_by_role("group", name=f"Resolve exception {exception_id}")
    resolve.get_by_label("Resolution", exact=True).select_option(label="Accept the delay")
    resolve.get_by_label("Note on the resolution").fill("the customer accepts the 2nd of March")
    shot(page, "order-detail-resolve")
    resolve.get_by_role("button", name=f"Resolve exception {exception_id}").click()
    expect(page.get_by_role("status")).to_have_text("The exception was resolved.")
    expect(timeline(page)).to_contain_text(f"Exception {exception_id} resolved: Accept the delay")
    after = order_of(suite, order_id)
    resolved = after["exceptions"][0]
    assert resolved["status"] == "resolved"
    assert resolved["resolution"]["action"] == "accept_delay"
    assert resolved["resolution"]["actor"] == "desk:clerk@demo.example (clerk)"
    assert resolved["opened_by"] == "desk:clerk@demo.example (clerk)"


def test_some_units_are_cancelled(page, suite):
    order_id = allocated_order(suite, ("BRK-001", 5, PRICE), ("BRK-003", 3, "33.11"))["order_id"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    page.get_by_label("Units of BRK-001 to cancel").fill("2")
    page.get_by_role("button", name="Cancel these units").click()
    expect(page.locator("#cancel_lines_reason-error")).to_be_visible()
    assert [line["quantity"] for line in order_of(suite, order_id)["lines"]] == [5, 3]
    page.get_by_label("Reason for cancelling the units (required)").fill("the customer needs only three")
    page.get_by_role("button", name="Cancel these units").click()
    expect(page.get_by_role("status")).to_have_text("The units were cancelled.")
    lines = page.get_by_role("table", name="What was ordered and how far each line has gone")
    expect(lines.get_by_role("row").filter(has_text="BRK-001")).to_contain_text("3")
    expect(timeline(page)).to_contain_text("Changed: units cancelled — the customer needs only three")
    after = order_of(suite, order_id)
    assert {line["sku"]: line["quantity"] for line in after["lines"]} == {"BRK-001": 3, "BRK-003": 3}
    assert after["changes"][-1]["actor"] == "desk:clerk@demo.example (clerk)"


def test_desk_notes_internal_and_to_the_customer(page, suite):
    order_id = held_order(suite)["order_id"]
    status, feed, _ = gateway(suite, "GET", "/v1/events?limit=1", key=SHOP_KEY)
    assert status == 200, feed
    seen = feed["last_sequence"]
    sign_in(page, "clerk")
    open_order(page, order_id)
    page.get_by_role("button", name="Add the note").click()
    expect(page.locator("#note_text-error")).to_have_text("Error: Write the note.")
    page.get_by_label("Note (at most 2,000 characters)").fill("buyer prefers calls after 3 pm")
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("status")).to_have_text("The note was added.")
    page.get_by_label("Note (at most 2,000 characters)").fill("your order ships once the price is confirmed")
    page.get_by_label("The customer too (a message sent to the partner)").check()
    page.get_by_role("button", name="Add the note").click()
    expect(page.get_by_role("status")).to_have_text("The note was added.")
    expect(timeline(page)).to_contain_text("Internal note: buyer prefers calls after 3 pm")
    expect(timeline(page)).to_contain_text(
        "Message to the customer: your order ships once the price is confirmed"
    )
    expect(timeline(page)).to_contain_text("clerk@demo.example (Clerk)")
    shot(page, "order-detail-notes")
    # The partner reads the message in its feed, never the internal note.
    deadline = time.monotonic() + 30
    while True:
        status, feed, _ = gateway(suite, "GET", f"/v1/events?after={seen}&limit=500", key=SHOP_KEY)
        assert status == 200, feed
        bodies = json.dumps(feed)
        if "your order ships once the price is confirmed" in bodies:
            break
        assert time.monotonic() < deadline, "the message never reached the partner's feed"
        time.sleep(0.5)
    assert "buyer prefers calls after 3 pm" not in bodies


def shipment_event(suite, sid: str, step: dict) -> None:
    status, body, _ = gateway(suite, "POST", f"/v1/shipments/{sid}/events", step, key=OPERATOR_KEY)
    assert status == 200, body


def ship(suite, order_id: str) -> dict[str, str]:
    """The warehouse picks, packs and hands every shipment to DHL: shipment id -> tracking number."""
    parcels = {}
    for shipment in order_of(suite, order_id)["shipments"]:
        sid, tracking_number = shipment["shipment_id"], f"TRK{uuid.uuid4().hex[:8]}"
        for step in (
            {"type": "picked"},
            {"type": "packed"},
            {"type": "shipped", "carrier": "DHL", "tracking_number": tracking_number},
        ):
            shipment_event(suite, sid, step)
        parcels[sid] = tracking_number
    return parcels


def deliver(suite, order_id: str) -> None:
    for sid in ship(suite, order_id):
        shipment_event(suite, sid, {"type": "delivered"})


def test_a_carriers_tracking_event_shows_in_the_timeline(page, suite):
    order_id = allocated_order(suite, ("BRK-001", 1, PRICE))["order_id"]
    tracking_number = next(iter(ship(suite, order_id).values()))
    occurred_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    event = {
        "event_id": f"E-{uuid.uuid4().hex[:10]}",
        "tracking_number": tracking_number,
        "status": "InTransit",  # DHL's word for in_transit
        "carrier_status": "IT",
        "message": "sorted at the hub",
        "location": "Leipzig",
        "occurred_at": occurred_at.isoformat(),
    }
    body = {"events": [event]}
    signed = signature_header(suite.carrier_secrets["dhl"], int(time.time()), json.dumps(body).encode())
    status, answer, _ = gateway(
        suite,
        "POST",
        "/v1/carriers/dhl/tracking",
        body,
        key=OPERATOR_KEY,
        headers={"Orderdesk-Signature": signed},
    )
    assert status == 200, answer
    assert [(r["outcome"], r["tracking_status"]) for r in answer["results"]] == [("applied", "in_transit")]
    sign_in(page, "viewer")
    open_order(page, order_id)
    row = timeline(page).get_by_role("row").filter(has_text="Tracking: In transit")
    expect(row).to_have_count(1)
    expect(row.get_by_role("cell").nth(1)).to_have_text("carrier dhl")
    expect(row).to_contain_text(f"(IT) — sorted at the hub · Leipzig · parcel {tracking_number}")
    expect(row.locator("time")).to_have_attribute("datetime", occurred_at.isoformat())  # the carrier's time
    shot(page, "order-detail-tracking")


def test_a_return_is_authorised(page, suite):
    order_id = allocated_order(suite, ("BRK-001", 4, PRICE))["order_id"]
    deliver(suite, order_id)
    wait_for(suite, order_id, lambda o: o["lines"][0]["delivered_quantity"] == 4)
    sign_in(page, "clerk")
    open_order(page, order_id)
    shipments = page.get_by_role("table", name="Shipments with carrier and tracking")
    expect(shipments).to_contain_text("Delivered")
    expect(shipments).to_contain_text("DHL")
    page.get_by_label("Units of BRK-001 to take back (up to 4)").fill("9")
    page.get_by_label("Reason for the return (required)").fill("two sets arrived damaged")
    page.get_by_role("button", name="Authorise the return").click()
    more = page.get_by_label("Units of BRK-001 to take back (up to 4)")
    expect(more).to_have_attribute("aria-invalid", "true")  # more than was delivered: refused, nothing made
    expect(page.locator("#return-0-error")).to_contain_text("at most 4 of BRK-001 can be returned")
    expect(page.get_by_role("table", name="Returns of this order")).to_have_count(0)
    page.get_by_label("Units of BRK-001 to take back (up to 4)").fill("2")
    page.get_by_role("button", name="Authorise the return").click()
    expect(page.get_by_role("status")).to_have_text("The return was authorised.")
    returns = page.get_by_role("table", name="Returns of this order")
    expect(returns).to_contain_text("Authorised")
    expect(returns).to_contain_text("BRK-001 × 2")
    rma_id = returns.get_by_role("rowheader").first.inner_text()
    status, body, _ = gateway(suite, "GET", f"/v1/returns/{rma_id}", key=SHOP_KEY)
    assert status == 200, body
    assert (body["order_id"], body["status"]) == (order_id, "authorized")
    assert [(x["sku"], x["quantity"], x["reason"]) for x in body["lines"]] == [
        ("BRK-001", 2, "two sets arrived damaged")
    ]


def test_two_held_orders_are_approved_together_from_today_and_one_beyond_the_limit_is_not(page, suite):
    first, second = held_order(suite)["order_id"], held_order(suite)["order_id"]
    big = held_order(suite, quantity=200)["order_id"]  # 6,000.00 USD: beyond the demo approver's 5,000
    sign_in(page, "approver")
    held_count = page.get_by_role("navigation", name="Work queues").locator("[data-count='held']")
    held_before = int(held_count.inner_text().replace(",", ""))
    page.get_by_label(f"Select {first}").check()
    page.get_by_role("button", name="Reject the selected orders").click()  # a rejection needs a reason
    expect(page.locator("#bulk_note-error")).to_have_text("Error: Enter a note: a rejection needs a reason.")
    assert order_of(suite, first)["status"] == "on_hold"

    for order_id in (first, second, big):
        page.get_by_label(f"Select {order_id}").check()
    page.get_by_label("Note for every selected order (required to reject)").fill("prices agreed for the week")
    page.get_by_role("button", name="Approve the selected orders").click()
    expect(page.get_by_role("status")).to_have_text(
        "2 of the selected orders were decided; each is listed below."
    )
    for order_id in (first, second):
        row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=order_id))
        expect(row).to_contain_text("Approved")
        after = order_of(suite, order_id)
        confirmed = next(h for h in after["history"] if h["status"] == "confirmed")
        assert confirmed["actor"] == "desk:approver@demo.example (approver)"
        assert confirmed["reason"].startswith("prices agreed for the week (re-checked")
    refused = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=big))
    expect(refused).to_contain_text(
        "Not done: it needs an approval limit of at least $6,000.00; yours is $5,000.00."
    )
    assert order_of(suite, big)["status"] == "on_hold"
    shot(page, "today-bulk-approved")
    # Today's counts are shared for a moment by every desk, but a decision made here shows at once.
    page.goto("/")
    expect(held_count).to_have_text(f"{held_before - 2:,}")


def test_the_rest_of_a_partly_shipped_order_is_split_off(page, suite):
    """BRK-008 ships from one warehouse, BRK-015 (only in WH-CHI) waits there; the desk splits the rest: asking for
    shipped units shows the service's reason beside the field, then the BRK-015 go to a linked order."""
    order = new_order(suite, ("BRK-008", 2, "36.96"), ("BRK-015", 5, "42.35"))
    order_id = order["order_id"]
    order = wait_for(suite, order_id, lambda o: o["status"] == "allocated" and len(o["shipments"]) == 2)
    status, listed, _ = gateway(suite, "GET", f"/v1/shipments?order_id={order_id}", key=OPERATOR_KEY)
    assert status == 200, listed
    first = next(s for s in listed["items"] if [x["sku"] for x in s["lines"]] == ["BRK-008"])
    for step in (
        {"type": "picked"},
        {"type": "packed"},
        {"type": "shipped", "carrier": "DHL", "tracking_number": f"TRK{uuid.uuid4().hex[:8]}"},
    ):
        shipment_event(suite, first["shipment_id"], step)
    wait_for(suite, order_id, lambda o: o["status"] == "partially_shipped")
    status, raised, _ = gateway(
        suite,
        "POST",
        f"/v1/orders/{order_id}/exceptions",
        {
            "type": "production_delay",
            "cause": "the rest is late",
            "sku": "BRK-015",
            "expected_date": "2031-04-01",
        },
    )
    assert status == 201, raised
    exception_id = raised["exceptions"][0]["exception_id"]

    sign_in(page, "clerk")
    open_order(page, order_id)
    resolve = page.get_by_role("group", name=f"Resolve exception {exception_id}")
    resolve.get_by_label("Resolution", exact=True).select_option(label="Deliver in parts")
    later = resolve.get_by_label(re.compile("^Units to deliver later"))
    later.fill("BRK-008=1")
    resolve.get_by_role("button", name=f"Resolve exception {exception_id}").click()
    expect(page.locator(f"#resolve-{exception_id}-split_lines-error")).to_contain_text(
        "1 of BRK-008 asked; 0 not yet shipped (2 shipped)"
    )
    assert order_of(suite, order_id)["split_into"] == []

    resolve = page.get_by_role("group", name=f"Resolve exception {exception_id}")
    resolve.get_by_label("Resolution", exact=True).select_option(label="Deliver in parts")
    resolve.get_by_label(re.compile("^Units to deliver later")).fill("BRK-015=5")
    resolve.get_by_role("button", name=f"Resolve exception {exception_id}").click()
    expect(page.get_by_role("status")).to_have_text("The exception was resolved.")
    after = order_of(suite, order_id)
    assert after["status"] == "shipped" and after["split_into"] == [f"{order_id}-2"]
    assert [(x["sku"], x["quantity"], x["shipped_quantity"]) for x in after["lines"]] == [("BRK-008", 2, 2)]
    child = order_of(suite, f"{order_id}-2")
    assert [(x["sku"], x["quantity"]) for x in child["lines"]] == [("BRK-015", 5)]


def test_the_original_order_names_its_exchanges_replacement_in_english_and_chinese(page, browser, suite):
    order_id = allocated_order(suite, ("BRK-001", 2, PRICE))["order_id"]
    deliver(suite, order_id)
    wait_for(suite, order_id, lambda o: o["lines"][0]["delivered_quantity"] == 2)
    line = {"sku": "BRK-001", "quantity": 1, "reason": "wrong size"}
    status, rma, _ = gateway(
        suite,
        "POST",
        f"/v1/orders/{order_id}/returns",
        {"lines": [line], "resolution": "exchange"},
        key=SHOP_KEY,
    )
    assert status == 201, rma
    rma_id = rma["rma_id"]
    status, body, _ = gateway(suite, "POST", f"/v1/returns/{rma_id}/receive", key=OPERATOR_KEY)
    assert status == 200, body
    inspection = {"lines": [{"sku": "BRK-001", "quantity": 1, "outcome": "restock"}]}
    status, body, _ = gateway(suite, "POST", f"/v1/returns/{rma_id}/inspect", inspection, key=OPERATOR_KEY)
    assert status == 200, body
    original = wait_for(suite, order_id, lambda o: o["replacements"])
    (replacement,) = original["replacements"]
    replacement_id = replacement["order_id"]
    assert (replacement["rma_id"], replacement["kind"]) == (rma_id, "return")

    sign_in(page, "clerk")
    open_order(page, order_id)
    expect(timeline(page)).to_contain_text(f"Replacement order {replacement_id} entered for return {rma_id}")
    page.get_by_role("link", name=replacement_id).click()  # the order's facts link the replacement
    expect(page.get_by_role("heading", name=f"Order {replacement_id}", level=1)).to_be_visible()
    expect(timeline(page)).to_contain_text(f"Replacement order for return {rma_id}")
    shot(page, "replacement-order")

    context = browser.new_context(base_url=suite.console_url, java_script_enabled=False, locale="zh-CN")
    chinese = context.new_page()
    chinese.goto("/signin")
    email, password, _ = DEMO["viewer"]
    chinese.get_by_label("电子邮件地址").fill(email)
    chinese.get_by_label("密码").fill(password)
    chinese.get_by_role("button", name="登录").click()
    chinese.goto(f"/orders/{order_id}")
    expect(chinese.locator("body")).to_contain_text(f"已为退货 {rma_id} 创建换货订单 {replacement_id}")
    expect(chinese.locator("body")).to_contain_text("替换订单")
    context.close()
