"""Return aggregate <-> protobuf messages (used by the API and for events)."""

from __future__ import annotations

from orderdesk.v1 import returns_pb2
from services.returns.domain import Return


def return_to_proto(ret: Return) -> returns_pb2.Return:
    return returns_pb2.Return(
        rma_id=ret.rma_id,
        order_id=ret.order_id,
        partner_id=ret.partner_id,
        status=ret.status.value,
        resolution=ret.resolution,
        lines=[
            returns_pb2.ReturnLine(
                sku=line.sku,
                quantity=line.quantity,
                reason=line.reason,
                unit_price=str(line.unit_price),
                warehouse=line.warehouse,
                restocked_quantity=line.restocked,
                scrapped_quantity=line.scrapped,
            )
            for line in ret.lines
        ],
        refund_amount=str(ret.refund_amount),
        version=ret.version,
    )
