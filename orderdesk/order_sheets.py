"""Orders from a sheet (a partner's CSV upload to the gateway, a customer's CSV or XLSX uploaded in the desk's
console): one row per order line, rows with the same external_ref form one order.

Plain Python, no I/O: `parse_rows(rows)` gives one `SheetOrder` per external_ref (in the order they first
appear) with the order body in the shape of POST /v1/orders, or the bad cells as "row N.column" errors, each
with a reason code (the console says it in the person's language). A bad row refuses its own order only.
Row numbers are those a spreadsheet shows: row 1 is the header. `parse_csv(text)` reads CSV text.

Caps: parsing stops at the first row past `max_rows` lines or `max_orders` orders (SheetTooLarge), so an
oversized upload never becomes thousands of order bodies.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from orderdesk.parsing import text_problem

MAX_ROWS = 5000  # order lines (rows after the header)
MAX_ORDERS = 1000

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
_LINE_PATH = re.compile(r"lines\[(\d+)\]\.?(.*)")

# Reason codes of CellError (what the console words): the message is the English one the gateway answers.
REQUIRED = "required"
MISSING_COLUMN = "missing_column"
UNKNOWN_COLUMN = "unknown_column"
DUPLICATE_COLUMN = "duplicate_column"
EMPTY = "empty"
UNREADABLE = "unreadable"
TOO_MANY_ROWS = "too_many_rows"
TOO_MANY_ORDERS = "too_many_orders"
TOO_MANY_CELLS = "too_many_cells"
BAD_TEXT = "bad_text"
DIFFERS = "differs"
NOT_BOOLEAN = "not_boolean"
NOT_WHOLE_NUMBER = "not_whole_number"
NOT_DECIMAL = "not_decimal"


@dataclass(frozen=True)
class CellError:
    field: str  # "row N.column", "row N" or "body"
    message: str  # English
    reason: str = ""

    @property
    def row(self) -> int | None:
        match = re.match(r"row (\d+)", self.field)
        return int(match.group(1)) if match else None

    @property
    def column(self) -> str:
        return self.field.partition(".")[2]


class SheetDocumentError(ValueError):
    """The document as a whole cannot be read (no header, a required column missing): nothing is submitted."""

    def __init__(self, errors: list[CellError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class SheetTooLarge(SheetDocumentError):
    """More rows or orders than one upload may carry: nothing is submitted."""


@dataclass
class SheetOrder:
    external_ref: str
    rows: list[int] = field(default_factory=list)  # the rows of its lines, in line order
    body: dict[str, Any] = field(default_factory=dict)  # the POST /v1/orders body (when no errors)
    errors: list[CellError] = field(default_factory=list)  # "row N.column" paths
    columns: dict[str, str] = field(default_factory=dict)  # the order-level cells of its first row

    def row_path(self, path: str) -> str:
        """A path in the order body ("lines[1].quantity", "ship_to.country") as the cell it came from."""
        if match := _LINE_PATH.fullmatch(path):
            index, rest = int(match.group(1)), match.group(2)
            row = self.rows[index] if index < len(self.rows) else self.rows[0]
            return f"row {row}.{rest}" if rest else f"row {row}"
        column = path.replace("ship_to.", "ship_to_") if path.startswith("ship_to.") else path
        return f"row {self.rows[0]}.{column}" if column else f"row {self.rows[0]}"


def parse_csv(text: str, *, max_rows: int = MAX_ROWS, max_orders: int = MAX_ORDERS) -> list[SheetOrder]:
    """The orders of a CSV document; a document the csv module cannot read is refused like a bad one."""
    try:
        return parse_rows(
            csv.reader(io.StringIO(text.lstrip("\ufeff"))), max_rows=max_rows, max_orders=max_orders
        )
    except csv.Error as exc:  # e.g. a lone carriage return inside an unquoted field
        raise SheetDocumentError([CellError("body", f"not readable as CSV: {exc}", UNREADABLE)]) from None


def parse_rows(
    rows: Iterable[Sequence[str]], *, max_rows: int = MAX_ROWS, max_orders: int = MAX_ORDERS
) -> list[SheetOrder]:
    """The orders of a sheet's rows of text cells, the first row naming the columns."""
    reader = iter(rows)
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise SheetDocumentError(
            [CellError("body", "the CSV is empty; the first row names the columns", EMPTY)]
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in KNOWN_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = [CellError(f"row 1.{c}", "required column is missing", MISSING_COLUMN) for c in missing]
    problems += [CellError(f"row 1.{c}", "unknown column", UNKNOWN_COLUMN) for c in unknown]
    problems += [
        CellError(f"row 1.{c}", "column appears more than once", DUPLICATE_COLUMN) for c in duplicated
    ]
    if problems:
        raise SheetDocumentError(problems)

    orders: dict[str, SheetOrder] = {}
    found: list[SheetOrder] = []  # in the order they first appear
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # a blank line (e.g. at the end of the file)
        if number - 1 > max_rows:
            raise SheetTooLarge(
                [
                    CellError(
                        f"row {number}",
                        f"one upload carries at most {max_rows} rows; split the file",
                        TOO_MANY_ROWS,
                    )
                ]
            )
        row = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header)}
        order = _order_for(orders, found, row["external_ref"], number)
        if len(found) > max_orders:
            raise SheetTooLarge(
                [
                    CellError(
                        f"row {number}.external_ref",
                        f"one upload carries at most {max_orders} orders; split the file",
                        TOO_MANY_ORDERS,
                    )
                ]
            )
        if len(cells) > len(header):
            if number not in order.rows:
                order.rows.append(number)
            order.errors.append(
                CellError(f"row {number}", f"{len(cells)} cells but {len(header)} columns", TOO_MANY_CELLS)
            )
            continue
        _add_row(order, number, row)
    return found


def _order_for(orders: dict[str, SheetOrder], found: list[SheetOrder], ref: str, number: int) -> SheetOrder:
    if not ref:  # a row without an external_ref cannot join an order: it is refused on its own
        order = SheetOrder(
            "", rows=[number], errors=[CellError(f"row {number}.external_ref", "required", REQUIRED)]
        )
        found.append(order)
        return order
    if ref not in orders:
        orders[ref] = SheetOrder(ref)
        found.append(orders[ref])
    return orders[ref]


def _add_row(order: SheetOrder, number: int, row: dict[str, str]) -> None:
    if number not in order.rows:
        order.rows.append(number)
    for column, value in row.items():  # the same check as every JSON body's text (gateway.bodies)
        if why := text_problem(value):
            order.errors.append(CellError(f"row {number}.{column}", why, BAD_TEXT))
    first = not order.body
    if first:
        order.body = {"external_ref": order.external_ref, "customer_id": row["customer_id"], "lines": []}
        _order_fields(order, number, row)
    else:  # every row of an order repeats the order's own columns, or leaves them empty
        for column in (*ORDER_COLUMNS, *SHIP_TO_COLUMNS):
            value, expected = row.get(column, ""), order.columns.get(column, "")
            if value and value != expected:
                order.errors.append(
                    CellError(
                        f"row {number}.{column}",
                        f"differs from row {order.rows[0]} of the same external_ref",
                        DIFFERS,
                    )
                )
    order.body["lines"].append(_line(order, number, row))


def _order_fields(order: SheetOrder, number: int, row: dict[str, str]) -> None:
    order.columns = {c: row.get(c, "") for c in (*ORDER_COLUMNS, *SHIP_TO_COLUMNS)}
    if not row["customer_id"]:
        order.errors.append(CellError(f"row {number}.customer_id", "required", REQUIRED))
    if row.get("requested_delivery_date"):
        order.body["requested_delivery_date"] = row["requested_delivery_date"]
    if row.get("payment_terms"):
        order.body["payment_terms"] = row["payment_terms"]
    urgent = row.get("urgent", "").lower()
    if urgent in TRUE:
        order.body["urgent"] = True
    elif urgent not in FALSE:
        order.errors.append(CellError(f"row {number}.urgent", "must be true or false", NOT_BOOLEAN))
    ship_to = {c.removeprefix("ship_to_"): row[c] for c in SHIP_TO_COLUMNS if row.get(c)}
    if ship_to:
        order.body["ship_to"] = ship_to


def _line(order: SheetOrder, number: int, row: dict[str, str]) -> dict[str, Any]:
    line: dict[str, Any] = {"sku": row["sku"], "quantity": 0, "unit_price": row["unit_price"]}
    if not row["sku"]:
        order.errors.append(CellError(f"row {number}.sku", "required", REQUIRED))
    try:
        line["quantity"] = int(row["quantity"])
    except ValueError:
        order.errors.append(CellError(f"row {number}.quantity", "must be a whole number", NOT_WHOLE_NUMBER))
    try:
        if not Decimal(row["unit_price"]).is_finite():
            raise InvalidOperation
    except InvalidOperation:
        order.errors.append(
            CellError(f"row {number}.unit_price", 'must be a decimal number, e.g. "12.50"', NOT_DECIMAL)
        )
    return line
