"""python -m services.orders: the orders service process."""

import os
from pathlib import Path

from orderdesk import config, retention
from orderdesk.config import ArchiveSettings, WatchSettings
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import intake_pb2_grpc, inventory_pb2_grpc, orders_pb2_grpc, shipping_pb2_grpc
from services.orders import consumers
from services.orders.allocator import Allocator
from services.orders.api import OrdersApi
from services.orders.archive import job as archive_job
from services.orders.change_requests import ChangeRequests
from services.orders.erasure import OrdersErasure
from services.orders.exception_resolutions import ExceptionResolutions
from services.orders.service import OrdersService
from services.orders.store import OrderRepository
from services.orders.surge import SurgeGate
from services.orders.watch import Watch


async def main() -> None:
    archive_settings = ArchiveSettings.from_env()  # a bad setting stops the process before it starts
    personal_data_days = config.personal_data_retention_days()  # a bad setting stops the process at once
    rt = ServiceRuntime("orders", Path(__file__).parent / "migrations")
    await rt.start()
    retention.register(rt)  # inbox and published outbox rows (README "Retention")
    archiver = archive_job.register(rt, archive_settings)  # closed orders, old enough (README "Archive")
    inventory = inventory_pb2_grpc.InventoryServiceStub(rt.channel("inventory"))
    allocator = Allocator(rt.db, inventory, rt.settings.rpc_timeout, surge=SurgeGate.from_env(os.environ))
    # One replica allocates at a time (priority order holds across replicas); any replica's
    # confirmed order, change or restock pokes the holder (orderdesk.leases), whose allocator wakes.
    wakeup = rt.add_singleton(
        "orders-allocator", allocator.run, lambda payload: allocator.wake(scheduled=payload == b"scheduled")
    )

    def wake_allocator(*, scheduled: bool = False) -> None:
        wakeup.poke(b"scheduled" if scheduled else b"")

    rt.after_reconnect(wake_allocator)  # another replica's pokes may have been lost meanwhile

    # The promise watch (README "Promise watch"): one replica at a time; every replica's saves mark in the
    # database when the watch next has something to do for the order (its rule, policy and clock), so a
    # poke only saves it the wait for its next poll.
    watch = Watch.from_settings(rt.db, WatchSettings.from_env())
    rt.db.repositories[OrderRepository] = watch.repository
    watch_wakeup = rt.add_singleton("orders-watch", watch.run, lambda _payload: watch.wake())

    service = OrdersService(rt.db, on_confirmed=wake_allocator, on_arrived=allocator.orders_arrived)
    change_requests = ChangeRequests(
        service,
        inventory,
        rt.settings.rpc_timeout,
        intake=intake_pb2_grpc.IntakeServiceStub(rt.channel("intake")),
        shipping=shipping_pb2_grpc.ShippingServiceStub(rt.channel("shipping")),
        wake_allocator=wake_allocator,
    )
    resolutions = ExceptionResolutions(
        service,
        inventory,
        rt.settings.rpc_timeout,
        change_requests=change_requests,
        wake_allocator=wake_allocator,
    )
    rt.add_servicer(
        orders_pb2_grpc.add_OrdersServiceServicer_to_server,
        OrdersApi(
            service, change_requests, resolutions, archiver, erasure=OrdersErasure(rt.db, personal_data_days)
        ),
        "OrdersService",
    )
    rt.subscribe(
        *consumers.subscriptions(
            service,
            wake_allocator=wake_allocator,
            allocate_soon=allocator.allocate_soon,
            wake_watch=watch_wakeup.poke,
        )
    )
    await rt.serve()


if __name__ == "__main__":
    run(main)
