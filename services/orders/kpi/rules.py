"""The desk's numbers (KPI report): pure functions over recorded facts, no I/O.

Every figure counts *events whose time falls in the period* [start, end) — orders received,
holds, cancellations, first allocations, completions, returns — the same events the
Prometheus counters count when they happen (see `facts_of` and `count_metrics`), so a PromQL
ratio over a window and the report over the same window agree. Formulas: README "The desk's
numbers" and the docstring of each figure below.

Inputs are plain records (`OrderFacts`) built by `kpi.store` from the orders' history, lines
and the `order_facts` ledger; the output is a `KpiReport` dataclass. Rates are None (not 0)
when their denominator is 0.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from orderdesk.domain import RETURN_REASONS
from orderdesk.errors import FieldViolation, InvalidArgument
from orderdesk.parsing import time_bound

# --- reason vocabularies (bounded: they are metric labels too) --------------------------------------
# A cancel or return reason is free text; when it starts with one of these codes ("damaged: box crushed")
# it is counted under that code, otherwise under "other".
CANCEL_REASONS = (
    "customer_request",
    "out_of_stock",
    "late_delivery",
    "price",
    "duplicate",
    "payment",
    "address",
    "fraud",
    "other",
)
HOLD_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")  # intake's hold reason codes; anything else is "other"

GROUP_BY = ("", "day", "week", "month", "customer", "channel")
# Each cycle-time stage: from the first entry of one status to the first entry of another.
STAGE_BOUNDS = {
    "received_to_confirmed": ("received", "confirmed"),
    "confirmed_to_shipped": ("confirmed", "shipped"),
    "shipped_to_delivered": ("shipped", "completed"),
    "received_to_delivered": ("received", "completed"),
}
STAGES = tuple(STAGE_BOUNDS)
SELLERS = 10  # rows in best and slow sellers


def reason_class(text: str, vocabulary: Sequence[str]) -> str:
    """The code a free-text reason starts with ("out_of_stock: supplier late" -> out_of_stock), else other."""
    head = re.split(r"[\s:;,.\-]+", text.strip().lower(), maxsplit=1)[0] if text.strip() else ""
    return head if head in vocabulary else "other"


def hold_code(code: str) -> str:
    return code if HOLD_CODE.match(code or "") else "other"


# --- input records ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusAt:
    status: str
    at: dt.datetime


@dataclass(frozen=True)
class LineFacts:
    sku: str
    quantity: int
    unit_price: Decimal
    delivered: int = 0


@dataclass(frozen=True)
class Fact:
    """One row of the order_facts ledger.

    kind: first_allocation (quantity ordered, filled = allocated by the order's first reservation),
    at_risk (the promise watch first saw the order at risk; code = that risk's code; one per order),
    cancelled (quantity not shipped when the order was cancelled, ref ""; or units a change request cut from a
    line, ref "change-v<version>"; code = reason class),
    held (one per hold reason; code = reason code), returned (quantity taken back; code = reason class),
    exchanged (a return line's units replaced by an exchange; code = reason class), claimed (a claim's units,
    issue 14; code = the claim's reason: missing_items, wrong_item, damaged_in_transit).
    """

    kind: str
    at: dt.datetime
    line_no: int = 0
    sku: str = ""
    quantity: int = 0
    filled: int = 0
    code: str = ""
    reason: str = ""
    ref: str = ""


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    customer_id: str
    channel: str
    currency: str
    status: str
    history: tuple[StatusAt, ...]
    lines: tuple[LineFacts, ...]
    facts: tuple[Fact, ...] = ()
    # for a completed order: every delivered shipment by its promised date, each as shipping judged it
    # with orderdesk.calendar.delivered_on_time (the delivery's date in the warehouse's time zone)
    on_time: bool | None = None
    promised: str = ""  # the promised delivery date (YYYY-MM-DD), "" when none

    def first(self, status: str) -> dt.datetime | None:
        return next((h.at for h in self.history if h.status == status), None)

    def all_at(self, status: str) -> list[dt.datetime]:
        return [h.at for h in self.history if h.status == status]


# --- the period ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime
    group_by: str = ""

    def __contains__(self, at: dt.datetime) -> bool:
        return self.start <= at < self.end


MAX_PERIOD_DAYS = 366  # a report covers at most a year (README "The desk's numbers"): longer is refused
MAX_EXPORT_DAYS = 3660  # an archive export streams page by page: ten years, as before the report's cap


def parse_period(
    start: str, end: str, group_by: str, now: dt.datetime, *, max_days: int = MAX_PERIOD_DAYS
) -> Period:
    """The request's period; default: the 30 days up to now; at most `max_days` (a report:
    MAX_PERIOD_DAYS). Bad input names each field."""
    violations = []
    parsed: dict[str, dt.datetime] = {}
    for name, value, is_end in (("from", start, False), ("to", end, True)):
        at = time_bound(name, value, end=is_end, violations=violations)
        if at is not None:
            parsed[name] = at
    if group_by not in GROUP_BY:
        violations.append(
            FieldViolation(
                "group_by", "one of day, week, month, customer, channel (or empty)", "unknown_group_by"
            )
        )
    if not violations:
        stop = parsed.get("to", now)
        begin = parsed.get("from", stop - dt.timedelta(days=30))
        if begin >= stop:
            violations.append(FieldViolation("to", "must be after from", "empty_period"))
        elif stop - begin > dt.timedelta(days=max_days):
            violations.append(
                FieldViolation("from", f"a period of at most {max_days} days", "period_too_long")
            )
    if violations:
        raise InvalidArgument("invalid report period", violations)
    return Period(begin, stop, group_by)


def bucket(period: Period, order: OrderFacts, at: dt.datetime) -> str:
    """The group a fact falls in: by its time (day, ISO week, month, UTC) or by its order."""
    match period.group_by:
        case "day":
            return at.astimezone(dt.UTC).date().isoformat()
        case "week":
            year, week, _ = at.astimezone(dt.UTC).isocalendar()
            return f"{year}-W{week:02d}"
        case "month":
            return at.astimezone(dt.UTC).strftime("%Y-%m")
        case "customer":
            return order.customer_id
        case "channel":
            return order.channel
    return ""


# --- the report ----------------------------------------------------------------------------------
def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass
class Headline:
    """The headline figures of one group (key "" is the whole period)."""

    key: str = ""
    orders_received: int = 0
    order_value: dict[str, Decimal] = field(
        default_factory=dict
    )  # currency -> sum of received orders' totals
    lines_first_allocated: int = 0
    lines_filled: int = 0
    units_first_allocated: int = 0
    units_filled: int = 0
    orders_delivered: int = 0
    orders_on_time: int = 0
    orders_cancelled: int = 0
    orders_held: int = 0
    orders_late: int = 0  # orders that became late in the period (see late_at)
    orders_warned: int = 0  # of those, flagged at risk by the promise watch at least a day before

    @property
    def line_fill_rate(self) -> float | None:
        return ratio(self.lines_filled, self.lines_first_allocated)

    @property
    def unit_fill_rate(self) -> float | None:
        return ratio(self.units_filled, self.units_first_allocated)

    @property
    def on_time_rate(self) -> float | None:
        return ratio(self.orders_on_time, self.orders_delivered)

    @property
    def cancellation_rate(self) -> float | None:
        return ratio(self.orders_cancelled, self.orders_received)

    @property
    def hold_rate(self) -> float | None:
        return ratio(self.orders_held, self.orders_received)

    @property
    def warned_before_late_rate(self) -> float | None:
        return ratio(self.orders_warned, self.orders_late)


@dataclass(frozen=True)
class CycleTime:
    stage: str
    count: int
    average_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    orders: int
    units: int


@dataclass(frozen=True)
class SkuRate:
    sku: str
    units: int  # cancelled or returned units
    base_units: int  # ordered (cancellations) or delivered (returns) units
    rate: float | None


@dataclass(frozen=True)
class SkuSales:
    sku: str
    currency: str
    units: int
    value: Decimal


@dataclass
class KpiReport:
    period: Period
    total: Headline
    groups: list[Headline]
    cycle_times: list[CycleTime]
    cancellations_by_reason: list[ReasonCount]
    cancellations_by_sku: list[SkuRate]
    holds_by_reason: list[ReasonCount]
    best_sellers: list[SkuSales]
    slow_sellers: list[SkuSales]
    returns_by_sku: list[SkuRate]
    returns_by_reason: list[ReasonCount]
    # A snapshot, not a period's figure: open orders the promise watch sees at risk now, and per reason
    # (an order with two reasons counts in both); filled in by the caller, who reads the orders as they are.
    orders_at_risk_now: int = 0
    at_risk_now: list[ReasonCount] = field(default_factory=list)
    # Issue 14: exchanged and claimed units per SKU (rate: of the units delivered in the period) and per reason.
    exchanges_by_sku: list[SkuRate] = field(default_factory=list)
    exchanges_by_reason: list[ReasonCount] = field(default_factory=list)
    claims_by_sku: list[SkuRate] = field(default_factory=list)
    claims_by_reason: list[ReasonCount] = field(default_factory=list)


WARNING_AHEAD = dt.timedelta(days=1)


def late_at(order: OrderFacts) -> dt.datetime | None:
    """When the order became late: the end of its promised day (UTC) when it was not completed, cancelled
    or rejected by then; None when it has no promise or was not late."""
    if not order.promised:
        return None
    try:
        due = dt.date.fromisoformat(order.promised)
    except ValueError:
        return None
    moment = dt.datetime.combine(due + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    for status in ("completed", "cancelled", "rejected"):
        settled = order.first(status)
        if settled is not None and settled <= moment:
            return None
    return moment


def warned_in_time(order: OrderFacts, late: dt.datetime) -> bool:
    """Flagged at risk by the promise watch at least a day before it was late."""
    first = min((f.at for f in order.facts if f.kind == "at_risk"), default=None)
    return first is not None and first <= late - WARNING_AHEAD


def p90(samples: Sequence[float]) -> float | None:
    """Nearest-rank 90th percentile: the smallest sample with at least 90% of samples at or below it."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def stage_ends(order: OrderFacts) -> dict[str, tuple[dt.datetime, float]]:
    """Each cycle-time stage the order completed: stage -> (when it ended, seconds it took).

    received->confirmed: first confirmed - received; confirmed->shipped: first shipped (every shipment
    left) - first confirmed; shipped->delivered: completed - first shipped; received->delivered:
    completed - received (STAGE_BOUNDS)."""
    first: dict[str, dt.datetime] = {}
    for h in order.history:
        first.setdefault(h.status, h.at)
    return {
        stage: (first[end], (first[end] - first[start]).total_seconds())
        for stage, (start, end) in STAGE_BOUNDS.items()
        if start in first and end in first
    }


def compute_report(
    orders: Iterable[OrderFacts],
    period: Period,
    known_skus: Iterable[str] = (),
    now: dt.datetime | None = None,
) -> KpiReport:
    """All figures for the period. `orders`: every order with any event in the period, or whose promised
    day ended in it (more is harmless). `known_skus`: SKUs the desk knows (slow sellers include those with
    no sales in the period). `now`: nothing later than this is late yet (default: the period's end)."""
    total = Headline()
    groups: dict[str, Headline] = {}

    def heads(order: OrderFacts, at: dt.datetime) -> list[Headline]:
        if not period.group_by:
            return [total]
        key = bucket(period, order, at)
        return [total, groups.setdefault(key, Headline(key=key))]

    durations: dict[str, list[float]] = {s: [] for s in STAGES}
    cancel_reasons: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    cancelled_units: dict[str, int] = defaultdict(int)
    ordered_units: dict[str, int] = defaultdict(int)
    hold_reasons: dict[str, int] = defaultdict(int)
    sales: dict[tuple[str, str], list] = {}
    returned_units: dict[str, int] = defaultdict(int)
    delivered_units: dict[str, int] = defaultdict(int)
    return_reasons: dict[str, list] = defaultdict(lambda: [set(), 0])
    # issue 14: exchanged and claimed units, per SKU and per reason (orders, units)
    moved_units: dict[str, dict[str, int]] = {"exchanged": defaultdict(int), "claimed": defaultdict(int)}
    moved_reasons: dict[str, dict[str, list]] = {
        "exchanged": defaultdict(lambda: [set(), 0]),
        "claimed": defaultdict(lambda: [set(), 0]),
    }

    for order in orders:
        received = order.first("received")
        if received is not None and received in period:
            amount = sum((line.unit_price * line.quantity for line in order.lines), Decimal("0"))
            for h in heads(order, received):
                h.orders_received += 1
                h.order_value[order.currency] = h.order_value.get(order.currency, Decimal("0")) + amount
            # Ordered = the lines as they are now plus what change requests cancelled from them.
            trimmed: dict[str, int] = defaultdict(int)
            for fact in order.facts:
                if fact.kind == "cancelled" and fact.ref.startswith("change-"):
                    trimmed[fact.sku] += fact.quantity
            for sku, units in trimmed.items():
                ordered_units[sku] += units
            for line in order.lines:
                ordered_units[line.sku] += line.quantity
                if order.status not in ("cancelled", "rejected"):
                    row = sales.setdefault((line.sku, order.currency), [0, Decimal("0")])
                    row[0] += line.quantity
                    row[1] += line.unit_price * line.quantity
        for at in order.all_at("on_hold"):
            if at in period:
                for h in heads(order, at):
                    h.orders_held += 1
        for at in order.all_at("cancelled"):
            if at in period:
                for h in heads(order, at):
                    h.orders_cancelled += 1
        for at in order.all_at("completed"):
            if at in period:
                for h in heads(order, at):
                    h.orders_delivered += 1
                    h.orders_on_time += order.on_time is not False
                for line in order.lines:
                    delivered_units[line.sku] += line.delivered
        late = late_at(order)
        if late is not None and late in period and late <= (now or period.end):
            warned = warned_in_time(order, late)
            for h in heads(order, late):
                h.orders_late += 1
                h.orders_warned += warned
        for stage, (end, seconds) in stage_ends(order).items():
            if end in period:
                durations[stage].append(seconds)
        cancelled_orders: dict[str, set] = defaultdict(set)
        for fact in order.facts:
            if fact.at not in period:
                continue
            if fact.kind == "first_allocation":
                for h in heads(order, fact.at):
                    h.lines_first_allocated += 1
                    h.lines_filled += fact.filled >= fact.quantity
                    h.units_first_allocated += fact.quantity
                    h.units_filled += min(fact.filled, fact.quantity)
            elif fact.kind == "cancelled":
                cancelled_units[fact.sku] += fact.quantity
                cancel_reasons[fact.code][1] += fact.quantity
                if not fact.ref:  # the order itself was cancelled (not just some units by a change request)
                    cancelled_orders[fact.code].add(order.order_id)
            elif fact.kind == "held":
                hold_reasons[fact.code] += 1
            elif fact.kind == "returned":
                returned_units[fact.sku] += fact.quantity
                return_reasons[fact.code][0].add(order.order_id)
                return_reasons[fact.code][1] += fact.quantity
            elif fact.kind in moved_units:
                moved_units[fact.kind][fact.sku] += fact.quantity
                moved_reasons[fact.kind][fact.code][0].add(order.order_id)
                moved_reasons[fact.kind][fact.code][1] += fact.quantity
        for code, ids in cancelled_orders.items():
            cancel_reasons[code][0] += len(ids)

    ranked = sorted(sales.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    best = [SkuSales(sku, cur, units, value) for (sku, cur), (units, value) in ranked[:SELLERS]]
    sold_skus = {sku for sku, _ in sales}
    never = sorted(set(known_skus) - sold_skus)
    slow = [SkuSales(sku, "", 0, Decimal("0")) for sku in never]
    slow += [SkuSales(sku, cur, units, value) for (sku, cur), (units, value) in reversed(ranked)]
    return KpiReport(
        period=period,
        total=total,
        groups=[groups[k] for k in sorted(groups)],
        cycle_times=[
            CycleTime(s, len(d), sum(d) / len(d) if d else None, p90(d)) for s, d in durations.items()
        ],
        cancellations_by_reason=sorted(
            (ReasonCount(c, o, u) for c, (o, u) in cancel_reasons.items()),
            key=lambda r: (-r.orders, r.reason),
        ),
        cancellations_by_sku=sorted(
            (
                SkuRate(s, u, ordered_units.get(s, 0), ratio(u, ordered_units.get(s, 0)))
                for s, u in cancelled_units.items()
            ),
            key=lambda r: (-r.units, r.sku),
        ),
        holds_by_reason=sorted(
            (ReasonCount(c, n, 0) for c, n in hold_reasons.items()), key=lambda r: (-r.orders, r.reason)
        ),
        best_sellers=best,
        slow_sellers=slow[:SELLERS],
        returns_by_sku=sorted(
            (
                SkuRate(s, u, delivered_units.get(s, 0), ratio(u, delivered_units.get(s, 0)))
                for s, u in returned_units.items()
            ),
            key=lambda r: (-r.units, r.sku),
        ),
        returns_by_reason=sorted(
            (ReasonCount(c, len(ids), u) for c, (ids, u) in return_reasons.items()),
            key=lambda r: (-r.units, r.reason),
        ),
        exchanges_by_sku=_rates(moved_units["exchanged"], delivered_units),
        exchanges_by_reason=_reason_counts(moved_reasons["exchanged"]),
        claims_by_sku=_rates(moved_units["claimed"], delivered_units),
        claims_by_reason=_reason_counts(moved_reasons["claimed"]),
    )


def _rates(units: dict[str, int], delivered: dict[str, int]) -> list[SkuRate]:
    """Units per SKU against the units delivered in the period, most units first."""
    return sorted(
        (SkuRate(s, u, delivered.get(s, 0), ratio(u, delivered.get(s, 0))) for s, u in units.items()),
        key=lambda r: (-r.units, r.sku),
    )


def _reason_counts(reasons: dict[str, list]) -> list[ReasonCount]:
    return sorted(
        (ReasonCount(c, len(ids), u) for c, (ids, u) in reasons.items()), key=lambda r: (-r.units, r.reason)
    )


# --- facts from the order's own transitions ------------------------------------------------------
def facts_of(order) -> list[Fact]:
    """The ledger rows an order's not-yet-saved transitions add (an `Order` from services.orders.domain).

    on_hold: one `held` row per hold reason; cancelled: one `cancelled` row per line with the units
    not shipped; the order's FIRST move out of confirmed into allocated or scheduled (its first
    reservation): one `first_allocation` row per line with what that reservation covered."""
    rows: list[Fact] = []
    for t in order.transitions:
        status, at = t.status, t.entry.at  # a status compares equal to its value (a StrEnum)
        if status == "on_hold":
            # ref: the hold's version, so an order held again (re-checked on approval) keeps both holds' rows.
            rows += [
                Fact(
                    "held",
                    at,
                    i,
                    code=hold_code(r.get("code", "")),
                    reason=r.get("message", "")[:200],
                    ref=f"v{t.version}",
                )
                for i, r in enumerate(order.hold_reasons)
            ]
        elif status == "cancelled":
            code = reason_class(t.entry.reason, CANCEL_REASONS)
            rows += [
                Fact(
                    "cancelled",
                    at,
                    i,
                    line.sku,
                    line.quantity - line.shipped,
                    code=code,
                    reason=t.entry.reason[:200],
                )
                for i, line in enumerate(order.lines)
            ]
        elif status in ("allocated", "scheduled"):
            first = next((h for h in order.history if h.status in ("allocated", "scheduled")), None)
            if first is t.entry:
                rows += [
                    Fact(
                        "first_allocation",
                        at,
                        i,
                        line.sku,
                        line.quantity,
                        filled=min(line.allocated, line.quantity),
                    )
                    for i, line in enumerate(order.lines)
                ]
    for event in getattr(order, "events", ()):  # change requests (Order.change, OrderChanged) not yet saved
        if event.event_type == "order.at_risk":  # the ledger keeps the first (a repeat of the row is ignored)
            rows.append(Fact("at_risk", event.at, 0, code=event.risk.code.value, ref="first"))
            continue
        record = getattr(event, "record", None)
        if record is not None and tuple(record.kinds) == ("cancel_lines",):
            rows += change_cancellations(record)
    return rows


LINE_FIELD = re.compile(r"^lines\[(?P<sku>.+)\](?P<quantity>\.quantity)?$")


def change_cancellations(record) -> list[Fact]:
    """A change request that only cancels units of some lines (a ChangeRecord: version, at, reason, changes
    with "lines[SKU].quantity" before -> after, or "lines[SKU]" "3 x 9.50" -> "" when the line went):
    one `cancelled` row per line for the units it lost, under ref "change-v<version>"."""
    code = reason_class(record.reason, CANCEL_REASONS)
    rows = []
    for i, c in enumerate(record.changes):
        m = LINE_FIELD.match(c.field)
        if not m:
            continue
        try:
            before = int(c.before if m["quantity"] else c.before.split(" x ")[0])
            after = int(c.after) if m["quantity"] and c.after else 0
        except ValueError:
            continue
        if before > after:
            rows.append(
                Fact(
                    "cancelled",
                    record.at,
                    i,
                    m["sku"],
                    before - after,
                    code=code,
                    reason=record.reason[:200],
                    ref=f"change-v{record.version}",
                )
            )
    return rows


def return_facts(rma_id: str, lines, at: dt.datetime) -> list[Fact]:
    """One `returned` row per line of a refunded return (returns' ReturnLine: sku, reason, restocked,
    scrapped): the units taken back, counted under the reason's class."""
    return [
        Fact(
            "returned",
            at,
            i,
            line.sku,
            line.restocked_quantity + line.scrapped_quantity,
            code=reason_class(line.reason, RETURN_REASONS),
            reason=line.reason[:200],
            ref=rma_id,
        )
        for i, line in enumerate(lines)
        if line.restocked_quantity + line.scrapped_quantity > 0
    ]


def exchange_facts(rma_id: str, lines, at: dt.datetime) -> list[Fact]:
    """One `exchanged` row per exchanged line of a refunded return: its units, under the reason's class."""
    return [
        Fact(
            "exchanged",
            at,
            i,
            line.sku,
            line.quantity,
            code=reason_class(line.reason_code or line.reason, RETURN_REASONS),
            reason=line.reason[:200],
            ref=rma_id,
        )
        for i, line in enumerate(lines)
        if line.resolution == "exchange" and line.quantity > 0
    ]


def claim_facts(ret, at: dt.datetime) -> list[Fact]:
    """One `claimed` row per line of a claim (returns' Return of kind claim): its units, under the claim's
    reason (missing_items, wrong_item, damaged_in_transit)."""
    if ret.kind != "claim":
        return []
    return [
        Fact(
            "claimed",
            at,
            i,
            line.sku,
            line.quantity,
            code=ret.claim_reason,
            reason=line.reason[:200],
            ref=ret.rma_id,
        )
        for i, line in enumerate(ret.lines)
        if line.quantity > 0
    ]
