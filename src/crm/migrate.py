"""Applying migrations programmatically, safely from several instances at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from crm.db import async_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every instance of this service.
_MIGRATION_LOCK_KEY = 0x43524D5F4D494752  # "CRM_MIGR"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s")
    if database_url:
        config.attributes["database_url"] = database_url
    return config


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    """Upgrade under a transaction-scoped advisory lock: concurrent starters wait, then find nothing to do."""

    def _run(sync_conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_conn
        command.upgrade(config, revision)

    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    asyncio.run(upgrade_async(database_url, revision))
