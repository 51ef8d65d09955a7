"""Every committed change writes exactly one history entry per changed record; a rolled-back one none."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, create_customer, customer_body
from tests.history.support import history, of

FIELDS = {
    "first_name": "Olena",
    "last_name": "Kovalenko",
    "email": "olena.history@example.com",
    "company_name": "Kovalenko & Sons",
    "status": "lead",
    "type": "business",
}


async def _count(db: asyncpg.Connection[Any]) -> int:
    return int(await db.fetchval("SELECT count(*) FROM history"))


async def test_create_writes_every_field_set_with_old_null(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    user = uuid.uuid4()
    headers = {**tokens.headers("manager", user), "X-Request-ID": "req-create-1"}
    customer = await create_customer(client, headers, **FIELDS)

    [entry] = await history(client, headers, customer["id"])
    assert entry["entity"] == "customer"
    assert entry["entity_id"] == customer["id"]
    assert entry["customer_id"] == customer["id"]
    assert entry["action"] == "created"
    assert entry["actor"] == {"user_id": str(user), "role": "manager"}
    assert entry["request_id"] == "req-create-1"
    assert entry["version"] == customer["version"] == 1
    expected = {name: {"old": None, "new": value} for name, value in FIELDS.items()}
    expected["phone"] = {"old": None, "new": customer["phone"]}  # customer_body's default
    expected["owner_id"] = {"old": None, "new": str(user)}  # the creator, when none is named
    assert entry["changes"] == expected
    assert entry["at"].endswith("Z")
    assert len(entry["at"]) == len("2026-12-02T10:00:00.123456Z")
    assert await _count(db) == 1


async def test_update_records_old_and_new_of_changed_fields_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin, status="lead", city="Kyiv")
    response = await client.put(
        f"/api/customers/{customer['id']}", json={"status": "active", "city": "Kyiv", "notes": "won"}, headers=admin
    )
    assert response.status_code == 200, response.text

    newest, created = await history(client, admin, customer["id"])
    assert created["action"] == "created"
    assert newest["action"] == "updated"
    assert newest["version"] == response.json()["version"] == 2
    assert newest["changes"] == {"status": {"old": "lead", "new": "active"}, "notes": {"old": None, "new": "won"}}


async def test_a_put_that_changes_nothing_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "B"}])
    before = await _count(db)
    same = {name: customer[name] for name in ("first_name", "last_name", "email", "status")}
    contact = customer["primary_contact"]
    same["contacts"] = [{"id": contact["id"], "first_name": contact["first_name"]}]

    response = await client.put(f"/api/customers/{customer['id']}", json=same, headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["version"] == customer["version"]
    assert response.headers["ETag"] == f'"{customer["version"]}"'
    assert await _count(db) == before
    contact_put = await client.put(f"/api/contacts/{contact['id']}", json={"last_name": "B"}, headers=admin)
    assert contact_put.json()["version"] == contact["version"]
    assert await _count(db) == before


async def test_a_rolled_back_request_leaves_no_entry(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    taken = await create_customer(client, admin)
    other = await create_customer(client, admin)
    before = await _count(db)

    # The update is flushed (its entry would follow) and then the unique email index refuses it.
    duplicate_update = await client.put(f"/api/customers/{other['id']}", json={"email": taken["email"]}, headers=admin)
    assert duplicate_update.status_code == 409
    # A new customer with nested contacts: the customer row is flushed first, then refused.
    duplicate_create = await client.post(
        "/api/customers",
        json=customer_body(email=taken["email"], contacts=[{"first_name": "A", "last_name": "B"}]),
        headers=admin,
    )
    assert duplicate_create.status_code == 409
    # An interaction naming another customer's contact fails after nothing, or after a flush.
    stray = await client.post(
        "/api/interactions",
        json={"customer_id": other["id"], "type": "call", "subject": "x", "contact_id": str(uuid.uuid4())},
        headers=admin,
    )
    assert stray.status_code == 422

    assert await _count(db) == before
    assert [e["action"] for e in await history(client, admin, other["id"])] == ["created"]


async def test_customer_created_with_contacts_has_an_entry_for_each(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(
        client, admin, contacts=[{"first_name": "A", "last_name": "One"}, {"first_name": "B", "last_name": "Two"}]
    )
    entries = await history(client, admin, customer["id"])
    assert sorted(e["entity"] for e in entries) == ["contact", "contact", "customer"]
    contacts = [e for e in entries if e["entity"] == "contact"]
    assert {e["changes"]["last_name"]["new"] for e in contacts} == {"One", "Two"}
    assert {e["changes"].get("is_primary", {}).get("new") for e in contacts} == {True, False}
    # `created` lists the fields set: a false flag is a value, a missing email is not.
    assert all("email" not in e["changes"] and e["changes"]["customer_id"]["new"] == customer["id"] for e in contacts)


async def test_primary_switch_is_an_entry_for_each_contact_whose_flag_changed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(client, admin)
    first = (
        await client.post(
            "/api/contacts", json={"customer_id": customer["id"], "first_name": "F", "last_name": "F"}, headers=admin
        )
    ).json()
    second = (
        await client.post(
            "/api/contacts", json={"customer_id": customer["id"], "first_name": "S", "last_name": "S"}, headers=admin
        )
    ).json()
    third = (
        await client.post(
            "/api/contacts", json={"customer_id": customer["id"], "first_name": "T", "last_name": "T"}, headers=admin
        )
    ).json()
    assert first["is_primary"]
    assert not second["is_primary"]

    response = await client.put(f"/api/contacts/{second['id']}/primary", headers=admin)
    assert response.status_code == 200, response.text

    entries = await history(client, admin, customer["id"], action="updated")
    assert sorted((e["entity_id"], e["changes"]["is_primary"]["new"], e["version"]) for e in entries) == sorted(
        [(first["id"], False, 2), (second["id"], True, 2)]
    )
    assert not of(entries, third["id"])
    assert all(e["changes"].keys() == {"is_primary"} for e in entries)
    # Asking again changes nothing and writes nothing.
    await client.put(f"/api/contacts/{second['id']}/primary", headers=admin)
    assert len(await history(client, admin, customer["id"], action="updated")) == 2


async def test_deleting_the_primary_records_its_delete_and_the_promotion(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customer = await create_customer(
        client, admin, contacts=[{"first_name": "A", "last_name": "A"}, {"first_name": "B", "last_name": "B"}]
    )
    primary = customer["primary_contact"]
    other = next(c for c in customer["contacts"] if c["id"] != primary["id"])
    assert (await client.delete(f"/api/contacts/{primary['id']}", headers=admin)).status_code == 204

    [deleted] = await history(client, admin, customer["id"], action="deleted")
    assert deleted["entity_id"] == primary["id"]
    assert deleted["changes"] == {}
    assert deleted["version"] == primary["version"] + 1
    [promoted] = await history(client, admin, customer["id"], action="updated")
    assert promoted["entity_id"] == other["id"]
    assert promoted["changes"] == {"is_primary": {"old": False, "new": True}}


async def test_interaction_create_update_delete(
    client: httpx.AsyncClient, tokens: TokenFactory, admin: dict[str, str]
) -> None:
    author = uuid.uuid4()
    employee = tokens.headers("employee", author)
    customer = await create_customer(client, admin)
    created = await client.post(
        "/api/interactions",
        json={"customer_id": customer["id"], "type": "call", "subject": "Intro", "date": "2026-12-01T09:00:00Z"},
        headers=employee,
    )
    interaction = created.json()
    updated = await client.put(
        f"/api/interactions/{interaction['id']}", json={"subject": "Intro call"}, headers=employee
    )
    assert updated.status_code == 200
    assert (await client.delete(f"/api/interactions/{interaction['id']}", headers=employee)).status_code == 204

    deleted, changed, made = of(await history(client, admin, customer["id"]), interaction["id"])
    assert [made["action"], changed["action"], deleted["action"]] == ["created", "updated", "deleted"]
    assert [made["version"], changed["version"], deleted["version"]] == [1, 2, 3]
    assert made["changes"]["subject"] == {"old": None, "new": "Intro"}
    assert made["changes"]["user_id"] == {"old": None, "new": str(author)}
    assert made["changes"]["date"]["new"].startswith("2026-12-01T09:00:00")
    assert changed["changes"] == {"subject": {"old": "Intro", "new": "Intro call"}}
    assert changed["actor"] == {"user_id": str(author), "role": "employee"}
    assert deleted["changes"] == {}


async def test_customer_delete_records_it_and_each_cascaded_record(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    contact = customer["primary_contact"]
    interaction = (
        await client.post(
            "/api/interactions", json={"customer_id": customer["id"], "type": "note", "subject": "n"}, headers=admin
        )
    ).json()

    assert (await client.delete(f"/api/customers/{customer['id']}", headers=admin)).status_code == 204

    # History outlives the record: the customer's page still answers.
    deleted = await history(client, admin, customer["id"], action="deleted")
    assert sorted((e["entity"], e["entity_id"], e["version"]) for e in deleted) == sorted(
        [("customer", customer["id"], 2), ("contact", contact["id"], 2), ("interaction", interaction["id"], 2)]
    )
    assert {e["request_id"] for e in deleted} == {deleted[0]["request_id"]}
    assert await db.fetchval("SELECT count(*) FROM customers WHERE id = $1", uuid.UUID(customer["id"])) == 0


async def test_a_commit_that_fails_after_the_entry_was_written_keeps_neither(
    client: httpx.AsyncClient, admin: dict[str, str], db: asyncpg.Connection[Any]
) -> None:
    """The entry and the change are one transaction: a failure at COMMIT (a deferred trigger that
    refuses this request's entry) leaves neither the change nor its entry."""
    customer = await create_customer(client, admin, status="lead")
    await db.execute(
        """
        CREATE FUNCTION test_refuse_entry() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.request_id = 'refuse-at-commit' THEN RAISE EXCEPTION 'refused by the test'; END IF;
            RETURN NULL;
        END $$;
        CREATE CONSTRAINT TRIGGER test_refuse_entry AFTER INSERT ON history
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_entry();
        """
    )
    before = await _count(db)

    response = await client.put(
        f"/api/customers/{customer['id']}",
        json={"status": "active"},
        headers={**admin, "X-Request-ID": "refuse-at-commit"},
    )

    assert response.status_code >= 500, response.text
    assert await _count(db) == before
    row = await db.fetchrow("SELECT status, version FROM customers WHERE id = $1", uuid.UUID(customer["id"]))
    assert (row["status"], row["version"]) == ("lead", 1)
    # The same change under another request id commits, with its entry.
    assert (await client.put(f"/api/customers/{customer['id']}", json={"status": "active"}, headers=admin)).is_success
    assert await _count(db) == before + 1
