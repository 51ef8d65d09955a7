"""The service purges the trash on its own, every CRM_TRASH_PURGE_INTERVAL seconds."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

from crm.config import Settings
from tests.helpers import assert_problem, create_customer
from tests.trash.support import delete

Headers = dict[str, str]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"trash_days": 0, "trash_purge_interval": 0.05})


async def test_the_service_purges_on_its_own(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await delete(client, admin, f"/api/customers/{customer['id']}")
    for _ in range(100):
        if await db.fetchval("SELECT count(*) FROM trash") == 0:
            break
        await asyncio.sleep(0.05)
    assert await db.fetchval("SELECT count(*) FROM trash") == 0
    assert_problem(await client.post(f"/api/customers/{customer['id']}/restore", headers=admin), 404)
