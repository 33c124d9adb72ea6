"""Warehouses, the master data inventory owns: their codes, countries, calendars and transit days."""

from __future__ import annotations

from sqlalchemy import select

from orderdesk.calendar_store import warehouse_record
from orderdesk.db import upsert
from orderdesk.masterdata import Warehouse
from services.inventory.store.base import RepositoryBase
from services.inventory.store.tables import warehouses


class Warehouses(RepositoryBase):
    async def upsert_warehouse(self, values: dict) -> None:
        await self.conn.execute(
            upsert(self.dialect, warehouses, values, ["warehouse"], [k for k in values if k != "warehouse"])
        )

    async def warehouse_codes(self) -> set[str]:
        return set((await self.conn.execute(select(warehouses.c.warehouse))).scalars())

    async def warehouses(self) -> list[Warehouse]:
        rows = (await self.conn.execute(select(warehouses).order_by(warehouses.c.warehouse))).mappings()
        return [warehouse_record(row) for row in rows]
