"""python -m services.orders: the orders service process."""

import os
from pathlib import Path

from orderdesk import retention
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import intake_pb2_grpc, inventory_pb2_grpc, orders_pb2_grpc, shipping_pb2_grpc
from services.orders import consumers
from services.orders.api import OrdersApi
from services.orders.desk import Desk
from services.orders.service import Allocator, OrdersService
from services.orders.surge import SurgeGate


async def main() -> None:
    rt = ServiceRuntime("orders", Path(__file__).parent / "migrations")
    retention.register(rt)  # inbox and published outbox rows (README "Retention")
    await rt.start()
    service = OrdersService(rt.db)
    allocator = Allocator(service, inventory_pb2_grpc.InventoryServiceStub(rt.channel("inventory")),
                          rt.settings.rpc_timeout, SurgeGate.from_env(os.environ))
    desk = Desk(service, allocator.inventory, rt.settings.rpc_timeout,
                intake=intake_pb2_grpc.IntakeServiceStub(rt.channel("intake")),
                shipping=shipping_pb2_grpc.ShippingServiceStub(rt.channel("shipping")),
                wake_allocator=lambda **kw: allocator.wake(**kw))  # late-bound: the lease replaces wake below
    rt.add_servicer(orders_pb2_grpc.add_OrdersServiceServicer_to_server, OrdersApi(service, desk), "OrdersService")
    for subscription in consumers.subscriptions(service, allocator):
        rt.subscribe(subscription)
    # One replica allocates at a time (priority order holds across replicas); any replica's
    # confirmed order or restock wakes it (orderdesk.leases).
    local_wake = allocator.wake
    wakeup = rt.add_singleton("orders-allocator", allocator.run,
                              lambda payload: local_wake(scheduled=payload == b"scheduled"))
    allocator.wake = lambda *, scheduled=False: wakeup.poke(b"scheduled" if scheduled else b"")
    service.on_confirmed = allocator.wake
    await rt.serve()


if __name__ == "__main__":
    run(main)
