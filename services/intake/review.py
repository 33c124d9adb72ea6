"""Intake's checks on a change request: orders asks before it accepts a change.

Only the checks a change can make fail run, on the order as it would be after the change:
the prices of its lines (customer price list, tolerance), the customer's credit for the new
total (the order's previous total is already part of the open exposure), whether the added
units can arrive by the requested date, and the new address. Nothing is stored.
"""

from __future__ import annotations

from decimal import Decimal

from orderdesk import errors
from orderdesk.domain import address_dict
from orderdesk.v1 import intake_pb2
from services.intake import domain
from services.intake.store import ExposureRepository, MasterDataRepository


def _submission(order, lines) -> domain.Submission:
    return domain.Submission(
        partner_id=order.partner_id,
        idempotency_key="review",
        channel="api",
        external_ref="",
        customer_id=order.customer_id,
        ship_to=address_dict(order.ship_to),
        lines=tuple(domain.SubmittedLine(sku, qty, price) for sku, qty, price in lines),
        requested_delivery_date=order.requested_delivery_date,
        payment_terms=order.payment_terms,
    )


async def review_change(service, request: intake_pb2.ReviewChangeRequest) -> list[domain.Reason]:
    order = request.order
    now = service.clock()
    s = _submission(order, [(line.sku, line.quantity, line.unit_price) for line in order.lines])
    async with service.db.reading() as work:
        repo = work.repo(MasterDataRepository)
        customer = await repo.customer(order.customer_id)
        products = await repo.products({line.sku for line in order.lines})
        if customer is None:
            raise errors.NotFound(f"customer {order.customer_id} not found")
        unknown = [
            errors.FieldViolation(f"lines[{i}].sku", f"unknown SKU {line.sku!r}", "unknown")
            for i, line in enumerate(order.lines)
            if line.sku not in products
        ]
        if unknown:
            raise errors.InvalidArgument("the changed order names unknown products", unknown)
        prices = await repo.customer_prices(customer.customer_id, {line.sku for line in order.lines})
        exposure = await work.repo(ExposureRepository).open_exposure(customer.customer_id)
        settled = await work.repo(ExposureRepository).settled(order.order_id)
        requested = domain.parse_date(order.requested_delivery_date)
        check_date = bool(request.added) and requested is not None and requested >= now.date()
        book = await service.masterdata.book(work) if check_date else None
    reasons: list[domain.Reason] = []
    if request.ship_to_changed:
        reasons += domain.address_reasons(domain.ship_to(s.ship_to, customer))
    # Only the lines the change adds to: an untouched line keeps the price it was accepted with.
    touched = {a.sku for a in request.added}
    reasons += [
        r
        for r in domain.line_reasons(s, customer, products, prices, service.config.price_tolerance)
        if _line_sku(order, r.field) in touched
    ]
    if check_date:
        added = [domain.OrderLine(a.sku, a.quantity, Decimal(0)) for a in request.added]
        reasons += await service.date_reasons(requested, added, products, book, order.ship_to.country, now)
    previous = Decimal(request.previous_total or "0")
    if order.status in domain.EXPOSURE_OPEN:  # the previous total, less what is paid, is already counted
        exposure -= previous - min(previous, settled)
    reasons += domain.credit_reasons(
        customer,
        domain.payment_terms(s, customer),
        max(domain.order_amount(domain.order_lines(s)) - settled, Decimal(0)),  # what is paid uses no credit
        max(exposure, Decimal(0)),
    )
    return reasons


def _line_sku(order, field_path: str) -> str | None:
    if not field_path.startswith("lines["):
        return None
    try:
        return order.lines[int(field_path[6 : field_path.index("]")])].sku
    except (ValueError, IndexError):
        return None
