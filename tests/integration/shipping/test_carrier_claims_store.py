"""Carrier claims on a real database (SQLite and PostgreSQL): a damaged-in-transit claim (return.claim_opened,
through the consumer) opens one open carrier claim on the shipment that carried the goods, however often it
is delivered; other claims open none."""

from __future__ import annotations

import asyncio

import pytest

from orderdesk import events
from orderdesk.v1 import events_pb2, returns_pb2, shipping_pb2
from services.shipping.api import ShippingApi
from services.shipping.service import ShippingService
from tests.integration.shipping.test_carrier_tracking import shipped
from tests.integration.shipping.test_carrier_tracking import shipping as shipping  # noqa: F401 (the fixture)
from tests.integration.shipping.test_shipping_store import deliver, shipment_events


def claim_opened(order_id: str, reason: str, rma_id: str = "RMA-0A1B2C") -> events_pb2.Event:
    ret = returns_pb2.Return(
        rma_id=rma_id,
        order_id=order_id,
        partner_id="P-SHOP",
        status="refunded",
        kind="claim",
        claim_reason=reason,
        evidence="box crushed",
        decided_by="desk:ana",
        lines=[returns_pb2.ReturnLine(sku="A", quantity=1, resolution="refund")],
    )
    return events.new_event(
        "return.claim_opened",
        aggregate_id=rma_id,
        version=1,
        order_id=order_id,
        return_=events_pb2.ReturnEvent(**{"return": ret}),
    )


async def test_damaged_in_transit_opens_one_carrier_claim_on_the_shipment(shipping: ShippingService):
    order_id, shipment_id = await shipped(shipping, "TRK-CC-1")
    event = claim_opened(order_id, "damaged_in_transit")
    await asyncio.gather(*(deliver(shipping, event, "shipping-return-claim") for _ in range(3)))
    await deliver(shipping, event, "shipping-return-claim")

    got = await ShippingApi(shipping).GetShipment(
        shipping_pb2.GetShipmentRequest(shipment_id=shipment_id), None
    )
    (claim,) = got.carrier_claims
    assert (claim.claim_id, claim.rma_id, claim.status, claim.carrier, claim.tracking_number) == (
        "CC-0A1B2C-0",
        "RMA-0A1B2C",
        "open",
        "DHL",
        "TRK-CC-1",
    )
    assert [(x.sku, x.quantity) for x in claim.lines] == [("A", 1)]
    assert (claim.reason, claim.opened_by) == ("box crushed", "desk:ana")
    types = [e.type for e in await shipment_events(shipping, order_id)]
    assert types.count("shipment.carrier_claim_opened") == 1


@pytest.mark.parametrize("reason", ["wrong_item", "missing_items"])
async def test_other_claims_open_none(shipping: ShippingService, reason):
    order_id, shipment_id = await shipped(shipping, f"TRK-CC-{reason}")
    await deliver(shipping, claim_opened(order_id, reason), "shipping-return-claim")
    (shipment,) = await shipping.list_for_order(order_id, "")
    assert (await shipping.carrier_claims([shipment_id]))[shipment_id] == []
    assert shipment.version == 4  # created, picked, packed, shipped: nothing noted
