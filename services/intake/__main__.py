"""python -m services.intake: the intake service process."""

from pathlib import Path

from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import intake_pb2_grpc, orders_pb2_grpc
from services.intake.api import IntakeApi
from services.intake.service import IntakeService


async def main() -> None:
    rt = ServiceRuntime("intake", Path(__file__).parent / "migrations")
    await rt.start()
    orders = orders_pb2_grpc.OrdersServiceStub(rt.channel("orders"))
    service = IntakeService(rt.db, orders, rt.settings.rpc_timeout)
    rt.add_servicer(intake_pb2_grpc.add_IntakeServiceServicer_to_server, IntakeApi(service), "IntakeService")
    await rt.serve()


if __name__ == "__main__":
    run(main)
