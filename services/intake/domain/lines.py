"""The rules of each order line: one line per SKU, the product still sold, the customer's price
in the customer's currency, the minimum order quantity and the order multiple (hold reasons
duplicate_line, sku_discontinued, currency_mismatch, price_mismatch, below_min_order_qty,
not_order_multiple)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from orderdesk.masterdata import Customer, CustomerPrice, Product
from services.intake.domain.submission import Reason, Submission, parse_price


def customer_price(
    sku: str, product: Product, prices: Mapping[str, CustomerPrice]
) -> tuple[Decimal, str, str]:
    """(price, currency, which list) the customer pays for `sku`: its own price if it has one."""
    own = prices.get(sku)
    if own is not None:
        return own.unit_price, own.currency, "customer price"
    return product.unit_price, product.currency, "list price"


def line_reasons(
    s: Submission,
    customer: Customer,
    products: Mapping[str, Product],
    prices: Mapping[str, CustomerPrice],
    tolerance: Decimal,
) -> list[Reason]:
    """Line by line, in this order within a line."""
    reasons: list[Reason] = []
    first_line: dict[str, int] = {}
    for i, line in enumerate(s.lines):
        product = products[line.sku]
        at = f"lines[{i}]"
        if line.sku in first_line:
            reasons.append(
                Reason(
                    "duplicate_line",
                    f"{line.sku} is already ordered on lines[{first_line[line.sku]}]; "
                    "put the whole quantity on one line",
                    f"{at}.sku",
                )
            )
        first_line.setdefault(line.sku, i)
        if product.status == "discontinued":
            reasons.append(Reason("sku_discontinued", f"{line.sku} is discontinued", f"{at}.sku"))
        expected, currency, source = customer_price(line.sku, product, prices)
        if currency != customer.currency:
            # The price is in another currency: there is nothing to compare the order's price with.
            reasons.append(
                Reason(
                    "currency_mismatch",
                    f"{line.sku} is priced in {currency}; customer {customer.customer_id} buys in {customer.currency}",
                    f"{at}.sku",
                )
            )
        else:
            given = parse_price(line.unit_price)
            if given is None or abs(given - expected) > tolerance:  # Decimal: "12.5" equals "12.50"
                allowed = f" (tolerance {tolerance})" if tolerance else ""
                reasons.append(
                    Reason(
                        "price_mismatch",
                        f"{line.sku}: {source} is {expected} {currency}, the order says {given}{allowed}",
                        f"{at}.unit_price",
                    )
                )
        if line.quantity < product.min_order_qty:
            reasons.append(
                Reason(
                    "below_min_order_qty",
                    f"{line.sku}: at least {product.min_order_qty} per order, the order says {line.quantity}",
                    f"{at}.quantity",
                )
            )
        if line.quantity % product.order_multiple:
            reasons.append(
                Reason(
                    "not_order_multiple",
                    f"{line.sku}: sold in multiples of {product.order_multiple}, the order says {line.quantity}",
                    f"{at}.quantity",
                )
            )
    return reasons
