"""Order entry's plain Python (console/order_entry.py): the form's lines, a sheet read from CSV or XLSX, the
words for intake's refusals and for a sheet's bad cells, and an order body as the desk's SubmitOrder."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest

from console import order_entry
from console.i18n import LOCALES, translations
from orderdesk import order_sheets

HEADER = ["external_ref", "customer_id", "sku", "quantity", "unit_price"]


def test_the_forms_lines_leave_out_blank_ones_and_offer_blank_ones_below():
    form = {
        "line-0-product": " BRK-001 ",
        "line-0-quantity": "2",
        "line-1-product": "",
        "line-1-quantity": "",
        "line-2-product": "Brake pad",
        "line-2-quantity": "x",
    }
    lines = order_entry.form_lines(form)
    assert [(line.product, line.quantity) for line in lines] == [("BRK-001", "2"), ("Brake pad", "x")]
    assert [line.units() for line in lines] == [2, None]
    assert order_entry.Line("A", "9" * 30).units() is None and order_entry.Line("A", "-1").units() is None
    assert len(order_entry.shown_lines(lines)) == 4 and len(order_entry.shown_lines([])) == 3


def test_intakes_paths_become_the_forms_fields_with_words_for_each_reason():
    sent = [0, 2, 5]  # the form's lines 0, 2 and 5 were sent (the others blank)
    assert order_entry.form_field("lines[1].sku", sent) == "line-2-product"
    assert order_entry.form_field("lines[2].quantity", sent) == "line-5-quantity"
    assert order_entry.form_field("customer_id", sent) == "customer"
    assert order_entry.refusal_words("lines[0].sku", "unknown") == order_entry.UNKNOWN_SKU
    assert order_entry.refusal_words("lines[0].sku", "required") == order_entry.ENTER_PRODUCT
    assert order_entry.refusal_words("requested_delivery_date", "in_the_past") == order_entry.DATE_PAST
    assert order_entry.refusal_words("something_new", "x") == ""  # the service's own message is shown


def test_every_cell_reason_has_words():
    reasons = {
        value for name, value in vars(order_sheets).items() if name.isupper() and isinstance(value, str)
    }
    reasons -= {"MAX_ROWS", "MAX_ORDERS"}
    codes = {r for r in reasons if r.islower()}
    assert codes == set(order_entry.CELL_WORDS)


def test_a_sheet_from_xlsx_reads_as_text_cells_like_csv():
    book = openpyxl.Workbook()
    book.active.append([*HEADER, "requested_delivery_date", "urgent"])
    book.active.append(["PO-1", "C0001", "BRK-001", 2, 31.57, dt.datetime(2026, 12, 24), True])
    book.active.append(["PO-2", "C0002", "BRK-003", "two", 3.0, None, None])
    data = io.BytesIO()
    book.save(data)
    rows = order_entry.sheet_rows(data.getvalue())
    assert rows[1] == ["PO-1", "C0001", "BRK-001", "2", "31.57", "2026-12-24", "true"]
    assert rows[2] == ["PO-2", "C0002", "BRK-003", "two", "3", "", ""]
    as_csv = order_entry.sheet_rows(order_entry.rows_as_csv(rows).encode())
    assert as_csv == rows  # what the preview carries to the submit reads back the same
    good, bad = order_entry.parse_sheet(rows)
    assert good.errors == [] and good.body["lines"] == [
        {"sku": "BRK-001", "quantity": 2, "unit_price": "31.57"}
    ]
    [problem] = [order_entry.cell_problem(e) for e in bad.errors]
    assert (problem.row, problem.column, problem.words) == (3, "quantity", "Write a whole number.")


def test_a_file_that_is_neither_csv_nor_xlsx_is_refused_as_a_whole():
    for data in (b"PK\x03\x04 not a workbook", "a,b\n".encode("utf-16")):
        with pytest.raises(order_sheets.SheetDocumentError) as refused:
            order_entry.sheet_rows(data)
        assert refused.value.errors[0].reason == order_sheets.UNREADABLE


def test_an_order_body_becomes_the_desks_submission_with_a_key_per_order_of_the_upload():
    [order] = order_entry.parse_sheet(
        [[*HEADER, "ship_to_name", "ship_to_country"], ["PO-9", "C0001", "BRK-001", "3", "1.50", "Ann", "de"]]
    )
    request = order_entry.submit_request(
        order.body,
        idempotency_key=order_entry.sheet_key("u1", "PO-9"),
        channel="email",
        actor="desk:clerk@demo.example (clerk)",
    )
    assert (request.partner_id, request.channel, request.idempotency_key) == (
        "DESK",
        "email",
        "console-upload:u1:PO-9",
    )
    assert (request.ship_to.name, request.ship_to.country) == ("Ann", "de")
    assert [(x.sku, x.quantity, x.unit_price) for x in request.lines] == [("BRK-001", 3, "1.50")]
    assert request.actor == "desk:clerk@demo.example (clerk)"


def test_the_words_are_translated():
    for locale in LOCALES[1:]:
        catalog = translations(locale)
        for words in (*order_entry.CELL_WORDS.values(), order_entry.UNKNOWN_SKU, order_entry.ENTER_QUANTITY):
            assert catalog.gettext(words) != words
