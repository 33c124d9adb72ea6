"""Orders from a CSV upload: one row per order line, rows with the same external_ref form one order.

Plain Python, no I/O: `parse(text)` gives one `CsvOrder` per external_ref (in the
order they first appear) with the order body in the shape of POST /v1/orders, or
the bad cells as "row N.column" errors. A bad row refuses its own order only.
Row numbers are those a spreadsheet shows: row 1 is the header.

Caps (in the OpenAPI document): MAX_CSV_BYTES (the middleware refuses a bigger body before reading it),
MAX_CSV_ROWS lines and MAX_CSV_ORDERS orders, the JSON batch's cap; parsing stops at the first row past
either (CsvTooLarge: 413), so an oversized upload never becomes thousands of order bodies.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.bodies import text_problem
from gateway.order_models import MAX_BATCH_ORDERS
from gateway.problems import FieldError

MAX_CSV_BYTES = 2 * 1024 * 1024  # 2 MiB: MAX_CSV_ORDERS orders of a few lines with every column filled
MAX_CSV_ROWS = 5000  # order lines (rows after the header)
MAX_CSV_ORDERS = MAX_BATCH_ORDERS

REQUIRED_COLUMNS = ("external_ref", "customer_id", "sku", "quantity", "unit_price")
ORDER_COLUMNS = ("customer_id", "requested_delivery_date", "payment_terms", "urgent")
SHIP_TO_COLUMNS = (
    "ship_to_name",
    "ship_to_line1",
    "ship_to_city",
    "ship_to_postal_code",
    "ship_to_country",
    "ship_to_phone",
)
OPTIONAL_COLUMNS = ("requested_delivery_date", "payment_terms", "urgent", *SHIP_TO_COLUMNS)
KNOWN_COLUMNS = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
TRUE, FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0", ""})
# The request body of POST /v1/orders/csv in the OpenAPI document, with its caps.
OPENAPI_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": f"at most {MAX_CSV_BYTES} bytes, {MAX_CSV_ROWS} rows and {MAX_CSV_ORDERS} orders "
        "(a bigger upload is 413 and submits nothing)",
        "content": {"text/csv": {"schema": {"type": "string", "maxLength": MAX_CSV_BYTES}}},
    }
}
_LINE_PATH = re.compile(r"lines\[(\d+)\]\.?(.*)")


class CsvDocumentError(ValueError):
    """The document as a whole cannot be read (no header, a required column missing): nothing is submitted."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class CsvTooLarge(CsvDocumentError):
    """More rows or orders than one upload may carry: nothing is submitted (413)."""


@dataclass
class CsvOrder:
    external_ref: str
    rows: list[int] = field(default_factory=list)  # the CSV rows of its lines, in line order
    body: dict[str, Any] = field(default_factory=dict)  # the POST /v1/orders body (when no errors)
    errors: list[FieldError] = field(default_factory=list)  # "row N.column" paths
    columns: dict[str, str] = field(default_factory=dict)  # the order-level cells of its first row

    def row_path(self, path: str) -> str:
        """A path in the order body ("lines[1].quantity", "ship_to.country") as the CSV cell it came from."""
        if match := _LINE_PATH.fullmatch(path):
            index, rest = int(match.group(1)), match.group(2)
            row = self.rows[index] if index < len(self.rows) else self.rows[0]
            return f"row {row}.{rest}" if rest else f"row {row}"
        column = path.replace("ship_to.", "ship_to_") if path.startswith("ship_to.") else path
        return f"row {self.rows[0]}.{column}" if column else f"row {self.rows[0]}"


def parse(text: str) -> list[CsvOrder]:
    """The orders of a CSV document; a document the csv module cannot read is refused like a bad one."""
    try:
        return _parse(text)
    except csv.Error as exc:  # e.g. a lone carriage return inside an unquoted field
        raise CsvDocumentError([FieldError("body", f"not readable as CSV: {exc}")]) from None


def _parse(text: str) -> list[CsvOrder]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise CsvDocumentError([FieldError("body", "the CSV is empty; the first row names the columns")])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in KNOWN_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = [FieldError(f"row 1.{c}", "required column is missing") for c in missing]
    problems += [FieldError(f"row 1.{c}", "unknown column") for c in unknown]
    problems += [FieldError(f"row 1.{c}", "column appears more than once") for c in duplicated]
    if problems:
        raise CsvDocumentError(problems)

    orders: dict[str, CsvOrder] = {}
    found: list[CsvOrder] = []  # in the order they first appear
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line (e.g. at the end of the file)
        if number - 1 > MAX_CSV_ROWS:
            raise CsvTooLarge(
                [
                    FieldError(
                        f"row {number}", f"one upload carries at most {MAX_CSV_ROWS} rows; split the file"
                    )
                ]
            )
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        order = _order_for(orders, found, row["external_ref"], number)
        if len(found) > MAX_CSV_ORDERS:
            raise CsvTooLarge(
                [
                    FieldError(
                        f"row {number}.external_ref",
                        f"one upload carries at most {MAX_CSV_ORDERS} orders; split the file",
                    )
                ]
            )
        if len(cells) > len(header):
            if number not in order.rows:
                order.rows.append(number)
            order.errors.append(FieldError(f"row {number}", f"{len(cells)} cells but {len(header)} columns"))
            continue
        _add_row(order, number, row)
    return found


def _order_for(orders: dict[str, CsvOrder], found: list[CsvOrder], ref: str, number: int) -> CsvOrder:
    if not ref:  # a row without an external_ref cannot join an order: it is refused on its own
        order = CsvOrder("", rows=[number], errors=[FieldError(f"row {number}.external_ref", "required")])
        found.append(order)
        return order
    if ref not in orders:
        orders[ref] = CsvOrder(ref)
        found.append(orders[ref])
    return orders[ref]


def _add_row(order: CsvOrder, number: int, row: dict[str, str]) -> None:
    if number not in order.rows:
        order.rows.append(number)
    for column, value in row.items():  # the same check as every JSON body's text (gateway.bodies)
        if why := text_problem(value):
            order.errors.append(FieldError(f"row {number}.{column}", why))
    first = not order.body
    if first:
        order.body = {"external_ref": order.external_ref, "customer_id": row["customer_id"], "lines": []}
        _order_fields(order, number, row)
    else:  # every row of an order repeats the order's own columns, or leaves them empty
        for column in (*ORDER_COLUMNS, *SHIP_TO_COLUMNS):
            value, expected = row.get(column, ""), order.columns.get(column, "")
            if value and value != expected:
                order.errors.append(
                    FieldError(
                        f"row {number}.{column}", f"differs from row {order.rows[0]} of the same external_ref"
                    )
                )
    order.body["lines"].append(_line(order, number, row))


def _order_fields(order: CsvOrder, number: int, row: dict[str, str]) -> None:
    order.columns = {c: row.get(c, "") for c in (*ORDER_COLUMNS, *SHIP_TO_COLUMNS)}
    if not row["customer_id"]:
        order.errors.append(FieldError(f"row {number}.customer_id", "required"))
    if row.get("requested_delivery_date"):
        order.body["requested_delivery_date"] = row["requested_delivery_date"]
    if row.get("payment_terms"):
        order.body["payment_terms"] = row["payment_terms"]
    urgent = row.get("urgent", "").lower()
    if urgent in TRUE:
        order.body["urgent"] = True
    elif urgent not in FALSE:
        order.errors.append(FieldError(f"row {number}.urgent", "must be true or false"))
    ship_to = {c.removeprefix("ship_to_"): row[c] for c in SHIP_TO_COLUMNS if row.get(c)}
    if ship_to:
        order.body["ship_to"] = ship_to


def _line(order: CsvOrder, number: int, row: dict[str, str]) -> dict[str, Any]:
    line: dict[str, Any] = {"sku": row["sku"], "quantity": 0, "unit_price": row["unit_price"]}
    if not row["sku"]:
        order.errors.append(FieldError(f"row {number}.sku", "required"))
    try:
        line["quantity"] = int(row["quantity"])
    except ValueError:
        order.errors.append(FieldError(f"row {number}.quantity", "must be a whole number"))
    try:
        if not Decimal(row["unit_price"]).is_finite():
            raise InvalidOperation
    except InvalidOperation:
        order.errors.append(FieldError(f"row {number}.unit_price", 'must be a decimal number, e.g. "12.50"'))
    return line
