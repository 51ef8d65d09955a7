"""Bodies must carry the JSON types the document states. pydantic's lax mode would take 0, 1 or
"yes" for a boolean and seconds since 1970 for a date-time (the fuzz found both); and a PUT
field the document offers as nullable must accept null, one it does not must refuse it."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem, create_customer
from tests.hostile.support import assert_clean, snapshot

NOT_BOOLEANS: list[Any] = [0, 1, "true", "false", "yes", "on", "1", 1.0, [], {}]
NOT_DATE_TIMES: list[Any] = [0, 1_700_000_000, 1.7e9, "1700000000", " 1700000000.5 ", "-1", True, [], {}]


async def test_booleans_and_date_times_are_not_coerced(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    contact = customer["contacts"][0]
    created = await client.post(
        "/api/interactions", json={"customer_id": customer["id"], "type": "call", "subject": "s"}, headers=admin
    )
    interaction = created.json()
    before = await snapshot(db)
    attempts: list[tuple[str, str, dict[str, Any], str]] = []
    for value in NOT_BOOLEANS:
        new = {"customer_id": customer["id"], "first_name": "C", "last_name": "D", "is_primary": value}
        nested = {"contacts": [{"id": contact["id"], "is_primary": value}]}
        attempts += [
            ("POST", "/api/contacts", new, "is_primary"),
            ("PUT", f"/api/contacts/{contact['id']}", {"is_primary": value}, "is_primary"),
            ("PUT", f"/api/customers/{customer['id']}", nested, "contacts.0.is_primary"),
        ]
    for value in NOT_DATE_TIMES:
        body = {"customer_id": customer["id"], "type": "call", "subject": "s", "date": value}
        attempts += [
            ("POST", "/api/interactions", body, "date"),
            ("PUT", f"/api/interactions/{interaction['id']}", {"date": value}, "date"),
        ]
    for method, url, body, field in attempts:
        response = await client.request(method, url, json=body, headers=admin)
        assert_clean(response)
        assert response.status_code == 422, (method, url, body, response.text)
        assert_problem(response, 422, field)
    assert await snapshot(db) == before

    # The documented forms are accepted.
    moved = await client.put(
        f"/api/interactions/{interaction['id']}", json={"date": "2024-05-01T10:00:00+02:00"}, headers=admin
    )
    assert moved.json()["date"] == "2024-05-01T08:00:00Z"
    flagged = await client.put(f"/api/contacts/{contact['id']}", json={"is_primary": True}, headers=admin)
    assert flagged.json()["is_primary"] is True


async def test_null_is_accepted_exactly_where_the_document_allows_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    contact = customer["contacts"][0]
    created = await client.post(
        "/api/interactions", json={"customer_id": customer["id"], "type": "call", "subject": "s"}, headers=admin
    )
    targets = [
        ("CustomerUpdate", f"/api/customers/{customer['id']}", lambda f: {f: None}, ""),
        ("ContactUpdate", f"/api/contacts/{contact['id']}", lambda f: {f: None}, ""),
        ("InteractionUpdate", f"/api/interactions/{created.json()['id']}", lambda f: {f: None}, ""),
        (
            "NestedContactUpsert",
            f"/api/customers/{customer['id']}",
            lambda f: {"contacts": [{"id": contact["id"], f: None}]},
            "contacts.0.",
        ),
    ]
    refused = 0
    for name, url, body_of, prefix in targets:
        for field, prop in schemas[name]["properties"].items():
            if field in {"customer_id", "id"}:
                continue  # must equal the current value / names the contact: checked elsewhere
            nullable = {"type": "null"} in prop.get("anyOf", [])
            response = await client.put(url, json=body_of(field), headers=admin)
            assert_clean(response)
            if nullable:
                assert response.status_code == 200, (name, field, response.text)
            else:
                assert_problem(response, 422, prefix + field)
                refused += 1
    # first and last names, status, owner, contacts; type, subject, date; is_primary (twice)...
    assert refused >= 10
