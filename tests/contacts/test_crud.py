"""Contacts end to end: every endpoint, its validation, and the primary-contact rules one request at a time."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.contacts.support import contact_count, create_contact, primaries
from tests.helpers import assert_problem, create_customer

CONTACT_KEYS = {
    "id",
    "customer_id",
    "first_name",
    "last_name",
    "position",
    "email",
    "phone",
    "is_primary",
    "version",
    "created_at",
    "updated_at",
}


# --- create ------------------------------------------------------------------------------


async def test_create_first_contact_becomes_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    body = {
        "customer_id": customer["id"],
        "first_name": "  Oksana ",
        "last_name": "Melnyk",
        "position": "Buyer",
        "email": "oksana@example.com",
        "phone": "+380 (50) 111 22 33",
    }

    response = await client.post("/api/contacts", json=body, headers=admin)

    assert response.status_code == 201, response.text
    contact = response.json()
    assert response.headers["location"] == f"/api/contacts/{contact['id']}"
    assert set(contact) == CONTACT_KEYS
    assert contact["first_name"] == "Oksana"
    assert contact["phone"] == "+380 (50) 111 22 33"
    assert contact["is_primary"] is True
    assert contact["customer_id"] == customer["id"]
    assert await primaries(db, customer["id"]) == [contact["id"]]


async def test_create_second_contact_is_not_primary_unless_asked(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    first = await create_contact(client, admin, customer["id"])
    second = await create_contact(client, admin, customer["id"], is_primary=False)
    assert second["is_primary"] is False
    assert await primaries(db, customer["id"]) == [first["id"]]

    third = await create_contact(client, admin, customer["id"], is_primary=True)

    assert third["is_primary"] is True
    assert await primaries(db, customer["id"]) == [third["id"]]
    listed = (await client.get(f"/api/contacts/customer/{customer['id']}", headers=admin)).json()
    assert [(c["id"], c["is_primary"]) for c in listed] == [
        (third["id"], True),
        (second["id"], False),
        (first["id"], False),
    ]


async def test_create_first_contact_with_is_primary_false_still_becomes_primary(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"], is_primary=False)
    assert contact["is_primary"] is True


async def test_create_for_unknown_customer_is_404(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    missing = str(uuid.uuid4())
    response = await client.post(
        "/api/contacts", json={"customer_id": missing, "first_name": "A", "last_name": "B"}, headers=admin
    )
    problem = assert_problem(response, 404)
    assert missing in problem["detail"]
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


CREATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"first_name": ""}, "first_name"),
    ({"first_name": "   "}, "first_name"),
    ({"first_name": None}, "first_name"),
    ({"last_name": "l" * 101}, "last_name"),
    ({"email": "no-at-sign"}, "email"),
    ({"phone": "5" * 33}, "phone"),
    ({"position": "p" * 101}, "position"),
    ({"is_primary": "perhaps"}, "is_primary"),
    ({"is_primary": None}, "is_primary"),
    ({"customer_id": "abc"}, "customer_id"),
    ({"customer_id": None}, "customer_id"),
    ({"id": str(uuid.uuid4())}, "id"),
    ({"created_at": "2024-01-01"}, "created_at"),
    ({"version": 3}, "version"),
    ({"customer": {}}, "customer"),
    ({"nickname": "T"}, "nickname"),
    ({"first_name": "T\x00"}, "first_name"),
    ({"position": "CEO\x00"}, "position"),
]


async def test_create_validation(client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]) -> None:
    customer = await create_customer(client, admin)
    for overrides, field in CREATE_CASES:
        body = {"customer_id": customer["id"], "first_name": "A", "last_name": "B", **overrides}
        response = await client.post("/api/contacts", json=body, headers=admin)
        assert response.status_code == 422, (overrides, response.text)
        assert_problem(response, 422, field)
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


@pytest.mark.parametrize("field", ["customer_id", "first_name", "last_name"])
async def test_create_requires(client: httpx.AsyncClient, admin: dict[str, str], field: str) -> None:
    customer = await create_customer(client, admin)
    body = {"customer_id": customer["id"], "first_name": "A", "last_name": "B"}
    del body[field]
    assert_problem(await client.post("/api/contacts", json=body, headers=admin), 422, field)


async def test_create_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/api/contacts", content=b'{"first_name": ', headers={**admin, "content-type": "application/json"}
    )
    assert_problem(response, 400)


# --- list for a customer -----------------------------------------------------------------


async def test_list_for_customer_primary_first_then_newest(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    await create_contact(client, admin, other["id"], first_name="Elsewhere")
    made = [await create_contact(client, admin, customer["id"], first_name=f"C{i}") for i in range(4)]
    # Make the second-oldest primary: it leads, the rest follow newest first.
    assert (await client.put(f"/api/contacts/{made[1]['id']}/primary", headers=admin)).status_code == 200

    response = await client.get(f"/api/contacts/customer/{customer['id']}", headers=admin)

    assert response.status_code == 200
    listed = response.json()
    assert [c["first_name"] for c in listed] == ["C1", "C3", "C2", "C0"]
    assert [c["is_primary"] for c in listed] == [True, False, False, False]
    assert set(listed[0]) == CONTACT_KEYS


async def test_list_for_customer_without_contacts_is_empty(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    response = await client.get(f"/api/contacts/customer/{customer['id']}", headers=admin)
    assert response.status_code == 200
    assert response.json() == []


async def test_list_for_unknown_customer_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.get(f"/api/contacts/customer/{uuid.uuid4()}", headers=admin), 404)
    assert_problem(await client.get("/api/contacts/customer/nope", headers=admin), 422, "customer_id")


# --- get ---------------------------------------------------------------------------------


async def test_get_with_customer_summary(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(
        client, admin, company_name="Nova Poshta", status="customer", type="business", email="np@example.com"
    )
    contact = await create_contact(client, admin, customer["id"], position="Logistics")

    response = await client.get(f"/api/contacts/{contact['id']}", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == CONTACT_KEYS | {"customer"}
    assert body["position"] == "Logistics"
    assert body["is_primary"] is True
    assert body["customer"] == {
        "id": customer["id"],
        "first_name": customer["first_name"],
        "last_name": customer["last_name"],
        "company_name": "Nova Poshta",
        "email": "np@example.com",
        "status": "customer",
        "type": "business",
        "name": "Nova Poshta",
    }


@pytest.mark.parametrize("method", ["get", "put", "delete"])
async def test_unknown_and_malformed_contact_ids(client: httpx.AsyncClient, admin: dict[str, str], method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"position": "X"}} if method == "put" else {}
    missing = uuid.uuid4()
    problem = assert_problem(
        await client.request(method.upper(), f"/api/contacts/{missing}", headers=admin, **kwargs), 404
    )
    assert str(missing) in problem["detail"]
    assert_problem(
        await client.request(method.upper(), "/api/contacts/12345", headers=admin, **kwargs), 422, "contact_id"
    )


async def test_set_primary_unknown_and_malformed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert_problem(await client.put(f"/api/contacts/{uuid.uuid4()}/primary", headers=admin), 404)
    assert_problem(await client.put("/api/contacts/zzz/primary", headers=admin), 422, "contact_id")


# --- update ------------------------------------------------------------------------------


async def test_update_is_partial(client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(
        client, admin, customer["id"], position="Buyer", email="b@example.com", phone="+380 1"
    )

    response = await client.put(
        f"/api/contacts/{contact['id']}", json={"position": "Head buyer", "last_name": " Koval "}, headers=admin
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["position"] == "Head buyer"
    assert body["last_name"] == "Koval"
    assert body["first_name"] == contact["first_name"]
    assert body["email"] == "b@example.com"
    assert body["phone"] == "+380 1"
    assert body["is_primary"] is True
    assert body["version"] > contact["version"]
    row = await db.fetchrow("SELECT position, last_name FROM contacts WHERE id = $1", uuid.UUID(contact["id"]))
    assert row is not None
    assert (row["position"], row["last_name"]) == ("Head buyer", "Koval")


async def test_update_null_clears_optional_fields(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"], position="P", email="e@example.com", phone="1")
    response = await client.put(
        f"/api/contacts/{contact['id']}", json={"position": None, "email": None, "phone": None}, headers=admin
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["position"], body["email"], body["phone"]) == (None, None, None)


UPDATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"first_name": None}, "first_name"),
    ({"last_name": None}, "last_name"),
    ({"first_name": ""}, "first_name"),
    ({"last_name": "x" * 101}, "last_name"),
    ({"is_primary": None}, "is_primary"),
    ({"email": "bad"}, "email"),
    ({"phone": "7" * 33}, "phone"),
    ({"id": str(uuid.uuid4())}, "id"),
    ({"updated_at": "2024-01-01T00:00:00Z"}, "updated_at"),
    ({"customer": {"id": str(uuid.uuid4())}}, "customer"),
    ({"extra": 1}, "extra"),
]


async def test_update_validation(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    for body, field in UPDATE_CASES:
        response = await client.put(f"/api/contacts/{contact['id']}", json=body, headers=admin)
        assert response.status_code == 422, (body, response.text)
        assert_problem(response, 422, field)
    unchanged = (await client.get(f"/api/contacts/{contact['id']}", headers=admin)).json()
    assert unchanged["version"] == contact["version"]


async def test_update_customer_id_cannot_change(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])

    for value in (other["id"], str(uuid.uuid4()), None):
        response = await client.put(
            f"/api/contacts/{contact['id']}", json={"customer_id": value, "position": "Moved"}, headers=admin
        )
        assert_problem(response, 422, "customer_id")

    row = await db.fetchrow("SELECT customer_id, position FROM contacts WHERE id = $1", uuid.UUID(contact["id"]))
    assert row is not None
    assert (str(row["customer_id"]), row["position"]) == (customer["id"], None)
    # Echoing the current value back is fine.
    response = await client.put(
        f"/api/contacts/{contact['id']}", json={"customer_id": customer["id"], "position": "Same"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["position"] == "Same"


async def test_update_is_primary_false_on_the_primary_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    primary = await create_contact(client, admin, customer["id"])
    await create_contact(client, admin, customer["id"])
    response = await client.put(
        f"/api/contacts/{primary['id']}", json={"is_primary": False, "position": "X"}, headers=admin
    )
    assert_problem(response, 422, "is_primary")
    assert await primaries(db, customer["id"]) == [primary["id"]]


async def test_update_is_primary_false_on_a_secondary_is_a_no_op(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    primary = await create_contact(client, admin, customer["id"])
    secondary = await create_contact(client, admin, customer["id"])
    response = await client.put(f"/api/contacts/{secondary['id']}", json={"is_primary": False}, headers=admin)
    assert response.status_code == 200
    assert response.json()["is_primary"] is False
    assert await primaries(db, customer["id"]) == [primary["id"]]


async def test_update_is_primary_true_moves_the_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    await create_contact(client, admin, customer["id"])
    secondary = await create_contact(client, admin, customer["id"])
    response = await client.put(
        f"/api/contacts/{secondary['id']}", json={"is_primary": True, "position": "Lead"}, headers=admin
    )
    assert response.status_code == 200
    assert response.json()["is_primary"] is True
    assert response.json()["position"] == "Lead"
    assert await primaries(db, customer["id"]) == [secondary["id"]]


# --- set primary -------------------------------------------------------------------------


async def test_set_primary_moves_it_and_is_idempotent(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    first = await create_contact(client, admin, customer["id"])
    second = await create_contact(client, admin, customer["id"])

    for _ in range(3):
        response = await client.put(f"/api/contacts/{second['id']}/primary", headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == CONTACT_KEYS
        assert body["id"] == second["id"]
        assert body["is_primary"] is True
        assert await primaries(db, customer["id"]) == [second["id"]]

    old = (await client.get(f"/api/contacts/{first['id']}", headers=admin)).json()
    assert old["is_primary"] is False
    detail = (await client.get(f"/api/customers/{customer['id']}", headers=admin)).json()
    assert detail["primary_contact"]["id"] == second["id"]


async def test_set_primary_on_the_primary_changes_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    only = await create_contact(client, admin, customer["id"])
    response = await client.put(f"/api/contacts/{only['id']}/primary", headers=admin)
    assert response.status_code == 200
    assert response.json()["version"] == only["version"]


async def test_set_primary_ignores_a_body(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    response = await client.put(f"/api/contacts/{contact['id']}/primary", json={"is_primary": False}, headers=admin)
    assert response.status_code == 200
    assert response.json()["is_primary"] is True


# --- delete ------------------------------------------------------------------------------


async def test_delete_primary_promotes_the_oldest_remaining(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    oldest = await create_contact(client, admin, customer["id"], first_name="Oldest")
    middle = await create_contact(client, admin, customer["id"], first_name="Middle")
    newest = await create_contact(client, admin, customer["id"], first_name="Newest", is_primary=True)

    response = await client.delete(f"/api/contacts/{newest['id']}", headers=admin)

    assert response.status_code == 204
    assert response.content == b""
    assert await primaries(db, customer["id"]) == [oldest["id"]]
    assert_problem(await client.get(f"/api/contacts/{newest['id']}", headers=admin), 404)

    assert (await client.delete(f"/api/contacts/{oldest['id']}", headers=admin)).status_code == 204
    assert await primaries(db, customer["id"]) == [middle["id"]]

    assert (await client.delete(f"/api/contacts/{middle['id']}", headers=admin)).status_code == 204
    assert await primaries(db, customer["id"]) == []
    assert await contact_count(db, customer["id"]) == 0


async def test_delete_secondary_keeps_the_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    primary = await create_contact(client, admin, customer["id"])
    secondary = await create_contact(client, admin, customer["id"])
    assert (await client.delete(f"/api/contacts/{secondary['id']}", headers=admin)).status_code == 204
    assert await primaries(db, customer["id"]) == [primary["id"]]
    assert await contact_count(db, customer["id"]) == 1
    assert_problem(await client.delete(f"/api/contacts/{secondary['id']}", headers=admin), 404)


async def test_delete_promotes_only_within_the_customer(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    other = await create_customer(client, admin)
    other_primary = await create_contact(client, admin, other["id"])
    await create_contact(client, admin, other["id"])
    only = await create_contact(client, admin, customer["id"])
    assert (await client.delete(f"/api/contacts/{only['id']}", headers=admin)).status_code == 204
    assert await primaries(db, other["id"]) == [other_primary["id"]]
    assert await primaries(db, customer["id"]) == []
    assert await contact_count(db, other["id"]) == 2


# --- search ------------------------------------------------------------------------------


async def _search(client: httpx.AsyncClient, headers: dict[str, str], query: str, **params: Any) -> list[str]:
    response = await client.get("/api/contacts/search", params={"query": query, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return [c["first_name"] for c in response.json()]


async def test_search_matches_names_email_phone_position(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    await create_contact(
        client, admin, customer["id"], first_name="Halyna", last_name="Sydorenko", email="gs@firm.example",
        phone="+380 (93) 555-12-34", position="Chief Accountant",
    )  # fmt: skip
    await create_contact(client, admin, customer["id"], first_name="Other", last_name="Person", position="Driver")

    assert await _search(client, admin, "halyna") == ["Halyna"]
    assert await _search(client, admin, "SYDOR") == ["Halyna"]
    assert await _search(client, admin, "Sydorenko Halyna") == ["Halyna"]
    assert await _search(client, admin, "halyna sydorenko") == ["Halyna"]
    assert await _search(client, admin, "gs@firm") == ["Halyna"]
    assert await _search(client, admin, "093 555 12") == ["Halyna"]
    assert await _search(client, admin, "380935551234") == ["Halyna"]
    assert await _search(client, admin, "accountant") == ["Halyna"]
    assert await _search(client, admin, "driver") == ["Other"]
    assert await _search(client, admin, "nothing like it") == []


async def test_search_relevance_and_wildcards(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    await create_contact(client, admin, customer["id"], first_name="Marko", last_name="Aa")
    await create_contact(client, admin, customer["id"], first_name="Markiyan", last_name="Bb")
    await create_contact(client, admin, customer["id"], first_name="Mark", last_name="Cc")
    await create_contact(client, admin, customer["id"], first_name="Omark", last_name="Dd", position="50% off")
    # Exact, then prefix (by the matched value, as customer search: "markiyan" before "marko",
    # whatever their last names), then substring.
    assert await _search(client, admin, "mark") == ["Mark", "Markiyan", "Marko", "Omark"]
    assert await _search(client, admin, "%%") == []
    assert await _search(client, admin, "__") == []
    assert await _search(client, admin, "0%") == ["Omark"]


async def test_search_customer_filter_and_limit(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    one = await create_customer(client, admin)
    two = await create_customer(client, admin)
    for i in range(3):
        await create_contact(client, admin, one["id"], first_name=f"Anna{i}")
    await create_contact(client, admin, two["id"], first_name="Anna9")

    assert await _search(client, admin, "anna") == ["Anna0", "Anna1", "Anna2", "Anna9"]
    assert await _search(client, admin, "anna", customerId=two["id"]) == ["Anna9"]
    assert len(await _search(client, admin, "anna", customerId=one["id"])) == 3
    assert await _search(client, admin, "anna", customerId=str(uuid.uuid4())) == []
    assert len(await _search(client, admin, "anna", limit=2)) == 2


SEARCH_CASES: list[tuple[dict[str, str], str]] = [
    ({"query": "a"}, "query"),
    ({"query": "   "}, "query"),
    ({"query": "q" * 201}, "query"),
    ({}, "query"),
    ({"query": "ab", "customerId": "x"}, "customerId"),
    ({"query": "ab", "limit": "0"}, "limit"),
    ({"query": "ab", "limit": "101"}, "limit"),
]


async def test_search_validation(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for params, field in SEARCH_CASES:
        response = await client.get("/api/contacts/search", params=params, headers=admin)
        assert response.status_code == 422, (params, response.text)
        assert_problem(response, 422, field)


async def test_search_result_shape(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"], first_name="Shape")
    response = await client.get("/api/contacts/search", params={"query": "shape"}, headers=admin)
    # Each result is the contact as GET /api/contacts/:id answers it, its customer summary included.
    detail = (await client.get(f"/api/contacts/{contact['id']}", headers=admin)).json()
    assert response.json() == [detail]
    assert detail == {**contact, "customer": detail["customer"]}
    assert detail["customer"]["id"] == customer["id"]


async def test_unstorable_text_is_422_not_500(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    # "\ud800" is valid JSON but cannot be encoded as UTF-8 for the database.
    customer = await create_customer(client, admin)
    contact = await create_contact(client, admin, customer["id"])
    headers = {**admin, "content-type": "application/json"}
    bad = '"x\\ud800"'
    for field in ("first_name", "last_name", "position", "email", "phone"):
        raw = f'{{"customer_id": "{customer["id"]}", "first_name": "A", "last_name": "B", "{field}": {bad}}}'
        response = await client.post("/api/contacts", content=raw, headers=headers)
        assert response.status_code == 422, (field, response.text)
        raw = f'{{"{field}": {bad}}}'
        response = await client.put(f"/api/contacts/{contact['id']}", content=raw, headers=headers)
        assert response.status_code == 422, (field, response.text)
    assert await contact_count(db, customer["id"]) == 1


async def test_versions_move_one_step_per_write(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "Nested", "last_name": "N"}])
    assert customer["contacts"][0]["version"] == 1
    first = await create_contact(client, admin, customer["id"], first_name="First", is_primary=True)
    second = await create_contact(client, admin, customer["id"], first_name="Second")
    # New contacts are written once, primary or not.
    assert (first["version"], first["is_primary"]) == (1, True)
    assert (second["version"], second["is_primary"]) == (1, False)

    updated = await client.put(
        f"/api/contacts/{second['id']}", json={"is_primary": True, "position": "Lead"}, headers=admin
    )
    assert updated.json()["version"] == 2
    moved = await client.put(f"/api/contacts/{first['id']}/primary", headers=admin)
    assert moved.json()["version"] == 3  # demoted once, promoted once
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"first_name": "Fresh", "last_name": "F", "is_primary": True}]},
        headers=admin,
    )
    fresh = next(c for c in response.json()["contacts"] if c["first_name"] == "Fresh")
    assert (fresh["version"], fresh["is_primary"]) == (1, True)
    rows = await db.fetch("SELECT first_name, version FROM contacts WHERE customer_id = $1", uuid.UUID(customer["id"]))
    assert {r["first_name"]: r["version"] for r in rows} == {"Nested": 2, "First": 4, "Second": 3, "Fresh": 1}
