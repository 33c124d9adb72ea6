"""The return (RMA) aggregate: authorised against delivered quantities, received, inspected, refunded.

    held ──> authorized ──> received ──> refunded
     │  └──> refused         │          (on inspection: every authorised unit is restocked,
     └──────────────> cancelled          refurbished or scrapped, and refunded by the policy)

A line may be exchanged instead of refunded (issue 14, "on receipt"): it names the replacement (the same
SKU or another, at most as many units as are returned), priced by the policy when the RMA is made. Its
refund is nothing; the RMA records what the replacement is worth more (to_charge) or less (to_credit) than
the returned goods. Once inspected, the returns service enters ONE replacement order through intake and
links it here (`record_exchange`, published as return.exchange_created). In the advance mode (by policy,
for the customer's tier) the replacement is entered as soon as the RMA is authorised; the goods then have
until `return_due_at`, after which they are charged (`charge_unreturned`, return.unreturned_charged).

Plain Python, no I/O. What may be returned is what the order shows as delivered
minus what this order's RMAs already took (in any status but refused and cancelled).
A request the return policy (services/returns/policy.py) does not allow on its own is
held for the desk, whose approver authorises or refuses it with a reason; a request
within the policy is authorised at once. An RMA can be cancelled until the goods are
received. Receiving twice, or repeating the same inspection, decision or cancellation,
changes nothing (a warehouse or a partner retries). Every change bumps the version;
`Return.changes` collects the ones not yet published.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from orderdesk import idempotency
from orderdesk.calendar import Calendar
from orderdesk.domain import StatusChange, units_per_sku
from orderdesk.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.returns import policy
from services.returns.policy import (
    OUTCOMES,
    ExchangeLine,
    HoldReason,
    PolicyLine,
    PolicySettings,
    ProductPolicy,
)


class Status(StrEnum):
    HELD = "held"
    AUTHORIZED = "authorized"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    RECEIVED = "received"
    REFUNDED = "refunded"


# An RMA in these statuses no longer holds the order's delivered units.
RELEASED = (Status.REFUSED, Status.CANCELLED)
REFUND, EXCHANGE = "refund", "exchange"
RESOLUTIONS = (REFUND, EXCHANGE)
# Claims (issue 14): an RMA of kind claim, for goods delivered wrong, short or damaged; each line is
# replaced (a replacement order, like an exchange's) or refunded in full.
RETURN_KIND, CLAIM_KIND = "return", "claim"
REPLACE = "replace"
CLAIM_RESOLUTIONS = (REPLACE, REFUND)
MISSING_ITEMS, WRONG_ITEM, DAMAGED_IN_TRANSIT = "missing_items", "wrong_item", "damaged_in_transit"
CLAIM_REASONS = (MISSING_ITEMS, WRONG_ITEM, DAMAGED_IN_TRANSIT)
# The return policy's reason code a claim's lines carry (the KPIs count returns by it).
CLAIM_REASON_CODES = {MISSING_ITEMS: "other", WRONG_ITEM: "wrong_item", DAMAGED_IN_TRANSIT: "damaged"}
CLAIM_OPENED_EVENT = "return.claim_opened"
CLAIM_RESOLVED_EVENT = "return.claim_resolved"
# What an exchange RMA's replacement is at: not yet due, due (inspected, the order is being entered),
# created (linked), cancelled (the RMA was refused or cancelled).
AWAITING_RECEIPT, EXCHANGE_DUE, EXCHANGE_CREATED, EXCHANGE_CANCELLED = (
    "awaiting_receipt",
    "due",
    "created",
    "cancelled",
)
EXCHANGE_CREATED_EVENT = "return.exchange_created"
UNRETURNED_CHARGED_EVENT = "return.unreturned_charged"
# What an inspection may say: the policy's outcomes and "scrap" (scrap_our_fault) from before it.
INSPECTION_OUTCOMES = (*OUTCOMES, *policy.OUTCOME_ALIASES)
MAX_REASON_LENGTH = 1000


def new_rma_id() -> str:
    return "RMA-" + secrets.token_hex(10).upper()


def exchange_key(rma_id: str) -> str:
    """The replacement order's idempotency key at intake: one RMA, one replacement order, however often
    the returns service asks (a redelivered event, a retry, a restart)."""
    return f"exchange-{rma_id}"


# --- what the order says ----------------------------------------------------------------
@dataclass(frozen=True)
class OrderedSku:
    """One SKU of the order as returns sees it: delivered units, price paid, where it shipped from."""

    sku: str
    delivered: int
    unit_price: Decimal
    warehouse: str


def summarise_order(
    lines: list[tuple[str, int, Decimal]], allocations: list[tuple[str, str]]
) -> dict[str, OrderedSku]:
    """(sku, delivered, unit_price) order lines and (sku, warehouse) allocations -> per-SKU facts.

    Lines of one SKU add up their delivered units and keep the first line's price;
    the goods go back to the first warehouse the SKU was allocated from.
    """
    warehouse: dict[str, str] = {}
    for sku, wh in allocations:
        warehouse.setdefault(sku, wh)
    summary: dict[str, OrderedSku] = {}
    for sku, delivered, unit_price in lines:
        if sku in summary:
            known = summary[sku]
            summary[sku] = OrderedSku(sku, known.delivered + delivered, known.unit_price, known.warehouse)
        else:
            summary[sku] = OrderedSku(sku, delivered, unit_price, warehouse.get(sku, ""))
    return summary


def returnable(ordered: dict[str, OrderedSku], authorised: dict[str, int]) -> dict[str, int]:
    """Units per SKU that a new RMA may still take back."""
    return {sku: max(0, o.delivered - authorised.get(sku, 0)) for sku, o in ordered.items()}


# --- requests -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestedLine:
    sku: str
    quantity: int
    reason: str = ""  # a note in the requester's words
    reason_code: str = ""  # policy.REASONS; "" takes the note when it is a code, else "other"
    resolution: str = ""  # refund | exchange; "": the return's
    exchange_sku: str = ""  # the replacement; "": the returned SKU
    exchange_quantity: int = 0  # 0: the returned quantity
    sent_sku: str = ""  # a wrong-item claim: the SKU that was sent instead of `sku`

    def resolved(self, resolution: str) -> str:
        return self.resolution or resolution

    def replacement_sku(self) -> str:
        return self.exchange_sku or self.sku

    def replacement_quantity(self) -> int:
        return self.exchange_quantity or self.quantity


@dataclass(frozen=True)
class Replacement:
    """What intake says of a replacement SKU for the order's customer (QuoteLines): its price today."""

    sku: str
    unit_price: Decimal
    currency: str
    active: bool = True


@dataclass(frozen=True)
class PolicyContext:
    """What the return policy needs to know besides the request (the service gathers it)."""

    settings: PolicySettings = field(default_factory=PolicySettings)
    products: dict[str, ProductPolicy] = field(default_factory=dict)
    tier: str = ""
    currency: str = ""
    delivered_on: dt.date | None = None  # None: not completely delivered, the window has not begun
    calendar: Calendar | None = None


@dataclass(frozen=True)
class Inspection:
    sku: str
    quantity: int
    outcome: str  # policy.OUTCOMES, or "scrap" (scrap_our_fault)


def request_hash(order_id: str, lines: list[RequestedLine], resolution: str, exchange_mode: str = "") -> str:
    """The hash stored with a CreateReturn's idempotency key: its body without the key (a line's
    reason code only when given, so keys stored before the codes still replay)."""
    return idempotency.request_hash(
        {
            "order_id": order_id,
            "lines": [
                [
                    line.sku,
                    line.quantity,
                    line.reason,
                    *([line.reason_code] if line.reason_code else []),
                    *(
                        [line.resolution, line.exchange_sku, line.exchange_quantity]
                        if line.resolution or line.exchange_sku or line.exchange_quantity
                        else []
                    ),
                ]
                for line in lines
            ],
            "resolution": resolution,
            **({"exchange_mode": exchange_mode} if exchange_mode else {}),
        }
    )


def claim_hash(
    order_id: str, lines: list[RequestedLine], reason: str, evidence: str, goods_back: bool
) -> str:
    """The hash stored with a CreateClaim's idempotency key: its body without the key."""
    return idempotency.request_hash(
        {
            "kind": CLAIM_KIND,
            "order_id": order_id,
            "lines": [
                [line.sku, line.quantity, line.reason, line.resolution, line.sent_sku] for line in lines
            ],
            "reason": reason,
            "evidence": evidence,
            "goods_back": goods_back,
        }
    )


# --- the aggregate ----------------------------------------------------------------------------
@dataclass
class ReturnLine:
    sku: str
    quantity: int
    reason: str
    unit_price: Decimal
    warehouse: str
    restocked: int = 0
    scrapped: int = 0  # every scrapped unit, whoever's fault
    reason_code: str = "other"
    refurbished: int = 0
    scrapped_customer: int = 0  # of `scrapped`, the units the customer damaged
    resolution: str = REFUND
    exchange_sku: str = ""  # exchanged lines: the replacement, its units and its price by the policy
    exchange_quantity: int = 0
    exchange_unit_price: Decimal = Decimal("0.00")
    sent_sku: str = ""  # a wrong-item claim's line: what was sent instead of `sku`
    claimed: bool = False  # a claim's line (from the RMA's kind): refunded in full, no fee

    @property
    def exchanged(self) -> bool:
        """Replaced by a new order: an exchanged return line or a claim's replaced line."""
        return self.resolution in (EXCHANGE, REPLACE)

    @property
    def restocking_fee(self) -> Decimal:
        """The fee the policy keeps back if every unit comes back fit to restock (shown at once); an
        exchanged line is not refunded, so nothing is kept back from it."""
        if self.exchanged:
            return Decimal("0.00")
        return policy.restocking_fee(self.reason_code, self.unit_price, self.quantity)

    def exchange_line(self) -> ExchangeLine:
        return ExchangeLine(self.quantity, self.unit_price, self.exchange_quantity, self.exchange_unit_price)

    def counts(self) -> dict[str, int]:
        """Inspected units by outcome."""
        return {
            policy.RESTOCK: self.restocked,
            policy.REFURBISH: self.refurbished,
            policy.SCRAP_OURS: self.scrapped - self.scrapped_customer,
            policy.SCRAP_CUSTOMERS: self.scrapped_customer,
        }

    @property
    def refund(self) -> Decimal:
        if self.exchanged:
            return Decimal("0.00")
        if self.claimed:  # our fault or the carrier's: what was paid, whatever comes back
            return (self.unit_price * self.quantity).quantize(Decimal("0.01"))
        return policy.line_refund(self.reason_code, self.unit_price, self.counts())


@dataclass(frozen=True)
class Change(StatusChange[Status]):
    """One status change, to publish as return.<status>; or, with `event`, another fact about the return
    in its status (return.exchange_created)."""

    event: str = ""

    @property
    def event_type(self) -> str:
        if self.event:
            return self.event
        return f"return.{self.status.value}"


@dataclass
class Return:
    rma_id: str
    order_id: str
    partner_id: str
    resolution: str
    lines: list[ReturnLine]
    status: Status = Status.AUTHORIZED
    refund_amount: Decimal = Decimal("0.00")
    version: int = 0
    created_at: dt.datetime | None = None
    hold_reasons: list[HoldReason] = field(default_factory=list)  # why the desk decides (kept after)
    decision_note: str = ""  # the approver's note, or why it was refused or cancelled
    currency: str = ""
    exchange_order_id: str = ""  # the replacement order, once made
    exchange_mode: str = ""  # "" without an exchange; policy.ON_RECEIPT | policy.ADVANCE
    return_due_at: dt.datetime | None = None  # advance: the goods must be back by then, else charged
    unreturned_charge: Decimal = Decimal("0.00")  # advance: charged when they were not
    kind: str = RETURN_KIND  # return | claim
    claim_reason: str = ""  # a claim's: CLAIM_REASONS
    goods_back: bool = False  # a claim's: the goods come back (received and inspected) before it resolves
    evidence: str = ""  # a claim's evidence notes
    decided_by: str = ""  # a claim's: who decided it (the desk person or the API key's name)
    # Not persisted: what changed since load, for the store and the outbox.
    changes: list[Change] = field(default_factory=list, repr=False)
    loaded_version: int = field(default=0, repr=False)

    # --- authorisation ---------------------------------------------------------
    @classmethod
    def authorize(
        cls,
        *,
        rma_id: str,
        order_id: str,
        partner_id: str,
        ordered: dict[str, OrderedSku],
        authorised: dict[str, int],
        requested: list[RequestedLine],
        resolution: str,
        at: dt.datetime,
        actor: str,
        context: PolicyContext | None = None,
        replacements: Mapping[str, Replacement] | None = None,
        exchange_mode: str = "",
    ) -> Return:
        """A new RMA for `requested`, given the order and what its other RMAs already took: authorised
        when the return policy allows it, else held for the desk (`hold_reasons` say why).

        `replacements`: what intake says of each exchanged line's replacement SKU (absent: unknown)."""
        violations: list[FieldViolation] = []
        if resolution not in RESOLUTIONS:
            violations.append(
                FieldViolation(
                    "resolution", f"must be one of {', '.join(RESOLUTIONS)}", "unsupported_resolution"
                )
            )
        if not requested:
            violations.append(FieldViolation("lines", "at least one line", "required"))
        for i, line in enumerate(requested):
            if not line.sku:
                violations.append(FieldViolation(f"lines[{i}].sku", "required", "required"))
            elif line.sku not in ordered:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].sku", f"{line.sku} is not on order {order_id}", "not_on_order"
                    )
                )
            if line.quantity <= 0:
                violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive", "not_positive"))
            if line.reason_code and line.reason_code not in policy.REASONS:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].reason_code",
                        f"must be one of {', '.join(policy.REASONS)}",
                        "unknown_reason",
                    )
                )
            if len(line.reason) > MAX_REASON_LENGTH:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].reason", f"at most {MAX_REASON_LENGTH} characters", "too_long"
                    )
                )
            violations += _check_exchange(i, line, resolution, replacements or {}, context)
        exchanging = any(line.resolved(resolution) == EXCHANGE for line in requested)
        settings = (context or PolicyContext()).settings
        mode = policy.exchange_mode(exchange_mode, (context or PolicyContext()).tier, settings)
        if exchange_mode and exchange_mode not in policy.EXCHANGE_MODES:
            violations.append(
                FieldViolation(
                    "exchange_mode", f"must be one of {', '.join(policy.EXCHANGE_MODES)}", "unknown_mode"
                )
            )
        elif exchanging and mode is None:
            violations.append(
                FieldViolation(
                    "exchange_mode",
                    "the advance exchange is not offered to this customer; the replacement ships on receipt",
                    "not_exchangeable",
                )
            )
        if violations:
            raise InvalidArgument("the return request is invalid", violations)

        if not any(o.delivered > 0 for o in ordered.values()):
            raise FailedPrecondition(
                f"nothing of order {order_id} has been delivered yet; only delivered goods can be returned",
                rule="nothing_delivered",
                subject=order_id,
            )
        left = returnable(ordered, authorised)
        asked: dict[str, int] = {}
        for i, line in enumerate(requested):
            asked[line.sku] = asked.get(line.sku, 0) + line.quantity
            if asked[line.sku] > left[line.sku]:
                o = ordered[line.sku]
                violations.append(
                    FieldViolation(
                        f"lines[{i}].quantity",
                        f"at most {left[line.sku]} of {line.sku} can be returned "
                        f"({o.delivered} delivered, {authorised.get(line.sku, 0)} already on returns)",
                        "exceeds_returnable",
                    )
                )
        if violations:
            raise InvalidArgument(
                "more is to be returned than was delivered", violations, reason="exceeds_returnable"
            )

        context = context or PolicyContext()
        lines = [_return_line(line, ordered[line.sku], resolution, replacements or {}) for line in requested]
        held = policy.hold_reasons(
            [PolicyLine(line.sku, line.quantity, line.unit_price) for line in lines],
            settings=context.settings,
            products=context.products,
            tier=context.tier,
            currency=context.currency,
            delivered_on=context.delivered_on,
            today=at.date(),
            calendar=context.calendar,
        )
        ret = cls(
            rma_id=rma_id,
            order_id=order_id,
            partner_id=partner_id,
            resolution=resolution,
            created_at=at,
            lines=lines,
            hold_reasons=held,
            currency=context.currency,
            exchange_mode=(mode or "") if exchanging else "",
        )
        if held:
            ret._change(Status.HELD, at, actor, "held for the desk: " + ", ".join(r.code for r in held))
        else:
            ret._change(Status.AUTHORIZED, at, actor, "return authorised")
        return ret

    @classmethod
    def open_claim(
        cls,
        *,
        rma_id: str,
        order_id: str,
        partner_id: str,
        ordered: dict[str, OrderedSku],
        authorised: dict[str, int],
        requested: list[RequestedLine],
        reason: str,
        evidence: str,
        goods_back: bool,
        at: dt.datetime,
        actor: str,
        currency: str = "",
    ) -> Return:
        """A claim on delivered goods, decided by `actor` as it is made (return.claim_opened). Without the
        goods back it is resolved at once (return.claim_resolved): refunded lines in full, replaced lines
        due for their replacement order. With the goods back it waits for receipt and inspection like a
        return (return.refunded), refunded in full whatever the inspection says.

        A line's quantity counts against the order's delivered units like a return's."""
        violations: list[FieldViolation] = []
        if reason not in CLAIM_REASONS:
            violations.append(
                FieldViolation("reason", f"must be one of {', '.join(CLAIM_REASONS)}", "unknown_reason")
            )
        if len(evidence) > MAX_REASON_LENGTH:
            violations.append(
                FieldViolation("evidence", f"at most {MAX_REASON_LENGTH} characters", "too_long")
            )
        if not requested:
            violations.append(FieldViolation("lines", "at least one line", "required"))
        for i, line in enumerate(requested):
            at_ = f"lines[{i}]"
            if not line.sku:
                violations.append(FieldViolation(f"{at_}.sku", "required", "required"))
            elif line.sku not in ordered:
                violations.append(
                    FieldViolation(f"{at_}.sku", f"{line.sku} is not on order {order_id}", "not_on_order")
                )
            if line.quantity <= 0:
                violations.append(FieldViolation(f"{at_}.quantity", "must be positive", "not_positive"))
            if (line.resolution or REFUND) not in CLAIM_RESOLUTIONS:
                violations.append(
                    FieldViolation(
                        f"{at_}.resolution",
                        f"must be one of {', '.join(CLAIM_RESOLUTIONS)}",
                        "unsupported_resolution",
                    )
                )
            if line.exchange_sku or line.exchange_quantity:
                violations.append(
                    FieldViolation(
                        f"{at_}.exchange_sku" if line.exchange_sku else f"{at_}.exchange_quantity",
                        "a claim's replacement is the SKU ordered, as many units as claimed",
                        "not_an_exchange",
                    )
                )
            if len(line.reason) > MAX_REASON_LENGTH:
                violations.append(
                    FieldViolation(f"{at_}.reason", f"at most {MAX_REASON_LENGTH} characters", "too_long")
                )
            if reason == WRONG_ITEM:
                if not line.sent_sku:
                    violations.append(
                        FieldViolation(f"{at_}.sent_sku", "the SKU that was sent instead", "required")
                    )
                elif line.sent_sku == line.sku:
                    violations.append(
                        FieldViolation(
                            f"{at_}.sent_sku", "the same SKU as ordered is not a wrong item", "same_sku"
                        )
                    )
            elif line.sent_sku and reason in CLAIM_REASONS:
                violations.append(
                    FieldViolation(f"{at_}.sent_sku", "only for a wrong_item claim", "not_a_wrong_item")
                )
        if violations:
            raise InvalidArgument("the claim is invalid", violations)
        if not any(o.delivered > 0 for o in ordered.values()):
            raise InvalidArgument(
                f"nothing of order {order_id} has been delivered yet; a claim is on delivered goods",
                [FieldViolation("order_id", f"order {order_id} is not delivered", "not_delivered")],
                reason="not_delivered",
            )
        left = returnable(ordered, authorised)
        for i, line in enumerate(requested):
            if line.quantity > left[line.sku]:
                o = ordered[line.sku]
                violations.append(
                    FieldViolation(
                        f"lines[{i}].quantity",
                        f"at most {left[line.sku]} of {line.sku} can be claimed "
                        f"({o.delivered} delivered, {authorised.get(line.sku, 0)} already on returns or claims)",
                        "exceeds_delivered",
                    )
                )
            left[line.sku] -= max(line.quantity, 0)
        if violations:
            raise InvalidArgument(
                "more is claimed than was delivered", violations, reason="exceeds_delivered"
            )
        lines = [
            ReturnLine(
                sku=line.sku,
                quantity=line.quantity,
                reason=line.reason,
                unit_price=ordered[line.sku].unit_price,
                warehouse=ordered[line.sku].warehouse,
                reason_code=CLAIM_REASON_CODES[reason],
                resolution=line.resolution or REFUND,
                exchange_sku=line.sku if line.resolution == REPLACE else "",
                exchange_quantity=line.quantity if line.resolution == REPLACE else 0,
                # the same goods again, at the price paid: nothing to charge nor credit
                exchange_unit_price=ordered[line.sku].unit_price
                if line.resolution == REPLACE
                else Decimal("0.00"),
                sent_sku=line.sent_sku,
                claimed=True,
            )
            for line in requested
        ]
        claim = cls(
            rma_id=rma_id,
            order_id=order_id,
            partner_id=partner_id,
            resolution=REFUND,
            created_at=at,
            lines=lines,
            currency=currency,
            kind=CLAIM_KIND,
            claim_reason=reason,
            goods_back=goods_back,
            evidence=evidence,
            decided_by=actor,
        )
        claim.status = Status.AUTHORIZED
        claim.version += 1
        claim.changes.append(
            Change(
                Status.AUTHORIZED,
                claim.version,
                at,
                actor,
                f"claim opened: {reason}",
                event=CLAIM_OPENED_EVENT,
            )
        )
        if not goods_back:
            claim._resolve(at, actor)
        return claim

    @property
    def is_claim(self) -> bool:
        return self.kind == CLAIM_KIND

    def _resolve(self, at: dt.datetime, actor: str) -> None:
        """A claim without goods back: refunded and due for its replacement at once."""
        self.refund_amount = refund_amount(self.lines)
        note = f"claim resolved; refunded {self.refund_amount}"
        if self.exchanged_lines:
            note += "; the replacement is due"
        self.status = Status.REFUNDED
        self.version += 1
        self.changes.append(
            Change(Status.REFUNDED, self.version, at, actor, note, event=CLAIM_RESOLVED_EVENT)
        )

    @property
    def restocking_fee(self) -> Decimal:
        """What the policy keeps back if every unit is restocked, shown before anyone confirms."""
        return sum((line.restocking_fee for line in self.lines), Decimal("0.00"))

    @property
    def expected_refund(self) -> Decimal:
        """The refund if every unit comes back fit to restock: the value less the restocking fee (nothing
        for an exchanged line)."""
        return sum(
            (
                policy.line_refund(x.reason_code, x.unit_price, {policy.RESTOCK: x.quantity})
                for x in self.lines
                if not x.exchanged
            ),
            Decimal("0.00"),
        )

    # --- exchanges ---------------------------------------------------------------
    @property
    def exchanged_lines(self) -> list[ReturnLine]:
        return [line for line in self.lines if line.exchanged]

    @property
    def price_difference(self) -> Decimal:
        """The replacement's value less the exchanged goods' (policy.exchange_difference): fixed when the
        RMA is made, since both prices are."""
        return policy.exchange_difference(line.exchange_line() for line in self.exchanged_lines)

    @property
    def to_charge(self) -> Decimal:
        return max(self.price_difference, Decimal("0.00"))

    @property
    def to_credit(self) -> Decimal:
        return max(-self.price_difference, Decimal("0.00"))

    @property
    def exchange_status(self) -> str:
        """ "" without an exchange; else awaiting_receipt, due (inspected), created or cancelled."""
        if not self.exchanged_lines:
            return ""
        if self.exchange_order_id:
            return EXCHANGE_CREATED
        if self.status in RELEASED:
            return EXCHANGE_CANCELLED
        if self.exchange_mode == policy.ADVANCE and self.status is not Status.HELD:
            return EXCHANGE_DUE  # shipped at once, once authorised
        return EXCHANGE_DUE if self.status is Status.REFUNDED else AWAITING_RECEIPT

    @property
    def exchange_due(self) -> bool:
        """The goods are in and inspected, and no replacement order is linked yet."""
        return self.exchange_status == EXCHANGE_DUE

    def record_exchange(
        self, order_id: str, at: dt.datetime, actor: str, settings: PolicySettings | None = None
    ) -> bool:
        """Links the replacement order intake entered; False when it is linked already (a retry)."""
        if self.exchange_order_id == order_id:
            return False
        if self.exchange_order_id:
            raise FailedPrecondition(
                f"return {self.rma_id} is exchanged for order {self.exchange_order_id} already",
                rule="one_replacement_order",
                subject=self.rma_id,
            )
        if not self.exchange_due:
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}; its replacement is made once the goods are "
                "received and inspected",
                rule="exchange_after_inspection",
                subject=self.rma_id,
            )
        self.exchange_order_id = order_id
        if self.exchange_mode == policy.ADVANCE and self.status is Status.AUTHORIZED:
            self.return_due_at = policy.return_due_at(at, settings or PolicySettings())
        self.version += 1
        self.changes.append(
            Change(
                self.status,
                self.version,
                at,
                actor,
                f"replacement order {order_id} entered",
                event=EXCHANGE_CREATED_EVENT,
            )
        )
        return True

    @property
    def return_due_on(self) -> dt.date | None:
        """The day (UTC) of the deadline: the last day the goods may arrive."""
        return self.return_due_at.astimezone(dt.UTC).date() if self.return_due_at else None

    def charge_unreturned(self, at: dt.datetime, actor: str) -> bool:
        """Advance exchange: the goods were not received by `return_due_at`; charges what they were bought
        for, once. False when not (yet) due or charged already."""
        if (
            self.exchange_mode != policy.ADVANCE
            or self.return_due_at is None
            or self.status is not Status.AUTHORIZED
            or at <= self.return_due_at
            or self.unreturned_charge > 0
        ):
            return False
        self.unreturned_charge = policy.unreturned_charge(
            line.exchange_line() for line in self.exchanged_lines
        )
        self.version += 1
        self.changes.append(
            Change(
                self.status,
                self.version,
                at,
                actor,
                f"the returned goods were due by {self.return_due_at.isoformat()}; "
                f"charged {self.unreturned_charge}",
                event=UNRETURNED_CHARGED_EVENT,
            )
        )
        return True

    # --- the desk's decision and cancellation -------------------------------------
    def authorise(self, at: dt.datetime, actor: str, note: str = "") -> bool:
        """The approver lets a held return through; False when it is authorised already."""
        if self.status is Status.AUTHORIZED:
            return False
        self._decide("authorise", at, actor, note)
        self._change(Status.AUTHORIZED, at, actor, note or "authorised by the desk")
        return True

    def refuse(self, at: dt.datetime, actor: str, reason: str) -> bool:
        """The approver refuses a held return, with a reason; False when refused already."""
        if not reason.strip():
            raise InvalidArgument(
                "a refusal needs a reason", [FieldViolation("reason", "required", "required")]
            )
        _check_note(reason)
        if self.status is Status.REFUSED:
            return False
        self._decide("refuse", at, actor, reason)
        self._change(Status.REFUSED, at, actor, reason)
        return True

    def _decide(self, verb: str, at: dt.datetime, actor: str, note: str) -> None:
        _check_note(note)
        if self.status is not Status.HELD:
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}; only a held return can be decided ({verb})",
                rule="decide_only_when_held",
                subject=self.rma_id,
            )
        self.decision_note = note

    def cancel(self, at: dt.datetime, actor: str, reason: str = "") -> bool:
        """Cancels the RMA before the goods are received; False when cancelled already."""
        _check_note(reason)
        if self.status is Status.CANCELLED:
            return False
        if self.exchange_order_id:
            raise FailedPrecondition(
                f"return {self.rma_id} was exchanged already (order {self.exchange_order_id}); send the goods "
                "back or cancel the replacement order",
                rule="cancel_after_replacement",
                subject=self.rma_id,
            )
        if self.status not in (Status.HELD, Status.AUTHORIZED):
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}; an RMA can be cancelled only before the goods "
                "are received",
                rule="cancel_only_before_receipt",
                subject=self.rma_id,
            )
        self.decision_note = reason
        self._change(Status.CANCELLED, at, actor, reason or "cancelled")
        return True

    def authorised_by_sku(self) -> dict[str, int]:
        return units_per_sku(self.lines)

    # --- receipt ----------------------------------------------------------------
    def receive(self, at: dt.datetime, actor: str) -> bool:
        """The goods arrived at the warehouse; False when already recorded."""
        if self.status is Status.RECEIVED:
            return False
        if self.status is not Status.AUTHORIZED:
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}; only an authorised return can be received",
                rule="receive_only_when_authorized",
                subject=self.rma_id,
            )
        self._change(Status.RECEIVED, at, actor, "goods received")
        return True

    # --- inspection and refund ------------------------------------------------------
    def inspect(self, inspections: list[Inspection], at: dt.datetime, actor: str) -> bool:
        """Restock or scrap every authorised unit, then refund them all; False for a repeat."""
        if self.status not in (Status.RECEIVED, Status.REFUNDED):
            raise FailedPrecondition(
                f"return {self.rma_id} is {self.status}, not received; inspect it once the goods are in",
                rule="inspect_only_when_received",
                subject=self.rma_id,
            )
        outcome = self._check_inspection(inspections)
        if self.status is Status.REFUNDED:
            if outcome == self._recorded_outcome():
                return False  # the same inspection again (a retry)
            raise FailedPrecondition(
                f"return {self.rma_id} was inspected and refunded already",
                rule="inspect_only_when_received",
                subject=self.rma_id,
            )
        left = {sku: dict(counts) for sku, counts in outcome.items()}
        for line in self.lines:  # lines of one SKU are filled in order, in the order of OUTCOMES
            taken: dict[str, int] = {}
            room = line.quantity
            for name in OUTCOMES:
                taken[name] = min(left[line.sku].get(name, 0), room)
                left[line.sku][name] = left[line.sku].get(name, 0) - taken[name]
                room -= taken[name]
            line.restocked, line.refurbished = taken[policy.RESTOCK], taken[policy.REFURBISH]
            line.scrapped_customer = taken[policy.SCRAP_CUSTOMERS]
            line.scrapped = taken[policy.SCRAP_OURS] + line.scrapped_customer
        self.refund_amount = refund_amount(self.lines)
        note = f"inspected; refunded {self.refund_amount}"
        if self.exchanged_lines:
            note += "; the replacement is due"
        self._change(Status.REFUNDED, at, actor, note)
        return True

    def _check_inspection(self, inspections: list[Inspection]) -> dict[str, dict[str, int]]:
        """Validates the inspection; returns {sku: {outcome: units}}."""
        authorised = self.authorised_by_sku()
        violations: list[FieldViolation] = []
        if not inspections:
            violations.append(FieldViolation("lines", "at least one line", "required"))
        totals: dict[str, dict[str, int]] = {}
        first_line: dict[str, int] = {}
        for i, line in enumerate(inspections):
            if line.sku not in authorised:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].sku", f"{line.sku or 'sku'} is not on this return", "not_on_return"
                    )
                )
            if line.quantity <= 0:
                violations.append(FieldViolation(f"lines[{i}].quantity", "must be positive", "not_positive"))
            if line.outcome not in INSPECTION_OUTCOMES:
                violations.append(
                    FieldViolation(
                        f"lines[{i}].outcome", f"must be one of {', '.join(OUTCOMES)}", "unknown_outcome"
                    )
                )
            if line.sku in authorised and line.quantity > 0 and line.outcome in INSPECTION_OUTCOMES:
                first_line.setdefault(line.sku, i)
                counts = totals.setdefault(line.sku, {})
                name = policy.outcome(line.outcome)
                counts[name] = counts.get(name, 0) + line.quantity
        if not violations:
            for sku, quantity in authorised.items():
                inspected = sum(totals.get(sku, {}).values())
                if inspected == quantity:
                    continue
                path = f"lines[{first_line[sku]}].quantity" if sku in first_line else "lines"
                violations.append(
                    FieldViolation(
                        path,
                        f"{sku}: {inspected} inspected, but {quantity} authorised; every unit must be inspected",
                        "must_match_authorized",
                    )
                )
        if violations:
            raise InvalidArgument("the inspection does not account for the authorised units", violations)
        return {sku: {name: n for name, n in counts.items() if n} for sku, counts in totals.items()}

    def _recorded_outcome(self) -> dict[str, dict[str, int]]:
        recorded: dict[str, dict[str, int]] = {}
        for line in self.lines:
            counts = recorded.setdefault(line.sku, {})
            for name, n in line.counts().items():
                if n:
                    counts[name] = counts.get(name, 0) + n
        return recorded

    def _change(self, to: Status, at: dt.datetime, actor: str, reason: str) -> None:
        self.status = to
        self.version += 1
        self.changes.append(Change(to, self.version, at, actor, reason))


def _check_exchange(
    i: int,
    line: RequestedLine,
    resolution: str,
    replacements: Mapping[str, Replacement],
    context: PolicyContext | None,
) -> list[FieldViolation]:
    """An exchanged line's replacement: a known SKU still sold in the order's currency, 1..quantity units."""
    at = f"lines[{i}]"
    if line.resolution and line.resolution not in RESOLUTIONS:
        return [
            FieldViolation(
                f"{at}.resolution", f"must be one of {', '.join(RESOLUTIONS)}", "unsupported_resolution"
            )
        ]
    if line.resolved(resolution) != EXCHANGE:
        if line.exchange_sku or line.exchange_quantity:
            return [
                FieldViolation(
                    f"{at}.exchange_sku" if line.exchange_sku else f"{at}.exchange_quantity",
                    "only for a line exchanged (resolution exchange)",
                    "not_an_exchange",
                )
            ]
        return []
    violations: list[FieldViolation] = []
    if line.exchange_quantity < 0:
        violations.append(FieldViolation(f"{at}.exchange_quantity", "must be positive", "not_positive"))
    elif line.quantity > 0 and line.exchange_quantity > line.quantity:
        violations.append(
            FieldViolation(
                f"{at}.exchange_quantity",
                f"at most the {line.quantity} returned unit(s)",
                "exceeds_returned",
            )
        )
    sku = line.replacement_sku()
    if not sku:
        return violations  # the returned SKU is missing: said already
    found = replacements.get(sku)
    currency = context.currency.upper() if context is not None else ""
    if found is None:
        violations.append(FieldViolation(f"{at}.exchange_sku", f"unknown SKU {sku!r}", "unknown"))
    elif not found.active:
        violations.append(
            FieldViolation(f"{at}.exchange_sku", f"{sku} is no longer sold", "not_exchangeable")
        )
    elif currency and found.currency and found.currency.upper() != currency:
        violations.append(
            FieldViolation(
                f"{at}.exchange_sku",
                f"{sku} is priced in {found.currency}, the order in {currency}",
                "not_exchangeable",
            )
        )
    return violations


def _return_line(
    line: RequestedLine, ordered: OrderedSku, resolution: str, replacements: Mapping[str, Replacement]
) -> ReturnLine:
    exchanged = line.resolved(resolution) == EXCHANGE
    sku = line.replacement_sku() if exchanged else ""
    return ReturnLine(
        sku=line.sku,
        quantity=line.quantity,
        reason=line.reason,
        unit_price=ordered.unit_price,
        warehouse=ordered.warehouse,
        reason_code=policy.reason_code(line.reason_code, line.reason),
        resolution=EXCHANGE if exchanged else REFUND,
        exchange_sku=sku,
        exchange_quantity=line.replacement_quantity() if exchanged else 0,
        exchange_unit_price=(
            policy.exchange_unit_price(line.sku, ordered.unit_price, sku, replacements[sku].unit_price)
            if exchanged
            else Decimal("0.00")
        ),
    )


def refund_amount(lines: list[ReturnLine]) -> Decimal:
    """Every inspected unit refunded as the policy says for its outcome and reason (policy.line_refund)."""
    return sum((line.refund for line in lines), Decimal("0.00"))


def _check_note(note: str) -> None:
    if len(note) > MAX_REASON_LENGTH:
        raise InvalidArgument(
            "the note is too long",
            [FieldViolation("reason", f"at most {MAX_REASON_LENGTH} characters", "too_long")],
        )
