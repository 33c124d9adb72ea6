"""Every Prometheus metric orderdesk exports, in one catalogue.

Naming follows orderdesk_<thing>_<unit>; counters end in _total. Ratios such as
on-time delivery or hold rate are computed in PromQL from these counters (see
deploy/prometheus). Labels are bounded: never an order, customer or SKU id.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics import MetricWrapperBase

M = TypeVar("M", bound=MetricWrapperBase)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- transport -------------------------------------------------------------
GRPC_HANDLED = Counter(
    "orderdesk_grpc_server_handled_total",
    "gRPC calls handled, by method and status code",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "orderdesk_grpc_server_handling_seconds",
    "gRPC server handling time",
    ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
RPC_DENIED = Counter(
    "orderdesk_rpc_denied_total",
    "gRPC calls refused by the access table (orderdesk/access.py): the caller's identity may not call the method",
    ["caller", "method"],
)
HTTP_REQUESTS = Counter(
    "orderdesk_http_requests_total",
    "Gateway HTTP requests, by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "orderdesk_http_request_duration_seconds",
    "Gateway HTTP request latency",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
HTTP_RATE_LIMITED = Counter(
    "orderdesk_http_rate_limited_total",
    "Gateway requests refused with 429: a key's token bucket (rate) or a partner's stream cap (streams)",
    ["limit"],
)

CONSOLE_REQUESTS = Counter(
    "orderdesk_console_requests_total",
    "Desk console HTTP requests, by route template and status",
    ["method", "route", "status"],
)
CONSOLE_LATENCY = Histogram(
    "orderdesk_console_request_duration_seconds",
    "Desk console request time, until the page is sent",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
CONSOLE_SIGNINS = Counter(
    "orderdesk_console_signins_total",
    "Sign-in attempts at the desk console, by outcome (signed_in, failed, throttled, locked, disabled)",
    ["outcome"],
)

# --- events ----------------------------------------------------------------
OUTBOX_BACKLOG = Gauge("orderdesk_outbox_backlog_events", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "orderdesk_outbox_oldest_pending_age_seconds",
    "Age of the oldest unpublished outbox row",
    ["service"],
)
# --- storage ---------------------------------------------------------------
# No labels: one process is one service (Prometheus adds job/instance); `make bench` divides them per order.
DB_STATEMENTS = Counter(
    "orderdesk_db_statements_total", "SQL statements sent to the database (an executemany counts once)"
)
DB_COMMITS = Counter("orderdesk_db_commits_total", "Database transactions committed")
DB_LOST_RACES = Counter(
    "orderdesk_db_lost_races_total",
    "Transactions PostgreSQL cancelled as a deadlock's or a serialization failure's loser (retried as a Conflict)",
)

OUTBOX_PUBLISHED = Counter(
    "orderdesk_outbox_published_total", "Events published from the outbox", ["service"]
)
OUTBOX_PUBLISH_ERRORS = Counter(
    "orderdesk_outbox_publish_errors_total",
    "Failed publish attempts (retried)",
    ["service"],
)
EVENTS_CONSUMED = Counter(
    "orderdesk_events_consumed_total",
    "Events delivered to a consumer, by outcome (handled, duplicate, retried, dead_lettered, ignored)",
    ["consumer", "outcome"],
)
DEAD_LETTERS = Counter(
    "orderdesk_dead_letters_total", "Events parked on the dead-letter stream", ["consumer"]
)
EVENTS_MISPLACED = Counter(
    "orderdesk_events_misplaced_total",
    "Events refused because their subject is not the one their type and aggregate belong on (dead-lettered)",
    ["consumer"],
)
# Batch sizes, the figures that shrink when replicas share the load (README "Scaling"): events per pull
# (pulled / pulls) and requests per group-commit run (items / runs).
CONSUMER_PULLS = Counter(
    "orderdesk_consumer_pulls_total", "Pull requests that brought a consumer events", ["consumer"]
)
CONSUMER_PULLED = Counter(
    "orderdesk_consumer_pulled_events_total", "Events those pull requests brought", ["consumer"]
)
GROUP_RUNS = Counter("orderdesk_group_runs_total", "Group-commit runs (orderdesk.grouping)", ["group"])
GROUP_ITEMS = Counter("orderdesk_group_items_total", "Requests those runs entered", ["group"])
CONSUMER_PENDING = Gauge(
    "orderdesk_consumer_pending_events", "Events waiting for a consumer (lag)", ["consumer"]
)
ALLOCATION_HELD = Gauge(
    "orderdesk_allocation_held",
    "1 while the allocator holds off because orders are surging (services/orders/surge.py)",
)
LEASE_HELD = Gauge(
    "orderdesk_lease_held",
    "1 while this replica holds the lease of a singleton job (outbox relay, allocator)",
    ["service", "job"],
)

RETENTION_PRUNED = Counter(
    "orderdesk_retention_pruned_total",
    "Rows the retention job pruned (deleted, or for returns' idempotency keys forgotten), by table (orderdesk.retention)",
    ["service", "what"],
)
RETENTION_PASS = Histogram(
    "orderdesk_retention_pass_seconds",
    "Time of one retention pass over one table, all its batches",
    ["service", "what"],
    buckets=(0.001, 0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0),
)
ARCHIVE_ORDERS = Counter(
    "orderdesk_archive_orders_total",
    "Closed orders the archive job took (archived: moved out of the hot tables; skipped: changed after the "
    "job read them, left hot) (services/orders/archive)",
    ["outcome"],
)
ARCHIVE_BATCH = Histogram(
    "orderdesk_archive_batch_seconds",
    "Time of one archive batch: candidates read, then moved whole in one transaction",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
PERSONAL_DATA_ERASURES = Counter(
    "orderdesk_personal_data_erasures_total",
    "Erasure requests answered (orderdesk.erasure): erased (something changed now), unchanged (already erased), "
    "refused (retention)",
    ["service", "outcome"],
)
PERSONAL_DATA_ERASED_ROWS = Counter(
    "orderdesk_personal_data_erased_rows_total",
    "Rows whose personal data an erasure request pseudonymised, by table",
    ["service", "what"],
)

# --- the business ------------------------------------------------------------
ORDERS_RECEIVED = Counter(
    "orderdesk_orders_received_total",
    "Orders received by intake, by channel and outcome (approved, held, invalid, replayed)",
    ["channel", "outcome"],
)
ORDER_TRANSITIONS = Counter(
    "orderdesk_order_status_transitions_total",
    "Order status changes, by the status entered (throughput by status)",
    ["status"],
)
ORDERS_COMPLETED = Counter(
    "orderdesk_orders_completed_total",
    "Orders completed (all shipments delivered), by on-time delivery",
    ["on_time"],
)
ORDER_CHANGES = Counter(
    "orderdesk_order_changes_total", "Change requests on placed orders by outcome", ["outcome"]
)  # outcome: accepted | refused | stale
ORDER_EXCEPTIONS = Counter(
    "orderdesk_order_exceptions_total", "Exceptions on orders opened and resolved", ["type", "step"]
)
ORDER_NOTES = Counter(
    "orderdesk_order_notes_total", "The desk's notes on orders by visibility", ["visibility"]
)  # visibility: internal | customer
ORDER_RISKS = Counter(
    "orderdesk_order_risks_total",
    "Risks the promise watch raised and cleared (services/orders/promise.py), by reason code",
    ["reason", "step"],
)  # step: raised | cleared
ORDERS_AT_RISK = Gauge(
    "orderdesk_orders_at_risk",
    "Open orders the promise watch sees at risk now, by reason code (an order with two reasons counts in both)",
    ["reason"],
)
WATCH_PASS = Histogram(
    "orderdesk_watch_pass_seconds",
    "Time of one promise-watch pass (one batch of due orders assessed and saved)",
    [],
    buckets=(0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0),
)
WATCH_ASSESSED = Counter("orderdesk_watch_orders_assessed_total", "Orders the promise watch assessed", [])
RESERVATIONS = Counter(
    "orderdesk_stock_reservations_total",
    "Reserve calls by outcome (full, partial, none)",
    ["outcome"],
)
UNITS_RESERVED = Counter("orderdesk_stock_units_reserved_total", "Units reserved", [])
BACKORDER_UNITS_FILLED = Counter(
    "orderdesk_backorder_units_filled_total",
    "Backordered units reserved when stock arrived (receipts, production, "
    "returns, counts, cancellations), in priority order",
    [],
)
RESERVE_RETRIES = Counter(
    "orderdesk_stock_reserve_retries_total",
    "Reserve attempts retried because a guarded stock update refused a "
    "plan made from levels another replica changed meanwhile",
    [],
)
INBOUND_ANNOUNCED = Counter(
    "orderdesk_inbound_announced_total",
    "Suppliers' inbound receipts announced with their expected date (new) or moved to another (moved)",
    ["step"],
)
PRODUCTION_RUNS = Counter(
    "orderdesk_production_runs_total",
    "Production runs planned for backorders and completed",
    ["step"],
)  # step: planned | completed
STOCK_UNITS_MOVED = Counter(
    "orderdesk_stock_units_moved_total",
    "Units inventory moved after reserving them: released (cancel), shipped (consumed), restocked (receipts, returns), "
    "written_off (a shortage found at picking)",
    ["movement"],
)
SHIPMENT_EVENTS = Counter("orderdesk_shipment_events_total", "Shipment steps recorded", ["type"])
CARRIER_EVENTS = Counter(
    "orderdesk_carrier_events_total",
    "Carrier tracking events received, by sender, normalised status and outcome "
    "(applied, recorded, duplicate, unknown_shipment, ambiguous)",
    ["carrier", "status", "outcome"],
)
CARRIER_REQUESTS_REFUSED = Counter(
    "orderdesk_carrier_requests_refused_total",
    "Carrier tracking requests refused before reading their events (unsigned, bad_signature, stale, "
    "replayed, unknown_carrier); carrier is 'other' for a name without a configured secret",
    ["carrier", "reason"],
)
SHIPMENTS_DELIVERED = Counter(
    "orderdesk_shipments_delivered_total",
    "Shipments delivered, by whether by the promised date",
    ["on_time"],
)
RETURN_STEPS = Counter("orderdesk_return_steps_total", "Return authorisation steps", ["step"])
REFUNDED_AMOUNT = Counter("orderdesk_refunded_amount_total", "Refunded money, in order currency units", [])

# The desk's numbers (README "The desk's numbers": each report formula with its PromQL twin).
LINES_FIRST_ALLOCATED = Counter(
    "orderdesk_order_lines_first_allocated_total",
    "Order lines at their order's first reservation, by whether it covered the whole line",
    ["filled"],
)
UNITS_FIRST_ALLOCATED = Counter(
    "orderdesk_order_units_first_allocated_total",
    "Ordered units at their order's first reservation: filled (reserved) or short (backordered)",
    ["outcome"],
)
ORDER_HOLD_REASONS = Counter(
    "orderdesk_order_hold_reasons_total",
    "Reasons given to orders put on hold, by intake's reason code",
    ["reason"],
)
ORDER_CANCELLATIONS = Counter(
    "orderdesk_order_cancellations_total",
    "Orders cancelled, by reason class (the code the reason starts with, else other)",
    ["reason"],
)
UNITS_CANCELLED = Counter(
    "orderdesk_order_units_cancelled_total",
    "Ordered units cancelled (whole orders, and lines cut by change requests), by reason class",
    ["reason"],
)
UNITS_DELIVERED = Counter(
    "orderdesk_order_units_delivered_total", "Units delivered by orders as they complete", []
)
UNITS_RETURNED = Counter(
    "orderdesk_order_units_returned_total",
    "Units taken back by refunded returns, by reason class",
    ["reason"],
)
ORDER_CYCLE_SECONDS = Histogram(
    "orderdesk_order_cycle_seconds",
    "Order cycle times: received_to_confirmed, confirmed_to_shipped, shipped_to_delivered, received_to_delivered",
    ["stage"],
    buckets=(
        1.0,
        10.0,
        60.0,
        300.0,
        900.0,
        3600.0,
        4 * 3600.0,
        12 * 3600.0,
        86400.0,
        2 * 86400.0,
        3 * 86400.0,
        5 * 86400.0,
        7 * 86400.0,
        14 * 86400.0,
        30 * 86400.0,
    ),
)

# --- notifications (webhooks and the event feed) -------------------------------------------------
FEED_APPENDED = Counter(
    "orderdesk_feed_events_appended_total", "Events appended to partners' feeds", ["aggregate"]
)
WEBHOOK_DELIVERIES = Counter(
    "orderdesk_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, parked, gone)",
    ["outcome"],
)
WEBHOOK_ATTEMPT_LATENCY = Histogram(
    "orderdesk_webhook_attempt_duration_seconds",
    "Time of one webhook POST until the receiver answered",
    [],
    buckets=LATENCY_BUCKETS,
)
WEBHOOK_EVENT_TO_DELIVERY = Histogram(
    "orderdesk_webhook_event_to_delivery_seconds",
    "From the event's occurrence to its successful delivery",
    [],
    buckets=(*LATENCY_BUCKETS, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
WEBHOOK_PARKED = Gauge(
    "orderdesk_webhook_parked_deliveries", "Deliveries parked after their last retry (replayable)"
)
WEBHOOK_PENDING = Gauge("orderdesk_webhook_pending_deliveries", "Deliveries waiting for their (next) attempt")
WEBHOOK_FEED_LAG = Gauge(
    "orderdesk_webhook_feed_lag_events",
    "Largest number of feed entries an active endpoint has not taken on yet",
)


def child(metric: M, *values: str) -> M:
    """`metric.labels(*values)` for label values that are strings already, without labels()' half dozen
    calls a look-up (each value's str(), a lock) once the child exists. Read from the metric's own children
    every time, never kept aside: after a clear() or remove() the next look-up makes a new child."""
    found: Any = metric._metrics.get(values)  # (prometheus_client types its children with an unbound T)
    return found if found is not None else metric.labels(*values)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Scrapes are not logged (the access log would be all of them)."""


def serve(port: int) -> None:
    """Serves /metrics on its own port from a thread (never blocks the event loop).

    prometheus_client's start_http_server, but its thread waits for a scrape rather than waking twice a
    second to look for a shutdown that never comes (socketserver's poll interval): an idle process sleeps."""
    if port:
        httpd = make_server("0.0.0.0", port, make_wsgi_app(), ThreadingWSGIServer, handler_class=_Quiet)
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 3600}, name="metrics", daemon=True
        ).start()
