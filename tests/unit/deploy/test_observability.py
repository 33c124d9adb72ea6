"""The dashboard and the Prometheus rules query only metrics (and labels) the code exports.

Renaming a metric or a label in orderdesk/metrics.py without updating deploy/ fails here, instead of
leaving an empty panel or an alert that can never fire. The catalogue is read from the live
prometheus_client collectors, so it cannot drift from what /metrics serves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from orderdesk import metrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "orderdesk.json"
RULES = DEPLOY / "prometheus" / "rules.yaml"
RULE_TESTS = DEPLOY / "prometheus" / "rules.test.yaml"
RUNBOOK = DEPLOY / "RUNBOOK.md"

# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
SERVER_LABELS = {"job", "instance"}  # added by Prometheus at scrape time, valid on every series


# --- what the code exports -----------------------------------------------------------------------------
def exported_series() -> dict[str, tuple[str, ...]]:
    """Every series name /metrics serves, mapped to its label names."""
    series: dict[str, tuple[str, ...]] = {}
    for collector in vars(metrics).values():
        if isinstance(collector, Counter):
            # prometheus_client keeps a counter's name without "_total" and adds it when exposing.
            series[collector._name + "_total"] = collector._labelnames
        elif isinstance(collector, Gauge):
            series[collector._name] = collector._labelnames
        elif isinstance(collector, Histogram):
            for suffix in ("_bucket", "_sum", "_count"):
                series[collector._name + suffix] = collector._labelnames + (
                    ("le",) if suffix == "_bucket" else ()
                )
    return series


EXPORTED = exported_series()


# --- what deploy/ queries --------------------------------------------------------------------------------
def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    return found


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def rule_queries() -> list[tuple[str, str]]:
    return [(f"rule {r.get('record') or r.get('alert')}", r["expr"]) for r in rules()]


def recorded_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def strip_noise(expr: str) -> str:
    """Removes string literals, Grafana variables and range selectors, which may hold identifier-like text."""
    expr = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    expr = re.sub(r"\$\{?\w+\}?", "5m", expr)
    return re.sub(r"\[[^\]]*\]", "", expr)


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names in its matchers) for every vector selector in `expr`."""
    grouping = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
    expr = grouping.sub(" ", strip_noise(expr))
    found = []
    # An identifier not preceded by a digit or dot (so not the "e3" of 1e3), with optional matchers.
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?", expr):
        name, matchers = match.groups()
        if name in KEYWORDS:
            continue
        if not matchers and expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation: sum(...), rate(...), histogram_quantile(...)
        found.append((name, set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers or ""))))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels = set()
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", strip_noise(expr)):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    return labels


def problems(expr: str, recorded: set[str]) -> list[str]:
    found = []
    metric_labels: set[str] = set()
    only_exported = True
    for name, labels in selectors(expr):
        if ":" in name:  # a recording rule: defined by rules.yaml, not by the code
            only_exported = False
            if name not in recorded:
                found.append(f"{name} is not recorded by deploy/prometheus/rules.yaml")
            continue
        if name not in EXPORTED:
            found.append(f"{name} is not exported by orderdesk/metrics.py")
            continue
        metric_labels |= set(EXPORTED[name])
        unknown = labels - set(EXPORTED[name]) - SERVER_LABELS
        if unknown:
            found.append(f"{name} has no label(s) {sorted(unknown)}")
    if not selectors(expr):
        found.append("queries no metric at all")
    # Grouping labels must exist on the metrics the expression reads (recording rules carry only their
    # own grouping labels, so the check is made where every input is a metric of the code).
    if only_exported:
        unknown = grouping_labels(expr) - metric_labels - SERVER_LABELS
        if unknown:
            found.append(f"groups by unknown label(s) {sorted(unknown)}")
    return found


# --- the checks ------------------------------------------------------------------------------------------
def test_the_catalogue_follows_the_naming_conventions():
    assert EXPORTED, "no collectors found in orderdesk.metrics"
    for name in EXPORTED:
        assert name.startswith("orderdesk_"), name
    for collector in vars(metrics).values():
        if isinstance(collector, Histogram):
            assert collector._name.endswith("_seconds"), f"{collector._name}: histograms measure seconds"


@pytest.mark.parametrize("where, expr", dashboard_queries() + rule_queries())
def test_every_query_reads_exported_metrics_and_labels(where, expr):
    assert problems(expr, recorded_names()) == [], f"{where}: {expr}"


def test_the_checker_catches_a_renamed_metric_or_label():
    # The test above is only worth something if it fails on a rename: prove it does.
    assert problems("sum(rate(orderdesk_orders_recieved_total[5m]))", set()) == [
        "orderdesk_orders_recieved_total is not exported by orderdesk/metrics.py"
    ]
    assert problems('rate(orderdesk_orders_received_total{source="api"}[5m])', set()) == [
        "orderdesk_orders_received_total has no label(s) ['source']"
    ]
    assert problems("sum by (partner) (rate(orderdesk_orders_received_total[5m]))", set()) == [
        "groups by unknown label(s) ['partner']"
    ]
    assert problems("orderdesk:nothing:ratio_1h > 0.5", set()) == [
        "orderdesk:nothing:ratio_1h is not recorded by deploy/prometheus/rules.yaml"
    ]
    histogram = "histogram_quantile(0.99, sum by (method, le) (rate(orderdesk_grpc_server_handling_seconds_bucket[5m])))"
    assert problems(histogram, set()) == []


def test_the_dashboard_covers_what_operators_need():
    queried = {name for _, expr in dashboard_queries() for name, _ in selectors(expr)}
    needed = {
        "orderdesk_order_status_transitions_total",
        "orderdesk_orders_received_total",
        "orderdesk_shipments_delivered_total",
        "orderdesk_grpc_server_handling_seconds_bucket",
        "orderdesk_http_request_duration_seconds_bucket",
        "orderdesk_grpc_server_handled_total",
        "orderdesk_http_requests_total",
        "orderdesk_outbox_backlog_events",
        "orderdesk_outbox_oldest_pending_age_seconds",
        "orderdesk_events_consumed_total",
        "orderdesk_dead_letters_total",
        "orderdesk_orders_at_risk",  # the promise watch's panel (issue 13)
    }
    assert needed - queried == set()


def test_the_dashboard_uses_the_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_recording_rules_follow_level_metric_operations():
    for name in recorded_names():
        assert re.fullmatch(r"orderdesk:[a-z0-9_]+:[a-z0-9_]+", name), name


def runbook_anchors() -> set[str]:
    # GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped.
    headings = re.findall(r"^#+\s+(.+)$", RUNBOOK.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_a_severity_a_summary_and_a_runbook_section():
    alerts = [r for r in rules() if "alert" in r]
    names = {a["alert"] for a in alerts}
    assert {
        "OrderdeskOnTimeDeliveryLow",
        "OrderdeskOutboxBacklogStale",
        "OrderdeskConsumerRedeliveriesRising",
        "OrderdeskConsumerLag",
        "OrderdeskDeadLetter",
        "OrderdeskGrpcErrorRatioHigh",
        "OrderdeskHttpErrorRatioHigh",
    } <= names
    anchors = runbook_anchors()
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning", "info"}, alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        page, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert page == "deploy/RUNBOOK.md", alert["alert"]
        assert anchor == alert["alert"].lower() and anchor in anchors, f"{alert['alert']}: no runbook section"


# promtool (Debian's `prometheus` package) parses PromQL for real and runs the alert unit tests. It is not
# a project dependency: on a developer's machine without it these checks skip, saying how to install it;
# with CI set (.ci/run installs it) they fail instead.
PROMTOOL = shutil.which("promtool")


def needs_promtool() -> str:
    if PROMTOOL is None:
        message = "promtool not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: the alert rules must be checked)")
        pytest.skip(message)
    return PROMTOOL


def test_promtool_parses_the_rules_and_the_dashboard_queries(tmp_path):
    as_rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query:{i}", "expr": expr.replace("$__rate_interval", "5m")}
                    for i, (_, expr) in enumerate(dashboard_queries())
                ],
            }
        ]
    }
    dashboard_rules = tmp_path / "dashboard-rules.yaml"
    dashboard_rules.write_text(yaml.safe_dump(as_rules))
    result = subprocess.run(
        [needs_promtool(), "check", "rules", str(RULES), str(dashboard_rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_alert_unit_tests():
    result = subprocess.run(
        [needs_promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
