"""Return aggregate <-> protobuf messages (used by the API and for events)."""

from __future__ import annotations

from orderdesk.v1 import common_pb2, returns_pb2
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
                reason_code=line.reason_code,
                restocking_fee=str(line.restocking_fee),
                refurbished_quantity=line.refurbished,
                scrapped_customer_fault_quantity=line.scrapped_customer,
                refund_amount=str(line.refund),
                resolution=line.resolution,
                exchange_sku=line.exchange_sku,
                exchange_quantity=line.exchange_quantity,
                exchange_unit_price=str(line.exchange_unit_price) if line.exchanged else "",
                sent_sku=line.sent_sku,
            )
            for line in ret.lines
        ],
        refund_amount=str(ret.refund_amount),
        version=ret.version,
        hold_reasons=[
            common_pb2.Reason(code=r.code, message=r.message, field=r.field) for r in ret.hold_reasons
        ],
        restocking_fee=str(ret.restocking_fee),
        expected_refund=str(ret.expected_refund),
        decision_note=ret.decision_note,
        currency=ret.currency,
        exchange_order_id=ret.exchange_order_id,
        exchange_status=ret.exchange_status,
        to_charge=str(ret.to_charge) if ret.exchanged_lines else "",
        to_credit=str(ret.to_credit) if ret.exchanged_lines else "",
        exchange_mode=ret.exchange_mode,
        return_due_on=ret.return_due_on.isoformat() if ret.return_due_on else "",
        return_due_at=ret.return_due_at.isoformat() if ret.return_due_at else "",
        unreturned_charge=str(ret.unreturned_charge) if ret.unreturned_charge else "",
        kind=ret.kind,
        claim_reason=ret.claim_reason,
        goods_back=ret.goods_back,
        evidence=ret.evidence,
        decided_by=ret.decided_by,
    )
