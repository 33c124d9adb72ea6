"""Orders from a CSV upload (POST /v1/orders/csv): the order-sheet format of orderdesk.order_sheets (one row
per order line, rows with the same external_ref form one order), shared with the console's upload.

`parse(text)` gives one `CsvOrder` per external_ref with the order body in the shape of POST /v1/orders, or
the bad cells as "row N.column" errors. A bad row refuses its own order only.

Caps (in the OpenAPI document): MAX_CSV_BYTES (the middleware refuses a bigger body before reading it),
MAX_CSV_ROWS lines and MAX_CSV_ORDERS orders, the JSON batch's cap; parsing stops at the first row past
either (CsvTooLarge: 413), so an oversized upload never becomes thousands of order bodies.
"""

from __future__ import annotations

from gateway.order_models import MAX_BATCH_ORDERS
from gateway.problems import FieldError
from orderdesk import order_sheets
from orderdesk.order_sheets import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    CellError,
    SheetDocumentError,
    SheetOrder,
    SheetTooLarge,
)

MAX_CSV_BYTES = 2 * 1024 * 1024  # 2 MiB: MAX_CSV_ORDERS orders of a few lines with every column filled
MAX_CSV_ROWS = order_sheets.MAX_ROWS  # order lines (rows after the header)
MAX_CSV_ORDERS = MAX_BATCH_ORDERS

CsvOrder = SheetOrder
CsvDocumentError = SheetDocumentError
CsvTooLarge = SheetTooLarge
__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "CsvDocumentError", "CsvOrder", "CsvTooLarge", "parse"]

# The request body of POST /v1/orders/csv in the OpenAPI document, with its caps.
OPENAPI_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": f"at most {MAX_CSV_BYTES} bytes, {MAX_CSV_ROWS} rows and {MAX_CSV_ORDERS} orders "
        "(a bigger upload is 413 and submits nothing)",
        "content": {"text/csv": {"schema": {"type": "string", "maxLength": MAX_CSV_BYTES}}},
    }
}


def parse(text: str) -> list[CsvOrder]:
    return order_sheets.parse_csv(text, max_rows=MAX_CSV_ROWS, max_orders=MAX_CSV_ORDERS)


def field_errors(errors: list[CellError]) -> list[FieldError]:
    """A sheet's cell errors as the partner API's field errors."""
    return [FieldError(e.field, e.message) for e in errors]
