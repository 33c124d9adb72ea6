"""The archive export's formats (cli/archive.py): JSON lines a data warehouse loads as they are (every field,
numbers as numbers, RFC 3339 times) and CSV with one row per order line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from cli import archive
from orderdesk.events import timestamp
from orderdesk.v1 import common_pb2, orders_pb2

AT = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)


def archived() -> orders_pb2.ArchivedOrder:
    return orders_pb2.ArchivedOrder(
        order=orders_pb2.Order(
            order_id="ORD-1",
            partner_id="P-SHOP",
            channel="api",
            external_ref='PO-7, "rush"',
            customer_id="C0001",
            ship_to=common_pb2.Address(country="DE", postal_code="04109", name="Ada"),
            lines=[
                orders_pb2.OrderLine(sku="A", quantity=3, unit_price="2.50", delivered_quantity=3),
                orders_pb2.OrderLine(sku="B", quantity=1, unit_price="10.00", returned_quantity=1),
            ],
            status="completed",
            version=7,
            currency="EUR",
            total_amount="17.50",
            history=[common_pb2.StatusChange(status="received", at=timestamp(AT), actor="P-SHOP")],
            archived=True,
        ),
        created_at=timestamp(AT),
        closed_at=timestamp(AT + dt.timedelta(days=3)),
        archived_at=timestamp(AT + dt.timedelta(days=200)),
    )


def test_a_json_line_is_the_whole_order_with_numbers_as_numbers():
    line = archive.jsonl_line(archived())
    assert line.endswith("\n") and line.count("\n") == 1
    record = json.loads(line)
    assert record["order_id"] == "ORD-1" and record["archived"] is True and record["version"] == 7
    assert [(x["sku"], x["quantity"], x["returned_quantity"]) for x in record["lines"]] == [
        ("A", 3, 0),
        ("B", 1, 1),
    ]
    assert record["history"] == [
        {"status": "received", "at": "2026-03-02T10:30:00Z", "actor": "P-SHOP", "reason": ""}
    ]
    assert record["split_from"] == "" and record["exceptions"] == []  # every field, even when empty
    assert (record["created_at"], record["closed_at"], record["archived_at"]) == (
        "2026-03-02T10:30:00Z",
        "2026-03-05T10:30:00Z",
        "2026-09-18T10:30:00Z",
    )


def test_csv_has_one_row_per_line_with_the_order_repeated():
    text = archive.csv_text(archive.csv_rows(archived()), header=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(archive.CSV_COLUMNS)
    assert [(r["order_id"], r["line_no"], r["sku"], r["quantity"], r["unit_price"]) for r in rows] == [
        ("ORD-1", "1", "A", "3", "2.50"),
        ("ORD-1", "2", "B", "1", "10.00"),
    ]
    assert {r["external_ref"] for r in rows} == {'PO-7, "rush"'}  # quoted, read back as it was
    assert rows[1]["returned_quantity"] == "1" and rows[0]["ship_to_country"] == "DE"
    assert rows[0]["closed_at"] == "2026-03-05T10:30:00Z"
