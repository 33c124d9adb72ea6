"""Every Prometheus metric orderdesk exports, in one catalogue.

Naming follows orderdesk_<thing>_<unit>; counters end in _total. Ratios such as
on-time delivery or hold rate are computed in PromQL from these counters (see
deploy/prometheus). Labels are bounded: never an order, customer or SKU id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --- transport -------------------------------------------------------------
GRPC_HANDLED = Counter(
    "orderdesk_grpc_server_handled_total", "gRPC calls handled, by method and status code",
    ["service", "method", "code"],
)
GRPC_LATENCY = Histogram(
    "orderdesk_grpc_server_handling_seconds", "gRPC server handling time", ["service", "method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "orderdesk_http_requests_total", "Gateway HTTP requests, by route template and status", ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "orderdesk_http_request_duration_seconds", "Gateway HTTP request latency", ["method", "route"],
    buckets=LATENCY_BUCKETS,
)

# --- events ----------------------------------------------------------------
OUTBOX_BACKLOG = Gauge("orderdesk_outbox_backlog_events", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_AGE = Gauge(
    "orderdesk_outbox_oldest_pending_age_seconds", "Age of the oldest unpublished outbox row", ["service"],
)
OUTBOX_PUBLISHED = Counter("orderdesk_outbox_published_total", "Events published from the outbox", ["service"])
OUTBOX_PUBLISH_ERRORS = Counter(
    "orderdesk_outbox_publish_errors_total", "Failed publish attempts (retried)", ["service"],
)
EVENTS_CONSUMED = Counter(
    "orderdesk_events_consumed_total",
    "Events delivered to a consumer, by outcome (handled, duplicate, retried, dead_lettered, ignored)",
    ["consumer", "outcome"],
)
DEAD_LETTERS = Counter("orderdesk_dead_letters_total", "Events parked on the dead-letter stream", ["consumer"])
CONSUMER_PENDING = Gauge("orderdesk_consumer_pending_events", "Events waiting for a consumer (lag)", ["consumer"])
LEASE_HELD = Gauge(
    "orderdesk_lease_held", "1 while this replica holds the lease of a singleton job (outbox relay, allocator)",
    ["service", "job"],
)

# --- the business ------------------------------------------------------------
ORDERS_RECEIVED = Counter(
    "orderdesk_orders_received_total", "Orders received by intake, by channel and outcome (approved, held, invalid, replayed)",
    ["channel", "outcome"],
)
ORDER_TRANSITIONS = Counter(
    "orderdesk_order_status_transitions_total", "Order status changes, by the status entered (throughput by status)",
    ["status"],
)
ORDERS_COMPLETED = Counter(
    "orderdesk_orders_completed_total", "Orders completed (all shipments delivered), by on-time delivery",
    ["on_time"],
)
RESERVATIONS = Counter(
    "orderdesk_stock_reservations_total", "Reserve calls by outcome (full, partial, none)", ["outcome"],
)
UNITS_RESERVED = Counter("orderdesk_stock_units_reserved_total", "Units reserved", [])
STOCK_UNITS_MOVED = Counter(
    "orderdesk_stock_units_moved_total",
    "Units inventory moved after reserving them: released (cancel), shipped (consumed), restocked (receipts, returns)",
    ["movement"],
)
SHIPMENT_EVENTS = Counter("orderdesk_shipment_events_total", "Shipment steps recorded", ["type"])
SHIPMENTS_DELIVERED = Counter(
    "orderdesk_shipments_delivered_total", "Shipments delivered, by whether by the promised date", ["on_time"],
)
RETURN_STEPS = Counter("orderdesk_return_steps_total", "Return authorisation steps", ["step"])
REFUNDED_AMOUNT = Counter("orderdesk_refunded_amount_total", "Refunded money, in order currency units", [])


def serve(port: int) -> None:
    """Serves /metrics on its own port from a thread (never blocks the event loop)."""
    if port:
        start_http_server(port, addr="0.0.0.0")
