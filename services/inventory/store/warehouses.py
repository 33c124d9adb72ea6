"""Warehouses, the master data inventory owns: their codes, countries and transit days."""

from __future__ import annotations

from sqlalchemy import select

from orderdesk.db import upsert
from services.inventory.store.base import RepositoryBase
from services.inventory.store.tables import warehouses


class Warehouses(RepositoryBase):
    async def upsert_warehouse(self, values: dict) -> None:
        await self.conn.execute(
            upsert(self.dialect, warehouses, values, ["warehouse"], [k for k in values if k != "warehouse"])
        )

    async def warehouse_codes(self) -> set[str]:
        return set((await self.conn.execute(select(warehouses.c.warehouse))).scalars())

    async def warehouse_rows(self) -> list:
        return list(
            await self.conn.execute(
                select(
                    warehouses.c.warehouse,
                    warehouses.c.country,
                    warehouses.c.transit_days_domestic,
                    warehouses.c.transit_days_international,
                ).order_by(warehouses.c.warehouse)
            )
        )
