"""Held returns at the desk: a return of a product that is not returnable is held; a clerk sees why and may
cancel it but not decide it; an approver refuses one without a reason (asked for one) and authorises another
with a note. Every decision is read back through the gateway."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.browser.desk import sign_in
from tests.browser.test_order_detail import (
    SHOP_KEY,
    allocated_order,
    deliver,
    gateway,
    import_csv,
    open_order,
    wait_for,
)


def held_return(suite) -> tuple[str, str]:
    """A delivered order of a product imported as not returnable, and a partner's return of it (held)."""
    sku = f"BRW-{uuid.uuid4().hex[:6].upper()}"
    import_csv(
        suite,
        "products",
        "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,"
        f"status,returnable,return_window_days\n{sku},Sealed part,10.00,USD,false,3,1,1,active,false,\n",
    )
    import_csv(suite, "stock", f"sku,warehouse,on_hand\n{sku},WH-HAM,5\n")
    order_id = allocated_order(suite, (sku, 2, "10.00"))["order_id"]
    deliver(suite, order_id)
    wait_for(suite, order_id, lambda o: o["lines"][0]["delivered_quantity"] == 2)
    status, rma, _ = gateway(
        suite,
        "POST",
        f"/v1/orders/{order_id}/returns",
        {"lines": [{"sku": sku, "quantity": 2, "reason_code": "no_longer_needed"}]},
        key=SHOP_KEY,
    )
    assert status == 201 and rma["status"] == "held", rma
    return order_id, rma["rma_id"]


def test_a_clerk_sees_a_held_return_and_may_cancel_but_not_decide_it(page, suite):
    order_id, rma_id = held_return(suite)
    sign_in(page, "clerk")
    open_order(page, order_id)
    returns = page.get_by_role("table", name="Returns of this order")
    expect(returns).to_contain_text("Held for an approver")
    expect(returns).to_contain_text("is not returnable")
    expect(returns).to_contain_text("$3.00")  # the restocking fee, 15 % of 2 × 10.00, before anyone confirms
    expect(page.get_by_role("button", name="Authorise the held return")).to_have_count(0)
    page.get_by_role("button", name=f"Cancel the return {rma_id}").click()
    expect(page.get_by_role("status")).to_have_text("The return was cancelled.")
    status, body, _ = gateway(suite, "GET", f"/v1/returns/{rma_id}", key=SHOP_KEY)
    assert (status, body["status"]) == (200, "cancelled"), body


def test_an_approver_refuses_with_a_reason_and_authorises_with_a_note(page, suite):
    refused_order, refused_rma = held_return(suite)
    sign_in(page, "approver")
    held = page.get_by_role("table", name="Returns outside the return policy, oldest first")
    row = held.get_by_role("row").filter(has=page.get_by_role("rowheader", name=refused_rma))
    expect(row).to_contain_text("is not returnable")  # Today lists it; the order page decides it
    row.get_by_role("link", name=refused_order).click()
    expect(page.get_by_role("heading", name=f"Order {refused_order}", level=1)).to_be_visible()
    page.get_by_role("button", name="Refuse the held return").click()
    expect(page.get_by_label("Note (required to refuse)")).to_have_attribute("aria-invalid", "true")
    assert gateway(suite, "GET", f"/v1/returns/{refused_rma}", key=SHOP_KEY)[1]["status"] == "held"
    page.get_by_label("Note (required to refuse)").fill("sealed parts are not taken back")
    page.get_by_role("button", name="Refuse the held return").click()
    expect(page.get_by_role("status")).to_have_text("The held return was refused.")
    expect(page.get_by_role("table", name="Returns of this order")).to_contain_text("Refused")
    body = gateway(suite, "GET", f"/v1/returns/{refused_rma}", key=SHOP_KEY)[1]
    assert (body["status"], body["decision_note"]) == ("refused", "sealed parts are not taken back"), body

    authorised_order, authorised_rma = held_return(suite)
    open_order(page, authorised_order)
    page.get_by_label("Note (required to refuse)").fill("unopened, checked with the buyer")
    page.get_by_role("button", name="Authorise the held return").click()
    expect(page.get_by_role("status")).to_have_text("The held return was authorised.")
    body = gateway(suite, "GET", f"/v1/returns/{authorised_rma}", key=SHOP_KEY)[1]
    assert (body["status"], body["decision_note"]) == ("authorized", "unopened, checked with the buyer"), body
