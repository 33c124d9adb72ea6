"""The notifier's part of erasing a customer's personal data (orderdesk/erasure.py runs it; README
"Personal data").

Orders decides which orders may be erased; the notifier erases the partners' feed entries of the orders it
is given (`feed.body`: the order as it was, its ship-to, the change log's addresses). Deliveries and their
attempts carry no body (a delivery sends its feed entry; an attempt keeps the receiver's answer only), so a
replay after the erasure sends the erased entry.
"""

from __future__ import annotations

import datetime as dt

from orderdesk import erasure
from orderdesk.db import Database
from services.notifier.store import NotifierRepository


class NotifierErasure:
    def __init__(self, db: Database):
        self.db = db

    async def erase(self, request: erasure.Request) -> erasure.Report:
        async def work(tx, request: erasure.Request, now: dt.datetime) -> erasure.Outcome:
            feed = await tx.repo(NotifierRepository).erase_entries(
                list(request.order_ids), request.customer_id
            )
            return erasure.Outcome(
                erased={"feed": feed}, order_ids=request.order_ids, whole_customer=request.whole_customer
            )

        return await erasure.erase(self.db, "notifier", request, work)
