"""The money the desk answers for, end to end on a stack of its own (exposure kept until payment, overdue
invoices hold): an approval books its credit with the approval, so two held orders approved at once cannot
together pass the customer's credit limit; finance records invoices, payments and credit notes through the
gateway, and a NET30 customer held for unpaid invoices has its next order accepted once it has paid."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest

from devtools.devstack import Stack
from orderdesk import tls
from orderdesk.v1 import intake_pb2, intake_pb2_grpc
from tests.e2e.conftest import KEYS, WEBHOOK_ENV, partner_fixtures, running_stack
from tests.e2e.test_lifecycle import order_body, ship_everything, submit, wait_status
from tests.e2e.test_review import CUSTOMERS_HEADER, codes, import_csv, product

pytestmark = pytest.mark.e2e

MONEY_ENV = {"ORDERDESK_INTAKE_EXPOSURE_UNTIL": "payment", "ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES": "true"}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory, request):
    """Its own: every order of this stack stays in its customer's exposure until paid, overdue invoices hold.
    On PostgreSQL with ORDERDESK_TEST_E2E_BACKEND=postgresql, as the suite's."""
    folder = tmp_path_factory.mktemp("money")
    async with running_stack(
        request,
        lambda urls: Stack(data_dir=folder, database_urls=urls, extra_env={**WEBHOOK_ENV, **MONEY_ENV}),
    ) as suite:
        yield suite


shop, edi, warehouse_operator, admin = partner_fixtures("module")


async def new_customer(admin, limit: str, terms: str = "NET30") -> str:
    customer = f"CR{uuid.uuid4().hex[:6].upper()}"
    await import_csv(
        admin,
        "customers",
        CUSTOMERS_HEADER + f"{customer},Credit Test Ltd,standard,active,{limit},USD,{terms},"
        f"ap@credit.example,+1 312 555 0100,1 Ledger St,Chicago,60601,US\n",
    )
    return customer


async def open_exposure(stack, customer: str) -> Decimal:
    async with tls.aio_channel(stack.addr("intake"), stack.client_tls("console"), peer="intake") as channel:
        found = await intake_pb2_grpc.IntakeServiceStub(channel).GetCustomer(
            intake_pb2.GetCustomerRequest(customer_id=customer)
        )
    return Decimal(found.open_exposure)


async def test_two_approvals_at_once_cannot_together_pass_the_credit_limit(stack, shop, admin, eventually):
    customer = await new_customer(admin, "1000")
    sku = await product(admin, stock={"WH-CHI": 1000})
    # Each 540.00 fits in 1000 alone, not both: held (mispriced) with no exposure yet.
    held = []
    for _ in range(2):
        code, order, _ = await submit(shop, order_body(sku, 60, price="9.00", customer=customer))
        assert code == 201 and codes(order) == ["price_mismatch"], order
        held.append(order["order_id"])
    assert await open_exposure(stack, customer) == 0

    answers = await asyncio.gather(
        *[admin.post(f"/v1/orders/{order_id}/approve", json={"note": "price agreed"}) for order_id in held]
    )
    assert sorted(code for code, _, _ in answers) == [200, 409], answers
    (won, approved, _), (_, refused, _) = sorted(answers, key=lambda a: a[0])
    assert approved["status"] == "confirmed"
    assert refused["rule"] == "approval_recheck_failed" and "credit limit 1000" in refused["detail"], refused
    assert [(e["reason"], e["field"]) for e in refused["errors"]] == [
        ("credit_limit_exceeded", "customer_id")
    ]
    loser = next(o for o in held if o != approved["order_id"])
    _, still, _ = await admin.get(f"/v1/orders/{loser}")
    assert still["status"] == "on_hold", still

    # Read back once the confirmation has been applied too: the approved order, counted once.
    await wait_status(admin, approved["order_id"], "allocated", eventually)
    await asyncio.sleep(1)
    assert await open_exposure(stack, customer) == Decimal("540.00")

    # The approver may accept the excess: the loser then books too.
    code, body, _ = await admin.post(
        f"/v1/orders/{loser}/approve",
        json={"note": "limit raised by phone", "acknowledge": ["credit_limit_exceeded"]},
    )
    assert code == 200 and body["status"] == "confirmed", body
    assert await open_exposure(stack, customer) == Decimal("1080.00")


def days_ago(n: int) -> str:
    return (dt.date.today() - dt.timedelta(days=n)).isoformat()


async def test_a_net30_customer_held_for_unpaid_invoices_is_released_by_a_payment(
    stack, shop, edi, warehouse_operator, admin, eventually
):
    customer = await new_customer(admin, "1000")
    sku = await product(admin, stock={"WH-CHI": 1000})
    code, first, _ = await submit(shop, order_body(sku, 80, customer=customer))  # 800.00
    assert code == 201 and first["status"] == "confirmed", first
    order_id = first["order_id"]
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)
    await asyncio.sleep(1)  # the completed event reaches intake: delivered, not paid, still exposure
    assert await open_exposure(stack, customer) == Decimal("800.00")

    # Finance invoices it, NET30, 40 days ago: 10 days overdue.
    invoice = {
        "number": f"INV-{uuid.uuid4().hex[:8]}",
        "amount": "800.00",
        "currency": "USD",
        "issued_on": days_ago(40),
    }
    code, account, _ = await shop.post(f"/v1/orders/{order_id}/invoices", json=invoice)
    assert code == 201, account
    assert (account["invoiced"], account["paid"], account["outstanding"], account["overdue"]) == (
        "800.00",
        "0.00",
        "800.00",
        "800.00",
    )
    assert account["documents"][0]["due_on"] == days_ago(10)
    code, again, headers = await shop.post(f"/v1/orders/{order_id}/invoices", json=invoice)
    assert code == 200 and headers.get("Idempotent-Replayed") == "true" and again == account

    # The next order would pass the limit and invoices are overdue: held for both.
    code, held, _ = await submit(shop, order_body(sku, 30, customer=customer))  # 300.00
    assert code == 201 and held["status"] == "on_hold", held
    assert codes(held) == ["credit_limit_exceeded", "overdue_invoices"], held

    # Bad payments are refused with the field named and change nothing.
    payment = {"number": f"PAY-{uuid.uuid4().hex[:8]}", "amount": "800.00", "currency": "USD"}
    for changed, field, reason in [
        ({"amount": "-800.00"}, "amount", "amount_not_positive"),
        ({"currency": "EUR"}, "currency", "currency_mismatch"),
        ({"currency": "ZZZ"}, "currency", "currency_unknown"),
        ({"received_on": "yesterday"}, "received_on", "date_invalid"),
    ]:
        code, problem, _ = await shop.post(f"/v1/orders/{order_id}/payments", json=payment | changed)
        assert code == 422, problem
        assert [(e["field"], e["reason"]) for e in problem["errors"]] == [(field, reason)], problem
    code, problem, _ = await edi.post(f"/v1/orders/{order_id}/payments", json=payment)
    assert code == 404, problem  # not edi's order
    assert await open_exposure(stack, customer) == Decimal("800.00")

    # Paid: the order uses no credit any more, and the next order is accepted.
    code, account, _ = await shop.post(f"/v1/orders/{order_id}/payments", json=payment)
    assert code == 201, account
    assert (account["paid"], account["outstanding"], account["overdue"], account["uses_credit"]) == (
        "800.00",
        "0.00",
        "0.00",
        "0.00",
    )
    code, problem, _ = await shop.post(f"/v1/orders/{order_id}/payments", json=payment | {"amount": "799.00"})
    assert code == 409 and problem["rule"] == "document_number_reused", problem
    assert [e["field"] for e in problem["errors"]] == ["number"]
    assert await open_exposure(stack, customer) == 0
    code, accepted, _ = await submit(shop, order_body(sku, 30, customer=customer))
    assert code == 201 and accepted["status"] == "confirmed", accepted

    # A refund is a credit note with its own number; finance's export lists it.
    note = {
        "number": f"CN-{uuid.uuid4().hex[:8]}",
        "amount": "50.00",
        "currency": "USD",
        "note": "=damaged box",
    }
    code, account, _ = await admin.post(f"/v1/orders/{order_id}/credit-notes", json=note)
    assert code == 201 and (account["refunded"], account["outstanding"]) == ("50.00", "-50.00"), account
    code, read, _ = await shop.get(f"/v1/orders/{order_id}/account")
    assert code == 200 and read == account
    today = dt.date.today().isoformat()
    async with shop.session.get(
        f"{stack.gateway_url}/v1/reports/credit-notes?from={today}&to={today}",
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    mine = [r for r in rows if r["number"] == note["number"]]
    assert [(r["order_id"], r["customer_id"], r["amount"], r["currency"], r["note"]) for r in mine] == [
        (order_id, customer, "50.00", "USD", "'=damaged box")
    ]
    code, problem, _ = await admin.get("/v1/reports/credit-notes?from=2026-13-01&to=2026-12-31")
    assert code == 422 and problem["errors"][0]["field"] == "from", problem


async def test_a_refund_decided_by_a_return_is_a_credit_note_that_lowers_the_exposure(
    stack, shop, warehouse_operator, admin, eventually
):
    """Issue 14: nobody posts the refund: the return's inspection decides it, intake records the credit
    note CN-<RMA id> from the returns service's event, the account and finance's export show it, and the
    customer's exposure (kept until payment here) drops by it."""
    customer = await new_customer(admin, "5000")
    sku = await product(admin, price="12.50", stock={"WH-CHI": 100})
    code, order, _ = await submit(shop, order_body(sku, 10, price="12.50", customer=customer))  # 125.00
    assert code == 201 and order["status"] == "confirmed", order
    order_id = order["order_id"]
    await ship_everything(shop, warehouse_operator, order_id, eventually)
    await wait_status(shop, order_id, "completed", eventually)

    async def exposure_is(amount: str):
        return await open_exposure(stack, customer) == Decimal(amount)

    await eventually(lambda: exposure_is("125.00"))  # delivered, not paid: still uses the credit

    code, rma, _ = await shop.post(
        f"/v1/orders/{order_id}/returns",
        json={"lines": [{"sku": sku, "quantity": 3, "reason": "damaged"}], "resolution": "refund"},
    )
    assert code == 201 and rma["status"] == "authorized", rma
    rma_id = rma["rma_id"]
    code, body, _ = await warehouse_operator.post(f"/v1/returns/{rma_id}/receive")
    assert code == 200, body
    code, body, _ = await warehouse_operator.post(
        f"/v1/returns/{rma_id}/inspect", json={"lines": [{"sku": sku, "quantity": 3, "outcome": "restock"}]}
    )
    assert code == 200 and body["status"] == "refunded", body
    refund = body["refund_amount"]
    assert Decimal(refund) > 0, body

    async def credited():
        code, account, _ = await shop.get(f"/v1/orders/{order_id}/account")
        assert code == 200, account
        return account if account["refunded"] != "0.00" else None

    account = await eventually(credited)
    assert Decimal(account["refunded"]) == Decimal(refund)
    assert Decimal(account["outstanding"]) == -Decimal(refund)  # nothing invoiced yet: owed to the customer
    assert Decimal(account["uses_credit"]) == Decimal("125.00") - Decimal(refund)
    (note,) = account["documents"]
    assert (note["kind"], note["number"], note["currency"]) == ("credit_note", f"CN-{rma_id}", "USD"), note
    assert Decimal(note["amount"]) == Decimal(refund) and rma_id in note["note"], note
    assert await open_exposure(stack, customer) == Decimal("125.00") - Decimal(refund)

    today = dt.datetime.now(dt.UTC).date().isoformat()
    async with shop.session.get(
        f"{stack.gateway_url}/v1/reports/credit-notes?from={today}&to={today}",
        headers={"Authorization": f"Bearer {KEYS['admin']}"},
    ) as resp:
        assert resp.status == 200
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    mine = [r for r in rows if r["number"] == f"CN-{rma_id}"]
    assert [(r["order_id"], r["customer_id"], r["currency"], r["recorded_by"]) for r in mine] == [
        (order_id, customer, "USD", "returns")
    ], rows
    assert Decimal(mine[0]["amount"]) == Decimal(refund)

    # Finance posting the same credit note is the same document, not a second one.
    code, again, headers = await admin.post(
        f"/v1/orders/{order_id}/credit-notes",
        json={"number": f"CN-{rma_id}", "amount": note["amount"], "currency": "USD", "issued_on": today},
    )
    assert code == 200 and headers.get("Idempotent-Replayed") == "true", again
    assert again["refunded"] == account["refunded"] and len(again["documents"]) == 1
    assert await open_exposure(stack, customer) == Decimal("125.00") - Decimal(refund)
