"""The money the desk answers for, end to end: an approval books its credit with the approval, so two held
orders approved at once cannot together pass the customer's credit limit."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest

from orderdesk import tls
from orderdesk.v1 import intake_pb2, intake_pb2_grpc
from tests.e2e.test_lifecycle import order_body, submit, wait_status
from tests.e2e.test_review import CUSTOMERS_HEADER, codes, import_csv, product

pytestmark = pytest.mark.e2e


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
