"""python -m services.intake: the intake service process."""

import os
from pathlib import Path

from orderdesk import retention
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import intake_pb2_grpc, inventory_pb2_grpc, orders_pb2_grpc
from services.intake import consumers, store
from services.intake.api import IntakeApi
from services.intake.domain import IntakeConfig
from services.intake.erasure import IntakeErasure
from services.intake.service import IntakeService


async def main() -> None:
    config = IntakeConfig.from_env(os.environ)  # before start-up: a bad setting stops the process at once
    rt = ServiceRuntime("intake", Path(__file__).parent / "migrations")
    await rt.start()
    retention.register(rt, *store.PRUNABLE)  # inbox, outbox and idempotency keys (README "Retention")
    orders = orders_pb2_grpc.OrdersServiceStub(rt.channel("orders"))
    inventory = inventory_pb2_grpc.InventoryServiceStub(rt.channel("inventory"))
    service = IntakeService(rt.db, orders, rt.settings.rpc_timeout, inventory=inventory, config=config)
    api = IntakeApi(service, erasure=IntakeErasure(rt.db, on_erased=service.masterdata.clear))
    rt.add_servicer(intake_pb2_grpc.add_IntakeServiceServicer_to_server, api, "IntakeService")
    rt.subscribe(*consumers.subscriptions(service))
    await rt.serve()


if __name__ == "__main__":
    run(main)
