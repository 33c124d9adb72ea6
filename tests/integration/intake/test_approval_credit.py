"""An approval books its credit with the approval (SQLite and PostgreSQL): approvals at once cannot together
pass the customer's limit, an approver who accepted the excess books it anyway, and a booking orders did not
follow with a confirmation is undone unless an event of the order came since."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from services.intake.store import ExposureRepository
from tests.integration.intake.test_checks_service import deliver, exposure, order_event
from tests.integration.intake.test_intake_service import intake

LIMIT = Decimal(50000)  # C0001's


async def book(service, order_id: str, amount: str, limit: Decimal | None = LIMIT):
    async with service.db.transaction() as tx:
        return await tx.repo(ExposureRepository).book_approval(order_id, "C0001", Decimal(amount), limit)


async def release(service, booking) -> bool:
    async with service.db.transaction() as tx:
        return await tx.repo(ExposureRepository).release_approval(booking)


async def test_approvals_at_once_cannot_together_pass_the_limit(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-OLD", "confirmed", 2, "40000.00"))
    bookings = await asyncio.gather(*[book(service, f"ORD-{n}", "3000.00") for n in range(8)])
    assert sum(b is not None for b in bookings) == 3  # 40000 + 3 x 3000 fits in 50000, a fourth does not
    assert await exposure(service) == Decimal("49000.00")
    # A refused one booked nothing: its confirmation, if it came anyway, is counted once.
    refused = next(f"ORD-{n}" for n, b in enumerate(bookings) if b is None)
    async with service.db.read() as conn:
        assert await ExposureRepository(conn).get(refused) is None


async def test_an_accepted_excess_is_booked_and_its_confirmation_counts_it_once(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-OLD", "confirmed", 2, "49000.00"))
    assert await book(service, "ORD-BIG", "2000.00") is None
    assert await book(service, "ORD-BIG", "2000.00", limit=None) is not None
    assert await exposure(service) == Decimal("51000.00")
    await deliver(service, order_event("ORD-BIG", "confirmed", 4, "2000.00"))
    assert await exposure(service) == Decimal("51000.00")


async def test_a_booking_orders_did_not_confirm_is_undone(make_database):
    service = await intake(make_database)
    booking = await book(service, "ORD-A", "700.00")
    assert await exposure(service) == Decimal("700.00")
    assert await release(service, booking) and await exposure(service) == 0
    # Once the order's own event was applied, it says what the order uses: the release changes nothing.
    booking = await book(service, "ORD-B", "700.00")
    await deliver(service, order_event("ORD-B", "confirmed", 3, "700.00"))
    assert not await release(service, booking) and await exposure(service) == Decimal("700.00")


async def test_a_held_again_order_already_open_books_only_what_it_adds(make_database):
    service = await intake(make_database)
    await deliver(service, order_event("ORD-C", "confirmed", 2, "49000.00"))  # changed later, held again
    booking = await book(service, "ORD-C", "49500.00")
    assert booking is not None and await exposure(service) == Decimal("49500.00")
    assert await book(service, "ORD-C", "50001.00") is None and await exposure(service) == Decimal("49500.00")
    assert await release(service, booking) and await exposure(service) == Decimal("49000.00")
