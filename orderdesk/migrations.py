"""Alembic for every service, run at start-up and from each service's migrations/env.py.

Each service keeps its own migrations/ folder (its schema is its own); the
env.py there is two lines that call `run_env` below with the service's metadata.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATION_LOCK_KEY = 0x6F72646D6967  # "ordmig": one lock per database, held until the migration commits


def alembic_config(migrations_dir: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(engine: AsyncEngine, migrations_dir: Path) -> None:
    cfg = alembic_config(migrations_dir, str(engine.url.render_as_string(hide_password=False)))

    def _run(connection):
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Replicas start together: one migrates while the others wait here, then find nothing to do.
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        await conn.run_sync(_run)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's migrations/env.py (online mode; offline SQL with --sql)."""
    config = context.config
    connection = config.attributes.get("connection")

    def _configure_and_run(conn) -> None:
        context.configure(
            connection=conn,
            target_metadata=target_metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
        )
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        _configure_and_run(connection)
    else:  # the alembic command line: make our own async engine
        import asyncio

        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("alembic: set sqlalchemy.url (the service's database URL)")

        async def _main():
            engine = create_async_engine(url, poolclass=pool.NullPool, hide_parameters=True)
            async with engine.begin() as conn:
                await conn.run_sync(_configure_and_run)
            await engine.dispose()

        asyncio.run(_main())
