"""Customers end to end: every endpoint's success path, against the real database."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, assert_problem, create_customer, customer_body

FULL_BODY: dict[str, Any] = {
    "first_name": "Olena",
    "last_name": "Kovalenko",
    "email": "olena@example.com",
    "phone": "+380 (44) 000-11-22",
    "company_name": "Kovalenko & Sons",
    "tax_id": "UA12345678",
    "address": "1 Khreshchatyk St",
    "city": "Kyiv",
    "postal_code": "01001",
    "country": "Ukraine",
    "status": "prospect",
    "type": "business",
    "notes": "met at the fair",
}

PAGE_FIGURES = ("total", "page", "limit", "totalPages")
CUSTOMER_KEYS = {
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company_name",
    "tax_id",
    "address",
    "city",
    "postal_code",
    "country",
    "status",
    "type",
    "notes",
    "owner_id",
    "version",
    "created_at",
    "updated_at",
    "primary_contact",
    "name",
    # What the customer has ordered (tests/customers/test_figures.py).
    "total_orders",
    "total_spent",
    "average_order_value",
    "first_order_date",
    "last_order_date",
    "orders_synced_at",
}
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


async def test_create_returns_201_location_and_every_field(
    client: httpx.AsyncClient, admin: dict[str, str], tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    response = await client.post("/api/customers", json=FULL_BODY, headers=admin)

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/customers/{body['id']}"
    assert set(body) == CUSTOMER_KEYS | {"contacts"}
    for key, value in FULL_BODY.items():
        assert body[key] == value, key
    assert body["owner_id"] == str(tokens.users["admin"])
    assert body["version"] == 1
    assert body["contacts"] == []
    assert body["primary_contact"] is None
    row = await db.fetchrow("SELECT * FROM customers WHERE id = $1", uuid.UUID(body["id"]))
    assert row is not None
    assert row["company_name"] == "Kovalenko & Sons"
    assert row["owner_id"] == tokens.users["admin"]


async def test_create_minimal_body_gets_defaults(client: httpx.AsyncClient, employee: dict[str, str]) -> None:
    response = await client.post("/api/customers", json={"first_name": "A", "last_name": "B"}, headers=employee)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active"
    assert body["type"] is None
    for key in ("email", "phone", "company_name", "tax_id", "address", "city", "postal_code", "country", "notes"):
        assert body[key] is None, key


async def test_owner_defaults_to_the_creator_and_can_be_given(client: httpx.AsyncClient, tokens: TokenFactory) -> None:
    creator = uuid.uuid4()
    headers = tokens.headers("manager", creator)
    defaulted = await create_customer(client, headers)
    assert defaulted["owner_id"] == str(creator)

    other = uuid.uuid4()
    explicit = await create_customer(client, headers, owner_id=str(other))
    assert explicit["owner_id"] == str(other)


async def test_create_with_contacts_first_becomes_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    contacts = [
        {"first_name": "First", "last_name": "One", "position": "CEO", "email": "one@example.com"},
        {"first_name": "Second", "last_name": "Two", "phone": "+1 555 0100"},
        {"first_name": "Third", "last_name": "Three", "is_primary": False},
    ]
    body = await create_customer(client, admin, contacts=contacts)

    assert len(body["contacts"]) == 3
    assert set(body["contacts"][0]) == CONTACT_KEYS
    primary = body["contacts"][0]
    assert primary["first_name"] == "First"
    assert primary["is_primary"] is True
    assert primary["position"] == "CEO"
    assert [c["is_primary"] for c in body["contacts"]] == [True, False, False]
    # Created together, they are as old as their place in the list: primary first, then newest.
    assert [c["first_name"] for c in body["contacts"]] == ["First", "Third", "Second"]
    assert all(c["customer_id"] == body["id"] for c in body["contacts"])
    assert body["primary_contact"] == primary
    stored = await db.fetch(
        "SELECT first_name, is_primary FROM contacts WHERE customer_id = $1 ORDER BY first_name",
        uuid.UUID(body["id"]),
    )
    assert [(r["first_name"], r["is_primary"]) for r in stored] == [
        ("First", True),
        ("Second", False),
        ("Third", False),
    ]


async def test_contacts_created_together_age_in_listed_order(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    names = [f"N{i}" for i in range(6)]
    body = await create_customer(client, admin, contacts=[{"first_name": n, "last_name": "L"} for n in names])
    assert [c["first_name"] for c in body["contacts"]] == ["N0", "N5", "N4", "N3", "N2", "N1"]

    # Deleting the primary promotes the oldest remaining one: the next in the list.
    for expected in ["N1", "N2", "N3"]:
        primary = body["contacts"][0]
        assert (await client.delete(f"/api/contacts/{primary['id']}", headers=admin)).status_code == 204
        body = (await client.get(f"/api/customers/{body['id']}", headers=admin)).json()
        assert body["primary_contact"]["first_name"] == expected

    customer = await create_customer(client, admin)
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"first_name": n, "last_name": "L"} for n in ["A", "B", "C"]]},
        headers=admin,
    )
    assert [c["first_name"] for c in response.json()["contacts"]] == ["A", "C", "B"]
    stamps = await db.fetch(
        "SELECT first_name, created_at FROM contacts WHERE customer_id = $1 ORDER BY created_at",
        uuid.UUID(customer["id"]),
    )
    assert [r["first_name"] for r in stamps] == ["A", "B", "C"]


async def test_create_with_contacts_marked_primary_is_honoured(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    contacts = [
        {"first_name": "First", "last_name": "One"},
        {"first_name": "Second", "last_name": "Two", "is_primary": True},
    ]
    body = await create_customer(client, admin, contacts=contacts)

    assert [(c["first_name"], c["is_primary"]) for c in body["contacts"]] == [("Second", True), ("First", False)]
    assert body["primary_contact"]["first_name"] == "Second"


async def test_create_with_fifty_contacts_is_the_limit(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    contacts = [{"first_name": f"C{i}", "last_name": "X"} for i in range(50)]
    body = await create_customer(client, admin, contacts=contacts)
    assert len(body["contacts"]) == 50
    assert sum(c["is_primary"] for c in body["contacts"]) == 1


async def test_get_returns_contacts_primary_first_then_newest(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    names = ["Oldest", "Middle", "Newest"]
    for name in names:
        response = await client.post(
            "/api/contacts",
            json={"customer_id": customer["id"], "first_name": name, "last_name": "C"},
            headers=admin,
        )
        assert response.status_code == 201, response.text

    response = await client.get(f"/api/customers/{customer['id']}", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == CUSTOMER_KEYS | {"contacts"}
    # Oldest is primary (it was first); the rest newest first.
    assert [c["first_name"] for c in body["contacts"]] == ["Oldest", "Newest", "Middle"]
    assert body["primary_contact"]["first_name"] == "Oldest"
    assert body["id"] == customer["id"]
    assert body["email"] == customer["email"]


async def test_update_changes_only_the_fields_present(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, **FULL_BODY)

    response = await client.put(
        f"/api/customers/{customer['id']}", json={"city": "Lviv", "status": "customer"}, headers=admin
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["city"] == "Lviv"
    assert body["status"] == "customer"
    assert body["version"] == customer["version"] + 1
    for key in ("first_name", "last_name", "email", "phone", "company_name", "tax_id", "country", "type", "notes"):
        assert body[key] == customer[key], key
    assert body["updated_at"] >= customer["updated_at"]
    assert body["created_at"] == customer["created_at"]
    row = await db.fetchrow("SELECT city, status FROM customers WHERE id = $1", uuid.UUID(customer["id"]))
    assert row is not None
    assert (row["city"], row["status"]) == ("Lviv", "customer")


async def test_update_null_clears_optional_fields(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, **FULL_BODY)
    cleared = ["email", "phone", "company_name", "tax_id", "address", "city", "postal_code", "country", "type", "notes"]

    response = await client.put(f"/api/customers/{customer['id']}", json=dict.fromkeys(cleared), headers=admin)

    assert response.status_code == 200, response.text
    body = response.json()
    for key in cleared:
        assert body[key] is None, key
    assert body["first_name"] == "Olena"


async def test_update_empty_body_changes_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    response = await client.put(f"/api/customers/{customer['id']}", json={}, headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == customer["version"]
    assert body["first_name"] == customer["first_name"]


async def test_update_owner(client: httpx.AsyncClient, employee: dict[str, str]) -> None:
    customer = await create_customer(client, employee)
    new_owner = str(uuid.uuid4())
    response = await client.put(f"/api/customers/{customer['id']}", json={"owner_id": new_owner}, headers=employee)
    assert response.status_code == 200
    assert response.json()["owner_id"] == new_owner


async def test_update_email_to_own_email_in_other_case_is_allowed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, email="case@example.com")
    response = await client.put(f"/api/customers/{customer['id']}", json={"email": "CASE@example.com"}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "CASE@example.com"


async def test_update_contacts_updates_by_id_and_creates_without(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client,
        admin,
        contacts=[{"first_name": "Keep", "last_name": "K"}, {"first_name": "Edit", "last_name": "E"}],
    )
    by_name = {c["first_name"]: c for c in customer["contacts"]}

    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={
            "contacts": [
                {"id": by_name["Edit"]["id"], "position": "CFO", "last_name": "Edited"},
                {"first_name": "New", "last_name": "N", "email": "new@example.com"},
            ]
        },
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    contacts = {c["first_name"]: c for c in body["contacts"]}
    assert set(contacts) == {"Keep", "Edit", "New"}
    assert contacts["Edit"]["id"] == by_name["Edit"]["id"]
    assert contacts["Edit"]["position"] == "CFO"
    assert contacts["Edit"]["last_name"] == "Edited"
    assert contacts["New"]["email"] == "new@example.com"
    assert contacts["New"]["customer_id"] == customer["id"]
    # Untouched: the primary stays where it was.
    assert contacts["Keep"]["is_primary"] is True
    assert contacts["New"]["is_primary"] is False
    assert body["contacts"][0]["first_name"] == "Keep"
    count = await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(customer["id"]))
    assert count == 3


async def test_update_contacts_can_move_the_primary(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client, admin, contacts=[{"first_name": "Old", "last_name": "P"}, {"first_name": "Other", "last_name": "O"}]
    )
    other = next(c for c in customer["contacts"] if c["first_name"] == "Other")

    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"id": other["id"], "is_primary": True}]},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contacts"][0]["id"] == other["id"]
    assert body["primary_contact"]["id"] == other["id"]
    assert [c["is_primary"] for c in body["contacts"]] == [True, False]
    primaries = await db.fetchval(
        "SELECT count(*) FROM contacts WHERE customer_id = $1 AND is_primary", uuid.UUID(customer["id"])
    )
    assert primaries == 1


async def test_update_contacts_can_swap_the_primary_in_one_request(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(
        client, admin, contacts=[{"first_name": "Old", "last_name": "P"}, {"first_name": "Next", "last_name": "N"}]
    )
    old, following = customer["contacts"][0], customer["contacts"][1]
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"id": old["id"], "is_primary": False}, {"id": following["id"], "is_primary": True}]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert [(c["first_name"], c["is_primary"]) for c in response.json()["contacts"]] == [
        ("Next", True),
        ("Old", False),
    ]
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE is_primary") == 1


async def test_update_contacts_new_primary_contact(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "Old", "last_name": "P"}])
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"first_name": "Fresh", "last_name": "P", "is_primary": True}]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    assert [(c["first_name"], c["is_primary"]) for c in response.json()["contacts"]] == [
        ("Fresh", True),
        ("Old", False),
    ]


async def test_update_contacts_for_customer_without_any_makes_first_new_primary(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"first_name": "A", "last_name": "A"}, {"first_name": "B", "last_name": "B"}]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    contacts = response.json()["contacts"]
    assert [(c["first_name"], c["is_primary"]) for c in contacts] == [("A", True), ("B", False)]


async def test_update_contacts_empty_list_changes_nothing(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    response = await client.put(f"/api/customers/{customer['id']}", json={"contacts": []}, headers=admin)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["contacts"]] == [customer["contacts"][0]["id"]]


async def test_delete_removes_customer_and_its_contacts(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    doomed = await create_customer(
        client, admin, contacts=[{"first_name": "A", "last_name": "A"}, {"first_name": "B", "last_name": "B"}]
    )
    survivor = await create_customer(client, admin, contacts=[{"first_name": "S", "last_name": "S"}])

    response = await client.delete(f"/api/customers/{doomed['id']}", headers=admin)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"/api/customers/{doomed['id']}", headers=admin), 404)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(doomed["id"])) == 0
    assert await db.fetchval("SELECT count(*) FROM contacts WHERE customer_id = $1", uuid.UUID(survivor["id"])) == 1
    for contact in doomed["contacts"]:
        assert_problem(await client.get(f"/api/contacts/{contact['id']}", headers=admin), 404)


async def test_delete_twice_is_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    assert (await client.delete(f"/api/customers/{customer['id']}", headers=admin)).status_code == 204
    assert_problem(await client.delete(f"/api/customers/{customer['id']}", headers=admin), 404)


async def test_list_default_newest_first_with_primary_contact(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    first = await create_customer(client, admin, first_name="First")
    second = await create_customer(
        client, admin, first_name="Second", contacts=[{"first_name": "P", "last_name": "C", "email": "p@example.com"}]
    )

    response = await client.get("/api/customers", headers=admin)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"customers", "pagination", *PAGE_FIGURES}
    assert [c["id"] for c in body["customers"]] == [second["id"], first["id"]]
    assert set(body["customers"][0]) == CUSTOMER_KEYS
    assert body["customers"][0]["primary_contact"]["email"] == "p@example.com"
    assert body["customers"][0]["primary_contact"]["is_primary"] is True
    assert body["customers"][1]["primary_contact"] is None
    assert body["pagination"] == {
        "total": 2,
        "page": 1,
        "limit": 10,
        "totalPages": 1,
        "hasNext": False,
        "hasPrev": False,
    }


async def test_list_empty(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/api/customers", headers=admin)
    assert response.json() == {
        "customers": [],
        "pagination": {"total": 0, "page": 1, "limit": 10, "totalPages": 0, "hasNext": False, "hasPrev": False},
        # The prototype front end's form of the same figures (tests/frontend/test_contract.py).
        "total": 0,
        "page": 1,
        "limit": 10,
        "totalPages": 0,
    }


async def test_create_then_list_and_search_see_it(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await create_customer(client, admin, **customer_body(first_name="Zinaida", last_name="Unique"))
    listed = (await client.get("/api/customers", params={"search": "zinaida"}, headers=admin)).json()
    assert [c["id"] for c in listed["customers"]] == [created["id"]]
    found = (await client.get("/api/customers/search", params={"query": "Unique"}, headers=admin)).json()
    assert [c["id"] for c in found] == [created["id"]]
    assert set(found[0]) == CUSTOMER_KEYS
