"""Many orders in one request (a JSON batch or a CSV upload): each order on its own, one intake stream for all.

Plain Python except `submit`: every order is checked alone (pydantic here, the
business rules in intake), so a bad one is refused with its own field paths and
the others go on. The valid ones travel in one intake.SubmitOrders call (one message each way, not one per
order as a stream would be).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from gateway import csv_orders
from gateway.backends import Backends
from gateway.bodies import HoldReason
from gateway.order_models import BatchAnswer, BatchError, BatchOrder, BatchResult, OrderSubmission
from gateway.problems import FieldError, field_path
from orderdesk.v1 import intake_pb2


@dataclass
class Pending:
    """One order of a batch: the request for intake, or why it was refused before intake saw it."""

    index: int
    request: intake_pb2.SubmitOrderRequest | None
    errors: list[FieldError] = field(default_factory=list)
    external_ref: str | None = None  # CSV uploads name each order by it
    where: Callable[[str], str] = lambda path: path  # an intake field path as the partner's path


def _pydantic_errors(exc: ValidationError, where: Callable[[str], str]) -> list[FieldError]:
    return [FieldError(where(field_path(e["loc"]) if e["loc"] else ""), e["msg"]) for e in exc.errors()]


def from_batch(partner_id: str, raw_orders: Sequence[Any], actor: str = "") -> list[Pending]:
    pending = []
    for index, raw in enumerate(raw_orders):
        prefix = f"orders[{index}]"

        def where(path: str, prefix: str = prefix) -> str:
            return f"{prefix}.{path}" if path else prefix

        try:
            order = BatchOrder.model_validate(raw)
        except ValidationError as exc:
            pending.append(Pending(index, None, _pydantic_errors(exc, where), where=where))
            continue
        pending.append(
            Pending(
                index,
                order.to_proto(partner_id, order.idempotency_key, channel="batch", actor=actor),
                where=where,
            )
        )
    return pending


def csv_key(idempotency_key: str, external_ref: str) -> str:
    """One upload's key per order: the same file with the same header creates nothing new."""
    return f"{idempotency_key}:{external_ref}"


def from_csv(
    partner_id: str, idempotency_key: str, orders: Sequence[csv_orders.CsvOrder], actor: str = ""
) -> list[Pending]:
    pending = []
    for index, parsed in enumerate(orders):

        def where(path: str, parsed: csv_orders.CsvOrder = parsed) -> str:
            return "Idempotency-Key" if path == "idempotency_key" else parsed.row_path(path)

        if parsed.errors:
            pending.append(
                Pending(index, None, csv_orders.field_errors(parsed.errors), parsed.external_ref, where)
            )
            continue
        try:
            order = OrderSubmission.model_validate(parsed.body)
        except ValidationError as exc:
            pending.append(Pending(index, None, _pydantic_errors(exc, where), parsed.external_ref, where))
            continue
        request = order.to_proto(
            partner_id, csv_key(idempotency_key, parsed.external_ref), channel="csv", actor=actor
        )
        pending.append(Pending(index, request, external_ref=parsed.external_ref, where=where))
    return pending


def refused(p: Pending, code: str, errors: list[FieldError]) -> BatchResult:
    return BatchResult(
        index=p.index,
        external_ref=p.external_ref,
        status="refused",
        error_code=code,
        errors=[BatchError(field=e.field, message=e.message) for e in errors],
    )


def result(p: Pending, answer: intake_pb2.SubmitOrderResult) -> BatchResult:
    """intake's answer for one order, in the partner's terms."""
    if answer.HasField("accepted"):
        a = answer.accepted
        return BatchResult(
            index=p.index,
            external_ref=p.external_ref,
            status="accepted",
            order_id=a.order_id,
            order_status=a.status,
            replayed=a.replayed,
            hold_reasons=[HoldReason.from_proto(r) for r in a.hold_reasons],
        )
    errors = [FieldError(p.where(e.field), e.message) for e in answer.errors]
    return refused(p, answer.error_code, errors or [FieldError(p.where(""), answer.error_message)])


def answer(pending: Sequence[Pending], answers: Sequence[intake_pb2.SubmitOrderResult]) -> BatchAnswer:
    """Each order's result in batch order; `answers` are intake's, in the order the valid requests were sent."""
    by_position = iter(answers)
    results = [
        refused(p, "INVALID_ARGUMENT", p.errors) if p.request is None else result(p, next(by_position))
        for p in pending
    ]
    accepted = sum(r.status == "accepted" for r in results)
    return BatchAnswer(results=results, accepted=accepted, refused=len(results) - accepted)


async def submit(services: Backends, pending: Sequence[Pending]) -> BatchAnswer:
    requests = [p.request for p in pending if p.request is not None]
    if requests:
        batch = intake_pb2.SubmitOrdersRequest(orders=requests)
        answers = list((await services.batch(services.intake.SubmitOrders, batch, len(requests))).results)
    else:
        answers = []
    if len(answers) != len(requests) or any(a.index != n for n, a in enumerate(answers)):
        raise RuntimeError(f"intake answered {len(answers)} results for {len(requests)} orders")
    return answer(pending, answers)
