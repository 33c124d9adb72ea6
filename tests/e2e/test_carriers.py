"""Carriers heard directly, through every real process: a carrier's signed tracking events reach the
shipment's timeline; a failed delivery attempt opens an exception; delivered completes the order with the
carrier's time; an unsigned, stale or replayed request changes nothing; a key tied to a carrier posts only
that carrier's events, one tied to a warehouse sees and moves only that warehouse's shipments."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid

import pytest

from devtools.http import client_session
from orderdesk.signatures import signature_header
from tests.e2e.conftest import Partner
from tests.e2e.test_exceptions import allocated_order, shipments_of, step, wait_for
from tests.e2e.test_review import cli

pytestmark = pytest.mark.e2e


def signed(secret: str, events: list[dict], at: int | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"events": events}).encode()
    header = signature_header(secret, int(time.time()) if at is None else at, body)
    return body, {"Content-Type": "application/json", "Orderdesk-Signature": header}


async def post_tracking(partner, carrier: str, body: bytes, headers: dict[str, str]):
    return await partner.request("POST", f"/v1/carriers/{carrier}/tracking", data=body, headers=headers)


def carrier_event(tracking_number: str, status: str, at: dt.datetime, **extra) -> dict:
    return {
        "event_id": f"E-{uuid.uuid4().hex[:10]}",
        "tracking_number": tracking_number,
        "status": status,
        "occurred_at": at.isoformat(),
        **extra,
    }


async def shipped_with_dhl(shop, warehouse_operator, admin, eventually) -> tuple[str, str, str]:
    order_id, sid, _ = await allocated_order(shop, warehouse_operator, admin, eventually)
    for kind in ("picked", "packed"):
        await step(warehouse_operator, sid, kind)
    tracking_number = f"JD{uuid.uuid4().hex[:10].upper()}"
    code, answer, _ = await warehouse_operator.post(
        f"/v1/shipments/{sid}/events",
        json={"type": "shipped", "carrier": "DHL", "tracking_number": tracking_number},
    )
    assert code == 200, answer
    return order_id, sid, tracking_number


async def test_a_failed_attempt_opens_an_exception_and_delivered_completes_the_order(
    stack, shop, warehouse_operator, admin, eventually
):
    secret = stack.carrier_secrets["dhl"]
    order_id, sid, tn = await shipped_with_dhl(shop, warehouse_operator, admin, eventually)
    # The carrier's times follow the shipping (a completion is never dated before the order's previous step).
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    await asyncio.sleep(4)
    attempted = carrier_event(
        tn,
        "AttemptFail",
        base + dt.timedelta(seconds=2),
        message="nobody home",
        carrier_status="NH",
        location="Lyon",
    )
    in_transit = carrier_event(tn, "in_transit", base)  # older, sent after
    code, answer, _ = await post_tracking(warehouse_operator, "dhl", *signed(secret, [attempted, in_transit]))
    assert code == 200, answer
    assert [(r["outcome"], r["tracking_status"]) for r in answer["results"]] == [
        ("applied", "delivery_attempted"),
        ("recorded", "in_transit"),
    ]

    order = await wait_for(shop, order_id, eventually, lambda o: o["at_risk"])
    [exception] = [e for e in order["exceptions"] if e["status"] == "open"]
    assert exception["type"] == "delivery_failed" and exception["shipment_id"] == sid
    assert exception["cause"] == "nobody home" and exception["source"] == "shipping"
    # The promise watch hears the carrier too: a risk to the date, naming the shipment.
    order = await wait_for(shop, order_id, eventually, lambda o: o["risks"])
    [risk] = order["risks"]
    assert (risk["code"], risk["shipment_id"]) == ("carrier_problem", sid), risk
    assert "delivery attempted" in risk["evidence"], risk

    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert [(e["status"], e["carrier_status"]) for e in shipment["tracking"]] == [
        ("in_transit", "in_transit"),
        ("delivery_attempted", "NH"),
    ]
    assert (
        shipment["tracking_status"] == "delivery_attempted" and shipment["tracking"][1]["location"] == "Lyon"
    )

    # Delivered after every step the order has taken meanwhile (the exception, the risk): a whole second
    # of now, once that second has passed, so the carrier's time is in the past and after the last step.
    delivered_at = max(base + dt.timedelta(seconds=3), dt.datetime.now(dt.UTC).replace(microsecond=0))
    delivered_at += dt.timedelta(seconds=1)
    await asyncio.sleep(max(0.0, (delivered_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
    code, answer, _ = await post_tracking(
        warehouse_operator, "dhl", *signed(secret, [carrier_event(tn, "Delivered", delivered_at)])
    )
    assert code == 200 and answer["results"][0]["outcome"] == "applied", answer
    assert answer["results"][0]["status"] == "delivered"
    # Delivered: the order completes, and the watch (on its own, a moment later) sees nothing left to endanger.
    order = await wait_for(
        shop, order_id, eventually, lambda o: o["status"] == "completed" and not o["risks"]
    )
    completed = next(h for h in order["history"] if h["status"] == "completed")
    assert (
        dt.datetime.fromisoformat(completed["at"].replace("Z", "+00:00")) == delivered_at
    )  # the carrier's time
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert shipment["status"] == "delivered"
    assert (
        shipment["delivered_on"]
        == delivered_at.astimezone(dt.timezone(dt.timedelta(hours=1))).date().isoformat()
    )


async def test_unsigned_stale_forged_or_replayed_requests_change_nothing(
    stack, shop, warehouse_operator, admin, eventually
):
    secret = stack.carrier_secrets["dhl"]
    order_id, sid, tn = await shipped_with_dhl(shop, warehouse_operator, admin, eventually)
    event = carrier_event(tn, "delivery_attempted", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    body, headers = signed(secret, [event])

    unsigned = {"Content-Type": "application/json"}
    code, problem, _ = await post_tracking(warehouse_operator, "dhl", body, unsigned)
    assert code == 401 and problem["rule"] == "unsigned", problem
    stale_body, stale = signed(secret, [event], at=int(time.time()) - 3600)
    code, problem, _ = await post_tracking(warehouse_operator, "dhl", stale_body, stale)
    assert code == 401 and problem["rule"] == "stale", problem
    _, forged = signed("not-the-carriers-secret", [event])
    code, problem, _ = await post_tracking(warehouse_operator, "dhl", body, forged)
    assert code == 401 and problem["rule"] == "bad_signature", problem
    code, problem, _ = await post_tracking(warehouse_operator, "ups", body, headers)  # ups's secret differs
    assert code == 401 and problem["rule"] == "bad_signature", problem
    code, problem, _ = await post_tracking(warehouse_operator, "fedex", body, headers)
    assert code == 404 and problem["rule"] == "unknown_carrier", problem
    code, problem, _ = await post_tracking(shop, "dhl", body, headers)  # a sales channel's key
    assert code == 403, problem

    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert shipment["tracking"] == [] and shipment["tracking_status"] == ""  # none of those was read

    code, answer, _ = await post_tracking(warehouse_operator, "dhl", body, headers)
    assert code == 200 and answer["results"][0]["outcome"] == "applied", answer
    code, problem, _ = await post_tracking(warehouse_operator, "dhl", body, headers)  # the same request again
    assert code == 409 and problem["rule"] == "replayed", problem
    # The same event signed anew (a carrier's retry, a second later) is taken, and changes nothing.
    code, answer, _ = await post_tracking(
        warehouse_operator, "dhl", *signed(secret, [event], at=int(time.time()) + 1)
    )
    assert code == 200 and answer["results"][0]["outcome"] == "duplicate", answer

    order = await wait_for(shop, order_id, eventually, lambda o: o["at_risk"])
    assert [e["type"] for e in order["exceptions"]] == ["delivery_failed"]  # one, not two
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert [e["event_id"] for e in shipment["tracking"]] == [event["event_id"]]


def tied_key(stack, tie: str, value: str) -> str:
    """A new fulfillment key of the warehouse operator, tied to one carrier or warehouse (the CLI)."""
    name = f"{value.lower()}-{uuid.uuid4().hex[:6]}"
    made = cli(
        stack, "keys", "create", "--partner", "P-3PL", "--name", name, "--scopes", "fulfillment", tie, value
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


async def test_keys_tied_to_a_carrier_or_a_warehouse_reach_only_theirs(
    stack, shop, warehouse_operator, admin, eventually
):
    ups_key, chicago_key = tied_key(stack, "--carrier", "ups"), tied_key(stack, "--warehouse", "WH-CHI")
    order_id, sid, tn = await shipped_with_dhl(shop, warehouse_operator, admin, eventually)  # from WH-HAM
    event = carrier_event(tn, "in_transit", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    async with client_session(total=30) as http:  # its own connections (the CLI ran meanwhile)
        ups = Partner(http, stack.gateway_url, ups_key)
        # Signed by DHL's secret, but the key is UPS's: refused, nothing read.
        code, problem, _ = await post_tracking(ups, "dhl", *signed(stack.carrier_secrets["dhl"], [event]))
        assert code == 403 and "ups" in problem["detail"], problem
        [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
        assert shipment["tracking"] == []
        # UPS's own signed events are taken (as an aggregator it names the carrier moving the parcel).
        code, answer, _ = await post_tracking(
            ups, "ups", *signed(stack.carrier_secrets["ups"], [event | {"carrier": "DHL"}])
        )
        assert code == 200 and answer["results"][0]["outcome"] == "applied", answer

        # A 3PL key of Chicago neither sees nor moves Hamburg's shipment.
        chicago = Partner(http, stack.gateway_url, chicago_key)
        code, page, _ = await chicago.get(f"/v1/shipments?order_id={order_id}")
        assert code == 200 and page["items"] == [], page
        code, problem, _ = await chicago.post(f"/v1/shipments/{sid}/events", json={"type": "delivered"})
        assert code == 404, problem
    [shipment] = await shipments_of(warehouse_operator, order_id, eventually)
    assert shipment["status"] == "shipped"
    assert [(e["event_id"], e["source"], e["carrier"]) for e in shipment["tracking"]] == [
        (event["event_id"], "ups", "DHL")
    ]
