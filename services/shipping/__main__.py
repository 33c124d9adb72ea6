"""python -m services.shipping: the shipping service process."""

from pathlib import Path

from orderdesk import retention
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import shipping_pb2_grpc
from services.shipping import consumers
from services.shipping.api import ShippingApi
from services.shipping.service import ShippingService


async def main() -> None:
    rt = ServiceRuntime("shipping", Path(__file__).parent / "migrations")
    await rt.start()
    retention.register(rt)  # inbox and published outbox rows (README "Retention")
    service = ShippingService(rt.db)
    rt.add_servicer(
        shipping_pb2_grpc.add_ShippingServiceServicer_to_server, ShippingApi(service), "ShippingService"
    )
    rt.subscribe(*consumers.subscriptions(service))
    await rt.serve()


if __name__ == "__main__":
    run(main)
