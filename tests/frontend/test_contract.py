"""The prototype React front end's contract (issue 13's table), through HTTP.

Request bodies are exactly what its forms send: every field of the form present, the empty
ones as "". Each test is one row of the table: what staff did, and what they must now see.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import assert_problem

FORM_FIELDS = (
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
)
OPTIONAL_TEXT = ("email", "phone", "company_name", "tax_id", "address", "city", "postal_code", "country", "notes")


def customer_form(**filled: str) -> dict[str, str]:
    """The customer form as the page posts it: every input, empty ones as ""."""
    form = dict.fromkeys(FORM_FIELDS, "")
    form |= {"first_name": "Oksana", "last_name": "Melnyk", "status": "active", "type": "individual"}
    form |= filled
    return form


def form_of(customer: dict[str, Any]) -> dict[str, str]:
    """The edit form filled from a customer as the page shows it: null fields as ""."""
    return {name: "" if customer[name] is None else customer[name] for name in FORM_FIELDS}


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **filled: str) -> dict[str, Any]:
    response = await client.post("/api/customers", json=customer_form(**filled), headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- "page through the customer list": the footer reads `total` at the top level ----------------


async def test_list_answers_carry_the_page_figures_at_the_top_level(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customers = [await _create(client, admin, first_name=f"Page{i}") for i in range(7)]
    for i in range(3):
        response = await client.post(
            "/api/interactions",
            json={"customer_id": customers[0]["id"], "type": "call", "subject": f"Call {i}"},
            headers=admin,
        )
        assert response.status_code == 201, response.text

    lists = [
        ("/api/customers", {"page": "2", "limit": "3"}, (7, 2, 3, 3)),
        (f"/api/interactions/customer/{customers[0]['id']}", {"page": "2", "limit": "2"}, (3, 2, 2, 2)),
        ("/api/interactions/date-range", {"page": "1", "limit": "2"}, (3, 1, 2, 2)),
    ]
    for path, params, (total, page, limit, pages) in lists:
        response = await client.get(path, params=params, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (total, page, limit, pages), path
        pagination = body["pagination"]
        assert {k: pagination[k] for k in ("total", "page", "limit", "totalPages")} == {
            "total": total,
            "page": page,
            "limit": limit,
            "totalPages": pages,
        }

    # A second page exists and is reachable the way the footer's arrow asks for it.
    second = (await client.get("/api/customers", params={"page": "3", "limit": "3"}, headers=admin)).json()
    assert len(second["customers"]) == 1


async def test_a_cursor_page_has_page_null_at_the_top_too(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(3):
        await _create(client, admin, first_name=f"Cursor{i}")
    first = (await client.get("/api/customers", params={"limit": "2"}, headers=admin)).json()
    cursor = first["pagination"]["nextCursor"]
    body = (await client.get("/api/customers", params={"limit": "2", "cursor": cursor}, headers=admin)).json()
    assert (body["total"], body["page"], body["limit"], body["totalPages"]) == (3, None, 2, 2)


async def test_the_openapi_document_describes_the_top_level_figures(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for name in ("CustomerList", "InteractionList", "InteractionWithCustomerList"):
        properties = schemas[name]["properties"]
        for key in ("total", "page", "limit", "totalPages", "pagination"):
            assert key in properties, (name, key)
        assert "prototype front end" in properties["total"]["description"]
        assert "total" in schemas[name]["required"]
    for name in ("CustomerCreate", "CustomerUpdate", "ContactCreate", "InteractionUpdate"):
        assert "means null" in schemas[name]["description"], name


# --- "create a private customer without an email": "" is no value -------------------------------


async def test_create_a_private_customer_without_an_email(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    body = await _create(client, admin)
    for name in OPTIONAL_TEXT:
        assert body[name] is None, name
    row = await db.fetchrow("SELECT * FROM customers WHERE id = $1", uuid.UUID(body["id"]))
    assert row is not None
    for name in OPTIONAL_TEXT:
        assert row[name] is None, name


async def test_an_empty_choice_is_no_choice(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = await _create(client, admin, type="")
    assert body["type"] is None


async def test_text_is_trimmed_before_validation_and_storage(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    body = await _create(
        client, admin, first_name="  Oksana ", email=" Oksana@Example.com\t", company_name="  ", notes="\n note \n"
    )
    assert (body["first_name"], body["email"], body["company_name"], body["notes"]) == (
        "Oksana",
        "Oksana@example.com",
        None,
        "note",
    )
    row = await db.fetchrow("SELECT first_name, email, notes FROM customers WHERE id = $1", uuid.UUID(body["id"]))
    assert tuple(row or ()) == ("Oksana", "Oksana@example.com", "note")


async def test_a_required_field_given_empty_is_422_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    for field in ("first_name", "last_name"):
        for blank in ("", "   ", "\t\n"):
            response = await client.post("/api/customers", json=customer_form(**{field: blank}), headers=admin)
            assert_problem(response, 422, field)
    customer = await _create(client, admin)
    for field in ("first_name", "last_name", "status"):
        form = form_of(customer) | {field: " "}
        assert_problem(await client.put(f"/api/customers/{customer['id']}", json=form, headers=admin), 422, field)
    assert await db.fetchval("SELECT version FROM customers") == 1


# --- "edit any customer that has no email" -------------------------------------------------------


async def test_edit_a_customer_that_has_no_email(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await _create(client, admin)
    form = form_of(customer) | {"city": "Lviv"}
    assert form["email"] == ""
    response = await client.put(f"/api/customers/{customer['id']}", json=form, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["city"] == "Lviv"
    assert response.json()["email"] is None


async def test_emptying_a_field_in_the_form_clears_it(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    customer = await _create(client, admin, email="o.melnyk@example.com", phone="+380 50 111 2233")
    form = form_of(customer) | {"email": "", "phone": "  "}
    body = (await client.put(f"/api/customers/{customer['id']}", json=form, headers=admin)).json()
    assert (body["email"], body["phone"], body["version"]) == (None, None, 2)


# --- "save a form unchanged": nothing changes, not even the version ------------------------------


async def test_saving_an_unchanged_form_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await _create(client, admin, city="Kyiv", notes="Met at the fair")
    path = f"/api/customers/{customer['id']}"
    before = await client.get(path, headers=admin)
    stored = await db.fetchrow("SELECT * FROM customers WHERE id = $1", uuid.UUID(customer["id"]))

    # As loaded, and with the spaces a careless edit leaves: both equal the stored values.
    for form in (form_of(before.json()), form_of(before.json()) | {"city": " Kyiv  ", "notes": "Met at the fair "}):
        response = await client.put(path, json=form, headers={**admin, "If-Match": before.headers["etag"]})
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == before.headers["etag"]
        assert response.json()["version"] == 1

    after = await client.get(path, headers=admin)
    assert after.headers["etag"] == before.headers["etag"]
    assert after.json() == before.json()
    # null company, tax id and the other empty fields stayed null (not ""), updated_at did not move.
    assert await db.fetchrow("SELECT * FROM customers WHERE id = $1", uuid.UUID(customer["id"])) == stored


# --- "type one letter into the list's search box" ------------------------------------------------


async def test_one_letter_in_the_list_search_is_answered(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    olena = await _create(client, admin, first_name="Olena", last_name="Shevchenko")
    await _create(client, admin, first_name="Petro", last_name="Bondar")
    # Each keystroke of "Ol": "O", then "Ol".
    for typed in ("O", "o", "Ol"):
        response = await client.get("/api/customers", params={"search": typed}, headers=admin)
        assert response.status_code == 200, (typed, response.text)
        body = response.json()
        assert [c["id"] for c in body["customers"]] == [olena["id"]], typed
        assert body["total"] == 1
    # The search endpoint keeps its documented minimum.
    assert_problem(await client.get("/api/customers/search", params={"query": "O"}, headers=admin), 422, "query")


# --- "filter by or save the status pending" -----------------------------------------------------


async def test_pending_is_a_status(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    waiting = await _create(client, admin, status="pending")
    assert waiting["status"] == "pending"
    other = await _create(client, admin)
    response = await client.put(
        f"/api/customers/{other['id']}", json=form_of(other) | {"status": "pending"}, headers=admin
    )
    assert response.status_code == 200, response.text
    await _create(client, admin, status="lead")

    listed = (await client.get("/api/customers", params={"status": "pending"}, headers=admin)).json()
    assert {c["id"] for c in listed["customers"]} == {waiting["id"], other["id"]}
    assert listed["total"] == 2
    segments = (await client.get("/api/customers/segments", headers=admin)).json()
    assert segments["byStatus"]["pending"] == 2
    assert segments["byStatusAndType"]["pending"]["individual"] == 2
    assert await db.fetchval("SELECT count(*) FROM customers WHERE status = 'pending'") == 2
    document = (await client.get("/openapi.json")).json()
    assert "pending" in document["components"]["schemas"]["CustomerStatus"]["enum"]


# --- "delete from the list; pick a customer on the order form": `customer.name` -----------------


async def test_every_customer_representation_has_a_name(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    person = await _create(client, admin, first_name="Iryna", last_name="Koval")
    firm = await _create(client, admin, first_name="Taras", last_name="Hnat", type="business", company_name="Hnat LLC")
    anonymous_firm = await _create(client, admin, first_name="Roman", last_name="Lys", type="business")
    expected = {person["id"]: "Iryna Koval", firm["id"]: "Hnat LLC", anonymous_firm["id"]: "Roman Lys"}

    assert {c["id"]: c["name"] for c in (person, firm, anonymous_firm)} == expected
    for customer_id, name in expected.items():
        assert (await client.get(f"/api/customers/{customer_id}", headers=admin)).json()["name"] == name
    listed = (await client.get("/api/customers", headers=admin)).json()["customers"]
    assert {c["id"]: c["name"] for c in listed} == expected
    found = (await client.get("/api/customers/search", params={"query": "Hnat"}, headers=admin)).json()
    assert [c["name"] for c in found] == ["Hnat LLC"]
    # The name is read-only: a form that echoes it back is told so (not stored).
    response = await client.put(f"/api/customers/{firm['id']}", json={"name": "Other"}, headers=admin)
    assert_problem(response, 422, "name")

    # The customer summary inside contacts and interactions carries it too.
    contact = await client.post(
        "/api/contacts",
        json={
            "customer_id": firm["id"],
            "first_name": "Anna",
            "last_name": "Hnat",
            "position": "",
            "email": "",
            "phone": "",
            "is_primary": True,
        },
        headers=admin,
    )
    assert contact.status_code == 201, contact.text
    assert (contact.json()["position"], contact.json()["email"], contact.json()["phone"]) == (None, None, None)
    detail = (await client.get(f"/api/contacts/{contact.json()['id']}", headers=admin)).json()
    assert detail["customer"]["name"] == "Hnat LLC"


# --- contact search says whose contact each one is -----------------------------------------------


async def test_contact_search_results_carry_the_customer_summary(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    firm = await _create(client, admin, first_name="Taras", last_name="Hnat", type="business", company_name="Hnat LLC")
    person = await _create(client, admin, first_name="Iryna", last_name="Koval")
    for owner in (firm, person):
        response = await client.post(
            "/api/contacts",
            json={"customer_id": owner["id"], "first_name": "Marta", "last_name": "Searchable"},
            headers=admin,
        )
        assert response.status_code == 201, response.text

    found = (await client.get("/api/contacts/search", params={"query": "searchable"}, headers=admin)).json()
    assert len(found) == 2
    for contact in found:
        detail = (await client.get(f"/api/contacts/{contact['id']}", headers=admin)).json()
        assert contact == detail
    assert {c["customer"]["name"] for c in found} == {"Hnat LLC", "Iryna Koval"}


# --- the interaction form -----------------------------------------------------------------------


async def test_the_interaction_form_with_empty_optional_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await _create(client, admin)
    form = {
        "customer_id": customer["id"],
        "contact_id": "",
        "type": "call",
        "subject": " First call ",
        "description": "",
        "date": "",
    }
    response = await client.post("/api/interactions", json=form, headers=admin)
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["contact_id"], created["subject"], created["description"]) == (None, "First call", None)

    path = f"/api/interactions/{created['id']}"
    unchanged = form | {"date": created["date"]}
    response = await client.put(path, json=unchanged, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == created["version"]
    assert_problem(await client.put(path, json=unchanged | {"subject": "  "}, headers=admin), 422, "subject")
