"""Payment terms: which terms an order is on (as asked, or the customer's first allowed term)
and whether the customer agreed to them (hold reason payment_terms_not_allowed)."""

from __future__ import annotations

from orderdesk.masterdata import Customer
from services.intake.domain.submission import PREPAID, Reason, Submission


def payment_terms(s: Submission, customer: Customer) -> str:
    return s.payment_terms.upper() or (customer.payment_terms[0] if customer.payment_terms else "")


def prepaid_only(customer: Customer) -> bool:
    return customer.payment_terms == (PREPAID,)


def payment_terms_reasons(terms: str, customer: Customer) -> list[Reason]:
    if prepaid_only(customer) and terms != PREPAID:
        # The explicit rule: a customer who pays in advance gets no credit terms (NET30, ...).
        return [
            Reason(
                "payment_terms_not_allowed",
                f"customer {customer.customer_id} pays in advance (PREPAID only); {terms} terms are not available",
                "payment_terms",
            )
        ]
    if terms and terms not in customer.payment_terms:
        allowed = ", ".join(customer.payment_terms) or "none"
        return [
            Reason(
                "payment_terms_not_allowed",
                f"payment terms {terms} are not agreed with customer {customer.customer_id} (allowed: {allowed})",
                "payment_terms",
            )
        ]
    return []
