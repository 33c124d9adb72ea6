"""Order aggregate <-> protobuf messages (used by the API and for events)."""

from __future__ import annotations

from orderdesk.events import timestamp
from orderdesk.v1 import common_pb2, orders_pb2
from services.orders import exceptions as order_exceptions
from services.orders.changes import ChangeRecord
from services.orders.domain import Order
from services.orders.exceptions import OrderException
from services.orders.notes import Note
from services.orders.promise import Risk
from services.orders.timeline import timeline

ADDRESS_FIELDS = ("name", "line1", "city", "postal_code", "country", "phone")


def address_to_dict(address: common_pb2.Address) -> dict[str, str]:
    return {f: getattr(address, f) for f in ADDRESS_FIELDS}


def order_to_proto(order: Order) -> orders_pb2.Order:
    # The lists most orders hold nothing in are given only when they hold something: upb's constructor
    # spends about as long on an empty list as on a short one (the same message either way).
    lists: dict = {}
    if order.hold_reasons:
        lists["hold_reasons"] = [common_pb2.Reason(**r) for r in order.hold_reasons]
    if order.shipments:
        lists["shipments"] = [
            orders_pb2.ShipmentSummary(
                shipment_id=s.shipment_id,
                warehouse=s.warehouse,
                status=s.status,
                carrier=s.carrier,
                tracking_number=s.tracking_number,
            )
            for s in order.shipments.values()
        ]
    if order.allocations:
        lists["allocations"] = [
            orders_pb2.Allocation(sku=a.sku, warehouse=a.warehouse, quantity=a.quantity)
            for a in order.allocations
        ]
    if order.proposals:
        lists["proposals"] = [proposal_to_proto(p) for p in order.proposals]
    if order.change_log:
        lists["changes"] = [change_to_proto(c) for c in order.change_log]
    if order.exceptions:
        lists["exceptions"] = [exception_to_proto(e) for e in order.exceptions]
    if order.split_into:
        lists["split_into"] = order.split_into
    if order.risks:
        lists["risks"] = [risk_to_proto(r) for r in order.risks]
    if order.replacements:
        lists["replacements"] = [
            orders_pb2.OrderReplacement(rma_id=r.rma_id, order_id=r.order_id, kind=r.kind, at=timestamp(r.at))
            for r in order.replacements
        ]
    return orders_pb2.Order(
        order_id=order.order_id,
        partner_id=order.partner_id,
        channel=order.channel,
        external_ref=order.external_ref,
        customer_id=order.customer_id,
        ship_to=common_pb2.Address(**{f: order.ship_to.get(f, "") for f in ADDRESS_FIELDS}),
        lines=[
            orders_pb2.OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=str(line.unit_price),
                allocated_quantity=line.allocated,
                shipped_quantity=line.shipped,
                delivered_quantity=line.delivered,
                returned_quantity=line.returned,
            )
            for line in order.lines
        ],
        requested_delivery_date=order.requested_delivery_date,
        payment_terms=order.payment_terms,
        status=order.status._value_,  # .value without the enum property's two calls
        version=order.version,
        history=[
            common_pb2.StatusChange(
                status=h.status._value_, at=timestamp(h.at), actor=h.actor, reason=h.reason
            )
            for h in order.history
        ],
        priority=order.priority,
        currency=order.currency,
        total_amount=str(order.total_amount),
        urgent=order.urgent,
        expected_ship_date=order.expected_ship_date,
        expected_delivery_date=order.expected_delivery_date,
        at_risk=order.at_risk,
        exception_expected_date=order_exceptions.expected_date(order.exceptions),
        split_from=order.split_from,
        archived=order.archived,
        **lists,
    )


def as_published(order: Order) -> orders_pb2.Order:
    """`order_to_proto(order)`, taken from its events' snapshot when it was just published at this version
    (services.orders.service keeps it on the order) rather than built again: a created order is answered
    with the order its events carried. Only for an order not changed since without a new version."""
    published = getattr(order, "published_proto", None)
    if published is not None and published[0] == order.version:
        return published[1]
    return order_to_proto(order)


def risk_to_proto(r: Risk) -> orders_pb2.OrderRisk:
    return orders_pb2.OrderRisk(
        code=r.code.value,
        expected_date=r.expected_date,
        slip_days=r.slip_days,
        evidence=r.evidence,
        shipment_id=r.shipment_id,
        since=timestamp(r.since) if r.since else None,
    )


def archived_to_proto(found) -> orders_pb2.ArchivedOrder:
    """An exported archived order (services.orders.archive.store.Exported)."""
    return orders_pb2.ArchivedOrder(
        order=order_to_proto(found.order),
        created_at=timestamp(found.created_at),
        closed_at=timestamp(found.closed_at),
        archived_at=timestamp(found.archived_at),
    )


def field_changes_to_proto(changes) -> list[orders_pb2.FieldChange]:
    return [orders_pb2.FieldChange(field=c.field, before=c.before, after=c.after) for c in changes]


def change_to_proto(c: ChangeRecord) -> orders_pb2.ChangeEntry:
    return orders_pb2.ChangeEntry(
        version=c.version,
        at=timestamp(c.at),
        actor=c.actor,
        kinds=list(c.kinds),
        reason=c.reason,
        changes=field_changes_to_proto(c.changes),
    )


def exception_to_proto(e: OrderException) -> orders_pb2.OrderException:
    r = e.resolution
    return orders_pb2.OrderException(
        exception_id=e.exception_id,
        type=e.type.value,
        cause=e.cause,
        expected_date=e.expected_date,
        status="open" if e.open else "resolved",
        opened_at=timestamp(e.opened_at),
        opened_by=e.opened_by,
        source=e.source,
        sku=e.sku,
        warehouse=e.warehouse,
        quantity=e.quantity,
        shipment_id=e.shipment_id,
        resolution=None
        if r is None
        else orders_pb2.ExceptionResolution(
            action=r.action.value, at=timestamp(r.at), actor=r.actor, note=r.note, details=r.details
        ),
    )


def proposal_to_dict(proposal: common_pb2.DeliveryProposal) -> dict:
    return {
        "kind": proposal.kind,
        "delivery_date": proposal.delivery_date,
        "parts": [
            {"sku": p.sku, "quantity": p.quantity, "delivery_date": p.delivery_date} for p in proposal.parts
        ],
    }


def proposal_to_proto(proposal: dict) -> common_pb2.DeliveryProposal:
    return common_pb2.DeliveryProposal(
        kind=proposal["kind"],
        delivery_date=proposal["delivery_date"],
        parts=[common_pb2.ProposalPart(**part) for part in proposal["parts"]],
    )


def note_to_proto(n: Note) -> orders_pb2.OrderNote:
    return orders_pb2.OrderNote(
        note_id=n.note_id,
        at=timestamp(n.at),
        actor=n.actor,
        visibility=n.visibility.value,
        text=n.text,
        version=n.version,
    )


def desk_order_to_proto(order: Order) -> orders_pb2.DeskOrder:
    """The desk's view: the order partners may see, and beside it the notes only the desk may."""
    return orders_pb2.DeskOrder(order=order_to_proto(order), notes=[note_to_proto(n) for n in order.notes])


def status_to_proto(order: Order) -> orders_pb2.OrderStatus:
    """What the end customer's status page may show: status, the date to expect, the parcels."""
    return orders_pb2.OrderStatus(
        order_id=order.order_id,
        status=order.status.value,
        expected_delivery_date=order.date_to_expect,
        shipments=[
            orders_pb2.ParcelStatus(status=s.status, carrier=s.carrier, tracking_number=s.tracking_number)
            for s in order.shipments.values()
            if s.status != "cancelled"
        ],
    )


def timeline_to_proto(order: Order) -> orders_pb2.OrderTimeline:
    return orders_pb2.OrderTimeline(
        order_id=order.order_id,
        entries=[
            orders_pb2.TimelineEntry(
                at=timestamp(e.at),
                actor=e.actor,
                kind=e.kind,
                summary=e.summary,
                reason=e.reason,
                status=e.status,
                changes=field_changes_to_proto(e.changes),
                exception_id=e.exception_id,
                exception_type=e.exception_type,
                action=e.action,
                expected_date=e.expected_date,
                details=e.details,
                note_id=e.note_id,
                text=e.text,
                version=e.version,
            )
            for e in timeline(order)
        ],
    )
