"""Intake's rules: is a submitted order well-formed, should it be held, how urgent is it.

`decide()` below is the front: it runs the rules of the modules of this package in order.
Plain Python: no I/O, no protobuf, no clock (the service reads the clock into Facts).

Two kinds of findings, kept apart on purpose:

- violations: the request is malformed or names things that do not exist. The
  order is refused as a whole (InvalidArgument listing every problem) and
  nothing is stored, so the partner can fix it and send it again. A requested
  delivery date in the past is such a violation.
- hold reasons: the request is well-formed but breaks a business rule (blocked
  customer, wrong price, ...). The order is created `on_hold` with machine-readable
  reasons and the desk approves or rejects it.

Hold reason codes (stable: partners and the desk's filters match on them), in the
order they are reported (the line rules line by line, in this order within a line),
with the field path each names:

  customer_blocked           customer_id              the customer is blocked (policy "hold"; "refuse"
                                                      refuses the order with FAILED_PRECONDITION instead)
  contact_missing            customer.email |         no plausible e-mail in the customer's master data,
                             ship_to.phone            or no plausible phone on the ship-to or the customer
  ship_to_incomplete         ship_to.<field>          the delivery address lacks name, line1, city, country,
                                                      or a postal code where the country uses them
  country_unknown            ship_to.country          not an ISO 3166-1 alpha-2 code
  postal_code_invalid        ship_to.postal_code      does not match the country's format (POSTAL_CODES)
  payment_terms_not_allowed  payment_terms            terms not agreed with the customer; a PREPAID-only
                                                      customer cannot order on any other terms
  duplicate_line             lines[i].sku             the SKU is already on an earlier line. Flagged, not
                                                      merged: the lines may differ in price, and merging
                                                      would silently renumber the partner's lines
  sku_discontinued           lines[i].sku
  currency_mismatch          lines[i].sku             the price (list or customer-specific) is in another
                                                      currency than the customer buys in
  price_mismatch             lines[i].unit_price      differs from the customer's price (customer-specific
                                                      price, else list price) by more than the tolerance
  below_min_order_qty        lines[i].quantity
  not_order_multiple         lines[i].quantity
  delivery_date_infeasible   requested_delivery_date  the whole order cannot arrive by then; proposals:
                                                      earliest_date, and split when part of it can
  delivery_date_unverified   requested_delivery_date  stock, warehouse data or inventory's production
                                                      plan could not be read, so the date could not be
                                                      checked
  credit_limit_exceeded      customer_id              open exposure + this order > credit limit
                                                      (PREPAID orders and PREPAID-only customers are exempt:
                                                      they pay before anything ships)
  overdue_invoices           customer_id              invoices past their due dates not yet paid (only with
                                                      ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES=true; PREPAID exempt)
  new_customer_review        customer_id              auto-approval policy: tier "new" is reviewed
  amount_review              lines                    auto-approval policy: order total above the threshold
  duplicate_external_ref     external_ref             the partner already sent this reference under another
                                                      Idempotency-Key (never for a replay of the same key);
                                                      found by the service when it claims the reference

Configuration (environment, read by IntakeConfig.from_env at start-up):

  ORDERDESK_INTAKE_BLOCKED_POLICY         hold | refuse          default hold
  ORDERDESK_INTAKE_PRICE_TOLERANCE        absolute amount        default 0 (exact price)
  ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS   true | false           default true
  ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT    order total            default 100000 (in the customer's currency)

Delivery dates are working days (orderdesk.calendar: each warehouse's time zone, cut-off, working
days and holidays, the destination country's holidays, the lanes' transit working days); units
that stock does not cover arrive when inventory's QuoteSupply says; instants are UTC.

Where the rules live:

  submission.py    Submission, Facts, Decision, Reason, Proposal; parsing; the request hash
  structure.py     the structure check (violations)
  holds.py         the hold rules in the order above, and duplicate_external_ref
  address.py       ship-to, contact_missing, ship_to_incomplete, country_unknown, postal_code_invalid
  countries.py     ISO country codes and postal code formats
  terms.py         payment terms
  lines.py         the line rules
  delivery.py      delivery planning and the date rules
  credit.py        the credit limit and which order events change the open exposure
  priority.py      priority from tier, urgency and date
  recheck.py       what approving a held order checks again
  master_data.py   the master-data kinds intake imports and their limits
  config.py        IntakeConfig and AutoApprovalPolicy

Master data records are orderdesk.masterdata.Customer, Product, CustomerPrice and
Warehouse, the same records the CSV import produces.
"""

from __future__ import annotations

from collections.abc import Mapping

from orderdesk.domain import ADDRESS_FIELDS, REQUIRED_ADDRESS_FIELDS
from orderdesk.errors import FailedPrecondition
from orderdesk.masterdata import Customer, Product
from services.intake.domain.address import (
    address_reasons,
    contact_reasons,
    plausible_email,
    plausible_phone,
    ship_to,
)
from services.intake.domain.config import BLOCKED_POLICIES, AutoApprovalPolicy, IntakeConfig
from services.intake.domain.countries import (
    COUNTRIES_WITHOUT_POSTAL_CODES,
    ISO_COUNTRIES,
    POSTAL_CODE_HINTS,
    POSTAL_CODES,
    postal_code_valid,
)
from services.intake.domain.credit import (
    EXPOSURE_CLOSED,
    EXPOSURE_OPEN,
    Booking,
    book_in_turn,
    booked_micros,
    credit_exempt,
    credit_race,
    credit_reasons,
    credit_refused,
    exposure_changes,
    exposure_state,
    overdue_reasons,
)
from services.intake.domain.delivery import (
    Arrival,
    Supply,
    delivery_reasons,
    earliest_dates,
    plan_arrivals,
    stock_arrivals,
)
from services.intake.domain.holds import duplicate_external_ref, hold_reasons
from services.intake.domain.lines import customer_price, line_reasons
from services.intake.domain.master_data import MASTER_KINDS, check_master_kind, check_master_records
from services.intake.domain.priority import TIER_RANK, URGENCY_HORIZON_DAYS, URGENT_FLOOR, priority, urgency
from services.intake.domain.recheck import RECHECKED_ON_APPROVAL, approval_findings, deliveries_to_check
from services.intake.domain.structure import (
    MAX_ADDRESS_FIELD,
    MAX_EXTERNAL_REF,
    MAX_IDEMPOTENCY_KEY,
    MAX_LINES,
    MAX_PARTNER_ID,
    MAX_PAYMENT_TERMS,
    MAX_QUANTITY,
    check_structure,
)
from services.intake.domain.submission import (
    CHANNELS,
    DEFAULT_CHANNEL,
    PREPAID,
    Decision,
    Facts,
    OrderLine,
    Proposal,
    ProposalPart,
    Reason,
    Submission,
    SubmittedLine,
    canonical_request,
    metric_channel,
    new_order_id,
    order_amount,
    order_lines,
    parse_date,
    parse_price,
    request_hash,
)
from services.intake.domain.terms import payment_terms, payment_terms_reasons, prepaid_only


def decide(
    s: Submission,
    customer: Customer | None,
    products: Mapping[str, Product],
    facts: Facts,
    config: IntakeConfig | None = None,
) -> Decision:
    """Checks the request (raising InvalidArgument) and returns the order to create.

    A blocked customer's order is refused (FailedPrecondition, rule customer_blocked)
    instead of held when the configured policy is "refuse".
    """
    config = config or IntakeConfig()
    check_structure(s, customer, products, facts.today)
    assert customer is not None  # check_structure refused an unknown customer
    if customer.status == "blocked" and config.blocked_policy == "refuse":
        raise FailedPrecondition(
            f"customer {customer.customer_id} is blocked; its orders are refused",
            rule="customer_blocked",
            subject=customer.customer_id,
        )
    reasons, proposals = hold_reasons(s, customer, products, facts, config)
    return Decision(
        lines=order_lines(s),
        ship_to=ship_to(s.ship_to, customer),
        payment_terms=payment_terms(s, customer),
        currency=customer.currency,
        priority=priority(customer.tier, parse_date(s.requested_delivery_date), facts.today, s.urgent),
        hold_reasons=tuple(reasons),
        proposals=tuple(proposals),
        urgent=s.urgent,
    )


__all__ = [
    "ADDRESS_FIELDS",
    "BLOCKED_POLICIES",
    "CHANNELS",
    "COUNTRIES_WITHOUT_POSTAL_CODES",
    "DEFAULT_CHANNEL",
    "EXPOSURE_CLOSED",
    "EXPOSURE_OPEN",
    "ISO_COUNTRIES",
    "MASTER_KINDS",
    "MAX_ADDRESS_FIELD",
    "MAX_EXTERNAL_REF",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_LINES",
    "MAX_PARTNER_ID",
    "MAX_PAYMENT_TERMS",
    "MAX_QUANTITY",
    "POSTAL_CODES",
    "POSTAL_CODE_HINTS",
    "PREPAID",
    "RECHECKED_ON_APPROVAL",
    "REQUIRED_ADDRESS_FIELDS",
    "TIER_RANK",
    "URGENCY_HORIZON_DAYS",
    "URGENT_FLOOR",
    "Arrival",
    "AutoApprovalPolicy",
    "Decision",
    "Facts",
    "IntakeConfig",
    "OrderLine",
    "Proposal",
    "ProposalPart",
    "Reason",
    "Submission",
    "SubmittedLine",
    "address_reasons",
    "approval_findings",
    "canonical_request",
    "check_master_kind",
    "check_master_records",
    "check_structure",
    "contact_reasons",
    "Booking",
    "book_in_turn",
    "booked_micros",
    "credit_exempt",
    "credit_race",
    "credit_reasons",
    "credit_refused",
    "customer_price",
    "decide",
    "deliveries_to_check",
    "delivery_reasons",
    "earliest_dates",
    "duplicate_external_ref",
    "exposure_changes",
    "exposure_state",
    "overdue_reasons",
    "hold_reasons",
    "line_reasons",
    "metric_channel",
    "new_order_id",
    "order_amount",
    "order_lines",
    "parse_date",
    "parse_price",
    "payment_terms",
    "payment_terms_reasons",
    "plan_arrivals",
    "stock_arrivals",
    "Supply",
    "plausible_email",
    "plausible_phone",
    "postal_code_valid",
    "prepaid_only",
    "priority",
    "request_hash",
    "ship_to",
    "urgency",
]
