"""Intake's use cases on a fake unit of work (tests/unit/intake/fakes.py): SubmitOrder's decisions,
replays and refusals, many orders at once, the hold rules that need the service's look-ups (credit,
references, prices, delivery dates with inventory's stock), the blocked-customer policy.

The storage these rely on (claims, conditional credit bookings, races, rollbacks) is tested on real
databases in tests/integration/intake."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from orderdesk import errors
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake.domain import AutoApprovalPolicy, IntakeConfig
from services.intake.proto import submission_from_proto
from services.intake.service import IntakeService, Submitted
from services.intake.store import ExposureRepository, IdempotencyRecord, IdempotencyRepository
from tests.unit.intake.fakes import NOON, FakeInventory, FakeOrders, intake_service


def request(key: str | None = None, partner: str = "P-SHOP", **changes) -> intake_pb2.SubmitOrderRequest:
    key = key or uuid.uuid4().hex
    fields = dict(  # one reference per key: a second key for one reference is held as a duplicate
        partner_id=partner,
        idempotency_key=key,
        channel="api",
        external_ref=f"PO-{key}"[:128],
        customer_id="C0001",
        lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=2, unit_price="31.57")],
        payment_terms="NET30",
    )
    fields.update(changes)
    return intake_pb2.SubmitOrderRequest(**fields)


async def submit(service: IntakeService, req: intake_pb2.SubmitOrderRequest):
    return await service.submit(submission_from_proto(req))


def received(outcome: str, channel: str = "api") -> float:
    value = REGISTRY.get_sample_value(
        "orderdesk_orders_received_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


def codes(done) -> list[str]:
    return [r.code for r in done.order.hold_reasons]


def dated(date: str, sku: str = "BRK-001", quantity: int = 10, price: str = "31.57", **changes):
    return request(
        requested_delivery_date=date,
        lines=[intake_pb2.SubmitLine(sku=sku, quantity=quantity, unit_price=price)],
        **changes,
    )


def keys(service: IntakeService) -> dict[tuple[str, str], IdempotencyRecord]:
    return service.db.repos[IdempotencyRepository].rows


def exposure_rows(service: IntakeService) -> dict:
    return service.db.repos[ExposureRepository].orders


async def exposure(service: IntakeService, customer: str = "C0001") -> Decimal:
    return await service.db.repos[ExposureRepository].open_exposure(customer)


# --- SubmitOrder ------------------------------------------------------------------------------
async def test_a_clean_order_is_approved_and_entered_with_the_customers_defaults():
    orders = FakeOrders()
    service = await intake_service(orders)
    before = received("approved")
    done = await submit(service, request(payment_terms="", requested_delivery_date="2026-06-11"))
    assert done.order.status == "confirmed" and not done.replayed and list(done.order.hold_reasons) == []
    assert received("approved") == before + 1
    sent = orders_pb2.CreateOrderRequest.FromString(orders.calls[0])
    assert sent.order_id == done.order.order_id and sent.order_id.startswith("ORD-")
    assert (sent.currency, sent.payment_terms, sent.priority) == (
        "USD",
        "NET30",
        180,
    )  # standard, due in 10 days
    assert sent.ship_to == common_pb2.Address(
        name="Customer 0001 Ltd",
        line1="33 Harbour Road",
        city="Lyon",
        postal_code="69001",
        country="FR",
        phone="+1-555-1001",
    )


async def test_a_blocked_customers_order_is_held_with_its_reason():
    service = await intake_service()
    before = received("held")
    done = await submit(service, request(customer_id="C0029"))
    assert done.order.status == "on_hold"
    assert [(r.code, r.field) for r in done.order.hold_reasons] == [("customer_blocked", "customer_id")]
    assert received("held") == before + 1


async def test_an_invalid_order_stores_nothing_and_calls_nobody():
    orders = FakeOrders()
    service = await intake_service(orders)
    before = received("invalid")
    bad = request(
        customer_id="C9999",
        lines=[
            intake_pb2.SubmitLine(sku="BRK-001", quantity=1, unit_price="31.57"),
            intake_pb2.SubmitLine(sku="NO-SUCH-SKU", quantity=0, unit_price="ten"),
        ],
    )
    with pytest.raises(errors.InvalidArgument) as err:
        await submit(service, bad)
    assert [v.field for v in err.value.violations] == [
        "customer_id",
        "lines[1].sku",
        "lines[1].quantity",
        "lines[1].unit_price",
    ]
    assert received("invalid") == before + 1
    assert orders.calls == [] and len(keys(service)) == 0


async def test_the_same_key_and_body_replays_the_first_order():
    orders = FakeOrders()
    service = await intake_service(orders)
    first = await submit(service, request(key="k-replay"))
    before = received("replayed")
    again = await submit(service, request(key="k-replay"))
    assert again.replayed and again.order.order_id == first.order.order_id
    assert orders.calls[0] == orders.calls[1]  # the stored request bytes, not a recomputed one
    assert len(orders.orders) == 1 and received("replayed") == before + 1


async def test_the_same_key_with_another_body_is_refused():
    orders = FakeOrders()
    service = await intake_service(orders)
    await submit(service, request(key="k-reuse"))
    changed = request(
        key="k-reuse", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=3, unit_price="31.57")]
    )
    with pytest.raises(errors.InvalidArgument) as err:
        await submit(service, changed)
    assert err.value.reason == "idempotency_key_reused"
    assert [v.field for v in err.value.violations] == ["Idempotency-Key"]
    assert len(orders.orders) == 1 and len(orders.calls) == 1


async def test_the_same_key_from_two_partners_is_two_orders():
    orders = FakeOrders()
    service = await intake_service(orders)
    a = await submit(service, request(key="shared", partner="P-A"))
    b = await submit(service, request(key="shared", partner="P-B"))
    assert a.order.order_id != b.order.order_id and not b.replayed


async def test_a_retry_after_orders_failed_completes_the_claimed_order():
    orders = FakeOrders(fail_first=1)
    service = await intake_service(orders)
    with pytest.raises(errors.Unavailable):
        await submit(service, request(key="k-crash"))
    assert orders.orders == {}  # the key is claimed, the order not yet entered
    done = await submit(service, request(key="k-crash"))
    assert done.replayed and done.order.status == "confirmed"
    assert orders.calls[0] == orders.calls[1] and list(orders.orders) == [done.order.order_id]


# --- many orders at once ----------------------------------------------------------------------
async def test_many_orders_at_once_commit_together_and_keep_each_order_s_rules():
    orders = FakeOrders()
    service = await intake_service(orders)
    replayed = await submit(service, request("K-SEEN"))
    subs = [
        submission_from_proto(r)
        for r in [
            request("K-1"),
            request("K-SEEN"),  # a key seen before: replayed
            request("K-2", customer_id="C9999"),  # refused: unknown customer
            request(
                "K-3", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=2, unit_price="1.00")]
            ),  # held
            request("K-4"),
        ]
    ]
    batches_before = getattr(orders, "batches", 0)
    answers = await service.submit_many(subs)
    assert orders.batches == batches_before + 1  # one CreateOrders for the plain ones
    assert isinstance(answers[0], Submitted) and answers[0].order.status == "confirmed"
    assert answers[1].replayed and answers[1].order.order_id == replayed.order.order_id
    assert isinstance(answers[2], errors.InvalidArgument)
    assert [r.code for r in answers[3].order.hold_reasons] == ["price_mismatch"]
    assert answers[4].order.status == "confirmed" and not answers[4].replayed
    assert len(keys(service)) == 4  # K-SEEN, K-1, K-3, K-4
    assert await exposure(service) == 3 * Decimal("63.14")
    # The same chunk again: every order is a replay of its first answer, nothing new is made.
    again = await service.submit_many(subs)
    assert [a.order.order_id for a in again if isinstance(a, Submitted)] == [
        a.order.order_id for a in answers if isinstance(a, Submitted)
    ]
    assert all(a.replayed for a in again if isinstance(a, Submitted))
    assert len(orders.orders) == 4


async def test_a_chunk_counts_each_order_as_its_claims_decided():
    service = await intake_service()
    approved, held = received("approved"), received("held")
    first, second = await service.submit_many(
        [
            submission_from_proto(r)
            for r in (request("K-REF-1"), request("K-REF-2", external_ref="PO-K-REF-1"))
        ]
    )  # the same reference again
    assert [r.code for r in second.order.hold_reasons] == ["duplicate_external_ref"]
    assert not first.order.hold_reasons
    assert (received("approved") - approved, received("held") - held) == (1, 1)


# --- credit, references, prices ----------------------------------------------------------------
async def test_a_held_order_books_no_exposure():
    service = await intake_service()
    done = await submit(
        service, request(lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=1, unit_price="1.00")])
    )
    assert codes(done) == ["price_mismatch"]
    assert len(exposure_rows(service)) == 0


async def test_prepaid_customers_are_not_credit_checked():
    service = await intake_service(
        config=IntakeConfig(auto_approval=AutoApprovalPolicy(review_new_customers=False))
    )
    done = await submit(
        service, request(customer_id="C0007", payment_terms="")
    )  # new, PREPAID, credit limit 0
    assert codes(done) == [] and len(exposure_rows(service)) == 0
    net = await submit(service, request(customer_id="C0007", payment_terms="NET30"))
    assert codes(net) == ["payment_terms_not_allowed"]


async def test_new_customers_are_held_for_review_by_default():
    service = await intake_service()
    done = await submit(service, request(customer_id="C0007", payment_terms=""))
    assert [(r.code, r.field) for r in done.order.hold_reasons] == [("new_customer_review", "customer_id")]


async def test_a_partner_reference_sent_again_under_another_key_is_held():
    service = await intake_service()
    first = await submit(service, request(key="k1", external_ref="PO-77"))
    again = await submit(service, request(key="k1", external_ref="PO-77"))
    assert again.replayed and codes(again) == []  # a replay is never a duplicate
    second = await submit(service, request(key="k2", external_ref="PO-77"))
    assert [(r.code, r.field) for r in second.order.hold_reasons] == [
        ("duplicate_external_ref", "external_ref")
    ]
    assert first.order.order_id in second.order.hold_reasons[0].message
    other_partner = await submit(service, request(key="k3", external_ref="PO-77", partner="P-EDI"))
    assert codes(other_partner) == []
    no_ref = [await submit(service, request(external_ref="")) for _ in range(2)]
    assert [codes(d) for d in no_ref] == [[], []]


async def test_the_price_tolerance_applies():
    service = await intake_service(config=IntakeConfig(price_tolerance=Decimal("0.10")))
    near = [intake_pb2.SubmitLine(sku="BRK-001", quantity=1, unit_price="31.50")]
    assert codes(await submit(service, request(lines=near))) == []


# --- delivery dates with inventory's stock ----------------------------------------------------
async def test_a_feasible_date_is_approved_after_asking_inventory():
    inventory = FakeInventory()
    service = await intake_service(inventory=inventory)
    # C0001 ships to FR. Monday 12:00 UTC is 14:00 in Hamburg (cut-off 15:00): ships today, then 6
    # working days international: Tuesday June 9.
    done = await submit(service, dated("2026-06-09"))
    assert codes(done) == [] and inventory.asked == ["BRK-001"] and inventory.quoted == []


async def test_an_infeasible_date_is_held_with_proposals_passed_to_orders():
    orders = FakeOrders()
    inventory = FakeInventory({"BRK-001": {"WH-HAM": 4, "WH-SHA": 100}})
    service = await intake_service(orders, inventory=inventory)
    done = await submit(service, dated("2026-06-09"))
    assert [(r.code, r.field) for r in done.order.hold_reasons] == [
        ("delivery_date_infeasible", "requested_delivery_date")
    ]
    # 4 from Hamburg by June 9; the rest from Shanghai (20:00 there, past its 17:00 cut-off: ships
    # Tuesday June 2, then 9 working days) on June 15.
    earliest, split = done.order.proposals
    assert (earliest.kind, earliest.delivery_date) == ("earliest_date", "2026-06-15")
    assert split.kind == "split"
    assert [(p.sku, p.quantity, p.delivery_date) for p in split.parts] == [
        ("BRK-001", 4, "2026-06-09"),
        ("BRK-001", 6, "2026-06-15"),
    ]
    sent = orders_pb2.CreateOrderRequest.FromString(orders.calls[0])
    assert list(sent.proposals) == list(done.order.proposals)


async def test_units_without_stock_arrive_when_inventorys_production_plan_says():
    inventory = FakeInventory({}, supply={"BRK-001": "2026-06-17"})
    service = await intake_service(inventory=inventory)
    done = await submit(service, dated("2026-06-09"))
    assert codes(done) == ["delivery_date_infeasible"]
    assert [(p.kind, p.delivery_date) for p in done.order.proposals] == [("earliest_date", "2026-06-17")]
    assert inventory.quoted == [("FR", "BRK-001", 10)]


async def test_units_inventory_cannot_plan_leave_the_date_to_the_desk():
    service = await intake_service(inventory=FakeInventory({}))
    assert codes(await submit(service, dated("2026-06-30"))) == ["delivery_date_unverified"]


async def test_make_to_order_products_need_no_stock_call_only_a_supply_quote():
    inventory = FakeInventory(supply={"MTO-1": "2026-06-26"})
    service = await intake_service(inventory=inventory)
    mto = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    await service.import_master_data("products", mto + "MTO-1,Made to order,100.00,USD,true,21,1,1,active\n")
    done = await submit(service, dated("2026-06-26", sku="MTO-1", quantity=1, price="100.00"))
    assert codes(done) == [] and inventory.asked == [] and inventory.quoted == [("FR", "MTO-1", 1)]
    later = await submit(service, dated("2026-06-25", sku="MTO-1", quantity=1, price="100.00", key="k2"))
    assert codes(later) == ["delivery_date_infeasible"]


async def test_when_inventory_fails_the_date_is_left_to_the_desk():
    service = await intake_service(inventory=FakeInventory(fail=True))
    done = await submit(service, dated("2026-06-30"))
    assert codes(done) == ["delivery_date_unverified"]


async def test_a_past_date_is_refused_before_asking_anyone():
    inventory, orders = FakeInventory(), FakeOrders()
    service = await intake_service(orders, inventory=inventory)
    with pytest.raises(errors.InvalidArgument) as err:
        await submit(service, dated("2026-05-31"))
    assert [(v.field, v.reason) for v in err.value.violations] == [("requested_delivery_date", "in_the_past")]
    assert inventory.asked == [] and orders.calls == []
    assert NOON.date() == dt.date(2026, 6, 1)


async def test_no_date_asks_no_stock():
    inventory = FakeInventory()
    service = await intake_service(inventory=inventory)
    assert codes(await submit(service, request())) == [] and inventory.asked == []


# --- blocked policy, urgent priority ----------------------------------------------------------
async def test_a_blocked_customer_is_refused_when_the_policy_says_so():
    orders = FakeOrders()
    service = await intake_service(orders, config=IntakeConfig(blocked_policy="refuse"))
    with pytest.raises(errors.FailedPrecondition) as err:
        await submit(service, request(customer_id="C0029"))
    assert err.value.rule == "customer_blocked" and orders.calls == []


async def test_urgent_orders_carry_the_flag_and_a_higher_priority():
    orders = FakeOrders()
    service = await intake_service(orders)
    done = await submit(service, request(urgent=True))
    sent = orders_pb2.CreateOrderRequest.FromString(orders.calls[0])
    assert sent.urgent and sent.priority == 191 and done.order.priority == 191
