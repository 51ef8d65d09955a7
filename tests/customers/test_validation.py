"""Customers: every validation rule of the spec, and that no bad input reaches a 500."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem, create_customer, customer_body

# --- names -------------------------------------------------------------------------------


def expect_422(response: httpx.Response, field: str, case: object) -> dict[str, Any]:
    """assert_problem for one case of a loop over bad values, saying which case failed."""
    assert response.status_code == 422, (case, response.text)
    return assert_problem(response, 422, field)


@pytest.mark.parametrize("field", ["first_name", "last_name"])
async def test_create_rejects_bad_names(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], field: str
) -> None:
    for value in ["", "   ", "\t\n", "x" * 101, "  " + "x" * 101, None, 5, ["a"], {"a": 1}]:
        response = await client.post("/api/customers", json=customer_body(**{field: value}), headers=admin)
        expect_422(response, field, value)
    assert await db.fetchval("SELECT count(*) FROM customers") == 0


@pytest.mark.parametrize("field", ["first_name", "last_name"])
async def test_create_requires_names(client: httpx.AsyncClient, admin: dict[str, str], field: str) -> None:
    body = customer_body()
    del body[field]
    problem = assert_problem(await client.post("/api/customers", json=body, headers=admin), 422, field)
    assert problem["errors"][0]["message"] == "field required"


async def test_names_are_trimmed_and_100_characters_fit(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    long_name = "Ї" * 100  # characters, not bytes
    body = await create_customer(client, admin, first_name="  Ivan \t", last_name=f" {long_name} ")
    assert body["first_name"] == "Ivan"
    assert body["last_name"] == long_name
    stored = await db.fetchval("SELECT first_name FROM customers WHERE id = $1", uuid.UUID(body["id"]))
    assert stored == "Ivan"


@pytest.mark.parametrize("field", ["first_name", "last_name"])
async def test_update_cannot_clear_or_break_names(client: httpx.AsyncClient, admin: dict[str, str], field: str) -> None:
    customer = await create_customer(client, admin)
    for value in [None, "", "  ", "y" * 101]:
        response = await client.put(f"/api/customers/{customer['id']}", json={field: value}, headers=admin)
        expect_422(response, field, value)
    unchanged = (await client.get(f"/api/customers/{customer['id']}", headers=admin)).json()
    assert unchanged[field] == customer[field]
    assert unchanged["version"] == customer["version"]


async def test_update_null_on_required_field_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    for field in ["first_name", "last_name", "status", "owner_id", "contacts"]:
        response = await client.put(f"/api/customers/{customer['id']}", json={field: None}, headers=admin)
        problem = expect_422(response, field, field)
        assert "cannot be null" in problem["errors"][0]["message"]


async def test_update_trims_names(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    response = await client.put(f"/api/customers/{customer['id']}", json={"last_name": "  Shevchenko  "}, headers=admin)
    assert response.status_code == 200
    assert response.json()["last_name"] == "Shevchenko"


# --- email -------------------------------------------------------------------------------


async def test_create_rejects_invalid_email(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    # "" is no email (null): tests/frontend/test_contract.py.
    bad = ["not-an-email", "a@", "@example.com", "a b@example.com", "a@@example.com", 42, "x" * 250 + "@e.com"]
    for email in bad:
        expect_422(await client.post("/api/customers", json=customer_body(email=email), headers=admin), "email", email)
    customer = await create_customer(client, admin)
    for email in bad:
        response = await client.put(f"/api/customers/{customer['id']}", json={"email": email}, headers=admin)
        expect_422(response, "email", email)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


async def test_email_longer_than_255_is_rejected(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    labels = ".".join(["d" * 60] * 4)  # a syntactically fine domain of 243 characters
    email = f"{'a' * 12}@{labels}.com"
    assert len(email) > 255
    assert_problem(await client.post("/api/customers", json=customer_body(email=email), headers=admin), 422, "email")


@pytest.mark.parametrize("second", ["dup@example.com", "DUP@EXAMPLE.COM", "Dup@Example.com"])
async def test_duplicate_email_ignoring_case_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any], second: str
) -> None:
    await create_customer(client, admin, email="dup@example.com")
    problem = assert_problem(await client.post("/api/customers", json=customer_body(email=second), headers=admin), 409)
    assert "email" in problem["detail"]
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


async def test_duplicate_email_on_update_is_409(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    await create_customer(client, admin, email="taken@example.com")
    other = await create_customer(client, admin, email="free@example.com")
    response = await client.put(f"/api/customers/{other['id']}", json={"email": "TAKEN@example.com"}, headers=admin)
    assert_problem(response, 409)
    stored = await db.fetchval("SELECT email FROM customers WHERE id = $1", uuid.UUID(other["id"]))
    assert stored == "free@example.com"


async def test_concurrent_creates_with_one_email_make_one_customer(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/customers",
                json=customer_body(email="race@example.com" if i % 2 else "RACE@example.com"),
                headers=admin,
            )
            for i in range(8)
        )
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


async def test_many_customers_without_email_are_fine(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for _ in range(3):
        await create_customer(client, admin, email=None)
    assert (await client.get("/api/customers", headers=admin)).json()["pagination"]["total"] == 3


# --- phone and other text fields ---------------------------------------------------------


async def test_phone_is_stored_as_given_but_trimmed(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    phone = "+380 (67) 123-45-67 ext.9"
    body = await create_customer(client, admin, phone=f" {phone}\t")
    assert body["phone"] == phone
    assert await db.fetchval("SELECT phone FROM customers WHERE id = $1", uuid.UUID(body["id"])) == phone


async def test_phone_of_32_characters_fits_33_does_not(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await create_customer(client, admin, phone="1" * 32)
    assert_problem(await client.post("/api/customers", json=customer_body(phone="1" * 33), headers=admin), 422, "phone")


async def test_optional_text_fields_have_limits(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    limits = {"company_name": 255, "tax_id": 50, "address": 500, "city": 100, "postal_code": 20, "country": 100}
    limits |= {"notes": 10_000, "phone": 32}
    for field, limit in limits.items():
        response = await client.post("/api/customers", json=customer_body(**{field: "9" * (limit + 1)}), headers=admin)
        expect_422(response, field, field)
        body = await create_customer(client, admin, **{field: "9" * limit})
        assert body[field] == "9" * limit


async def test_nul_characters_are_422_not_500(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    for field in ["first_name", "last_name", "company_name", "tax_id", "notes", "phone", "city", "postal_code"]:
        response = await client.post("/api/customers", json=customer_body(**{field: "bad\x00value"}), headers=admin)
        expect_422(response, field, field)
        response = await client.put(f"/api/customers/{customer['id']}", json={field: "x\x00"}, headers=admin)
        expect_422(response, field, field)


def _surrogate_body(field: str) -> str:
    # Valid JSON, but "\ud800" alone cannot be encoded as UTF-8: the database cannot store it.
    return f'{{"first_name": "A", "last_name": "B", "{field}": "x\\ud800y"}}'


SURROGATE_FIELDS = ["company_name", "notes", "email", "first_name", "last_name", "tax_id", "postal_code"]


async def test_lone_surrogates_are_422_not_500(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    headers = {**admin, "content-type": "application/json"}
    customer = await create_customer(client, admin)
    for field in SURROGATE_FIELDS:
        response = await client.post("/api/customers", content=_surrogate_body(field), headers=headers)
        assert response.status_code == 422, (field, response.text)
        response = await client.put(
            f"/api/customers/{customer['id']}",
            content=f'{{"{field}": "\\udfff"}}',
            headers=headers,
        )
        assert response.status_code == 422, (field, response.text)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


@pytest.mark.parametrize(
    "field",
    [
        "company_name",
        "notes",
        "email",
        "first_name",
        "last_name",
        "tax_id",
        "postal_code",
    ],
)
async def test_lone_surrogates_name_the_field(client: httpx.AsyncClient, admin: dict[str, str], field: str) -> None:
    headers = {**admin, "content-type": "application/json"}
    response = await client.post("/api/customers", content=_surrogate_body(field), headers=headers)
    assert_problem(response, 422, field)


# --- enums -------------------------------------------------------------------------------


async def test_every_status_and_type_is_accepted(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for status in ["active", "inactive", "lead", "prospect", "customer"]:
        assert (await create_customer(client, admin, status=status))["status"] == status
    for type_ in ["individual", "business", "government", "nonprofit", None]:
        assert (await create_customer(client, admin, type=type_))["type"] == type_


async def test_bad_enum_values_are_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin)
    cases = [("status", "deleted"), ("status", "ACTIVE"), ("status", ""), ("type", "person"), ("type", "unspecified")]
    for field, value in [*cases, ("status", None)]:
        response = await client.post("/api/customers", json=customer_body(**{field: value}), headers=admin)
        expect_422(response, field, value)
    for field, value in cases:
        response = await client.put(f"/api/customers/{customer['id']}", json={field: value}, headers=admin)
        expect_422(response, field, value)


async def test_bad_owner_id_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # "" is no owner (null: the creator), as for every optional field.
    for owner in ["me", 12, "00000000-0000-0000-0000-00000000000g"]:
        response = await client.post("/api/customers", json=customer_body(owner_id=owner), headers=admin)
        expect_422(response, "owner_id", owner)


# --- unknown and read-only fields --------------------------------------------------------


async def test_read_only_fields_are_422_naming_them(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    for field in ["id", "created_at", "updated_at", "version", "primary_contact"]:
        value: object = 1 if field == "version" else str(uuid.uuid4())
        response = await client.post("/api/customers", json=customer_body(**{field: value}), headers=admin)
        assert expect_422(response, field, field)["errors"][0]["message"] == "read-only field"
        response = await client.put(f"/api/customers/{customer['id']}", json={field: value}, headers=admin)
        assert expect_422(response, field, field)["errors"][0]["message"] == "read-only field"
    assert await db.fetchval("SELECT count(*) FROM customers") == 1


@pytest.mark.parametrize("method", ["post", "put"])
async def test_unknown_fields_are_422_naming_them(
    client: httpx.AsyncClient, admin: dict[str, str], method: str
) -> None:
    if method == "post":
        response = await client.post("/api/customers", json=customer_body(nickname="Vanya"), headers=admin)
    else:
        customer = await create_customer(client, admin)
        response = await client.put(f"/api/customers/{customer['id']}", json={"nickname": "Vanya"}, headers=admin)
    problem = assert_problem(response, 422, "nickname")
    assert problem["errors"][0]["message"] == "unknown field"


async def test_read_only_fields_inside_nested_contacts_are_named(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    contact = {"first_name": "A", "last_name": "B", "id": str(uuid.uuid4())}
    assert_problem(
        await client.post("/api/customers", json=customer_body(contacts=[contact]), headers=admin), 422, "contacts.0.id"
    )
    contact = {"first_name": "A", "last_name": "B", "created_at": "2024-01-01T00:00:00Z"}
    customer = await create_customer(client, admin)
    assert_problem(
        await client.put(f"/api/customers/{customer['id']}", json={"contacts": [contact]}, headers=admin),
        422,
        "contacts.0.created_at",
    )


# --- nested contacts ---------------------------------------------------------------------


async def test_more_than_50_contacts_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    contacts = [{"first_name": f"C{i}", "last_name": "X"} for i in range(51)]
    assert_problem(
        await client.post("/api/customers", json=customer_body(contacts=contacts), headers=admin), 422, "contacts"
    )
    customer = await create_customer(client, admin)
    assert_problem(
        await client.put(f"/api/customers/{customer['id']}", json={"contacts": contacts}, headers=admin),
        422,
        "contacts",
    )
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


async def test_two_primary_contacts_on_create_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    contacts = [
        {"first_name": "A", "last_name": "A", "is_primary": True},
        {"first_name": "B", "last_name": "B"},
        {"first_name": "C", "last_name": "C", "is_primary": True},
    ]
    problem = assert_problem(
        await client.post("/api/customers", json=customer_body(contacts=contacts), headers=admin),
        422,
        "contacts.0.is_primary",
    )
    assert "contacts.2.is_primary" in [e["field"] for e in problem["errors"]]
    assert await db.fetchval("SELECT count(*) FROM customers") == 0


async def test_two_primary_contacts_on_update_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    contacts = [
        {"id": customer["contacts"][0]["id"], "is_primary": True},
        {"first_name": "B", "last_name": "B", "is_primary": True},
    ]
    assert_problem(
        await client.put(f"/api/customers/{customer['id']}", json={"contacts": contacts}, headers=admin),
        422,
        "contacts.1.is_primary",
    )
    assert await db.fetchval("SELECT count(*) FROM contacts") == 1


NESTED_CREATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"last_name": "B"}, "contacts.0.first_name"),
    ({"first_name": "A"}, "contacts.0.last_name"),
    ({"first_name": " ", "last_name": "B"}, "contacts.0.first_name"),
    ({"first_name": "A", "last_name": "B", "email": "nope"}, "contacts.0.email"),
    ({"first_name": "A", "last_name": "B", "phone": "9" * 33}, "contacts.0.phone"),
    ({"first_name": "A", "last_name": "B", "position": "p" * 101}, "contacts.0.position"),
    ({"first_name": "A", "last_name": "B", "is_primary": "maybe"}, "contacts.0.is_primary"),
    ({"first_name": "A", "last_name": "B", "customer_id": str(uuid.uuid4())}, "contacts.0.customer_id"),
]
NESTED_UPDATE_CASES: list[tuple[dict[str, Any], str]] = [
    ({"last_name": "B"}, "contacts.0.first_name"),
    ({"first_name": "A"}, "contacts.0.last_name"),
    ({"first_name": None, "last_name": "B"}, "contacts.0.first_name"),
    ({"first_name": "A", "last_name": "B", "is_primary": None}, "contacts.0.is_primary"),
    ({"first_name": "A", "last_name": "B", "email": "x@"}, "contacts.0.email"),
    ({"id": "not-a-uuid"}, "contacts.0.id"),
]


async def test_nested_contact_fields_are_validated(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    for contact, field in NESTED_CREATE_CASES:
        response = await client.post("/api/customers", json=customer_body(contacts=[contact]), headers=admin)
        expect_422(response, field, contact)
    customer = await create_customer(client, admin)
    for contact, field in NESTED_UPDATE_CASES:
        response = await client.put(f"/api/customers/{customer['id']}", json={"contacts": [contact]}, headers=admin)
        expect_422(response, field, contact)
    # The error names the entry by its position.
    contacts = [{"first_name": "Ok", "last_name": "Ok"}, {"first_name": "Bad", "last_name": ""}]
    response = await client.post("/api/customers", json=customer_body(contacts=contacts), headers=admin)
    expect_422(response, "contacts.1.last_name", contacts)
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
    assert await db.fetchval("SELECT count(*) FROM contacts") == 0


async def test_nested_update_with_foreign_contact_id_is_422(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    mine = await create_customer(client, admin, contacts=[{"first_name": "Mine", "last_name": "M"}])
    theirs = await create_customer(client, admin, contacts=[{"first_name": "Theirs", "last_name": "T"}])
    foreign_id = theirs["contacts"][0]["id"]

    for contact_id in (foreign_id, str(uuid.uuid4())):
        response = await client.put(
            f"/api/customers/{mine['id']}",
            json={"first_name": "Changed", "contacts": [{"id": contact_id, "first_name": "Hijacked"}]},
            headers=admin,
        )
        assert_problem(response, 422, "contacts.0.id")

    # Nothing of the failed request stuck, not even the customer field sent alongside.
    assert await db.fetchval("SELECT first_name FROM contacts WHERE id = $1", uuid.UUID(foreign_id)) == "Theirs"
    assert await db.fetchval("SELECT first_name FROM customers WHERE id = $1", uuid.UUID(mine["id"])) == "Ivan"


async def test_nested_update_cannot_unmark_the_primary(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"contacts": [{"id": customer["contacts"][0]["id"], "is_primary": False}]},
        headers=admin,
    )
    assert_problem(response, 422, "contacts.0.is_primary")


# --- ids, JSON, bodies -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "delete"])
async def test_malformed_id_is_422(client: httpx.AsyncClient, admin: dict[str, str], method: str) -> None:
    kwargs: dict[str, Any] = {"json": {"city": "X"}} if method == "put" else {}
    for bad_id in ["123", "not-a-uuid", "00000000-0000-0000-0000-00000000000z", "%00", "1" * 40]:
        response = await client.request(method.upper(), f"/api/customers/{bad_id}", headers=admin, **kwargs)
        expect_422(response, "customer_id", bad_id)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
async def test_unknown_id_is_404(client: httpx.AsyncClient, admin: dict[str, str], method: str) -> None:
    missing = uuid.uuid4()
    kwargs: dict[str, Any] = {"json": {"city": "X"}} if method == "put" else {}
    response = await client.request(method.upper(), f"/api/customers/{missing}", headers=admin, **kwargs)
    problem = assert_problem(response, 404)
    assert str(missing) in problem["detail"]


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    headers = {**admin, "content-type": "application/json"}
    customer = await create_customer(client, admin)
    for content in ['{"first_name": "A",', "{'first_name': 'A'}", "not json", '{"a": 1}}', "{"]:
        response = await client.post("/api/customers", content=content, headers=headers)
        assert response.status_code == 400, (content, response.text)
        assert_problem(response, 400)
        response = await client.put(f"/api/customers/{customer['id']}", content=content, headers=headers)
        assert response.status_code == 400, (content, response.text)
        assert_problem(response, 400)


async def test_body_that_is_not_an_object_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    headers = {**admin, "content-type": "application/json"}
    for content in ["[]", '"text"', "42", "null", "true"]:
        response = await client.post("/api/customers", content=content, headers=headers)
        assert response.status_code == 422, (content, response.text)
        assert_problem(response, 422)


async def test_body_errors_come_before_conflicts(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    # A body both invalid and conflicting gets the 422: that is what the client must fix in it.
    await create_customer(client, admin, email="taken@example.com")
    two_primaries = [
        {"first_name": "A", "last_name": "A", "is_primary": True},
        {"first_name": "B", "last_name": "B", "is_primary": True},
    ]
    response = await client.post(
        "/api/customers", json=customer_body(email="taken@example.com", contacts=two_primaries), headers=admin
    )
    assert_problem(response, 422, "contacts.1.is_primary")
    other = await create_customer(client, admin)
    response = await client.put(
        f"/api/customers/{other['id']}",
        json={"email": "TAKEN@example.com", "contacts": [{"first_name": "No last name"}]},
        headers=admin,
    )
    assert_problem(response, 422, "contacts.0.last_name")
