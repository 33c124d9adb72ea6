"""A group's claims (IntakeService._claim) on a real database (SQLite and PostgreSQL): the partners'
references, credit and idempotency keys of many orders in a few multi-row statements, with the outcome
each order would have had alone, the group's orders one after another."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

from sqlalchemy import select

from orderdesk import errors, metrics
from orderdesk.v1 import intake_pb2
from services.intake.proto import submission_from_proto
from services.intake.service import Submitted
from services.intake.store import IdempotencyRepository, external_refs, idempotency_keys, order_exposure
from tests.integration.intake.test_checks_service import deliver, exposure, order_event
from tests.integration.intake.test_intake_service import intake
from tests.unit.intake.test_service import codes, request, submit


def lines(quantity: int) -> list[intake_pb2.SubmitLine]:
    return [intake_pb2.SubmitLine(sku="BRK-001", quantity=quantity, unit_price="31.57")]


async def prepared(make_database):
    """Intake with numbered order ids, 49000.00 of C0001's 50000 limit open, and reference PO-OLD sent."""
    service = await intake(make_database)
    numbers = itertools.count(1)
    service.new_order_id = lambda: f"ORD-{next(numbers):04d}"
    await deliver(service, order_event("ORD-OLD", "confirmed", 2, "49000.00"))
    assert not codes(await submit(service, request("K-OLD", external_ref="PO-OLD", customer_id="C0002")))
    return service


# One of each case, in an order that mixes customers: a reference twice in the group, a reference sent
# before, C0001 crossing its limit at its fourth order (3 x 315.70 fit in the 1000 left) and a smaller one
# after that still fits, an order held before the claims (price).
MIXED = [
    request("K-A", lines=lines(10)),
    request("K-B", customer_id="C0003", external_ref="PO-SHARED"),
    request("K-C", lines=lines(10)),
    request("K-D", customer_id="C0003", external_ref="PO-SHARED"),
    request("K-E", lines=lines(10)),
    request("K-F", lines=lines(10)),
    request("K-G", lines=lines(1)),
    request("K-H", customer_id="C0002", external_ref="PO-OLD"),
    request("K-I", lines=[intake_pb2.SubmitLine(sku="BRK-001", quantity=2, unit_price="1.00")]),
    request("K-J", customer_id="C0005"),
]


def outcome(answer) -> tuple:
    assert isinstance(answer, Submitted) and not answer.replayed
    return (
        answer.order.order_id,
        answer.order.status,
        [(r.code, r.message, r.field) for r in answer.order.hold_reasons],
    )


async def books(service) -> tuple:
    async with service.db.read() as conn:
        rows = [
            (await conn.execute(select(*table.c).order_by(*table.primary_key.columns))).all()
            for table in (order_exposure, external_refs)
        ]
        keys = (
            await conn.execute(
                select(idempotency_keys.c.idempotency_key, idempotency_keys.c.order_id).order_by(
                    idempotency_keys.c.idempotency_key
                )
            )
        ).all()
    strip = [
        [tuple(v for k, v in r._mapping.items() if k not in ("updated_at", "created_at")) for r in t]
        for t in rows
    ]
    totals = [await exposure(service, c) for c in ("C0001", "C0002", "C0003")]
    return strip, keys, totals


async def test_a_group_leaves_what_one_by_one_leaves(make_database):
    one_by_one, grouped = await prepared(make_database), await prepared(make_database)
    alone = [await submit(one_by_one, r) for r in MIXED]
    together = await grouped.submit_many([submission_from_proto(r) for r in MIXED])
    assert [outcome(a) for a in together] == [outcome(a) for a in alone]
    assert await books(grouped) == await books(one_by_one)

    by_key = {r.idempotency_key: a for r, a in zip(MIXED, together, strict=True)}
    assert [k for k, a in by_key.items() if codes(a)] == ["K-D", "K-F", "K-H", "K-I"]
    assert codes(by_key["K-D"]) == ["duplicate_external_ref"]  # the first of the group holds PO-SHARED
    assert by_key["K-B"].order.order_id in by_key["K-D"].order.hold_reasons[0].message
    assert codes(by_key["K-H"]) == ["duplicate_external_ref"]  # sent before the group
    assert codes(by_key["K-F"]) == ["credit_limit_exceeded"]  # met 49000 + 3 x 315.70
    assert "49947.1" in by_key["K-F"].order.hold_reasons[0].message
    assert await exposure(grouped) == Decimal("49978.67")  # K-G's 31.57 still fitted


async def test_a_groups_claims_take_a_few_statements_whatever_its_size(make_database):
    service = await prepared(make_database)
    claim, counted = service._claim, []

    async def counting(tx, planned):
        before = metrics.DB_STATEMENTS._value.get()
        done = await claim(tx, planned)
        counted.append((len(planned), metrics.DB_STATEMENTS._value.get() - before))
        return done

    service._claim = counting
    customers = ["C0002", "C0003", "C0005"]
    answers = await service.submit_many(
        [submission_from_proto(request(f"K-{n}", customer_id=customers[n % 3])) for n in range(12)]
    )
    assert all(not codes(a) for a in answers)
    # the references, the customers' totals, the orders' exposure rows, the keys
    assert counted == [(12, 4)]


async def test_a_group_reads_its_customers_open_totals_once(make_database):
    """Deciding a group reads every customer's open total in one statement, not one per order: with master
    data cached, a group of 12 orders of 3 customers costs the keys seen before, the totals, and its claims."""
    service = await prepared(make_database)
    customers = ["C0002", "C0003", "C0005"]

    def group(prefix: str) -> list:
        return [
            submission_from_proto(request(f"{prefix}-{n}", customer_id=customers[n % 3])) for n in range(12)
        ]

    assert all(not codes(a) for a in await service.submit_many(group("WARM")))  # master data cached
    before = metrics.DB_STATEMENTS._value.get()
    answers = await service.submit_many(group("K"))
    assert all(not codes(a) for a in answers)
    assert metrics.DB_STATEMENTS._value.get() - before == 1 + 1 + 4  # keys seen, totals, the claims


async def test_a_group_from_many_partners_reads_their_keys_at_once(make_database):
    """The gateway gathers single orders from any number of partners into one group: their keys seen before
    are one read whatever the partners, and a key is its partner's own (the same key from another partner
    is another order; from its own, a replay)."""
    service = await prepared(make_database)
    partners = [f"P-{n:02d}" for n in range(12)]
    first = await submit(service, request("K-SAME", partner="P-00", customer_id="C0003"))

    def group(prefix: str) -> list:
        return [
            submission_from_proto(request(f"{prefix}-{n}", partner=p, customer_id="C0002"))
            for n, p in enumerate(partners)
        ]

    assert all(not codes(a) for a in await service.submit_many(group("WARM")))  # master data cached
    before = metrics.DB_STATEMENTS._value.get()
    answers = await service.submit_many(group("K"))
    assert all(not codes(a) and not a.replayed for a in answers)
    assert metrics.DB_STATEMENTS._value.get() - before == 1 + 1 + 4  # keys seen, totals, the claims

    same_key = [
        submission_from_proto(request("K-SAME", partner=p, customer_id="C0003")) for p in partners[:3]
    ]
    replay, *others = await service.submit_many(same_key)
    assert replay.replayed and replay.order.order_id == first.order.order_id
    assert all(not a.replayed and not codes(a) for a in others)
    assert len({first.order.order_id, *(a.order.order_id for a in others)}) == 3
    async with service.db.read() as conn:
        holders = (
            await conn.execute(
                select(idempotency_keys.c.partner_id, idempotency_keys.c.order_id)
                .where(idempotency_keys.c.idempotency_key == "K-SAME")
                .order_by(idempotency_keys.c.partner_id)
            )
        ).all()
    assert [tuple(h) for h in holders] == [
        ("P-00", first.order.order_id),
        *((p, a.order.order_id) for p, a in zip(partners[1:3], others, strict=True)),
    ]


async def test_a_customer_near_its_limit_costs_one_statement_more(make_database):
    service = await prepared(make_database)
    claim, counted = service._claim, []

    async def counting(tx, planned):
        before = metrics.DB_STATEMENTS._value.get()
        done = await claim(tx, planned)
        counted.append(metrics.DB_STATEMENTS._value.get() - before)
        return done

    service._claim = counting
    answers = await service.submit_many(
        [submission_from_proto(request(f"K-{n}", lines=lines(10))) for n in range(5)]
    )
    assert [codes(a) for a in answers] == [[], [], [], ["credit_limit_exceeded"], ["credit_limit_exceeded"]]
    assert counted == [5]  # booked as if nothing were open, then put right on what was
    assert await exposure(service) == Decimal("49947.10")


async def test_a_key_claimed_meanwhile_undoes_the_groups_claims(make_database, monkeypatch):
    """A key claimed after the group's look-up (another replica's request): the group's references, credit
    bookings and keys are undone and its orders go one by one, each as it would alone."""
    service = await prepared(make_database)
    first = await submit(service, request("K-RACE"))

    async def nothing_seen(self, keys):  # as if K-RACE were claimed after the look-up
        return set()

    monkeypatch.setattr(IdempotencyRepository, "seen", nothing_seen)
    before = await exposure(service, "C0003")
    answers = await service.submit_many(
        [
            submission_from_proto(r)
            for r in (
                request("K-1", customer_id="C0003"),
                request("K-RACE"),
                request("K-2", customer_id="C0003"),
                request("K-RACE", customer_id="C0003"),  # another body under the key: refused
            )
        ]
    )
    fresh, replay, other, reused = answers
    assert replay.replayed and replay.order.order_id == first.order.order_id
    assert isinstance(reused, errors.InvalidArgument)
    assert not codes(fresh) and not codes(other)  # their references were not left claimed by the undone group
    assert await exposure(service, "C0003") == before + 2 * Decimal("63.14")
    async with service.db.read() as conn:
        held = (await conn.execute(select(order_exposure.c.order_id))).scalars().all()
        refs = (await conn.execute(select(external_refs.c.order_id))).scalars().all()
    assert fresh.order.order_id in held and other.order.order_id in held
    assert len(held) == 5  # ORD-OLD, K-OLD's, K-RACE's and the two new ones: nothing of the undone group
    assert fresh.order.order_id in refs and other.order.order_id in refs
    assert len(refs) == 4  # PO-OLD, PO-K-RACE, PO-K-1, PO-K-2


async def test_two_groups_at_once_cannot_overshoot_a_limit_together(make_database):
    """Two replicas' groups for one customer with room for 3 of their 6 orders: the second to book waits for
    the first's lock and then books on its total, so 3 are approved in all."""
    service = await prepared(make_database)
    groups = [[request(f"G{g}-{n}", lines=lines(10)) for n in range(3)] for g in range(2)]
    answers = await asyncio.wait_for(
        asyncio.gather(*(service.submit_many([submission_from_proto(r) for r in g]) for g in groups)), 10
    )
    held = [codes(a) for group in answers for a in group if codes(a)]
    assert len(held) == 3 and all(c == ["credit_limit_exceeded"] for c in held)
    assert await exposure(service) == Decimal("49947.10")
