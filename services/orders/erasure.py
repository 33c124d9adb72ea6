"""Orders' part of erasing a customer's personal data (orderdesk/erasure.py runs it; README "Personal data").

Orders decides: it knows when each order closed, so it applies the retention rule
(orderdesk/personal_data.plan, ORDERDESK_PERSONAL_DATA_RETENTION_DAYS) and names the orders erased, which the
caller hands to intake and the notifier. What it erases, per order, where the order is (the hot tables or,
archived, their `archived_*` mirrors: in place, an archived order stays archived): `ship_to` and the address
fields of `change_log` (with the values taken out of its reasons and of the exceptions' causes and notes),
the same values in the free-text reasons beside it (`order_history.reason`, `order_facts.reason` and their
archive mirrors), and the order's events in the outbox (published or pending). Lines, quantities, amounts,
statuses, dates and the KPI ledger's figures are left as they are.
"""

from __future__ import annotations

import datetime as dt

from orderdesk import erasure, personal_data
from orderdesk.db import Database
from services.orders.store import OrderRepository


class OrdersErasure:
    def __init__(self, db: Database, retention_days: float):
        """`retention_days`: ORDERDESK_PERSONAL_DATA_RETENTION_DAYS (orderdesk.config), read at start-up."""
        self.db = db
        self.retention = dt.timedelta(days=retention_days)

    async def erase(self, request: erasure.Request) -> erasure.Report:
        retention = self.retention

        async def work(tx, request: erasure.Request, now: dt.datetime) -> erasure.Outcome:
            repo = tx.repo(OrderRepository)
            decided = personal_data.plan(
                await repo.closures_of_customer(request.customer_id),
                now=now,
                retention=retention,
                scope=request.scope,
            )
            erased = {"orders": 0, "archived_orders": 0, "reasons": 0}
            for order in await repo.get_wherever(list(decided.erase)):
                found = order.erase_personal_data()
                if found:
                    await repo.save_erasure(order)
                    erased["archived_orders" if order.archived else "orders"] += 1
                    erased["reasons"] += await repo.scrub_reasons(
                        order, lambda text, found=found: personal_data.scrub(text, found)
                    )
            outbox = await erasure.erase_outbox(tx, decided.erase, request.customer_id)
            return erasure.Outcome(
                erased={**erased, "outbox": outbox},
                order_ids=decided.erase,
                kept=decided.kept,
                whole_customer=decided.whole_customer,
            )

        return await erasure.erase(self.db, "orders", request, work)
