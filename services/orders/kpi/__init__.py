"""The desk's numbers (KPI report) in one place.

- `rules`: pure functions over recorded facts (periods, figures, the ledger rows a change adds); no I/O.
- `store`: the order_facts ledger (`KpiLedger`, a repository on a unit of work), the query that
  gathers a period's facts, and the Prometheus counters fed from the same rows.
- `proto`: the report as protobuf.
"""

from services.orders.kpi.proto import report_to_proto
from services.orders.kpi.rules import (
    MAX_EXPORT_DAYS,
    KpiReport,
    compute_report,
    facts_of,
    parse_period,
    return_facts,
)
from services.orders.kpi.store import KpiLedger, count_metrics, count_returns, order_facts

__all__ = [
    "MAX_EXPORT_DAYS",
    "KpiLedger",
    "KpiReport",
    "compute_report",
    "count_metrics",
    "count_returns",
    "facts_of",
    "order_facts",
    "parse_period",
    "report_to_proto",
    "return_facts",
]
