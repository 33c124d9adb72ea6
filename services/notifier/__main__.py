"""python -m services.notifier: partners' event feeds and webhook deliveries."""

import asyncio
import datetime as dt
from pathlib import Path

from orderdesk import retention
from orderdesk.config import WebhookSettings
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import notifier_pb2_grpc
from services.notifier import consumers, domain, store
from services.notifier.api import NotifierApi
from services.notifier.delivery import Dispatcher
from services.notifier.erasure import NotifierErasure
from services.notifier.service import NotifierService


async def main() -> None:
    rt = ServiceRuntime("notifier", Path(__file__).parent / "migrations")
    await rt.start()
    pruner = retention.register(rt, *store.PRUNABLE)  # feed, deliveries, attempts (README "Retention")
    settings = WebhookSettings.from_env()
    service = NotifierService(
        rt.db,
        allowed_networks=domain.parse_networks(settings.allow_networks),  # refused at start when malformed
        feed_days=pruner.settings.feed_days,
        max_endpoints=settings.max_endpoints,
        secret_overlap=dt.timedelta(seconds=settings.secret_overlap_seconds),
    )
    await service.seal_stored_secrets()  # secrets stored plain by an older orderdesk
    rt.add_servicer(
        notifier_pb2_grpc.add_NotifierServiceServicer_to_server,
        NotifierApi(service, NotifierErasure(rt.db)),
        "NotifierService",
    )
    # One replica at a time appends to the feeds and delivers (a lease, see orderdesk.leases): a durable
    # consumer shared by replicas could append two events of one order out of order. Every replica
    # answers the API; the holder hears of others' endpoint changes by a poke (and polls, should one be lost).
    feed = [rt.consumer(subscription) for subscription in consumers.subscriptions(service)]
    dispatcher = Dispatcher(rt.db, service, settings)

    async def feed_and_deliver() -> None:
        for consumer in feed:
            await consumer.start()
        await asyncio.gather(*(consumer.run() for consumer in feed), dispatcher.run())

    wakeup = rt.add_singleton("notifier", feed_and_deliver, on_wake=lambda _payload: dispatcher.wake())
    # An endpoint created, resumed or replayed through any replica wakes the holder's dispatcher.
    service.endpoint_listeners.append(lambda _endpoint_id: wakeup.poke())
    await rt.serve()


if __name__ == "__main__":
    run(main)
