"""Orders from CSV (gateway.csv_orders) and the batch shaping (gateway.batches): no I/O."""

from __future__ import annotations

import pytest

from gateway import batches, csv_orders
from gateway.middleware import BATCH_BODY_LIMIT, ORDERS_CSV_BODY_LIMIT, body_limit_for
from gateway.problems import FieldError
from orderdesk.v1 import common_pb2, intake_pb2

HEADER = "external_ref,customer_id,sku,quantity,unit_price"


def fields(order: csv_orders.CsvOrder) -> list[str]:
    return [e.field for e in order.errors]


def test_rows_with_the_same_external_ref_form_one_order_in_order_of_first_appearance():
    orders = csv_orders.parse(f"{HEADER}\nPO-1,C1,A,2,1.50\nPO-2,C2,B,1,3\nPO-1,C1,C,5,0.10\n")
    assert [(o.external_ref, o.rows) for o in orders] == [("PO-1", [2, 4]), ("PO-2", [3])]
    assert orders[0].body == {
        "external_ref": "PO-1",
        "customer_id": "C1",
        "lines": [
            {"sku": "A", "quantity": 2, "unit_price": "1.50"},
            {"sku": "C", "quantity": 5, "unit_price": "0.10"},
        ],
    }
    assert not orders[0].errors and not orders[1].errors


def test_optional_columns_fill_the_order_and_its_ship_to():
    text = (
        f"{HEADER},requested_delivery_date,payment_terms,urgent,ship_to_name,ship_to_country\n"
        "PO-1,C1,A,1,1.00,2030-01-02,NET30,yes,Jane,DE\n"
        "PO-1,,B,1,1.00,,,,,\n"
    )
    [order] = csv_orders.parse(text)
    assert not order.errors
    assert order.body["requested_delivery_date"] == "2030-01-02"
    assert (order.body["payment_terms"], order.body["urgent"]) == ("NET30", True)
    assert order.body["ship_to"] == {"name": "Jane", "country": "DE"}
    assert len(order.body["lines"]) == 2


def test_a_bad_cell_refuses_only_its_own_order_with_row_and_column():
    text = (
        f"{HEADER},urgent\n"
        "PO-1,C1,A,1,1.00,\n"
        "PO-2,C1,A,two,1.00,\n"  # row 3
        "PO-2,C1,,1,abc,\n"  # row 4
        "PO-3,C1,A,1,1.00,maybe\n"  # row 5
        "PO-1,C1,B,3,2.00,\n"
    )
    orders = {o.external_ref: o for o in csv_orders.parse(text)}
    assert fields(orders["PO-1"]) == []
    assert fields(orders["PO-2"]) == ["row 3.quantity", "row 4.sku", "row 4.unit_price"]
    assert fields(orders["PO-3"]) == ["row 5.urgent"]


@pytest.mark.parametrize("price", ["NaN", "Infinity", "1,5", ""])
def test_a_price_must_be_a_finite_decimal(price):
    [order] = csv_orders.parse(f'{HEADER}\nPO-1,C1,A,1,"{price}"\n')
    assert fields(order) == ["row 2.unit_price"]


def test_order_columns_must_agree_across_the_rows_of_one_order():
    [order] = csv_orders.parse(
        f"{HEADER},payment_terms\nPO-1,C1,A,1,1,NET30\nPO-1,C2,B,1,1,NET30\nPO-1,,C,1,1,NET60\n"
    )
    assert fields(order) == ["row 3.customer_id", "row 4.payment_terms"]


def test_a_row_without_external_ref_is_refused_on_its_own():
    orders = csv_orders.parse(f"{HEADER}\n,C1,A,1,1\nPO-1,C1,A,1,1\n,C1,B,1,1\n")
    assert [(o.external_ref, fields(o)) for o in orders] == [
        ("", ["row 2.external_ref"]),
        ("PO-1", []),
        ("", ["row 4.external_ref"]),
    ]


def test_a_row_with_more_cells_than_columns_and_blank_lines():
    orders = csv_orders.parse(f"{HEADER}\r\nPO-1,C1,A,1,1,extra\r\n\r\nPO-2,C1,A,1,1\r\n,,,,\n")
    assert [(o.external_ref, fields(o)) for o in orders] == [("PO-1", ["row 2"]), ("PO-2", [])]


def test_a_short_row_reads_missing_cells_as_empty():
    [order] = csv_orders.parse(f"{HEADER}\nPO-1,C1,A\n")
    assert fields(order) == ["row 2.quantity", "row 2.unit_price"]


def test_a_byte_order_mark_and_spaces_around_cells_are_ignored():
    [order] = csv_orders.parse(f"\ufeff{HEADER}\n PO-1 , C1 , A , 3 , 1.00 \n")
    assert order.external_ref == "PO-1" and order.body["lines"] == [
        {"sku": "A", "quantity": 3, "unit_price": "1.00"}
    ]


@pytest.mark.parametrize(
    "text, wanted",
    [
        ("", ["body"]),
        ("external_ref,customer_id,sku,quantity\nPO-1,C1,A,1\n", ["row 1.unit_price"]),
        (f"{HEADER},colour\n", ["row 1.colour"]),
        (f"{HEADER},sku\n", ["row 1.sku"]),
    ],
)
def test_an_unreadable_document_is_refused_whole(text, wanted):
    with pytest.raises(csv_orders.CsvDocumentError) as caught:
        csv_orders.parse(text)
    assert [e.field for e in caught.value.errors] == wanted


def test_service_paths_map_back_to_the_cells():
    [order] = csv_orders.parse(f"{HEADER}\nPO-1,C1,A,1,1\nPO-2,C1,A,1,1\nPO-1,C1,B,1,1\n")[:1]
    assert order.row_path("lines[1].unit_price") == "row 4.unit_price"
    assert order.row_path("lines[0]") == "row 2"
    assert order.row_path("customer_id") == "row 2.customer_id"
    assert order.row_path("ship_to.country") == "row 2.ship_to_country"
    assert order.row_path("") == "row 2"


# --- gateway.batches ------------------------------------------------------------------------
GOOD = {
    "customer_id": "C1",
    "idempotency_key": "k0",
    "lines": [{"sku": "A", "quantity": 1, "unit_price": "1.00"}],
}


def test_a_batch_order_that_fails_validation_is_refused_with_its_paths():
    pending = batches.from_batch(
        "P1",
        [
            GOOD,
            {**GOOD, "lines": [{"sku": "A", "quantity": "1", "unit_price": "1.00"}]},
            {"customer_id": "C1", "lines": []},
            "not an object",
            {**GOOD, "colour": "red"},
        ],
    )
    assert [p.request is not None for p in pending] == [True, False, False, False, False]
    assert [e.field for e in pending[1].errors] == ["orders[1].lines[0].quantity"]
    assert [e.field for e in pending[2].errors] == ["orders[2].idempotency_key"]
    assert [e.field for e in pending[3].errors] == ["orders[3]"]
    assert [e.field for e in pending[4].errors] == ["orders[4].colour"]
    request = pending[0].request
    assert (request.partner_id, request.idempotency_key, request.channel) == ("P1", "k0", "batch")


def test_results_keep_batch_order_and_intake_paths_get_the_order_prefix():
    pending = batches.from_batch("P1", [GOOD, {"customer_id": 1}, {**GOOD, "idempotency_key": "k2"}])
    answers = [
        intake_pb2.SubmitOrderResult(
            index=0,
            accepted=intake_pb2.SubmitOrderResponse(
                order_id="ORD-1",
                status="on_hold",
                hold_reasons=[
                    common_pb2.Reason(code="price_mismatch", message="m", field="lines[0].unit_price")
                ],
            ),
        ),
        intake_pb2.SubmitOrderResult(
            index=1,
            error_code="INVALID_ARGUMENT",
            error_message="bad",
            errors=[common_pb2.Reason(code="unknown_sku", message="unknown SKU", field="lines[0].sku")],
        ),
    ]
    answer = batches.answer(pending, answers)
    assert (answer.accepted, answer.refused) == (1, 2)
    first, second, third = answer.results
    assert (first.index, first.status, first.order_id, first.order_status) == (
        0,
        "accepted",
        "ORD-1",
        "on_hold",
    )
    assert [r.code for r in first.hold_reasons] == ["price_mismatch"]
    assert second.status == "refused" and second.error_code == "INVALID_ARGUMENT"
    assert {e.field for e in second.errors} == {
        "orders[1].customer_id",
        "orders[1].idempotency_key",
        "orders[1].lines",
    }
    assert (third.index, third.status, [(e.field, e.message) for e in third.errors]) == (
        2,
        "refused",
        [("orders[2].lines[0].sku", "unknown SKU")],
    )


def test_a_refusal_without_field_violations_still_says_why():
    pending = batches.from_batch("P1", [GOOD])
    answer = batches.answer(
        pending,
        [
            intake_pb2.SubmitOrderResult(
                index=0, error_code="FAILED_PRECONDITION", error_message="the customer is blocked"
            )
        ],
    )
    [refused] = answer.results
    assert [(e.field, e.message) for e in refused.errors] == [("orders[0]", "the customer is blocked")]


def test_csv_orders_get_one_key_each_and_row_paths():
    orders = csv_orders.parse(f"{HEADER}\nPO-1,C1,A,1,1\nPO-2,C1,A,x,1\nPO-3,C1,{'S' * 300},1,1\n")
    pending = batches.from_csv("P1", "upload-1", orders)
    assert [p.external_ref for p in pending] == ["PO-1", "PO-2", "PO-3"]
    assert (pending[0].request.idempotency_key, pending[0].request.channel) == ("upload-1:PO-1", "csv")
    assert pending[1].errors == [FieldError("row 3.quantity", "must be a whole number")]
    assert [e.field for e in pending[2].errors] == ["row 4.sku"]  # too long for the order model
    assert pending[0].where("lines[0].sku") == "row 2.sku"
    assert pending[0].where("idempotency_key") == "Idempotency-Key"


def test_orders_by_csv_and_batch_have_room_for_their_size():
    assert body_limit_for("/v1/orders/csv") == ORDERS_CSV_BODY_LIMIT == csv_orders.MAX_CSV_BYTES
    assert body_limit_for("/v1/orders/batch") == BATCH_BODY_LIMIT > 1024 * 1024


def _full_csv(orders: int, lines: int) -> str:
    header = ",".join(csv_orders.REQUIRED_COLUMNS + csv_orders.OPTIONAL_COLUMNS)
    rows = [
        f"PO-{n:07d},C{n % 9999:04d},SKU-{line:03d}-LONGER-CODE,{line + 1},1234.56,2026-12-24,NET30,false,"
        f"Müller Großhandel GmbH & Co. KG,Industriestraße 123 Halle 4,Mönchengladbach,41065,DE,+49 2161 1234567"
        for n in range(orders)
        for line in range(lines)
    ]
    return "\n".join([header, *rows]) + "\n"


def test_the_largest_allowed_upload_fits_its_byte_cap_and_parses():
    # Every column filled: MAX_CSV_ORDERS orders of MAX_CSV_ROWS / MAX_CSV_ORDERS lines each.
    text = _full_csv(csv_orders.MAX_CSV_ORDERS, csv_orders.MAX_CSV_ROWS // csv_orders.MAX_CSV_ORDERS)
    assert len(text.encode()) <= csv_orders.MAX_CSV_BYTES
    parsed = csv_orders.parse(text)
    assert len(parsed) == csv_orders.MAX_CSV_ORDERS and not any(o.errors for o in parsed)


def test_one_order_too_many_is_too_large():
    with pytest.raises(csv_orders.CsvTooLarge) as refused:
        csv_orders.parse(_full_csv(csv_orders.MAX_CSV_ORDERS + 1, 1))
    (error,) = refused.value.errors
    assert (
        error.field == f"row {csv_orders.MAX_CSV_ORDERS + 2}.external_ref"
        and "at most 1000 orders" in error.message
    )


def test_one_row_too_many_is_too_large():
    with pytest.raises(csv_orders.CsvTooLarge) as refused:
        csv_orders.parse(_full_csv(1, csv_orders.MAX_CSV_ROWS + 1))
    (error,) = refused.value.errors
    assert error.field == f"row {csv_orders.MAX_CSV_ROWS + 2}" and "at most 5000 rows" in error.message
