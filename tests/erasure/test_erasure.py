"""Erasure on request: one transaction removes the person, redacts their history, and leaves
nothing of their values in any table or in the logs; afterwards every endpoint answers 410."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.auth.support import capture_logs
from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.trash.support import contact, delete, figures, interaction, trash

Headers = dict[str, str]

# Values nobody else has, to look for afterwards in every table and the logs.
PERSON = {
    "first_name": "Zebulonia",
    "last_name": "Quixoticova",
    "email": "zebulonia.quixoticova@erase-me.example",
    "phone": "+380 44 917 3355",
    "company_name": "Quixoticova Holdings",
    "tax_id": "UA-TAX-99173355",
    "address": "17 Forgotten Lane",
    "notes": "allergic to marmalade-xq",
}
CONTACT = {
    "first_name": "Ottoline",
    "last_name": "Vexworth",
    "email": "ottoline.vexworth@erase-me.example",
    "phone": "+380 50 441 2299",
    "position": "Chief Vexer",
}
TRASHED_CONTACT = {"first_name": "Perpetua", "last_name": "Gloamhart", "email": "perpetua.gloamhart@erase-me.example"}
SUBJECTS = ("Marmalade embargo talks", "Vexworth quarterly grumble")
DESCRIPTION = "Discussed the zibbleflat contract"
NEW_NOTES = "now prefers quince-xq"


def _needles() -> list[str]:
    values = [*PERSON.values(), *CONTACT.values(), *TRASHED_CONTACT.values(), *SUBJECTS, DESCRIPTION, NEW_NOTES]
    # The phone as digits too (the search text keeps only them).
    values += [
        "".join(ch for ch in PERSON["phone"] if ch.isdigit()),
        "".join(ch for ch in CONTACT["phone"] if ch.isdigit()),
    ]
    # Words the typo tier's dictionary keeps, lowered.
    values += ["zebulonia", "quixoticova", "ottoline"]
    return values


async def _traces(db: asyncpg.Connection[Any]) -> dict[str, int]:
    """For every table of the public schema, how many rows' text holds one of the values."""
    tables = [
        r["relname"]
        for r in await db.fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')"
        )
    ]
    assert {"customers", "contacts", "interactions", "history", "trash", "idempotency_keys", "customer_words"} <= set(
        tables
    )
    patterns = [f"%{needle.lower()}%" for needle in _needles()]
    found = {}
    for table in tables:
        query = f'SELECT count(*) FROM "{table}" t WHERE lower(t::text) LIKE ANY($1::text[])'  # noqa: S608 - catalog names
        n = await db.fetchval(query, patterns)
        if n:
            found[table] = int(n)
    return found


async def _person(client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]) -> dict[str, Any]:
    """A customer with every kind of trace: contacts (one trashed), interactions (one trashed),
    updates in its history, idempotent answers saved, and order projection rows."""
    created = await client.post(
        "/api/customers", json={**PERSON, "contacts": [CONTACT]}, headers={**admin, "Idempotency-Key": "person-1"}
    )
    assert created.status_code == 201, created.text
    customer: dict[str, Any] = created.json()
    cid = customer["id"]
    gone = await client.post(
        "/api/contacts", json={"customer_id": cid, **TRASHED_CONTACT}, headers={**admin, "Idempotency-Key": "person-2"}
    )
    assert gone.status_code == 201, gone.text
    kept = await interaction(
        client, admin, cid, subject=SUBJECTS[0], description=DESCRIPTION, contact_id=customer["contacts"][0]["id"]
    )
    binned = await interaction(client, admin, cid, subject=SUBJECTS[1])
    assert (await client.put(f"/api/customers/{cid}", json={"notes": NEW_NOTES}, headers=admin)).status_code == 200
    await delete(client, admin, f"/api/contacts/{gone.json()['id']}")
    await delete(client, admin, f"/api/interactions/{binned['id']}")
    await db.execute(
        "INSERT INTO order_projections (order_id, customer_id, status, total_amount, updated_at) "
        "VALUES ($1, $2, 'paid', 42, now())",
        uuid.uuid4(),
        uuid.UUID(cid),
    )
    await db.execute(
        "INSERT INTO customer_order_figures (customer_id, total_orders) VALUES ($1, 1)"
        " ON CONFLICT (customer_id) DO UPDATE SET total_orders = 1",
        uuid.UUID(cid),
    )
    customer["trashed_contact"] = gone.json()
    customer["interactions"] = [kept, binned]
    return customer


async def test_erasure_answers_a_receipt_and_leaves_no_trace_in_any_table_or_the_logs(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    admin_id = uuid.uuid4()
    admin = tokens.headers("admin", admin_id)
    other = await create_customer(client, admin, first_name="Ordinary", last_name="Bystander")
    with capture_logs() as logs:
        customer = await _person(client, admin, db)
        before = await _traces(db)
        assert {"customers", "contacts", "interactions", "history", "trash", "idempotency_keys"} <= set(before), before

        response = await client.post(f"/api/customers/{customer['id']}/erase", headers=admin)

        assert response.status_code == 200, response.text
        receipt = response.json()
        assert set(receipt) == {
            "customer_id",
            "erased_at",
            "erased_by",
            "contacts",
            "interactions",
            "history_entries_redacted",
        }
        assert receipt["customer_id"] == customer["id"]
        assert receipt["erased_by"] == str(admin_id)
        assert (receipt["contacts"], receipt["interactions"]) == (2, 2)  # live and trashed
        # created x5 (customer, 2 contacts, 2 interactions), the update, 2 deletes.
        assert receipt["history_entries_redacted"] == 8
        assert await _traces(db) == {}
        assert await db.fetchval("SELECT count(*) FROM order_projections") == 0
        # The bystander keeps the figures row every customer has; the erased customer's is gone.
        kept = [r["customer_id"] for r in await db.fetch("SELECT customer_id FROM customer_order_figures")]
        assert kept == [uuid.UUID(other["id"])]
        assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'person-%'") == 0
    for needle in _needles():
        assert needle.lower() not in logs.text.lower(), needle
    assert "erase" in logs.text  # the capture did see the requests
    # The bystander is untouched, words and all.
    assert (await client.get(f"/api/customers/{other['id']}", headers=admin)).status_code == 200
    assert await db.fetchval("SELECT count(*) FROM customer_words WHERE word = 'bystander'") == 1
    counts = await figures(client, admin, db)
    assert counts["served"] == counts["direct"]
    assert await trash(client, admin) == []


async def test_history_keeps_its_structure_with_every_value_null_and_one_erased_entry(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    admin_id = uuid.uuid4()
    admin = tokens.headers("admin", admin_id)
    customer = await _person(client, admin, db)
    before = (await client.get("/api/history", params={"limit": 100}, headers=admin)).json()["history"]

    receipt = (await client.post(f"/api/customers/{customer['id']}/erase", headers=admin)).json()

    after = (await client.get("/api/history", params={"limit": 100}, headers=admin)).json()["history"]
    erased, *rest = after
    assert erased["action"] == "erased"
    assert (erased["entity"], erased["entity_id"], erased["customer_id"]) == (
        "customer",
        customer["id"],
        customer["id"],
    )
    assert erased["actor"] == {"user_id": str(admin_id), "role": "admin"}
    assert erased["changes"]["contacts"] == {"old": 2, "new": 0}
    assert erased["changes"]["interactions"] == {"old": 2, "new": 0}
    assert erased["changes"]["history_entries_redacted"]["new"] == receipt["history_entries_redacted"]
    assert len(rest) == len(before)
    for old, new in zip(before, rest, strict=True):
        for key in ("id", "at", "action", "entity", "entity_id", "actor", "version"):
            assert new[key] == old[key], key
        assert set(new["changes"]) == set(old["changes"])
        assert all(change == {"old": None, "new": None} for change in new["changes"].values())
    assert any(old["changes"] for old in before)  # there were values to redact


async def test_every_endpoint_answers_410_for_the_erased_ids(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await _person(client, admin, db)
    cid, kid = customer["id"], customer["contacts"][0]["id"]
    trashed_kid = customer["trashed_contact"]["id"]
    iid, trashed_iid = (i["id"] for i in customer["interactions"])
    assert (await client.post(f"/api/customers/{cid}/erase", headers=admin)).status_code == 200

    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/customers/{cid}", None),
        ("PUT", f"/api/customers/{cid}", {"notes": "x"}),
        ("DELETE", f"/api/customers/{cid}", None),
        ("GET", f"/api/customers/{cid}/history", None),  # redacted entries there: the page's own flag
        ("GET", f"/api/customers/{cid}/history?action=restored", None),  # an empty page: the look-up
        ("GET", f"/api/customers/{cid}/statistics", None),
        ("GET", f"/api/customers/{cid}/orders", None),
        ("GET", f"/api/contacts/customer/{cid}", None),
        ("GET", f"/api/interactions/customer/{cid}", None),
        ("POST", f"/api/customers/{cid}/restore", None),
        ("POST", f"/api/customers/{cid}/erase", None),
        ("POST", "/api/contacts", {"customer_id": cid, "first_name": "A", "last_name": "B"}),
        ("POST", "/api/interactions", {"customer_id": cid, "type": "call", "subject": "S"}),
    ]
    for contact_id in (kid, trashed_kid):
        calls += [
            ("GET", f"/api/contacts/{contact_id}", None),
            ("PUT", f"/api/contacts/{contact_id}", {"position": "x"}),
            ("PUT", f"/api/contacts/{contact_id}/primary", None),
            ("DELETE", f"/api/contacts/{contact_id}", None),
            ("POST", f"/api/contacts/{contact_id}/restore", None),
        ]
    for interaction_id in (iid, trashed_iid):
        calls += [
            ("GET", f"/api/interactions/{interaction_id}", None),
            ("PUT", f"/api/interactions/{interaction_id}", {"subject": "x"}),
            ("DELETE", f"/api/interactions/{interaction_id}", None),
            ("POST", f"/api/interactions/{interaction_id}/restore", None),
        ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=admin)
        problem = assert_problem(response, 410)
        assert problem["type"] == "urn:crm:problem:erased", (method, path)
    # Ids never seen stay 404.
    assert_problem(await client.get(f"/api/customers/{uuid.uuid4()}", headers=admin), 404)
    assert_problem(await client.post(f"/api/customers/{uuid.uuid4()}/erase", headers=admin), 404)


async def test_a_trashed_customer_is_erased_too(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await _person(client, admin, db)
    await delete(client, admin, f"/api/customers/{customer['id']}")
    response = await client.post(f"/api/customers/{customer['id']}/erase", headers=admin)
    assert response.status_code == 200, response.text
    assert (response.json()["contacts"], response.json()["interactions"]) == (2, 2)
    assert await _traces(db) == {}
    assert await db.fetchval("SELECT count(*) FROM trash") == 0


async def test_the_idempotency_key_replays_the_receipt(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin)
    headers = {**admin, "Idempotency-Key": "erase-once"}
    first = await client.post(f"/api/customers/{customer['id']}/erase", headers=headers)
    again = await client.post(f"/api/customers/{customer['id']}/erase", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(await client.post(f"/api/customers/{customer['id']}/erase", headers=admin), 410)


@pytest.mark.parametrize("role", ["manager", "employee"])
async def test_only_admins_erase(client: httpx.AsyncClient, admin: Headers, tokens: TokenFactory, role: str) -> None:
    customer = await create_customer(client, admin)
    assert_problem(await client.post(f"/api/customers/{customer['id']}/erase", headers=tokens.headers(role)), 403)
    assert (await client.get(f"/api/customers/{customer['id']}", headers=admin)).status_code == 200


async def test_contacts_own_saved_answers_go_too(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    customer = await create_customer(client, admin)
    unrelated = await create_customer(client, admin)
    await contact(client, {**admin, "Idempotency-Key": "c-1"}, customer["id"])
    await contact(client, {**admin, "Idempotency-Key": "c-2"}, unrelated["id"])
    assert (await client.post(f"/api/customers/{customer['id']}/erase", headers=admin)).status_code == 200
    assert [r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys ORDER BY key")] == ["c-2"]
