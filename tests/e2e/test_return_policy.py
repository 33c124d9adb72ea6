"""The return policy through every real process: a customer who comes back 60 days after delivery.

A suite of its own whose returns service's clock runs 60 days ahead of the others (ORDERDESK_CLOCK_AT on
that process only), so an order delivered now is 60 days old when its return is asked for: outside the
default window of 30 working days (France's calendar: the customer is in Lyon), inside a product's 60. Held returns are decided by the desk's approver (the
admin key); partners see the statuses, the restocking fee and the refund; NATS carries every step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import nats
import pytest

from devtools.devstack import Stack
from devtools.http import client_session
from tests.e2e.conftest import KEYS, Partner, _eventually, running_stack
from tests.e2e.test_lifecycle import new_sku, order_body, ship_everything, submit, wait_status
from tests.e2e.test_webhooks import feed_of_order

pytestmark = pytest.mark.e2e

LATER = dt.timedelta(days=60)
PRODUCT_HEADER = (
    "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status,"
    "returnable,return_window_days\n"
)


@dataclass
class LaterReturns(Stack):
    """The suite, but the returns service reads the clock 60 days later than everyone else."""

    returns_clock_at: str = ""

    def env(self, instance: str | None = None) -> dict[str, str]:
        env = super().env(instance)
        if instance is not None and instance.startswith("returns"):
            env["ORDERDESK_CLOCK_AT"] = self.returns_clock_at
            env["ORDERDESK_CLOCK_SINCE"] = self.started_at
        return env


@dataclass
class Suite:
    shop: Partner
    operator: Partner
    admin: Partner
    stack: Stack


def later_returns(folder, database_urls: dict[str, str]) -> LaterReturns:
    stack = LaterReturns(data_dir=folder, database_urls=database_urls)
    stack.returns_clock_at = (dt.datetime.fromisoformat(stack.started_at) + LATER).isoformat()
    return stack


@pytest.fixture(scope="module")
async def suite(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("return-policy")
    async with running_stack(request, lambda urls: later_returns(folder, urls)) as stack:
        async with client_session(total=30) as http:
            yield Suite(
                Partner(http, stack.gateway_url, KEYS["shop"], patient=True),
                Partner(http, stack.gateway_url, KEYS["3pl"], patient=True),
                Partner(http, stack.gateway_url, KEYS["admin"], patient=True),
                stack,
            )


async def delivered_order(
    suite: Suite, *, price: str = "40.00", returnable: bool = True, window: str = ""
) -> tuple:
    """A new product (with its return policy columns), an order of 4 of it, shipped and delivered."""
    sku = new_sku()
    row = f"{sku},Policy part,{price},USD,false,3,1,1,active,{str(returnable).lower()},{window}\n"
    code, body, _ = await suite.admin.post(
        "/v1/admin/import/products", data=PRODUCT_HEADER + row, headers={"Content-Type": "text/csv"}
    )
    assert code == 200, body
    code, body, _ = await suite.admin.post(
        "/v1/admin/import/stock",
        data=f"sku,warehouse,on_hand\n{sku},WH-HAM,10\n",
        headers={"Content-Type": "text/csv"},
    )
    assert code == 200, body
    code, created, _ = await submit(suite.shop, order_body(sku, 4, price=price))
    assert code == 201, created
    order_id = created["order_id"]
    await wait_status(suite.shop, order_id, "allocated", _eventually)
    await ship_everything(suite.shop, suite.operator, order_id, _eventually)
    await wait_status(suite.shop, order_id, "completed", _eventually)
    return sku, order_id


async def ask(suite: Suite, order_id: str, sku: str, quantity: int, **line) -> dict:
    code, rma, _ = await suite.shop.post(
        f"/v1/orders/{order_id}/returns", json={"lines": [{"sku": sku, "quantity": quantity, **line}]}
    )
    assert code == 201, rma
    return rma


class Subjects:
    """The return events NATS carries for one order."""

    def __init__(self, stack: Stack, order_id: str):
        self.stack, self.order_id, self.seen = stack, order_id, []

    async def __aenter__(self):
        self.nc = await nats.connect(self.stack.nats_url, **self.stack.nats_connect_options())

        async def got(msg):
            self.seen.append(msg.subject.rsplit(".", 1)[-1])

        await self.nc.subscribe(f"orderdesk.return.{self.order_id}.*", cb=got)
        return self

    async def __aexit__(self, *exc):
        await self.nc.drain()

    async def became(self, *statuses: str):
        await _eventually(lambda: _ready(self.seen, list(statuses)))


async def _ready(seen: list[str], wanted: list[str]):
    return seen == wanted


async def test_a_return_outside_its_window_is_held_and_authorised_by_an_approver(suite):
    sku, order_id = await delivered_order(suite)  # the default 30 working days; 60 days have passed
    async with Subjects(suite.stack, order_id) as events:
        rma = await ask(suite, order_id, sku, 2, reason="the casing cracked", reason_code="defective")
        assert rma["status"] == "held", rma
        assert [(r["code"], r["field"]) for r in rma["hold_reasons"]] == [("outside_window", "lines[0].sku")]
        assert "30 working days" in rma["hold_reasons"][0]["message"], rma
        rma_id = rma["rma_id"]

        code, held, _ = await suite.admin.get("/v1/returns?status=held&limit=500")
        assert code == 200 and rma_id in [r["rma_id"] for r in held["items"]], held  # the desk finds it
        code, body, _ = await suite.operator.post(f"/v1/returns/{rma_id}/receive")
        assert code == 409, body  # held goods are not taken in
        code, body, _ = await suite.shop.post(f"/v1/returns/{rma_id}/authorise", json={"note": "mine"})
        assert code == 403, body  # only the desk decides

        code, body, _ = await suite.admin.post(
            f"/v1/returns/{rma_id}/authorise", json={"note": "defect, not age"}
        )
        assert code == 200 and body["status"] == "authorized", body
        assert (
            body["decision_note"] == "defect, not age" and body["hold_reasons"][0]["code"] == "outside_window"
        )
        code, read, _ = await suite.shop.get(f"/v1/returns/{rma_id}")
        assert (read["status"], read["version"]) == ("authorized", 2), read

        assert (await suite.operator.post(f"/v1/returns/{rma_id}/receive"))[0] == 200
        code, body, _ = await suite.operator.post(
            f"/v1/returns/{rma_id}/inspect",
            json={"lines": [{"sku": sku, "quantity": 2, "outcome": "restock"}]},
        )
        assert code == 200 and body["refund_amount"] == "80.00", body  # defective: no fee
        await events.became("held", "authorized", "received", "refunded")
    # the partner's feed (and webhooks) carry the new statuses with the return as it then was
    feed = await feed_of_order(suite.shop, order_id, "return.refunded", _eventually, prefix="return.")
    assert [e["type"] for e in feed] == [
        "return.held",
        "return.authorized",
        "return.received",
        "return.refunded",
    ]
    assert feed[0]["data"]["hold_reasons"][0]["code"] == "outside_window"
    assert feed[1]["reason"] == "defect, not age" and feed[-1]["amount"] == "80.00"


async def test_a_held_return_is_refused_with_a_reason(suite):
    sku, order_id = await delivered_order(suite, returnable=False, window="60")
    async with Subjects(suite.stack, order_id) as events:
        rma = await ask(suite, order_id, sku, 1, reason_code="no_longer_needed")
        assert [r["code"] for r in rma["hold_reasons"]] == ["not_returnable"], rma
        rma_id = rma["rma_id"]
        code, body, _ = await suite.admin.post(f"/v1/returns/{rma_id}/refuse", json={"reason": ""})
        assert code == 422, body
        code, read, _ = await suite.shop.get(f"/v1/returns/{rma_id}")
        assert read["status"] == "held" and read["version"] == 1, read  # the bad request changed nothing

        code, body, _ = await suite.admin.post(
            f"/v1/returns/{rma_id}/refuse", json={"reason": "opened software"}
        )
        assert code == 200 and (body["status"], body["decision_note"]) == ("refused", "opened software"), body
        code, read, _ = await suite.shop.get(f"/v1/returns/{rma_id}")
        assert (read["status"], read["decision_note"]) == ("refused", "opened software"), read
        assert (await suite.shop.post(f"/v1/returns/{rma_id}/cancel"))[0] == 409
        await events.became("held", "refused")


async def test_an_rma_is_cancelled_before_receipt_and_its_units_are_free_again(suite):
    sku, order_id = await delivered_order(suite, window="60")
    async with Subjects(suite.stack, order_id) as events:
        rma = await ask(suite, order_id, sku, 4, reason="damaged")
        assert rma["status"] == "authorized" and rma["lines"][0]["reason_code"] == "damaged", rma
        rma_id = rma["rma_id"]
        code, body, _ = await suite.shop.post(
            f"/v1/orders/{order_id}/returns", json={"lines": [{"sku": sku, "quantity": 1}]}
        )
        assert code == 422, body  # all four are on the RMA

        code, body, _ = await suite.shop.post(f"/v1/returns/{rma_id}/cancel", json={"reason": "kept them"})
        assert code == 200 and (body["status"], body["decision_note"]) == ("cancelled", "kept them"), body
        code, read, _ = await suite.shop.get(f"/v1/returns/{rma_id}")
        assert read["status"] == "cancelled", read
        assert (await suite.operator.post(f"/v1/returns/{rma_id}/receive"))[0] == 409

        again = await ask(suite, order_id, sku, 4, reason="damaged")  # the units are free again
        assert again["status"] == "authorized", again
        await events.became("authorized", "cancelled", "authorized")


async def test_the_fee_is_on_the_rma_and_customer_damage_is_refunded_in_part(suite):
    sku, order_id = await delivered_order(suite, price="40.00", window="60")
    rma = await ask(suite, order_id, sku, 2, reason="ordered too many", reason_code="no_longer_needed")
    assert rma["status"] == "authorized", rma
    # Shown before anyone confirms: 15 % of 2 x 40.00 is kept back if both come back fit to restock.
    assert (rma["restocking_fee"], rma["expected_refund"], rma["refund_amount"]) == ("12.00", "68.00", "0.00")
    assert rma["lines"][0]["restocking_fee"] == "12.00"
    rma_id = rma["rma_id"]
    assert (await suite.operator.post(f"/v1/returns/{rma_id}/receive"))[0] == 200
    code, body, _ = await suite.operator.post(
        f"/v1/returns/{rma_id}/inspect",
        json={
            "lines": [
                {"sku": sku, "quantity": 1, "outcome": "restock"},
                {"sku": sku, "quantity": 1, "outcome": "scrap_customer_fault"},
            ]
        },
    )
    assert code == 200, body
    code, read, _ = await suite.shop.get(f"/v1/returns/{rma_id}")
    line = read["lines"][0]
    # restocked: 40.00 less the 6.00 fee; damaged by the customer: half of 40.00
    assert (read["status"], read["refund_amount"], line["refund_amount"]) == ("refunded", "54.00", "54.00"), (
        read
    )
    assert (
        line["restocked_quantity"],
        line["scrapped_quantity"],
        line["scrapped_customer_fault_quantity"],
    ) == (
        1,
        1,
        1,
    )
