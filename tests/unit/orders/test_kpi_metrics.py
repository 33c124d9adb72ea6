"""count_metrics (the desk's numbers' counters of one saved change) counts what it counted when it looked each
child up with labels() and found each cycle-time stage by building the order's facts for rules.stage_ends:
over many random histories (holds, re-confirmations, entries at the same instant, transitions whose entry is
a copy of the history's) every sample of every metric it touches is the same. And metrics.child sees a
metric's clear()."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from orderdesk import metrics
from services.orders.domain import HistoryEntry, Line, Status
from services.orders.kpi import rules
from services.orders.kpi import store as kpi_store
from services.orders.kpi.rules import Fact, OrderFacts, StatusAt

TOUCHED = {  # count_metrics' metrics: (kind, labels)
    "LINES_FIRST_ALLOCATED": (Counter, ["filled"]),
    "UNITS_FIRST_ALLOCATED": (Counter, ["outcome"]),
    "ORDER_HOLD_REASONS": (Counter, ["reason"]),
    "UNITS_CANCELLED": (Counter, ["reason"]),
    "ORDER_CANCELLATIONS": (Counter, ["reason"]),
    "UNITS_DELIVERED": (Counter, []),
    "ORDER_CYCLE_SECONDS": (Histogram, ["stage"]),
}
T0 = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)


def stage_ends_before(order: OrderFacts) -> dict[str, tuple[dt.datetime, float]]:
    """rules.stage_ends as it was."""
    received, confirmed = order.first("received"), order.first("confirmed")
    shipped, completed = order.first("shipped"), order.first("completed")
    pairs = {
        "received_to_confirmed": (received, confirmed),
        "confirmed_to_shipped": (confirmed, shipped),
        "shipped_to_delivered": (shipped, completed),
        "received_to_delivered": (received, completed),
    }
    return {
        stage: (b, (b - a).total_seconds())
        for stage, (a, b) in pairs.items()
        if a is not None and b is not None
    }


def counted_before(order, facts) -> None:
    """count_metrics as it was (labels() each time; stage_ends over the order's facts per transition)."""
    for f in facts:
        if f.kind == "first_allocation":
            metrics.LINES_FIRST_ALLOCATED.labels(str(f.filled >= f.quantity).lower()).inc()
            metrics.UNITS_FIRST_ALLOCATED.labels("filled").inc(min(f.filled, f.quantity))
            metrics.UNITS_FIRST_ALLOCATED.labels("short").inc(max(f.quantity - f.filled, 0))
        elif f.kind == "held":
            metrics.ORDER_HOLD_REASONS.labels(f.code).inc()
        elif f.kind == "cancelled":
            metrics.UNITS_CANCELLED.labels(f.code).inc(f.quantity)
    for t in order.transitions:
        status = t.status.value
        if status == "cancelled":
            metrics.ORDER_CANCELLATIONS.labels(rules.reason_class(t.entry.reason, rules.CANCEL_REASONS)).inc()
        if status == "completed":
            metrics.UNITS_DELIVERED.inc(sum(line.delivered for line in order.lines))
        if status in ("confirmed", "shipped", "completed"):
            history = [StatusAt(h.status.value, h.at) for h in order.history]
            facts_view = OrderFacts(order.order_id, "", "", "", status, tuple(history), ())
            for stage, (end, seconds) in stage_ends_before(facts_view).items():
                end_status = {"received_to_confirmed": "confirmed", "confirmed_to_shipped": "shipped"}.get(
                    stage, "completed"
                )
                first = next((h for h in order.history if h.status.value == end_status), None)
                if end == t.entry.at and first is t.entry:
                    metrics.ORDER_CYCLE_SECONDS.labels(stage).observe(seconds)


def random_change(rng: random.Random):
    """An order's history (received first, then any statuses, sometimes at the same instant) and the
    transitions of its last change (its newest entries, one of them sometimes an equal copy), with facts."""
    statuses = [Status.RECEIVED] + rng.choices(list(Status), k=rng.randint(0, 9))
    at, history = T0, []
    for status in statuses:
        at += dt.timedelta(seconds=rng.choice([0, 1, 59, 3600, 86_400 + 7]))
        reason = rng.choice(["", "out_of_stock: late", "customer asked", "fraud"])
        history.append(HistoryEntry(status, at, "a", reason))
    transitions = [
        SimpleNamespace(status=h.status, entry=h if rng.random() < 0.9 else replace(h))
        for h in history[rng.randint(0, len(history)) :]
    ]
    lines = [Line("A", 3, Decimal("1"), delivered=rng.randint(0, 3)), Line("B", 1, Decimal("2"), delivered=1)]
    facts = [
        Fact(rng.choice(["first_allocation", "held", "cancelled", "returned"]), at, i, "A", rng.randint(0, 4),
             rng.randint(0, 4), rng.choice(["price_mismatch", "other", "out_of_stock"]))
        for i in range(rng.randint(0, 3))
    ]  # fmt: skip
    return SimpleNamespace(order_id="ORD-1", history=history, transitions=transitions, lines=lines), facts


def samples(fresh: dict) -> list:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for metric in fresh.values()
        for family in metric.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    )


def count_with(monkeypatch, count, changes) -> list:
    """The samples `count` leaves on fresh metrics (unregistered) for these changes."""
    fresh = {}
    for name, (kind, labels) in TOUCHED.items():
        old = getattr(metrics, name)
        extra = {"buckets": old._upper_bounds} if kind is Histogram else {}
        fresh[name] = kind(old._name, "d", labels, registry=CollectorRegistry(), **extra)
        monkeypatch.setattr(metrics, name, fresh[name])
    for order, facts in changes:
        count(order, facts)
    return samples(fresh)


@pytest.mark.parametrize("seed", range(20))
def test_count_metrics_counts_what_it_counted_before(monkeypatch, seed):
    rng = random.Random(seed)
    changes = [random_change(rng) for _ in range(50)]
    before = count_with(monkeypatch, counted_before, changes)
    assert count_with(monkeypatch, kpi_store.count_metrics, changes) == before
    assert any(name == "orderdesk_order_cycle_seconds_count" and value for name, _, value in before)


@pytest.mark.parametrize("seed", range(5))
def test_stage_ends_are_what_they_were(seed):
    rng = random.Random(seed)
    for _ in range(200):
        order, _facts = random_change(rng)
        history = tuple(StatusAt(h.status.value, h.at) for h in order.history)
        facts = OrderFacts("ORD-1", "", "", "", "", history, ())
        assert list(rules.stage_ends(facts).items()) == list(stage_ends_before(facts).items())


def test_a_metrics_child_is_the_metrics_own_after_a_clear():
    counter = Counter("children_total", "d", ["kind"], registry=CollectorRegistry())
    metrics.child(counter, "a").inc()
    assert metrics.child(counter, "a") is counter.labels("a")
    counter.clear()
    metrics.child(counter, "a").inc(2)
    assert [
        (s.labels, s.value) for s in next(iter(counter.collect())).samples if s.name == "children_total"
    ] == [({"kind": "a"}, 2.0)]
