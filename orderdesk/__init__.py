"""orderdesk: the shared runtime every service and the gateway are built on.

Modules:
    config      settings from environment variables
    db          async SQLAlchemy engine, transactions that carry the outbox
    migrations  alembic, run at start-up per service
    events      JetStream stream, subjects and the event envelope
    outbox      transactional outbox and the relay that publishes it
    consumers   idempotent durable JetStream consumers (inbox table)
    errors      domain errors and their gRPC / HTTP mapping
    metrics     Prometheus metrics shared by every process
    runtime     a service process: gRPC server, health, reflection, shutdown
"""

from orderdesk import protos as _protos

# A source checkout generates the protobuf code on first use, so a clean clone runs.
if _protos.PROTO_ROOT.exists() and _protos.is_stale():  # pragma: no cover - build step
    _protos.generate()
