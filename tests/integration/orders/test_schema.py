"""The orders service's tables as its models (services/orders/store.py) say and as its migrations make them
are indexed alike (SQLite and PostgreSQL): the same indexes, columns and predicates (partial indexes)."""

from __future__ import annotations

import re

from sqlalchemy import text

from services.orders.store import metadata
from tests.integration.orders.test_search import MIGRATIONS

TABLES = ("orders", "order_lines", "order_warehouses", "order_skus", "order_history")


async def test_the_models_indexes_are_the_migrations(make_database):
    db = await make_database(MIGRATIONS)
    async with db.begin() as conn:
        if db.dialect == "postgresql":
            await conn.execute(text("CREATE SCHEMA models"))
            models = await conn.execution_options(schema_translate_map={None: "models"})
            await models.run_sync(
                lambda c: metadata.create_all(c, tables=[metadata.tables[t] for t in TABLES])
            )
            found = await conn.execute(
                text("SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE tablename = ANY(:t)"),
                {"t": list(TABLES)},
            )
            made = {(s, n): d.replace(f" {s}.", " ") for s, n, d in found}
            migrated = {n: d for (s, n), d in made.items() if s == "public"}
            modelled = {n: d for (s, n), d in made.items() if s == "models"}
        else:
            await conn.execute(text("ATTACH DATABASE ':memory:' AS models"))
            models = await conn.execution_options(schema_translate_map={None: "models"})
            await models.run_sync(
                lambda c: metadata.create_all(c, tables=[metadata.tables[t] for t in TABLES])
            )
            query = (
                "SELECT name, sql FROM {}.sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({', '.join(repr(t) for t in TABLES)})"
            )

            def normal(sql: str) -> str:
                return re.sub(r"\s+", " ", sql.replace('"', "").replace("models.", ""))

            migrated = {n: normal(d) for n, d in await conn.execute(text(query.format("main")))}
            modelled = {n: normal(d) for n, d in await conn.execute(text(query.format("models")))}
            await conn.execute(text("DETACH DATABASE models"))
    assert "ix_orders_risk_key" in migrated
    assert modelled == migrated
