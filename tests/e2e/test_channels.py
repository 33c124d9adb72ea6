"""The high-volume channels through the real processes: a JSON batch, a CSV upload and a gRPC stream.

A bad row refuses that order only, never the batch, and sending the same batch
again creates nothing new.
"""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from orderdesk import tls
from orderdesk.v1 import intake_pb2, intake_pb2_grpc

pytestmark = pytest.mark.e2e

CUSTOMER = "C0001"  # standard, active, NET30, credit limit 50,000: 1,000 orders of 1.00 fit easily
SHOP_PARTNER = "P-SHOP"
BATCH_TIMEOUT = aiohttp.ClientTimeout(total=300)  # a 1,000-order batch takes longer than one order


async def add_product(admin, sku: str, price: str = "1.00") -> None:
    """Each test brings its own SKU (no stock: the orders wait for it, which keeps the rest of the stack quiet)."""
    header = "sku,name,unit_price,currency,make_to_order,production_lead_time_days,min_order_qty,order_multiple,status\n"
    status, body, _ = await admin.post(
        "/v1/admin/import/products",
        data=header + f"{sku},Test part {sku},{price},USD,false,3,1,1,active\n",
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body


async def post_long(partner, path: str, **kw):
    """Like partner.post, with room for a large batch."""
    headers = {"Authorization": f"Bearer {partner.key}", **kw.pop("headers", {})}
    async with partner.session.post(
        partner.base + path, headers=headers, timeout=BATCH_TIMEOUT, **kw
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def good_order(run: str, n: int, sku: str) -> dict:
    return {
        "external_ref": f"BATCH-{run}-{n}",
        "customer_id": CUSTOMER,
        "payment_terms": "NET30",
        "idempotency_key": f"batch-{run}-{n}",
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "1.00"}],
    }


def bad_rows(sku: str) -> dict[int, tuple[dict, str]]:
    """index -> (what changes in the order, the one field the refusal must name)."""
    line = {"sku": sku, "quantity": 1, "unit_price": "1.00"}
    return {
        7: ({"lines": [{**line, "quantity": 0}]}, "orders[7].lines[0].quantity"),
        100: ({"lines": [{**line, "unit_price": "abc"}]}, "orders[100].lines[0].unit_price"),
        200: ({"lines": [{**line, "sku": "NO-SUCH-SKU"}]}, "orders[200].lines[0].sku"),
        300: (
            {"lines": [{**line, "quantity": "1"}]},
            "orders[300].lines[0].quantity",
        ),  # a string: not a number
        400: ({"customer_id": None}, "orders[400].customer_id"),
        500: ({"customer_id": "C9999"}, "orders[500].customer_id"),
        600: ({"requested_delivery_date": "2026-13-01"}, "orders[600].requested_delivery_date"),
        700: ({"idempotency_key": None}, "orders[700].idempotency_key"),
        800: ({"lines": [{**line, "unit_price": "-1.00"}]}, "orders[800].lines[0].unit_price"),
        999: ({"lines": []}, "orders[999].lines"),
    }


async def test_a_batch_of_1000_with_10_bad_rows_accepts_990_and_again_creates_nothing(shop, admin):
    sku, run = f"E2E-{uuid.uuid4().hex[:8].upper()}", uuid.uuid4().hex[:8]
    await add_product(admin, sku)
    orders = [good_order(run, n, sku) for n in range(1000)]
    bad = bad_rows(sku)
    for index, (change, _) in bad.items():
        orders[index].update(change)
        orders[index] = {k: v for k, v in orders[index].items() if v is not None}

    code, body = await post_long(shop, "/v1/orders/batch", json={"orders": orders})
    assert code == 200, body
    assert (body["accepted"], body["refused"]) == (990, 10)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(1000))
    for index, (_, field) in bad.items():
        assert results[index]["status"] == "refused", results[index]
        assert [e["field"] for e in results[index]["errors"]] == [field], results[index]
        assert all(e["message"] for e in results[index]["errors"])
    accepted = [r for r in results if r["status"] == "accepted"]
    assert all(r["order_id"].startswith("ORD-") and r["order_status"] for r in accepted)
    assert len({r["order_id"] for r in accepted}) == 990

    code, again = await post_long(shop, "/v1/orders/batch", json={"orders": orders})
    assert code == 200, again
    assert (again["accepted"], again["refused"]) == (990, 10)
    assert [r["order_id"] for r in again["results"]] == [r["order_id"] for r in results]
    assert all(r["replayed"] for r in again["results"] if r["status"] == "accepted")

    code, sample, _ = await shop.get(f"/v1/orders/{accepted[0]['order_id']}")
    assert code == 200 and sample["channel"] == "batch" and sample["external_ref"] == f"BATCH-{run}-0"


async def test_a_csv_upload_with_a_bad_row_refuses_only_that_order(shop, admin):
    sku, run = f"E2E-{uuid.uuid4().hex[:8].upper()}", uuid.uuid4().hex[:8]
    await add_product(admin, sku)
    text = (
        "external_ref,customer_id,sku,quantity,unit_price,payment_terms\n"
        f"CSV-{run}-1,{CUSTOMER},{sku},2,1.00,NET30\n"
        f"CSV-{run}-2,{CUSTOMER},{sku},1,1.00,NET30\n"
        f"CSV-{run}-1,{CUSTOMER},{sku},3,1.00,NET30\n"
        f"CSV-{run}-3,{CUSTOMER},{sku},many,1.00,NET30\n"  # row 5: this order only
        f"CSV-{run}-4,{CUSTOMER},NO-SUCH-SKU,1,1.00,NET30\n"
    )  # row 6: refused by intake
    headers = {"Content-Type": "text/csv", "Idempotency-Key": f"upload-{run}"}
    code, body = await post_long(shop, "/v1/orders/csv", data=text, headers=headers)
    assert code == 200, body
    assert (body["accepted"], body["refused"]) == (2, 2)
    by_ref = {r["external_ref"]: r for r in body["results"]}
    assert by_ref[f"CSV-{run}-1"]["status"] == by_ref[f"CSV-{run}-2"]["status"] == "accepted"
    assert [e["field"] for e in by_ref[f"CSV-{run}-3"]["errors"]] == ["row 5.quantity"]
    assert [e["field"] for e in by_ref[f"CSV-{run}-4"]["errors"]] == ["row 6.sku"]

    code, first, _ = await shop.get(f"/v1/orders/{by_ref[f'CSV-{run}-1']['order_id']}")
    assert code == 200 and first["channel"] == "csv"
    assert [(line["sku"], line["quantity"]) for line in first["lines"]] == [(sku, 2), (sku, 3)]

    code, again = await post_long(shop, "/v1/orders/csv", data=text, headers=headers)
    assert code == 200
    assert [r["order_id"] for r in again["results"]] == [r["order_id"] for r in body["results"]]


async def test_a_grpc_stream_of_20_orders_answers_20_results_in_order(stack, admin):
    sku, run = f"E2E-{uuid.uuid4().hex[:8].upper()}", uuid.uuid4().hex[:8]
    await add_product(admin, sku)

    def request(n: int) -> intake_pb2.SubmitOrderRequest:
        return intake_pb2.SubmitOrderRequest(
            partner_id=SHOP_PARTNER,
            idempotency_key=f"stream-{run}-{n}",
            external_ref=f"STREAM-{run}-{n}",
            customer_id=CUSTOMER,
            payment_terms="NET30",
            lines=[
                intake_pb2.SubmitLine(sku=sku if n != 13 else "NO-SUCH-SKU", quantity=1, unit_price="1.00")
            ],
        )

    async def requests():
        for n in range(20):
            yield request(n)

    async with tls.aio_channel(stack.addr("intake"), stack.client_tls("gateway"), peer="intake") as channel:
        stub = intake_pb2_grpc.IntakeServiceStub(channel)
        results = [r async for r in stub.SubmitOrderStream(requests(), timeout=60)]
    assert [r.index for r in results] == list(range(20))
    assert [r.HasField("accepted") for r in results] == [n != 13 for n in range(20)]
    assert (results[13].error_code, [e.field for e in results[13].errors]) == (
        "INVALID_ARGUMENT",
        ["lines[0].sku"],
    )
    assert len({r.accepted.order_id for r in results if r.HasField("accepted")}) == 19
    assert all(r.accepted.status for r in results if r.HasField("accepted"))
