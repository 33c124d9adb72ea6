"""NotifierService over gRPC: protobuf in, use case, protobuf out. Errors are domain errors."""

from __future__ import annotations

from orderdesk import erasure
from orderdesk.errors import require
from orderdesk.v1 import notifier_pb2, notifier_pb2_grpc
from services.notifier.erasure import NotifierErasure
from services.notifier.proto import delivery_to_proto, endpoint_to_proto, feed_entry_to_proto
from services.notifier.service import NotifierService


class NotifierApi(notifier_pb2_grpc.NotifierServiceServicer):
    def __init__(self, service: NotifierService, erasure: NotifierErasure):
        self.service = service
        self.erasure = erasure

    async def EraseCustomer(self, request, context):
        return (await self.erasure.erase(erasure.Request.from_proto(request))).to_proto()

    async def CreateEndpoint(self, request, context):
        require(request.url, "url")
        endpoint, secret = await self.service.create_endpoint(
            request.partner_id, request.url, list(request.event_types), request.secret
        )
        return notifier_pb2.EndpointWithSecret(endpoint=endpoint_to_proto(endpoint), secret=secret)

    async def ListEndpoints(self, request, context):
        found, parked = await self.service.endpoints(request.partner_id)
        return notifier_pb2.ListEndpointsResponse(
            items=[endpoint_to_proto(e, parked.get(e.endpoint_id, 0)) for e in found]
        )

    async def GetEndpoint(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        return endpoint_to_proto(*await self.service.endpoint(request.endpoint_id, request.partner_id))

    async def PauseEndpoint(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        return endpoint_to_proto(await self.service.pause(request.endpoint_id, request.partner_id))

    async def ResumeEndpoint(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        return endpoint_to_proto(await self.service.resume(request.endpoint_id, request.partner_id))

    async def RotateSecret(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        endpoint, secret = await self.service.rotate_secret(request.endpoint_id, request.partner_id)
        return notifier_pb2.EndpointWithSecret(endpoint=endpoint_to_proto(endpoint), secret=secret)

    async def DeleteEndpoint(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        await self.service.delete(request.endpoint_id, request.partner_id)
        return notifier_pb2.DeleteEndpointResponse()

    async def ListDeliveries(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        rows, attempts, cursor = await self.service.deliveries(
            request.endpoint_id, request.partner_id, request.status, request.limit, request.cursor
        )
        return notifier_pb2.ListDeliveriesResponse(
            items=[delivery_to_proto(r, attempts[r["delivery_id"]]) for r in rows], next_cursor=cursor
        )

    async def ListOrderDeliveries(self, request, context):
        require(request.order_id, "order_id")
        rows, attempts = await self.service.order_deliveries(
            request.order_id, request.partner_id, request.limit
        )
        return notifier_pb2.ListDeliveriesResponse(
            items=[delivery_to_proto(r, attempts[r["delivery_id"]]) for r in rows]
        )

    async def ReplayDelivery(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        require(request.delivery_id, "delivery_id")
        row, attempts = await self.service.replay(
            request.endpoint_id, request.partner_id, request.delivery_id
        )
        return delivery_to_proto(row, attempts)

    async def ReplayRange(self, request, context):
        require(request.endpoint_id, "endpoint_id")
        replayed = await self.service.replay_range(
            request.endpoint_id, request.partner_id, request.from_sequence, request.to_sequence
        )
        return notifier_pb2.ReplayRangeResponse(replayed=replayed)

    async def ReadFeed(self, request, context):
        require(request.partner_id, "partner_id")
        entries, head = await self.service.read_feed(
            request.partner_id, request.after_sequence, request.limit, request.wait_seconds
        )
        return notifier_pb2.ReadFeedResponse(
            entries=[feed_entry_to_proto(e) for e in entries], last_sequence=head
        )
