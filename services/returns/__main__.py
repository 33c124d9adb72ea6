"""python -m services.returns: the returns service process."""

import os
from pathlib import Path

from orderdesk import retention
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import intake_pb2_grpc, orders_pb2_grpc, returns_pb2_grpc
from services.returns import consumers, store
from services.returns.api import ReturnsApi
from services.returns.policy import deadline_check_seconds, settings_from_env
from services.returns.service import ReturnsService


async def main() -> None:
    rt = ServiceRuntime("returns", Path(__file__).parent / "migrations")
    await rt.start()
    retention.register(rt, *store.PRUNABLE)  # inbox, outbox and idempotency keys (README "Retention")
    service = ReturnsService(
        rt.db,
        orders_pb2_grpc.OrdersServiceStub(rt.channel("orders")),
        rt.settings.rpc_timeout,
        policy=settings_from_env(os.environ),  # README "Return policy"
        intake=intake_pb2_grpc.IntakeServiceStub(rt.channel("intake")),  # exchanges' replacement orders
    )
    rt.add_servicer(
        returns_pb2_grpc.add_ReturnsServiceServicer_to_server, ReturnsApi(service), "ReturnsService"
    )
    rt.subscribe(*consumers.subscriptions(service))
    # Advance exchanges whose goods are late are charged by one replica at a time (README "Exchanges").
    interval = deadline_check_seconds(os.environ)
    rt.add_singleton(
        "returns-advance-deadline", lambda: service.run_deadlines(interval), on_wake=lambda _payload: None
    )
    await rt.serve()


if __name__ == "__main__":
    run(main)
