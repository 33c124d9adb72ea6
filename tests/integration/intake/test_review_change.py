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
