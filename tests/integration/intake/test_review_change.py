"""intake.ReviewChange on a real database (SQLite and PostgreSQL): the credit check of a change request
reads the exposure that orders' events stored. The other checks run on a fake unit of work in
tests/unit/intake/test_review.py."""

from __future__ import annotations

from services.intake.review import review_change
from tests.integration.intake.test_intake_service import intake
from tests.unit.intake.test_review import changed, open_order, review


async def test_credit_counts_the_new_total_not_the_old_one_twice(make_database):
    service = await intake(make_database)
    await open_order(service, "40000.00")  # the order as it was, already in the customer's exposure
    grown = changed([("BRK-001", 1425, "31.57")])  # 44,987.25: within 50,000 once the old 40,000 is taken out
    assert await review_change(service, review(grown, [("BRK-001", 100)], "40000.00")) == []
    too_much = changed([("BRK-001", 1700, "31.57")])  # 53,669
    codes = [r.code for r in await review_change(service, review(too_much, [("BRK-001", 375)], "40000.00"))]
    assert codes == ["credit_limit_exceeded"]


async def test_what_is_paid_of_a_changed_order_uses_no_credit(make_database):
    from decimal import Decimal

    from services.intake.store import ExposureRepository

    service = await intake(make_database)
    await open_order(service, "40000.00")
    async with service.db.transaction() as tx:  # finance reported 30,000 paid
        await tx.repo(ExposureRepository).settle(
            "ORD-R1", "C0001", Decimal("40000.00"), invoiced=Decimal(0), settled=Decimal("30000.00")
        )
    # 53,669 ordered, 30,000 of it paid: 23,669 on the credit, within 50,000 (counted as 40,000 before).
    too_much_unpaid = changed([("BRK-001", 1700, "31.57")])
    assert await review_change(service, review(too_much_unpaid, [("BRK-001", 375)], "40000.00")) == []
    huge = changed([("BRK-001", 2600, "31.57")])  # 82,082 - 30,000 = 52,082 > 50,000
    codes = [r.code for r in await review_change(service, review(huge, [("BRK-001", 1275)], "40000.00"))]
    assert codes == ["credit_limit_exceeded"]
