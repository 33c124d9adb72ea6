"""Driving a consumer (orderdesk.consumers.EventConsumer) without a NATS server: a JetStream message as the
consumer sees it, and what the consumer's loop does with a fetched batch."""

from __future__ import annotations

from orderdesk import events
from orderdesk.consumers import EventConsumer
from orderdesk.v1 import events_pb2


class FetchedMsg:
    """A JetStream message as the consumer sees it; says whether it was acked or nak'ed."""

    def __init__(self, event: events_pb2.Event):
        self.data, self.subject, self.headers, self.metadata = (
            event.SerializeToString(),
            events.subject(event),
            {},
            None,
        )
        self.acked = self.naked = False

    async def ack(self):
        self.acked = True

    async def nak(self, delay=None):
        self.naked = True


async def handle_fetched(consumer: EventConsumer, *batch: events_pb2.Event) -> tuple[bool, list[FetchedMsg]]:
    """The batch as the consumer's loop handles it: together, else one by one. Answers whether it went
    together, and the messages."""
    messages = [FetchedMsg(event) for event in batch]
    together = await consumer.handle_together(messages)
    if not together:
        for msg in messages:
            await consumer.handle(msg)
    return together, messages
