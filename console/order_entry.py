"""Order entry's plain Python (no I/O): the entry form's lines, a customer's order sheet (CSV or XLSX) as rows
of text, intake's refusals and a sheet's bad cells in words, and an order body as intake's SubmitOrderRequest.

Orders the desk enters go through intake like a partner's (the same checks and idempotency) under the
desk's own partner id, DESK_PARTNER_ID, with the channel `phone` or `email` and the person as the actor.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from console.i18n import N_
from orderdesk import order_sheets
from orderdesk.v1 import common_pb2, intake_pb2

DESK_PARTNER_ID = "DESK"  # the partner id of every order the desk enters (README "Console")
CHANNELS = ("phone", "email")
FORM_LINES = 50  # at most this many lines on the entry form
BLANK_LINES = 2  # empty lines offered below the filled ones (at least 3 lines in all)
MAX_SHEET_BYTES = 2 * 1024 * 1024  # console/middleware.py UPLOAD_LIMITS
MAX_SHEET_ROWS = 1000
MAX_SHEET_ORDERS = 200
_LINE_FIELD = re.compile(r"lines\[(\d+)\]\.(\w+)")


@dataclass
class Line:
    """One line of the entry form: what was typed, and what intake's quote found for it."""

    product: str = ""  # a SKU or a part of a product's name
    quantity: str = ""
    sku: str = ""
    name: str = ""
    unit_price: str = ""
    currency: str = ""
    available: int | None = None  # None: not known
    earliest: str = ""
    matches: Sequence[tuple[str, str]] = ()  # (sku, name) when a name matched several products

    @property
    def blank(self) -> bool:
        return not self.product.strip() and not self.quantity.strip()

    def units(self) -> int | None:
        text = self.quantity.strip()
        # At most 12 digits: a number intake can judge (it allows 1,000,000), never one beyond int64.
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def form_lines(form: Mapping[str, Any]) -> list[Line]:
    """The lines typed on the form (line-N-product, line-N-quantity), blank ones left out."""
    lines = []
    for i in range(FORM_LINES):
        product, quantity = form.get(f"line-{i}-product", ""), form.get(f"line-{i}-quantity", "")
        line = Line(
            product.strip() if isinstance(product, str) else "",
            quantity.strip() if isinstance(quantity, str) else "",
        )
        if not line.blank:
            lines.append(line)
    return lines


def shown_lines(lines: list[Line]) -> list[Line]:
    count = min(max(len(lines) + BLANK_LINES, 3), FORM_LINES)
    return [*lines, *(Line() for _ in range(count - len(lines)))]


def apply_quote(line: Line, quote: intake_pb2.LineQuote) -> None:
    line.sku, line.name, line.currency = quote.sku, quote.name, quote.currency
    line.unit_price = quote.unit_price
    line.available = quote.available if quote.sku and quote.available >= 0 else None
    line.earliest = quote.earliest_date
    line.matches = [(m.sku, m.name) for m in quote.matches]
    if quote.sku:
        line.product = quote.sku  # a name that found one product becomes its SKU


# --- intake's refusals in words --------------------------------------------------------------------------------
UNKNOWN_SKU = N_("There is no product with this SKU or name.")
SEVERAL_PRODUCTS = N_("Several products match. Enter one of their SKUs:")
ENTER_PRODUCT = N_("Enter a SKU or a product name.")
ENTER_QUANTITY = N_("Enter a whole number of units, from 1 to 1,000,000.")
ENTER_PRICE = N_("Enter a price such as 12.50.")
NO_CUSTOMER = N_("No customer has this id or a name like it.")
SEVERAL_CUSTOMERS = N_("Several customers match. Choose one below.")
CHOOSE_CUSTOMER = N_("Find the customer first: their id or a part of their name.")
ENTER_DATE = N_("Enter a date such as 2026-12-24.")
DATE_PAST = N_("This date is in the past.")
TOO_LONG = N_("This is too long.")
ADD_A_LINE = N_("Add at least one line.")
BAD_ADDRESS = N_("The delivery address is incomplete or not valid.")
BAD_TERMS = N_("These payment terms are not valid.")
CHOOSE_CHANNEL = N_("Choose how the order came in.")


def refusal_words(path: str, reason: str) -> str:
    """An intake field violation (its path and reason code) in the console's words; "" when it has none."""
    column = path.rsplit(".", 1)[-1]
    if column == "sku":
        return ENTER_PRODUCT if reason == "required" else UNKNOWN_SKU
    if column == "quantity":
        return ENTER_QUANTITY
    if column == "unit_price":
        return ENTER_PRICE
    if path == "customer_id":
        return CHOOSE_CUSTOMER if reason == "required" else NO_CUSTOMER
    if path == "requested_delivery_date":
        return DATE_PAST if reason == "in_the_past" else ENTER_DATE
    if path == "external_ref":
        return TOO_LONG
    if path == "lines":
        return ADD_A_LINE
    if path.startswith("ship_to"):
        return BAD_ADDRESS
    if path == "payment_terms":
        return BAD_TERMS
    return ""


def form_field(path: str, sent: Sequence[int]) -> str:
    """intake's path ("lines[1].sku") as the entry form's field ("line-3-product"): `sent` maps the index of
    a line sent to intake to its line on the form."""
    if match := _LINE_FIELD.fullmatch(path):
        index, part = int(match.group(1)), match.group(2)
        at = sent[index] if index < len(sent) else index
        return f"line-{at}-{'quantity' if part == 'quantity' else 'product'}"
    return {"customer_id": "customer", "requested_delivery_date": "requested_date"}.get(path, path)


# --- a customer's sheet ----------------------------------------------------------------------------------------
CELL_WORDS = {
    order_sheets.REQUIRED: N_("This cell must not be empty."),
    order_sheets.MISSING_COLUMN: N_("This column is required but missing."),
    order_sheets.UNKNOWN_COLUMN: N_("This column is not part of the order sheet format."),
    order_sheets.DUPLICATE_COLUMN: N_("This column appears more than once."),
    order_sheets.EMPTY: N_("The file is empty; its first row names the columns."),
    order_sheets.UNREADABLE: N_("The file cannot be read as CSV (UTF-8) or XLSX."),
    order_sheets.TOO_MANY_ROWS: N_("The file has too many rows for one upload; split it."),
    order_sheets.TOO_MANY_ORDERS: N_("The file has too many orders for one upload; split it."),
    order_sheets.TOO_MANY_CELLS: N_("This row has more cells than the sheet has columns."),
    order_sheets.BAD_TEXT: N_("This cell contains control characters."),
    order_sheets.DIFFERS: N_("This cell differs from the first row of the same order."),
    order_sheets.NOT_BOOLEAN: N_("Write true or false."),
    order_sheets.NOT_WHOLE_NUMBER: N_("Write a whole number."),
    order_sheets.NOT_DECIMAL: N_("Write a decimal number such as 12.50."),
}


@dataclass(frozen=True)
class CellProblem:
    row: int | None
    column: str
    words: str  # N_ message, or the service's English
    english: str = ""  # the service's own message when there are no words for it


def cell_problem(error: order_sheets.CellError) -> CellProblem:
    return CellProblem(error.row, error.column, CELL_WORDS.get(error.reason, error.message))


def intake_problem(order: order_sheets.SheetOrder, path: str, reason: str, message: str) -> CellProblem:
    """intake's refusal of a sheet's order, at the cell it came from."""
    where = order_sheets.CellError(order.row_path(path), message)
    return CellProblem(where.row, where.column, refusal_words(path, reason) or message)


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    return str(value)


def sheet_rows(data: bytes) -> list[list[str]]:
    """A CSV (UTF-8) or XLSX file's rows as text cells (the first sheet of a workbook); SheetDocumentError
    when it is neither."""
    if data[:2] == b"PK":  # a zip: XLSX
        import openpyxl

        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                sheet = book.worksheets[0]
                rows = []
                for row in sheet.iter_rows(values_only=True):
                    rows.append([_cell_text(v) for v in row])
                    if len(rows) > MAX_SHEET_ROWS + 1:
                        break
            finally:
                book.close()
        except Exception:  # a damaged or foreign zip: openpyxl raises many kinds
            raise _unreadable() from None
        while rows and not any(c.strip() for c in rows[-1]):
            rows.pop()
        width = max((i + 1 for row in rows for i, c in enumerate(row) if c.strip()), default=0)
        return [row[:width] for row in rows]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _unreadable() from None
    try:
        return [list(row) for row in csv.reader(io.StringIO(text))]
    except csv.Error:
        raise _unreadable() from None


def _unreadable() -> order_sheets.SheetDocumentError:
    return order_sheets.SheetDocumentError(
        [order_sheets.CellError("body", "not readable", order_sheets.UNREADABLE)]
    )


def rows_as_csv(rows: Sequence[Sequence[str]]) -> str:
    """The rows as CSV text (what the preview carries to the submit)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def parse_sheet(rows: Sequence[Sequence[str]]) -> list[order_sheets.SheetOrder]:
    return order_sheets.parse_rows(rows, max_rows=MAX_SHEET_ROWS, max_orders=MAX_SHEET_ORDERS)


def sheet_key(upload_key: str, external_ref: str) -> str:
    """Each order of an upload has its own key: the same upload submitted again creates nothing twice."""
    return f"console-upload:{upload_key}:{external_ref}"


def _bounded(quantity: int) -> int:
    """Within int64, so intake (not the encoder) says what is wrong with a huge quantity."""
    return max(min(quantity, 2**62), -(2**62))


def submit_request(
    body: Mapping[str, Any], *, idempotency_key: str, channel: str, actor: str
) -> intake_pb2.SubmitOrderRequest:
    """An order body (the POST /v1/orders shape, as order_sheets builds it) as the desk's SubmitOrder."""
    ship_to = body.get("ship_to") or {}
    return intake_pb2.SubmitOrderRequest(
        partner_id=DESK_PARTNER_ID,
        idempotency_key=idempotency_key,
        channel=channel,
        external_ref=body.get("external_ref", ""),
        customer_id=body.get("customer_id", ""),
        ship_to=common_pb2.Address(**ship_to) if ship_to else None,
        lines=[
            intake_pb2.SubmitLine(
                sku=line["sku"], quantity=_bounded(int(line["quantity"])), unit_price=str(line["unit_price"])
            )
            for line in body.get("lines", [])
        ],
        requested_delivery_date=body.get("requested_delivery_date", ""),
        payment_terms=body.get("payment_terms", ""),
        urgent=bool(body.get("urgent", False)),
        actor=actor,
    )
