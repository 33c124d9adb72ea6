"""Intake's configuration: the blocked-customer policy, the price tolerance, the auto-approval
policy (which clean orders still go to a person) and the master-data cache's lifetime."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from orderdesk.masterdata import Customer
from services.intake.domain.submission import Reason


@dataclass(frozen=True)
class AutoApprovalPolicy:
    """Which clean orders still go to a person: the rules of routine, as configuration."""

    review_new_customers: bool = True  # ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS
    review_above_amount: Decimal = Decimal(100000)  # ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT

    def reasons(self, customer: Customer, amount: Decimal) -> list[Reason]:
        reasons = []
        if self.review_new_customers and customer.tier == "new":
            reasons.append(
                Reason(
                    "new_customer_review",
                    f"customer {customer.customer_id} is new: its orders are reviewed",
                    "customer_id",
                )
            )
        if amount > self.review_above_amount:
            reasons.append(
                Reason(
                    "amount_review",
                    f"order total {amount} {customer.currency} is above {self.review_above_amount}, "
                    "which is reviewed by a person",
                    "lines",
                )
            )
        return reasons


BLOCKED_POLICIES = ("hold", "refuse")
EXPOSURE_UNTIL = ("completion", "payment")


@dataclass(frozen=True)
class IntakeConfig:
    blocked_policy: str = "hold"  # ORDERDESK_INTAKE_BLOCKED_POLICY
    price_tolerance: Decimal = Decimal(0)  # ORDERDESK_INTAKE_PRICE_TOLERANCE (absolute, per unit)
    auto_approval: AutoApprovalPolicy = field(default_factory=AutoApprovalPolicy)
    masterdata_ttl_seconds: float = 5.0  # ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS (see cache.py)
    # ORDERDESK_INTAKE_EXPOSURE_UNTIL: "payment" (an order uses its customer's credit from confirmation until
    # finance reports it paid or credited; domain.money) or "completion" (until it is completed: for a
    # deployment that sends orderdesk no payments).
    exposure_until: str = "payment"
    hold_overdue_invoices: bool = False  # ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES

    @property
    def exposure_until_paid(self) -> bool:
        return self.exposure_until == "payment"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IntakeConfig:
        """Reads the ORDERDESK_INTAKE_* variables; a bad value fails start-up with a clear ValueError."""

        def get(name: str, default: str) -> str:
            return (environ.get(name) or "").strip() or default

        policy = get("ORDERDESK_INTAKE_BLOCKED_POLICY", "hold").lower()
        if policy not in BLOCKED_POLICIES:
            raise ValueError(f"ORDERDESK_INTAKE_BLOCKED_POLICY must be one of {', '.join(BLOCKED_POLICIES)}")
        review_new = get("ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS", "true").lower()
        if review_new not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("ORDERDESK_INTAKE_REVIEW_NEW_CUSTOMERS must be true or false")
        try:
            ttl = float(get("ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS", "5"))
        except ValueError:
            ttl = -1.0
        if not 0 <= ttl <= 3600:
            raise ValueError(
                "ORDERDESK_INTAKE_MASTERDATA_TTL_SECONDS must be a number of seconds from 0 to 3600"
            )
        until = get("ORDERDESK_INTAKE_EXPOSURE_UNTIL", "payment").lower()
        if until not in EXPOSURE_UNTIL:
            raise ValueError(f"ORDERDESK_INTAKE_EXPOSURE_UNTIL must be one of {', '.join(EXPOSURE_UNTIL)}")
        overdue = get("ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES", "false").lower()
        if overdue not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError("ORDERDESK_INTAKE_HOLD_OVERDUE_INVOICES must be true or false")
        return cls(
            exposure_until=until,
            hold_overdue_invoices=overdue in ("true", "1", "yes"),
            blocked_policy=policy,
            masterdata_ttl_seconds=ttl,
            price_tolerance=_amount(
                get("ORDERDESK_INTAKE_PRICE_TOLERANCE", "0"), "ORDERDESK_INTAKE_PRICE_TOLERANCE"
            ),
            auto_approval=AutoApprovalPolicy(
                review_new_customers=review_new in ("true", "1", "yes"),
                review_above_amount=_amount(
                    get("ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT", "100000"),
                    "ORDERDESK_INTAKE_REVIEW_ABOVE_AMOUNT",
                ),
            ),
        )


def _amount(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a non-negative decimal amount, not {text!r}")
    return value
