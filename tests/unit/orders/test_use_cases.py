"""Change requests and exception resolutions as use cases, against a fake unit of work: the order in
memory (FakeOrders), inventory and intake faked. Storage itself is tested in tests/integration/orders."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

import pytest

from orderdesk import errors
from orderdesk.domain import address_dict
from orderdesk.v1 import common_pb2, inventory_pb2, orders_pb2
from services.orders import change_requests
from services.orders import exceptions as ex
from services.orders.change_requests import ChangeRequests
from services.orders.changes import ChangeRequest
from services.orders.domain import Allocation, Line, Order, ShipmentView, Status
from services.orders.exception_resolutions import ExceptionResolutions
from services.orders.kpi.store import KpiLedger
from services.orders.service import OrdersService
from services.orders.store import OrderRepository
from tests.integration.orders.test_desk import FakeIntake, FakeInventory, change, create
from tests.unit.fakes import FakeDatabase

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


class FakeOrders:
    """OrderRepository in memory: a use case loads a copy, and saving checks the version it loaded."""

    def __init__(self) -> None:
        self.saved: dict[str, Order] = {}

    def _keep(self, order: Order) -> None:
        kept = copy.deepcopy(order)
        kept.transitions, kept.events, kept.lines_changed = [], [], False
        kept.loaded_version = kept.version
        self.saved[order.order_id] = kept

    async def get(self, order_id: str, partner_id: str = "") -> Order | None:
        order = self.saved.get(order_id)
        if order is None or (partner_id and order.partner_id != partner_id):
            return None
        return copy.deepcopy(order)

    async def save(self, order: Order) -> None:
        if self.saved[order.order_id].version != order.loaded_version:
            raise errors.Conflict(f"order {order.order_id} was changed concurrently; retry")
        self._keep(order)

    async def add(self, order: Order) -> None:
        assert order.order_id not in self.saved
        self._keep(order)


def placed(repo: FakeOrders, order_id: str, *, reserved: list[Allocation] | None = None) -> Order:
    """The order `create(order_id)` describes, confirmed (and allocated when `reserved` is given)."""
    req = create(order_id)
    order = Order.receive(
        at=NOW,
        actor=req.partner_id,
        hold_reasons=[],
        order_id=req.order_id,
        partner_id=req.partner_id,
        channel=req.channel,
        external_ref=req.external_ref,
        customer_id=req.customer_id,
        ship_to=address_dict(req.ship_to),
        lines=[Line(line.sku, line.quantity, Decimal(line.unit_price)) for line in req.lines],
        requested_delivery_date=req.requested_delivery_date,
        payment_terms=req.payment_terms,
        currency=req.currency,
        priority=req.priority,
    )
    if reserved is not None:
        order.apply_reservation(NOW, reserved, {})
    repo._keep(order)
    return repo.saved[order_id]


@pytest.fixture
def repo() -> FakeOrders:
    return FakeOrders()


@pytest.fixture
def db(repo) -> FakeDatabase:
    return FakeDatabase({OrderRepository: repo})


def use_cases(db: FakeDatabase, inventory, **clients) -> tuple[ChangeRequests, ExceptionResolutions]:
    orders = OrdersService(db, clock=lambda: NOW)
    changes = ChangeRequests(orders, inventory, 1.0, **clients)
    return changes, ExceptionResolutions(orders, inventory, 1.0, change_requests=changes)


async def test_change_is_saved_with_before_after_and_published(db, repo):
    intake = FakeIntake()
    changes, _ = use_cases(db, FakeInventory({}), intake=intake)
    order = placed(repo, "ORD-C1")
    changed = await changes.change(
        change(
            "ORD-C1",
            order.version,
            lines=[orders_pb2.ChangeLine(sku="A", quantity=5)],
            remove_lines=["B"],
            add_lines=[orders_pb2.ChangeLine(sku="C", quantity=1, unit_price="2.00")],
        )
    )
    loaded = repo.saved["ORD-C1"]
    assert [(x.sku, x.quantity) for x in loaded.lines] == [("A", 5), ("C", 1)]
    assert loaded.version == changed.version == order.version + 1
    assert {(c.field, c.before, c.after) for c in loaded.change_log[0].changes} == {
        ("lines[A].quantity", "2", "5"),
        ("lines[B]", "1 x 1.00", ""),
        ("lines[C]", "", "1 x 2.00"),
    }
    assert intake.requests and [(a.sku, a.quantity) for a in intake.requests[0].added] == [("A", 3), ("C", 1)]
    assert intake.requests[0].previous_total == "7.50"
    event = db.events[-1]
    assert event.type == "order.changed" and event.aggregate_version == loaded.version
    assert {c.field for c in event.order.changes} == {"lines[A].quantity", "lines[B]", "lines[C]"}
    assert event.order.order.lines[0].quantity == 5


async def test_stale_version_and_failed_review_change_nothing(db, repo):
    changes, _ = use_cases(
        db,
        FakeInventory({}),
        intake=FakeIntake([common_pb2.Reason(code="credit_limit_exceeded", message="too much")]),
    )
    order = placed(repo, "ORD-C2")
    with pytest.raises(errors.FailedPrecondition) as stale:
        await changes.change(
            change("ORD-C2", order.version - 1, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)])
        )
    assert stale.value.rule == "stale_version"
    with pytest.raises(errors.FailedPrecondition) as refused:
        await changes.change(
            change("ORD-C2", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=9)])
        )
    assert refused.value.rule == "change_fails_check" and "credit_limit_exceeded" in refused.value.message
    loaded = repo.saved["ORD-C2"]
    assert loaded.version == order.version and loaded.lines[0].quantity == 2 and not loaded.change_log
    # A decrease needs no review: accepted.
    await changes.change(change("ORD-C2", order.version, lines=[orders_pb2.ChangeLine(sku="A", quantity=1)]))


async def test_exception_lifecycle_and_reallocation(db, repo):
    inventory = FakeInventory({"A": 2, "B": 1})
    _, resolutions = use_cases(db, inventory)
    placed(repo, "ORD-C5", reserved=[Allocation("A", "W1", 2), Allocation("B", "W1", 1)])
    order = await resolutions.record(
        orders_pb2.RecordExceptionRequest(
            order_id="ORD-C5",
            actor=common_pb2.Actor(id="P-3PL"),
            type="stock_shortage_at_pick",
            cause="bin empty",
            sku="A",
            warehouse="W1",
            quantity=2,
            expected_date="2026-12-24",
            source="warehouse",
        )
    )
    assert order.at_risk and order.exceptions[0].source == "warehouse"
    loaded = repo.saved["ORD-C5"]
    assert loaded.at_risk and loaded.exceptions[0].expected_date == "2026-12-24"
    eid = loaded.exceptions[0].exception_id
    resolved = await resolutions.resolve(
        orders_pb2.ResolveExceptionRequest(
            order_id="ORD-C5", exception_id=eid, actor=common_pb2.Actor(id="desk"), action="reallocate"
        )
    )
    assert not resolved.at_risk
    assert {(a.sku, a.warehouse, a.quantity) for a in resolved.allocations} == {("A", "W2", 2)}
    types = [e.type for e in db.events]
    assert types[-3:] == ["order.exception", "order.changed", "order.exception"]
    last = db.events[-1]
    assert (
        last.order.exception.status == "resolved" and last.order.exception.resolution.action == "reallocate"
    )
    with pytest.raises(errors.InvalidArgument):
        await resolutions.record(
            orders_pb2.RecordExceptionRequest(
                order_id="ORD-C5", type="lost_parcel", cause="gone", shipment_id="SHP-NOPE"
            )
        )


async def test_an_exception_recorded_again_with_its_key_is_recorded_once(db, repo):
    _, resolutions = use_cases(db, FakeInventory({}))
    placed(repo, "ORD-C9")
    req = orders_pb2.RecordExceptionRequest(
        order_id="ORD-C9",
        type="production_delay",
        cause="late",
        expected_date="2027-01-01",
        idempotency_key="k-1",
    )
    first = await resolutions.record(req)
    again = await resolutions.record(req)
    assert [e.exception_id for e in again.exceptions] == [e.exception_id for e in first.exceptions]
    assert again.version == first.version
    other = await resolutions.record(
        orders_pb2.RecordExceptionRequest(
            order_id="ORD-C9", type="production_delay", cause="later", idempotency_key="k-2"
        )
    )
    assert len(other.exceptions) == 2


async def test_the_orders_events_are_counted_once_committed_and_not_when_rolled_back(db, repo):
    from orderdesk import metrics
    from services.orders.service import publish_transitions

    def counted() -> tuple[float, float]:
        return (
            metrics.ORDER_CHANGES.labels("accepted")._value.get(),
            metrics.ORDER_EXCEPTIONS.labels("production_delay", "opened")._value.get(),
        )

    order = placed(repo, "ORD-M1")
    order.change(ChangeRequest(quantities={"A": 1}), at=NOW, actor="P")
    order.record_exception(
        ex.OrderException.create(
            exception_id="EX-M", type="production_delay", cause="late", at=NOW, actor="desk"
        )
    )
    before = counted()
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await publish_transitions(tx, order)
            raise RuntimeError("the save failed after the events were written")
    assert counted() == before and db.events == []
    async with db.transaction() as tx:
        await publish_transitions(tx, order)
    assert counted() == (before[0] + 1, before[1] + 1)
    assert [(e.type, e.aggregate_version) for e in db.events] == [
        ("order.changed", order.version - 1),
        ("order.exception", order.version),
    ]
    assert (
        db.events[0].order.changes[0].field == "lines[A].quantity"
        and db.events[1].order.exception.cause == "late"
    )


# --- the remainder of a partially shipped order -------------------------------------------------------------
class BookingInventory:
    """Inventory's Reserve as target state per SKU (one warehouse each): the units of a parcel that left count
    towards the order once inventory has booked it, which happens only after `books_after` Reserve calls
    (shipping's event still on its way)."""

    def __init__(
        self, held: dict[tuple[str, str], int], parcel: dict[tuple[str, str], int], books_after: int
    ):
        self.held, self.parcel, self.books_after = dict(held), dict(parcel), books_after
        self.shipped: dict[str, int] = {}
        self.calls: list = []

    async def Reserve(self, request, timeout=None, metadata=None):
        self.calls.append({x.sku: x.quantity for x in request.lines})
        if len(self.calls) > self.books_after and self.parcel:
            for (sku, wh), units in self.parcel.items():
                self.held[(sku, wh)] -= units
                self.shipped[sku] = self.shipped.get(sku, 0) + units
            self.parcel = {}
        wanted = self.calls[-1]
        for sku, wh in list(self.held):
            self.held[(sku, wh)] = max(wanted.get(sku, 0) - self.shipped.get(sku, 0), 0)
        return inventory_pb2.ReserveResponse(
            reservations=[
                inventory_pb2.Reservation(sku=sku, warehouse=wh, quantity=q)
                for (sku, wh), q in sorted(self.held.items())
                if q
            ]
        )


class FakeLedger:
    def __init__(self) -> None:
        self.rows: list = []

    async def record(self, order_id: str, facts, *, count_new: bool = False) -> int:
        self.rows += [(order_id, f) for f in facts]
        return len(facts)


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def db_with_ledger(repo, ledger) -> FakeDatabase:
    return FakeDatabase({OrderRepository: repo, KpiLedger: ledger})


def partly_shipped(repo: FakeOrders, order_id: str) -> Order:
    """A x2 left W1; B x1 waits in W2, not yet picked."""
    placed(repo, order_id, reserved=[Allocation("A", "W1", 2), Allocation("B", "W2", 1)])
    order = repo.saved[order_id]
    order.record_shipment(NOW, ShipmentView("S1", "W1", "shipped", lines={"A": 2}))
    order.record_shipment(NOW, ShipmentView("S2", "W2", "pending", lines={"B": 1}))
    assert order.status is Status.PARTIALLY_SHIPPED
    repo._keep(order)
    return repo.saved[order_id]


async def test_cancelling_the_remainder_waits_for_inventory_to_book_the_parcel_then_releases_once(
    db_with_ledger, repo, ledger, monkeypatch
):
    db = db_with_ledger
    monkeypatch.setattr(change_requests, "BOOKING_WAITS", (0, 0, 0))
    inventory = BookingInventory({("A", "W1"): 2, ("B", "W2"): 1}, {("A", "W1"): 2}, books_after=2)
    changes, _ = use_cases(db, inventory)
    order = partly_shipped(repo, "ORD-R1")
    done = await changes.cancel_remainder("ORD-R1", "P-SHOP", order.version, "P-SHOP", "customer_request")
    # Two probes found the parcel's units still held; the third saw them booked; then the release.
    assert inventory.calls == [{"A": 2, "B": 1}] * 3 + [{"A": 2}]
    assert inventory.held == {("A", "W1"): 0, ("B", "W2"): 0} and inventory.shipped == {"A": 2}
    saved = repo.saved["ORD-R1"]
    assert saved.status is Status.SHIPPED and done.status is Status.SHIPPED
    assert [(x.sku, x.quantity, x.shipped) for x in saved.lines] == [("A", 2, 2)]
    assert saved.allocations == [Allocation("A", "W1", 2)]  # what it was given, the shipped units
    assert [(e.type, e.order.order.status) for e in db.events][-2:] == [
        ("order.shipped", "shipped"),
        ("order.changed", "shipped"),
    ]
    # The desk's numbers: B's unit cancelled by a change, not the order (its shipped units stay).
    assert [(f.kind, f.sku, f.quantity, f.ref[:8]) for _, f in ledger.rows] == [
        ("cancelled", "B", 1, "change-v")
    ]


async def test_a_remainder_change_before_inventory_booked_the_parcel_is_refused_and_releases_nothing(
    db, repo, monkeypatch
):
    monkeypatch.setattr(change_requests, "BOOKING_WAITS", (0,))
    inventory = BookingInventory({("A", "W1"): 2, ("B", "W2"): 1}, {("A", "W1"): 2}, books_after=99)
    changes, _ = use_cases(db, inventory)
    order = partly_shipped(repo, "ORD-R2")
    with pytest.raises(errors.Unavailable):
        await changes.cancel_remainder("ORD-R2", "P-SHOP", 0, "P-SHOP", "")
    assert all(call == {"A": 2, "B": 1} for call in inventory.calls)  # only probes: nothing released
    assert repo.saved["ORD-R2"].version == order.version
