"""python -m services.notifier: partners' event feeds and webhook deliveries."""

from pathlib import Path

from orderdesk.config import WebhookSettings
from orderdesk.runtime import ServiceRuntime, run
from orderdesk.v1 import notifier_pb2_grpc
from services.notifier import consumers
from services.notifier.api import NotifierApi
from services.notifier.delivery import Dispatcher
from services.notifier.service import NotifierService


async def main() -> None:
    rt = ServiceRuntime("notifier", Path(__file__).parent / "migrations")
    await rt.start()
    settings = WebhookSettings.from_env()
    service = NotifierService(rt.db, allow_private=settings.allow_private)
    rt.add_servicer(notifier_pb2_grpc.add_NotifierServiceServicer_to_server, NotifierApi(service), "NotifierService")
    for subscription in consumers.subscriptions(service):
        rt.subscribe(subscription)
    rt.add_task(Dispatcher(rt.db, service, settings).run)
    await rt.serve()


if __name__ == "__main__":
    run(main)
