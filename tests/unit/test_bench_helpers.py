"""The bench's pure helpers: the open loop's schedule, where p99 first crosses the limit, replicas summed."""

from __future__ import annotations

import math

from bench import NATS, batch_sizes, by_service, cpu_ms_per_order, key_for, postgres_cpu_seconds
from bench.backends import batch_line, compare_line, per_order_total
from bench.latency import first_over, send_offsets, split_lead_in


def test_open_loop_sends_evenly_at_the_rate_for_the_duration():
    assert send_offsets(4, 1) == [0.0, 0.25, 0.5, 0.75]
    assert len(send_offsets(30, 8)) == 240
    assert send_offsets(0, 8) == [] and send_offsets(10, 0) == []


def test_open_loop_schedule_does_not_wait_for_answers():
    # Due times depend on the rate alone: a slow answer never pushes the next request back.
    offsets = send_offsets(100, 2)
    assert all(math.isclose(b - a, 0.01) for a, b in zip(offsets, offsets[1:], strict=False))


def test_the_lead_in_is_counted_apart_from_the_measured_orders():
    # An order due in the lead-in is cold whenever it is answered; one due at its end is measured.
    samples = [(0.0, 0.300), (1.999, 0.250), (2.0, 0.040), (5.0, 0.030)]
    assert split_lead_in(samples, 2.0) == ([0.300, 0.250], [0.040, 0.030])
    assert split_lead_in(samples, 0.0) == ([], [0.300, 0.250, 0.040, 0.030])


def test_a_load_from_many_partners_takes_their_keys_in_turn():
    keys = ["k0", "k1", "k2"]
    assert [key_for(keys, n) for n in range(5)] == ["k0", "k1", "k2", "k0", "k1"]
    assert {key_for("one", n) for n in range(5)} == {"one"}  # one partner's load: its key every time


def test_the_first_step_over_250_ms_is_named():
    steps = [("25%", 40.0), ("50%", 250.0), ("75%", 251.0), ("100%", 900.0)]
    assert first_over(steps) == "75%"  # at the limit is not over it
    assert first_over([("25%", 40.0), ("50%", 90.0)]) is None
    assert first_over([("25%", float("nan"))]) == "25%"  # nothing answered counts as over
    assert first_over([("25%", 40.0)], limit_ms=30) == "25%"


def test_replicas_are_summed_per_service():
    counts = {
        "orders-1": {"cpu": 1.0, "statements": 10.0},
        "orders-2": {"cpu": 0.5, "statements": 4.0},
        "gateway": {"cpu": 0.2, "statements": 0.0},
        NATS: {"cpu": 0.3},
    }
    component_of = {"orders-1": "orders", "orders-2": "orders", "gateway": "gateway"}
    assert by_service(counts, component_of) == {
        "orders": {"cpu": 1.5, "statements": 14.0},
        "gateway": {"cpu": 0.2, "statements": 0.0},
        NATS: {"cpu": 0.3},
    }


def test_cpu_and_counters_per_order_leave_nats_out_of_the_suite():
    before = {"orders": {"cpu": 1.0, "s": 10.0}, NATS: {"cpu": 0.0}}
    after = {"orders": {"cpu": 3.0, "s": 50.0}, NATS: {"cpu": 5.0}, "gone-before": {"cpu": 9.0}}
    assert cpu_ms_per_order(before, after, 100) == 20.0
    assert per_order_total(before, after, "s", 10) == 4.0
    assert cpu_ms_per_order(before, after, 0) == 2000.0  # no order accepted: per one, not a division by zero


def test_batch_sizes_sum_a_services_replicas_and_skip_what_did_not_run():
    pulled, pulls = "orderdesk_consumer_pulled_events_total", "orderdesk_consumer_pulls_total"
    items, runs = "orderdesk_group_items_total", "orderdesk_group_runs_total"
    zero = {pulled: 0.0, pulls: 0.0, items: 0.0, runs: 0.0}
    before = {"intake-1": dict(zero), "intake-2": dict(zero), "returns": dict(zero), NATS: {"cpu": 0.0}}
    after = {
        "intake-1": {pulled: 30.0, pulls: 2.0, items: 40.0, runs: 3.0},
        "intake-2": {pulled: 10.0, pulls: 2.0, items: 20.0, runs: 1.0},
        "returns": dict(zero),
        NATS: {"cpu": 1.0},
    }
    component_of = {"intake-1": "intake", "intake-2": "intake", "returns": "returns"}
    sizes = batch_sizes(before, after, component_of)
    assert sizes == {"intake": {pulls: 10.0, runs: 15.0}}  # 40 events in 4 pulls, 60 orders in 4 runs
    assert batch_line("PostgreSQL, 2 replicas", sizes) == (
        "PostgreSQL, 2 replicas: 15.0 orders per intake group, events per pull: intake 10.0"
    )
    assert batch_line("SQLite", {}) == "SQLite: events per pull: -"
    gathered = {"gateway": {runs: 20.0}, "intake": {pulls: 30.0}}  # singles gathered: no intake group ran
    assert (
        batch_line("SQLite", gathered)
        == "SQLite: 20.0 orders per gathered call, events per pull: intake 30.0"
    )


def test_a_backend_is_compared_with_sqlite_when_both_were_measured():
    assert compare_line("PostgreSQL, 1 replica", 13.0, 10.0) == (
        "PostgreSQL, 1 replica: 13.0 ms CPU per order, 1.30× SQLite's 10.0"
    )
    assert compare_line("PostgreSQL, 1 replica", 13.0, None) == "PostgreSQL, 1 replica: 13.0 ms CPU per order"


def test_a_cluster_that_is_not_running_costs_nothing(tmp_path):
    assert postgres_cpu_seconds(tmp_path) == 0.0
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "postmaster.pid").write_text("999999999\n")  # no such process
    assert postgres_cpu_seconds(tmp_path) == 0.0
