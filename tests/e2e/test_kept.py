"""What a partner or the desk was told happened, happened: defects found by trying orderdesk as a new user.

Each test reads the result back: a stale cancel changes nothing, an import that answers 200 took effect,
and input no parser expected ("²" is a digit to Python's isdigit(), not to int()) is a clear 4xx, never a 500.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from devtools.http import client_session
from gateway.admin import ImportKind
from orderdesk import masterdata
from tests.e2e.test_lifecycle import add_product, new_sku, order_body, submit, wait_status

pytestmark = pytest.mark.e2e


async def test_a_cancel_based_on_a_stale_read_is_refused_and_changes_nothing(shop, admin, eventually):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-HAM": 10})
    code, order, _ = await submit(shop, order_body(sku, 2))
    assert code == 201, order
    await wait_status(shop, order["order_id"], "allocated", eventually)

    async def with_its_shipment():  # shipping's shipment moves the order's version once; read after it
        _, body, _ = await shop.get(f"/v1/orders/{order['order_id']}")
        return body if body.get("shipments") else None

    await eventually(with_its_shipment)
    _, read, headers = await shop.get(f"/v1/orders/{order['order_id']}")
    current = headers["ETag"]
    stale = f'"{read["version"] - 1}"'

    code, problem, _ = await shop.post(
        f"/v1/orders/{order['order_id']}/cancel", json={"reason": "changed mind"}, headers={"If-Match": stale}
    )
    assert code == 412 and problem["rule"] == "stale_version", problem
    _, after, _ = await shop.get(f"/v1/orders/{order['order_id']}")
    assert (
        after["status"] == "allocated"
    )  # not cancelled (its version may move on: shipping adds its shipment)

    code, cancelled, headers = await shop.post(
        f"/v1/orders/{order['order_id']}/cancel",
        json={"reason": "changed mind"},
        headers={"If-Match": current},
    )
    assert code == 200 and cancelled["status"] == "cancelled", cancelled
    assert headers["ETag"] == f'"{cancelled["version"]}"'
    _, after, _ = await shop.get(f"/v1/orders/{order['order_id']}")
    assert after["status"] == "cancelled"


async def test_importing_prices_answers_what_it_did_and_the_prices_take_effect(shop, admin):
    assert set(ImportKind.__args__) == set(masterdata.KINDS)  # the route and its answer take every kind
    sku = new_sku()
    await add_product(admin, sku, price="10.00", stock={"WH-HAM": 10})
    code, body, _ = await admin.post(
        "/v1/admin/import/prices",
        data=f"customer_id,sku,unit_price,currency\nC0001,{sku},8.50,USD\n",
        headers={"Content-Type": "text/csv"},
    )
    assert code == 200 and body == {"kind": "prices", "rows": 1}, body
    # Read back: the customer's own price is now the agreed one (the list price would be a mismatch).
    code, order, _ = await submit(shop, order_body(sku, 1, price="8.50"))
    assert code == 201 and order["status"] != "on_hold", order
    code, order, _ = await submit(shop, order_body(sku, 1, price="10.00"))
    assert code == 201 and [r["code"] for r in order["hold_reasons"]] == ["price_mismatch"], order


@pytest.mark.parametrize("value", ["²", '"²"', "٣", "1²"])
async def test_unreadable_numbers_in_headers_and_cursors_are_clear_4xx(shop, admin, value):
    sku = new_sku()
    await add_product(admin, sku, stock={"WH-HAM": 5})
    code, order, _ = await submit(shop, order_body(sku, 1))
    order_id = order["order_id"]
    code, problem, _ = await shop.request(
        "PATCH", f"/v1/orders/{order_id}", json={"reason": "x"}, headers={"If-Match": value}
    )
    assert code == 422 and problem["errors"][0]["field"] == "If-Match", problem
    code, problem, _ = await shop.post(f"/v1/orders/{order_id}/cancel", json={}, headers={"If-Match": value})
    assert code == 422 and problem["errors"][0]["field"] == "If-Match", problem
    _, after, _ = await shop.get(f"/v1/orders/{order_id}")
    assert after["status"] != "cancelled"  # nothing changed
    code, problem, _ = await admin.get(f"/v1/orders?cursor={value}")
    assert code == 422 and problem["errors"][0]["field"].endswith("cursor"), problem


async def test_an_unreadable_last_event_id_resumes_from_after(stack):
    """The event stream (SSE) with Last-Event-ID: ² starts from `after`, as with no id, instead of a 500."""
    async with client_session(total=10) as session:
        headers = {
            "Authorization": "Bearer demo-shop-key",
            "Accept": "text/event-stream",
            "Last-Event-ID": "²",
        }
        async with session.get(f"{stack.gateway_url}/v1/events?after=0", headers=headers) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            first = await asyncio.wait_for(resp.content.readline(), 5)
            assert first  # the stream answers (an event, or a keep-alive comment)


async def test_a_declared_length_no_parser_reads_is_refused_before_the_body(stack):
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.ports["gateway"])
    try:
        body = b"{}"
        writer.write(
            b"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-shop-key\r\n"
            b"Content-Type: application/json\r\nIdempotency-Key: "
            + uuid.uuid4().hex.encode()
            + b"\r\nContent-Length: \xc2\xb2\r\n\r\n"
            + body
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.split()[1] in (b"400", b"411", b"413", b"422"), status_line
    finally:
        writer.close()
