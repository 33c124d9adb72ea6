"""Intake's part of erasing a customer's personal data (orderdesk/erasure.py runs it; README "Personal data").

Orders decides which orders may be erased (it knows when each closed); intake erases the stored requests of
the orders it is given (`idempotency_keys.create_request`: the ship-to a replay would re-send) and, when
nothing of the customer stays (`whole_customer`), the customer's master record (`customers`: name, e-mail,
phone, address lines; the country, tier, terms and credit limit stay, and so does the open exposure).
A later import of the customer writes whatever the file holds again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from orderdesk import erasure, errors
from orderdesk.db import Database
from services.intake.store import IdempotencyRepository, MasterDataRepository


class IntakeErasure:
    def __init__(self, db: Database, on_erased: Callable[[], None] = lambda: None):
        self.db = db
        self.on_erased = on_erased  # clears the master data cache: an erased name is not served from memory

    async def erase(self, request: erasure.Request) -> erasure.Report:
        async def work(tx, request: erasure.Request, now: dt.datetime) -> erasure.Outcome:
            customers = 0
            if request.whole_customer:
                erased = await tx.repo(MasterDataRepository).erase_customer(request.customer_id)
                if erased is None and not request.order_ids:
                    raise errors.NotFound(f"customer {request.customer_id} is not known")
                customers = erased or 0
            requests = await tx.repo(IdempotencyRepository).erase_requests(
                list(request.order_ids), request.customer_id
            )
            return erasure.Outcome(
                erased={"customers": customers, "idempotency_keys": requests},
                order_ids=request.order_ids,
                whole_customer=request.whole_customer,
            )

        report = await erasure.erase(self.db, "intake", request, work)
        self.on_erased()
        return report
