"""GET /api/trash shows each caller what they could restore, newest first; restores follow the same rights."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from crm.config import Settings
from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.trash.support import delete, interaction, trash

Headers = dict[str, str]


async def test_an_employee_sees_and_restores_only_the_interactions_they_recorded(
    client: httpx.AsyncClient, admin: Headers, tokens: TokenFactory
) -> None:
    me, colleague = uuid.uuid4(), uuid.uuid4()
    mine_headers, theirs_headers = tokens.headers("employee", me), tokens.headers("employee", colleague)
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    gone_customer = await create_customer(client, admin)
    mine = await interaction(client, mine_headers, customer["id"], subject="Mine")
    theirs = await interaction(client, theirs_headers, customer["id"], subject="Theirs")
    await delete(client, mine_headers, f"/api/interactions/{mine['id']}")
    await delete(client, admin, f"/api/interactions/{theirs['id']}")
    await delete(client, admin, f"/api/contacts/{customer['contacts'][0]['id']}")
    await delete(client, admin, f"/api/customers/{gone_customer['id']}")

    assert [i["id"] for i in await trash(client, mine_headers)] == [mine["id"]]
    assert [i["id"] for i in await trash(client, theirs_headers)] == [
        theirs["id"]
    ]  # deleted by an admin, authored by them
    assert await trash(client, mine_headers, entity="customer") == []
    assert len(await trash(client, admin)) == 4

    assert_problem(await client.post(f"/api/interactions/{theirs['id']}/restore", headers=mine_headers), 403)
    assert_problem(await client.post(f"/api/customers/{gone_customer['id']}/restore", headers=mine_headers), 403)
    contact_id = customer["contacts"][0]["id"]
    assert_problem(await client.post(f"/api/contacts/{contact_id}/restore", headers=mine_headers), 403)
    assert (await client.post(f"/api/interactions/{mine['id']}/restore", headers=mine_headers)).status_code == 200
    assert await trash(client, mine_headers) == []


async def test_managers_see_everything_newest_first_page_by_page(
    client: httpx.AsyncClient, manager: Headers, settings: Settings
) -> None:
    customers = [await create_customer(client, manager) for _ in range(5)]
    for customer in customers:
        await delete(client, manager, f"/api/customers/{customer['id']}")

    first = await client.get("/api/trash", params={"limit": 2}, headers=manager)
    assert first.status_code == 200
    assert first.json()["pagination"]["hasNext"] is True
    items = await trash(client, manager, limit=2)

    assert [i["id"] for i in items] == [c["id"] for c in reversed(customers)]
    moments = [datetime.fromisoformat(i["deleted_at"]) for i in items]
    assert moments == sorted(moments, reverse=True)
    for item in items:
        deleted = datetime.fromisoformat(item["deleted_at"])
        assert datetime.fromisoformat(item["purge_after"]) - deleted == timedelta(days=settings.trash_days)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Not the default (30, which tests/trash/test_restore.py sees), so the listing shows the setting."""
    return settings.model_copy(update={"trash_days": 7})


async def test_purge_after_follows_crm_trash_days(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin)
    await delete(client, admin, f"/api/customers/{customer['id']}")
    [item] = await trash(client, admin)
    gap = datetime.fromisoformat(item["purge_after"]) - datetime.fromisoformat(item["deleted_at"])
    assert gap == timedelta(days=7)


@pytest.mark.parametrize("entity", ["customers", "Customer", "order", ""])
async def test_an_unknown_entity_is_422_naming_it(client: httpx.AsyncClient, admin: Headers, entity: str) -> None:
    assert_problem(await client.get("/api/trash", params={"entity": entity}, headers=admin), 422, "entity")


async def test_a_cursor_of_another_list_is_422(client: httpx.AsyncClient, admin: Headers) -> None:
    for customer in [await create_customer(client, admin) for _ in range(3)]:
        await delete(client, admin, f"/api/customers/{customer['id']}")
    cursor = (await client.get("/api/trash", params={"limit": 1}, headers=admin)).json()["pagination"]["nextCursor"]
    other = await client.get("/api/trash", params={"limit": 1, "entity": "customer", "cursor": cursor}, headers=admin)
    assert_problem(other, 422, "cursor")
    history_cursor = await client.get(
        f"/api/customers/{uuid.uuid4()}/history", params={"cursor": cursor}, headers=admin
    )
    assert_problem(history_cursor, 422, "cursor")


async def test_the_trash_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/trash"), 401)
