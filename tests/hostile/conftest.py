"""A CRM served by a real uvicorn over one database per module, for the tests that must send
bytes no client library would (literal `..` in paths, megabytes of headers)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from crm.config import Settings
from crm.main import create_app
from tests.conftest import TEST_JWT_SECRET, _asyncpg_dsn
from tests.helpers import TokenFactory
from tests.hostile.support import live_server


def hostile_settings(data_dir: Path) -> Settings:
    return Settings(jwt_secret=TEST_JWT_SECRET, CRM_DATA_DIR=data_dir, log_format="json", rate_limit_per_minute=0)


@dataclass(frozen=True)
class Live:
    port: int
    database_url: str
    tokens: TokenFactory


@pytest.fixture(scope="module")
async def module_database(server_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"crm_hostile_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
        yield _asyncpg_dsn(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="module", params=["httptools", "h11"])
def live(
    request: pytest.FixtureRequest, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """The app under uvicorn with each of its HTTP parsers: httptools is what `crm serve` gets."""
    settings = hostile_settings(tmp_path_factory.mktemp("live"))
    with live_server(create_app(settings, database_url=module_database), http=request.param) as port:
        yield Live(port, module_database, TokenFactory(settings))
