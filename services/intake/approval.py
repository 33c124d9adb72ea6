"""The desk approves a held order (intake's ApproveHeldOrder).

While an order waits on hold, stock and credit move on. Before orders releases it, intake
runs again the checks that can have changed (domain.RECHECKED_ON_APPROVAL) on the order as
it will be approved: on its own date, the accepted earliest date, or each date of an
accepted split. A finding the order was not held for, and that the approver did not
acknowledge, refuses the approval and nothing changes; otherwise orders approves it,
recording who decided and why (the note, and what the re-check found and was accepted).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import grpc

from orderdesk import errors, rpc
from orderdesk.v1 import common_pb2, intake_pb2, orders_pb2
from services.intake import domain
from services.intake.store import ApprovalBooking, ExposureRepository, MasterDataRepository


def _proposals(order: orders_pb2.Order) -> list[domain.Proposal]:
    found = []
    for p in order.proposals:
        parts = tuple(
            domain.ProposalPart(part.sku, part.quantity, domain.parse_date(part.delivery_date))
            for part in p.parts
            if domain.parse_date(part.delivery_date) is not None
        )
        found.append(domain.Proposal(p.kind, domain.parse_date(p.delivery_date), parts))
    return found


async def recheck(service, order: orders_pb2.Order, accept_proposal: str) -> list[domain.Reason]:
    """The reasons the order, approved as asked, would be held for now (stock and credit only)."""
    now = service.clock()
    lines = [
        domain.OrderLine(line.sku, line.quantity, Decimal(line.unit_price or "0")) for line in order.lines
    ]
    deliveries = domain.deliveries_to_check(
        lines, order.requested_delivery_date, accept_proposal, _proposals(order)
    )
    async with service.db.reading() as work:
        repo = work.repo(MasterDataRepository)
        customer = await service.masterdata.customer(repo, order.customer_id)
        if customer is None:
            raise errors.FailedPrecondition(
                f"customer {order.customer_id} is no longer known",
                rule="customer_unknown",
                subject=order.order_id,
            )
        products = await service.masterdata.products(repo, {line.sku for line in lines})
        book = await service.masterdata.book(work) if deliveries else None
        exposure = await work.repo(ExposureRepository).open_exposure(customer.customer_id)
    reasons: list[domain.Reason] = []
    today = now.astimezone(dt.UTC).date()
    for date, group in deliveries:
        if date < today or any(line.sku not in products for line in group):
            reasons.append(
                domain.Reason(
                    "delivery_date_infeasible", f"{date} can no longer be met", "requested_delivery_date"
                )
            )
            continue
        reasons += await service.date_reasons(date, group, products, book, order.ship_to.country, now)
    reasons += domain.credit_reasons(customer, order.payment_terms, domain.order_amount(lines), exposure)
    return reasons


async def approve_held(service, request: intake_pb2.ApproveHeldOrderRequest) -> orders_pb2.Order:
    errors.require(request.order_id, "order_id")
    order = await _ask(
        service, service.orders.GetOrder, orders_pb2.GetOrderRequest(order_id=request.order_id)
    )
    if order.status != "on_hold":
        raise errors.FailedPrecondition(
            f"only a held order can be approved; {order.order_id} is {order.status}",
            rule="approve_only_on_hold",
            subject=order.order_id,
        )
    if request.accept_proposal and request.accept_proposal not in {p.kind for p in order.proposals}:
        raise errors.FailedPrecondition(
            f"order {order.order_id} has no {request.accept_proposal} proposal",
            rule="no_such_proposal",
            subject=order.order_id,
        )
    found = await recheck(service, order, request.accept_proposal)
    new = domain.approval_findings([r.code for r in order.hold_reasons], found, list(request.acknowledge))
    if new:
        raise errors.FailedPrecondition(
            f"order {order.order_id} was not approved: since it was held, "
            + "; ".join(f"{r.code}: {r.message}" for r in new)
            + ". Approve again acknowledging these codes to go ahead.",
            rule="approval_recheck_failed",
            subject=order.order_id,
            violations=[errors.FieldViolation(r.field, r.message, r.code) for r in new],
        )
    note = request.actor.reason or "approved"
    still = sorted({r.code for r in found})
    note += f" (re-checked: {', '.join(still)} accepted)" if still else " (re-checked: stock and credit ok)"
    accepted = {r.code for r in order.hold_reasons} | set(request.acknowledge)
    booking = await book_credit(service, order, request.accept_proposal, accepted)
    try:
        return await _ask(
            service,
            service.orders.ApproveOrder,
            orders_pb2.OrderDecisionRequest(
                order_id=order.order_id,
                accept_proposal=request.accept_proposal,
                actor=common_pb2.Actor(id=request.actor.id, reason=note),
            ),
        )
    except BaseException:
        if booking is not None:
            async with service.db.transaction() as tx:
                await tx.repo(ExposureRepository).release_approval(booking)
        raise


async def book_credit(
    service, order: orders_pb2.Order, accept_proposal: str, accepted: set[str]
) -> ApprovalBooking | None:
    """Books the order's amount as the customer's open exposure before orders confirms it (the re-check
    only read the exposure): one conditional update per customer decides between approvals at once, and
    the one that would pass the limit is refused with credit_limit_exceeded and today's figures. An
    approver who accepted credit_limit_exceeded (the order was held for it, or it was acknowledged) books
    it whatever the limit. None when the order uses no credit (prepaid)."""
    lines = [
        domain.OrderLine(line.sku, line.quantity, Decimal(line.unit_price or "0")) for line in order.lines
    ]
    amount = Decimal(order.total_amount) if order.total_amount else domain.order_amount(lines)
    async with service.db.transaction() as tx:
        customer = await service.masterdata.customer(tx.repo(MasterDataRepository), order.customer_id)
        if customer is None or domain.credit_exempt(customer, order.payment_terms.upper()):
            return None
        exposure = tx.repo(ExposureRepository)
        limit = None if "credit_limit_exceeded" in accepted else customer.credit_limit
        booking = await exposure.book_approval(order.order_id, customer.customer_id, amount, limit)
        if booking is not None:
            return booking
        current = await exposure.open_exposure(customer.customer_id)
    reasons = domain.credit_reasons(customer, order.payment_terms.upper(), amount, current) or [
        domain.credit_race(customer)
    ]
    raise errors.FailedPrecondition(
        f"order {order.order_id} was not approved: {reasons[0].message} (other orders were approved "
        "meanwhile). Approve again acknowledging credit_limit_exceeded to go ahead.",
        rule="approval_recheck_failed",
        subject=order.order_id,
        violations=[errors.FieldViolation(r.field, r.message, r.code) for r in reasons],
    )


async def _ask(service, method, request):
    """A call to orders whose refusal (not found, not on hold, a lost race) is passed on as ours."""
    try:
        return await method(request, timeout=service.rpc_timeout, metadata=rpc.metadata())
    except grpc.RpcError as exc:
        raise rpc.passed_on(exc) from exc
