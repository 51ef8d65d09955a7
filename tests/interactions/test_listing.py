"""GET /api/interactions/customer/{id} and /date-range: filters, sorting, pagination."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.interactions.support import create_interaction, ids


def _page(body: dict[str, Any]) -> dict[str, Any]:
    pagination: dict[str, Any] = body["pagination"]
    return pagination


async def test_customer_list_is_newest_first_and_only_that_customer(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    old = await create_interaction(client, admin, customer["id"], date="2025-01-01T10:00:00Z")
    new = await create_interaction(client, admin, customer["id"], date="2025-01-03T10:00:00Z")
    mid = await create_interaction(client, admin, customer["id"], date="2025-01-02T10:00:00Z")
    await create_interaction(client, admin, other["id"], date="2025-01-02T11:00:00Z")

    response = await client.get(f"/api/interactions/customer/{customer['id']}", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert ids(body["interactions"]) == [new["id"], mid["id"], old["id"]]
    assert body["interactions"][0] == new
    assert _page(body) == {"total": 3, "page": 1, "limit": 10, "totalPages": 1, "hasNext": False, "hasPrev": False}


async def test_customer_list_pages(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    made = [
        await create_interaction(client, admin, customer["id"], date=f"2025-02-0{day}T09:00:00Z") for day in range(1, 6)
    ]
    url = f"/api/interactions/customer/{customer['id']}"

    second = (await client.get(url, params={"page": 2, "limit": 2}, headers=admin)).json()
    last = (await client.get(url, params={"page": 3, "limit": 2}, headers=admin)).json()
    beyond = (await client.get(url, params={"page": 9, "limit": 2}, headers=admin)).json()

    assert ids(second["interactions"]) == [made[2]["id"], made[1]["id"]]
    # Offset pages that have a next one also offer its cursor (tests/interactions/test_cursor.py).
    assert isinstance(_page(second).pop("nextCursor"), str)
    assert _page(second) == {"total": 5, "page": 2, "limit": 2, "totalPages": 3, "hasNext": True, "hasPrev": True}
    assert ids(last["interactions"]) == [made[0]["id"]]
    assert _page(last)["hasNext"] is False
    assert beyond["interactions"] == []
    assert _page(beyond)["total"] == 5


async def test_customer_list_filters_by_type_and_dates(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    before = await create_interaction(client, admin, customer["id"], date="2025-03-09T23:59:59.999999Z")
    start = await create_interaction(client, admin, customer["id"], date="2025-03-10T00:00:00Z", type="email")
    end_of_day = await create_interaction(client, admin, customer["id"], date="2025-03-10T23:59:59.999Z")
    next_day = await create_interaction(client, admin, customer["id"], date="2025-03-11T00:00:00Z", type="email")
    url = f"/api/interactions/customer/{customer['id']}"

    async def listed(**params: str) -> list[str]:
        response = await client.get(url, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return ids(response.json()["interactions"])

    # A date-only endDate includes its whole day; a date-only startDate starts at midnight UTC.
    assert await listed(startDate="2025-03-10", endDate="2025-03-10") == [end_of_day["id"], start["id"]]
    assert await listed(endDate="2025-03-10") == [end_of_day["id"], start["id"], before["id"]]
    assert await listed(startDate="2025-03-11") == [next_day["id"]]
    # An explicit end instant is inclusive.
    assert await listed(endDate="2025-03-10T00:00:00Z") == [start["id"], before["id"]]
    # Offsets are honoured: 03:00 at +03:00 is midnight UTC.
    assert await listed(endDate="2025-03-10T03:00:00+03:00") == [start["id"], before["id"]]
    assert await listed(endDate="2025-03-10T02:59:59.999999+03:00") == [before["id"]]
    assert await listed(type="email") == [next_day["id"], start["id"]]
    assert await listed(type="email", endDate="2025-03-10") == [start["id"]]
    assert await listed(startDate="2025-03-10T00:00:00Z", endDate="2025-03-10T00:00:00Z") == [start["id"]]


async def test_customer_list_sorting(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    b = await create_interaction(client, admin, customer["id"], subject="Beta", type="task", date="2025-01-01")
    a = await create_interaction(client, admin, customer["id"], subject="Alpha", type="call", date="2025-01-03")
    c = await create_interaction(client, admin, customer["id"], subject="Gamma", type="meeting", date="2025-01-02")
    url = f"/api/interactions/customer/{customer['id']}"

    async def listed(**params: str) -> list[str]:
        response = await client.get(url, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return ids(response.json()["interactions"])

    assert await listed(sortBy="date", sortOrder="asc") == [b["id"], c["id"], a["id"]]
    assert await listed(sortBy="type", sortOrder="Asc") == [a["id"], c["id"], b["id"]]
    assert await listed(sortBy="type") == [b["id"], c["id"], a["id"]]
    assert await listed(sortBy="created_at", sortOrder="ASC") == [b["id"], a["id"], c["id"]]
    assert await listed(sortBy="created_at", sortOrder="dEsC") == [c["id"], a["id"], b["id"]]
    assert await listed(sortBy="subject", sortOrder="asc") == [a["id"], b["id"], c["id"]]
    assert await listed(sortBy="subject", sortOrder="DESC") == [c["id"], b["id"], a["id"]]


@pytest.mark.parametrize("path", ["customer/{customer}", "date-range"])
async def test_list_rejects_bad_parameters(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], path: str
) -> None:
    customer = await create_customer(client, admin)
    url = "/api/interactions/" + path.format(customer=customer["id"])
    cases: list[tuple[dict[str, str], str]] = [
        ({"sortBy": "user_id"}, "sortBy"),
        ({"sortBy": "DATE"}, "sortBy"),
        ({"sortOrder": "up"}, "sortOrder"),
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"page": "0"}, "page"),
        ({"page": "x"}, "page"),
        ({"type": "fax"}, "type"),
        ({"startDate": "soon"}, "startDate"),
        ({"endDate": "2025-13-01"}, "endDate"),
        ({"endDate": "2025-01-01\x00"}, "endDate"),
        ({"startDate": "2025-03-02", "endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025-03-01T10:00:01Z", "endDate": "2025-03-01T10:00:00Z"}, "startDate"),
    ]
    if path == "date-range":
        cases += [({"userId": "me"}, "userId"), ({"customerId": "42"}, "customerId")]
    for params, field in cases:
        response = await client.get(url, params=params, headers=admin)
        assert response.status_code == 422, (params, response.text)
        assert_problem(response, 422, field)
    assert (await client.get(url, params={"limit": "100", "sortOrder": "asc"}, headers=admin)).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM interactions") == 0


async def test_customer_list_unknown_customer(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get(f"/api/interactions/customer/{uuid.uuid4()}", headers=admin), 404)
    assert_problem(await client.get("/api/interactions/customer/123", headers=admin), 422, "customer_id")


async def test_date_range_filters_and_customer_summary(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    ann, bob = uuid.uuid4(), uuid.uuid4()
    as_ann, as_bob = tokens.headers("employee", user_id=ann), tokens.headers("manager", user_id=bob)
    acme = await create_customer(client, admin, company_name="Acme", status="lead")
    globex = await create_customer(client, admin, first_name="Hank", last_name="Scorpio", type="business")
    ann_acme = await create_interaction(client, as_ann, acme["id"], date="2025-04-01T08:00:00Z", type="email")
    ann_globex = await create_interaction(client, as_ann, globex["id"], date="2025-04-02T08:00:00Z")
    bob_acme = await create_interaction(client, as_bob, acme["id"], date="2025-04-03T08:00:00Z")
    await create_interaction(client, as_bob, globex["id"], date="2025-05-01T08:00:00Z")

    async def listed(**params: str) -> list[str]:
        response = await client.get("/api/interactions/date-range", params=params, headers=as_ann)
        assert response.status_code == 200, response.text
        return ids(response.json()["interactions"])

    april = {"startDate": "2025-04-01", "endDate": "2025-04-30"}
    assert await listed(**april) == [bob_acme["id"], ann_globex["id"], ann_acme["id"]]
    assert await listed(**april, userId=str(ann)) == [ann_globex["id"], ann_acme["id"]]
    assert await listed(**april, customerId=acme["id"]) == [bob_acme["id"], ann_acme["id"]]
    assert await listed(**april, type="email") == [ann_acme["id"]]
    assert await listed(**april, userId=str(bob), customerId=globex["id"]) == []
    assert await listed(userId=str(uuid.uuid4())) == []
    assert len(await listed()) == 4

    body = (
        await client.get(
            "/api/interactions/date-range", params={**april, "sortOrder": "asc", "limit": "2"}, headers=as_ann
        )
    ).json()
    assert ids(body["interactions"]) == [ann_acme["id"], ann_globex["id"]]
    assert isinstance(_page(body).pop("nextCursor"), str)
    assert _page(body) == {"total": 3, "page": 1, "limit": 2, "totalPages": 2, "hasNext": True, "hasPrev": False}
    first = body["interactions"][0]
    assert {k: v for k, v in first.items() if k != "customer"} == ann_acme
    assert first["customer"] == {
        "id": acme["id"],
        "first_name": "Ivan",
        "last_name": "Petrenko",
        "company_name": "Acme",
        "email": acme["email"],
        "status": "lead",
        "type": None,
        "name": "Ivan Petrenko",  # a company name, but not a business: named by the person
    }
    assert body["interactions"][1]["customer"]["last_name"] == "Scorpio"
    assert body["interactions"][1]["customer"]["type"] == "business"


async def test_pages_never_repeat_or_skip_rows_sharing_a_date(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    same_moment = datetime(2025, 6, 1, 12, tzinfo=UTC)
    author = uuid.uuid4()
    # Inserted directly: 23 rows with one date, one type and one subject are the worst case for ordering.
    await db.executemany(
        "INSERT INTO interactions (customer_id, user_id, type, subject, date) VALUES ($1, $2, 'call', 'Same', $3)",
        [(uuid.UUID(customer["id"]), author, same_moment)] * 23,
    )
    all_ids = {str(r["id"]) for r in await db.fetch("SELECT id FROM interactions")}
    assert len(all_ids) == 23

    for url in (f"/api/interactions/customer/{customer['id']}", "/api/interactions/date-range"):
        for sort_by in ("date", "type", "subject", "created_at"):
            for order in ("ASC", "DESC"):
                seen: list[str] = []
                for page in range(1, 6):
                    params = {"page": str(page), "limit": "5", "sortBy": sort_by, "sortOrder": order}
                    response = await client.get(url, params=params, headers=admin)
                    assert response.status_code == 200, response.text
                    seen += ids(response.json()["interactions"])
                assert len(seen) == 23, (url, sort_by, order)
                assert set(seen) == all_ids, (url, sort_by, order)
                # Ties fall back to id in the requested direction.
                assert seen == sorted(all_ids, key=uuid.UUID, reverse=order == "DESC"), (url, sort_by, order)
