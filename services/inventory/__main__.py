"""python -m services.inventory: the inventory service process."""

from pathlib import Path

from orderdesk import retention
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import inventory_pb2_grpc
from services.inventory import consumers
from services.inventory.api import InventoryApi
from services.inventory.service import InventoryService


async def main() -> None:
    rt = ServiceRuntime("inventory", Path(__file__).parent / "migrations")
    await rt.start()
    retention.register(rt)  # inbox and published outbox rows (README "Retention")
    service = InventoryService(rt.db)
    rt.add_servicer(
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server, InventoryApi(service), "InventoryService"
    )
    rt.subscribe(*consumers.subscriptions(service))
    await rt.serve()


if __name__ == "__main__":
    run(main)
