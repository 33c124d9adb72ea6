"""The hold rules together: every business rule a well-formed order breaks, in the documented
order (see the package's docstring), with the proposals for an infeasible date; and the hold
the service adds itself when a partner's reference was already used (duplicate_external_ref)."""

from __future__ import annotations

from collections.abc import Mapping

from orderdesk.masterdata import Customer, Product
from services.intake.domain.address import address_reasons, contact_reasons, ship_to
from services.intake.domain.config import IntakeConfig
from services.intake.domain.credit import credit_exempt, credit_reasons, overdue_reasons
from services.intake.domain.delivery import delivery_reasons
from services.intake.domain.lines import line_reasons
from services.intake.domain.submission import (
    Facts,
    Proposal,
    Reason,
    Submission,
    order_amount,
    order_lines,
    parse_date,
)
from services.intake.domain.terms import payment_terms, payment_terms_reasons


def hold_reasons(
    s: Submission,
    customer: Customer,
    products: Mapping[str, Product],
    facts: Facts,
    config: IntakeConfig | None = None,
) -> tuple[list[Reason], list[Proposal]]:
    """Every business rule the (well-formed) order breaks, in the documented order, and any proposals."""
    config = config or IntakeConfig()
    address = ship_to(s.ship_to, customer)
    terms = payment_terms(s, customer)
    lines = order_lines(s)
    reasons: list[Reason] = []
    if customer.status == "blocked":
        reasons.append(
            Reason("customer_blocked", f"customer {customer.customer_id} is blocked", "customer_id")
        )
    reasons += contact_reasons(customer, address)
    reasons += address_reasons(address)
    reasons += payment_terms_reasons(terms, customer)
    reasons += line_reasons(s, customer, products, facts.prices, config.price_tolerance)
    proposals: list[Proposal] = []
    requested = parse_date(s.requested_delivery_date)
    if requested is not None:
        date_reasons, proposals = delivery_reasons(
            requested,
            lines,
            products,
            facts.stock,
            facts.book,
            address.get("country", ""),
            facts.now,
            facts.supply,
        )
        reasons += date_reasons
    reasons += credit_reasons(customer, terms, order_amount(lines), facts.open_exposure)
    if config.hold_overdue_invoices and not credit_exempt(customer, terms):
        reasons += overdue_reasons(customer, facts.overdue)
    reasons += config.auto_approval.reasons(customer, order_amount(lines))
    return reasons, proposals


def duplicate_external_ref(external_ref: str, first_order_id: str, same_key: bool = False) -> Reason:
    """`same_key`: sent again under its first key after that key's retention (README "Retention")."""
    how = (
        "under this Idempotency-Key, longer ago than keys are kept"
        if same_key
        else "with another Idempotency-Key"
    )
    return Reason(
        "duplicate_external_ref",
        f"reference {external_ref!r} was already sent by this partner {how} (order {first_order_id})",
        "external_ref",
    )
