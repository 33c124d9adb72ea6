"""POST /v1/orders/batch and /v1/orders/csv through the gateway against the fake intake (one stream per request)."""

from __future__ import annotations

SHOP, TPL = "shop-key", "3pl-key"
CSV = {"Content-Type": "text/csv"}


def order(n: int, quantity: int = 1, **extra) -> dict:
    return {
        "external_ref": f"PO-{n}",
        "customer_id": "C1",
        "idempotency_key": f"key-{n}",
        "lines": [{"sku": "SKU-1", "quantity": quantity, "unit_price": "1.00"}],
        **extra,
    }


async def test_a_batch_with_bad_orders_answers_each_order_and_uses_one_stream(gateway, fakes):
    orders = [order(n) for n in range(6)]
    orders[1]["lines"][0]["quantity"] = "many"  # refused by the gateway's model
    orders[3] = order(3, quantity=0)  # refused by intake
    del orders[4]["idempotency_key"]  # each order needs its own key
    code, body, _ = await gateway.call("POST", "/v1/orders/batch", SHOP, json={"orders": orders})
    assert code == 200, body
    assert (body["accepted"], body["refused"]) == (3, 3)
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "refused",
        "accepted",
        "refused",
        "refused",
        "accepted",
    ]
    assert [e["field"] for e in body["results"][1]["errors"]] == ["orders[1].lines[0].quantity"]
    assert body["results"][3]["errors"] == [
        {"field": "orders[3].lines[0].quantity", "message": "must be a positive whole number"}
    ]
    assert [e["field"] for e in body["results"][4]["errors"]] == ["orders[4].idempotency_key"]
    assert {r.actor for r in fakes.intake.requests} == {"key:csv-import@P-SHOP"}  # each under the named key
    accepted = body["results"][0]
    assert accepted["order_id"].startswith("ORD-") and accepted["order_status"] == "confirmed"
    assert fakes.intake.streams == 1
    assert [r.channel for r in fakes.intake.requests] == ["batch"] * 4
    assert [r.idempotency_key for r in fakes.intake.requests] == ["key-0", "key-2", "key-3", "key-5"]

    again_code, again, _ = await gateway.call("POST", "/v1/orders/batch", SHOP, json={"orders": orders})
    assert again_code == 200
    assert [r["order_id"] for r in again["results"]] == [r["order_id"] for r in body["results"]]


async def test_a_batch_over_the_limit_or_empty_is_refused_whole(gateway, fakes):
    code, problem, _ = await gateway.call(
        "POST", "/v1/orders/batch", SHOP, json={"orders": [order(n) for n in range(1001)]}
    )
    assert code == 422 and [e["field"] for e in problem["errors"]] == ["orders"]
    code, problem, _ = await gateway.call("POST", "/v1/orders/batch", SHOP, json={"orders": []})
    assert code == 422 and [e["field"] for e in problem["errors"]] == ["orders"]
    code, problem, _ = await gateway.call("POST", "/v1/orders/batch", SHOP, json=[order(1)])
    assert code == 422
    assert fakes.intake.streams == 0


async def test_a_batch_of_only_bad_orders_calls_nothing(gateway, fakes):
    code, body, _ = await gateway.call(
        "POST", "/v1/orders/batch", SHOP, json={"orders": [{"customer_id": "C1"}]}
    )
    assert code == 200 and (body["accepted"], body["refused"]) == (0, 1)
    assert fakes.intake.streams == 0


async def test_batches_need_the_orders_scope(gateway):
    code, _, _ = await gateway.call("POST", "/v1/orders/batch", TPL, json={"orders": [order(1)]})
    assert code == 403
    code, _, _ = await gateway.call(
        "POST", "/v1/orders/csv", TPL, data="x", headers={**CSV, "Idempotency-Key": "u"}
    )
    assert code == 403


UPLOAD = """external_ref,customer_id,sku,quantity,unit_price,ship_to_country
PO-1,C1,SKU-1,2,1.00,DE
PO-2,C1,SKU-1,1,1.00,
PO-1,C1,SKU-2,3,2.50,
PO-2,C1,SKU-2,zero,1.00,
PO-3,C1,SKU-1,0,1.00,
"""


async def test_a_csv_upload_answers_per_order_with_row_paths(gateway, fakes):
    headers = {**CSV, "Idempotency-Key": "upload-7"}
    code, body, _ = await gateway.call("POST", "/v1/orders/csv", SHOP, data=UPLOAD, headers=headers)
    assert code == 200, body
    assert (body["accepted"], body["refused"]) == (1, 2)
    results = {r["external_ref"]: r for r in body["results"]}
    assert results["PO-1"]["status"] == "accepted"
    assert results["PO-2"]["errors"] == [{"field": "row 5.quantity", "message": "must be a whole number"}]
    assert results["PO-3"]["errors"] == [
        {"field": "row 6.quantity", "message": "must be a positive whole number"}
    ]
    [sent_po1, _] = fakes.intake.requests
    assert (sent_po1.idempotency_key, sent_po1.channel, sent_po1.external_ref) == (
        "upload-7:PO-1",
        "csv",
        "PO-1",
    )
    assert [(line.sku, line.quantity, line.unit_price) for line in sent_po1.lines] == [
        ("SKU-1", 2, "1.00"),
        ("SKU-2", 3, "2.50"),
    ]
    assert sent_po1.ship_to.country == "DE"

    code, again, _ = await gateway.call("POST", "/v1/orders/csv", SHOP, data=UPLOAD, headers=headers)
    assert code == 200 and again["results"][0]["order_id"] == results["PO-1"]["order_id"]
    assert len(fakes.intake.keys) == 1  # the same file again created nothing


async def test_a_csv_upload_needs_the_key_the_media_type_and_a_header(gateway, fakes):
    code, problem, _ = await gateway.call("POST", "/v1/orders/csv", SHOP, data=UPLOAD, headers=CSV)
    assert code == 422 and [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
    code, _, _ = await gateway.call(
        "POST",
        "/v1/orders/csv",
        SHOP,
        data=UPLOAD,
        headers={"Idempotency-Key": "u", "Content-Type": "application/json"},
    )
    assert code == 415
    code, problem, _ = await gateway.call(
        "POST", "/v1/orders/csv", SHOP, data="sku,quantity\nA,1\n", headers={**CSV, "Idempotency-Key": "u"}
    )
    assert code == 422 and "row 1.external_ref" in [e["field"] for e in problem["errors"]]
    assert fakes.intake.streams == 0
