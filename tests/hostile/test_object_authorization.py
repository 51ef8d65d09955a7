"""Object-level authorization: an employee cannot change or delete another user's interaction
through any endpoint. Each write route of the API is listed with the ways it could reach that
interaction; the interaction's row must come out of all of them byte for byte as it went in.

(tests/interactions/test_permissions.py has the basic PUT/DELETE/`user_id` refusals; these are
the detours: preconditions, empty bodies, other resources' routes, ids in bodies, idempotency keys.)
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from tests.helpers import TokenFactory, assert_problem, create_customer
from tests.hostile.support import assert_clean

Attempt = tuple[str, str, dict[str, Any] | None, dict[str, str], int]


async def row(db: asyncpg.Connection[Any], interaction_id: str) -> dict[str, Any]:
    record = await db.fetchrow("SELECT * FROM interactions WHERE id = $1", uuid.UUID(interaction_id))
    assert record is not None, "the interaction is gone"
    return dict(record)


async def test_another_users_interaction_survives_every_route(
    client: httpx.AsyncClient, tokens: TokenFactory, db: asyncpg.Connection[Any]
) -> None:
    author_id, intruder_id = uuid.uuid4(), uuid.uuid4()
    author = tokens.headers("employee", author_id)
    intruder = tokens.headers("employee", intruder_id)
    contacts = [{"first_name": "Pri", "last_name": "Mary"}, {"first_name": "Se", "last_name": "Cond"}]
    customer = await create_customer(client, author, contacts=contacts)
    elsewhere = await create_customer(client, author)
    contact, second = customer["contacts"][0]["id"], customer["contacts"][1]["id"]
    key = {"Idempotency-Key": f"author-key-{uuid.uuid4()}"}
    body = {"customer_id": customer["id"], "contact_id": contact, "type": "call", "subject": "Theirs"}
    created = await client.post("/api/interactions", json=body, headers=author | key)
    assert created.status_code == 201, created.text
    theirs = created.json()
    url = f"/api/interactions/{theirs['id']}"
    original = await row(db, theirs["id"])

    attempts: dict[tuple[str, str], list[Attempt]] = {
        ("PUT", "/api/interactions/{interaction_id}"): [
            ("PUT", url, {}, {}, 403),  # an empty update is not a harmless no-op for someone else's row
            ("PUT", url, {"subject": "Hijacked"}, {"If-Match": '"1"'}, 403),
            ("PUT", url, {"subject": "Hijacked"}, {"If-Match": "*"}, 403),
            # Not 412 with the current ETag: a stranger learns nothing about the row.
            ("PUT", url, {"subject": "Hijacked"}, {"If-Match": '"7"'}, 403),
            ("PUT", url, {"contact_id": None}, {}, 403),
            ("PUT", url, {"contact_id": second}, {}, 403),
            ("PUT", url, {"customer_id": elsewhere["id"]}, {}, 403),
            ("PUT", url, {"user_id": str(intruder_id), "subject": "Mine now"}, {}, 422),
            ("PUT", url, {"user_id": None}, {}, 422),
            ("PUT", url, {"id": str(uuid.uuid4()), "subject": "Moved"}, {}, 422),
        ],
        ("DELETE", "/api/interactions/{interaction_id}"): [
            ("DELETE", url, None, {"If-Match": '"1"'}, 403),
            ("DELETE", url, None, {"If-Match": "*"}, 403),
        ],
        ("POST", "/api/interactions"): [
            # Overwriting by id ("upsert") is not a thing: `id` is read-only.
            ("POST", "/api/interactions", {**body, "id": theirs["id"], "subject": "Over"}, {}, 422),
            # The author's Idempotency-Key is the author's: the intruder gets a new row of their own.
            ("POST", "/api/interactions", body, key, 201),
        ],
        # Deleting the contact would unlink it from the interaction; the customer, delete it.
        ("DELETE", "/api/contacts/{contact_id}"): [("DELETE", f"/api/contacts/{contact}", None, {}, 403)],
        ("DELETE", "/api/customers/{customer_id}"): [("DELETE", f"/api/customers/{customer['id']}", None, {}, 403)],
        # Employees may edit customers and contacts; doing so must leave the interaction alone.
        ("PUT", "/api/customers/{customer_id}"): [
            (
                "PUT",
                f"/api/customers/{customer['id']}",
                {"contacts": [{"id": contact, "last_name": "Renamed"}]},
                {},
                200,
            )
        ],
        ("PUT", "/api/contacts/{contact_id}"): [("PUT", f"/api/contacts/{contact}", {"first_name": "Ren"}, {}, 200)],
        ("PUT", "/api/contacts/{contact_id}/primary"): [("PUT", f"/api/contacts/{second}/primary", None, {}, 200)],
        ("POST", "/api/contacts"): [
            ("POST", "/api/contacts", {"customer_id": customer["id"], "first_name": "N", "last_name": "E"}, {}, 201)
        ],
        ("POST", "/api/customers"): [("POST", "/api/customers", {"first_name": "N", "last_name": "C"}, {}, 201)],
        # Restoring a live interaction is a conflict, whoever asks (a trashed one of someone
        # else's is 403: tests/trash/test_listing.py); the rest need roles employees lack.
        ("POST", "/api/interactions/{interaction_id}/restore"): [("POST", f"{url}/restore", None, {}, 409)],
        ("POST", "/api/contacts/{contact_id}/restore"): [("POST", f"/api/contacts/{contact}/restore", None, {}, 403)],
        ("POST", "/api/customers/{customer_id}/restore"): [
            ("POST", f"/api/customers/{customer['id']}/restore", None, {}, 403)
        ],
        ("POST", "/api/customers/{customer_id}/erase"): [
            ("POST", f"/api/customers/{customer['id']}/erase", None, {}, 403)
        ],
        # Webhooks are admins' alone: a subscription would carry the interaction out of the service.
        ("POST", "/api/webhooks"): [
            ("POST", "/api/webhooks", {"url": "https://93.184.216.34/", "events": ["*"]}, {}, 403)
        ],
        ("DELETE", "/api/webhooks/{webhook_id}"): [("DELETE", f"/api/webhooks/{uuid.uuid4()}", None, {}, 403)],
        ("POST", "/api/webhooks/{webhook_id}/rotate-secret"): [
            ("POST", f"/api/webhooks/{uuid.uuid4()}/rotate-secret", None, {}, 403)
        ],
        ("POST", "/api/webhooks/{webhook_id}/test"): [("POST", f"/api/webhooks/{uuid.uuid4()}/test", None, {}, 403)],
        ("POST", "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): [
            ("POST", f"/api/webhooks/{uuid.uuid4()}/deliveries/{uuid.uuid4()}/retry", None, {}, 403)
        ],
    }

    spec = (await client.get("/openapi.json")).json()
    writes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m in {"post", "put", "delete"}}
    assert writes == set(attempts), "a write route was added or removed: say how it could reach the interaction"

    for tries in attempts.values():
        for method, target, json, extra, expected in tries:
            response = await client.request(method, target, json=json, headers=intruder | extra)
            assert_clean(response)
            assert response.status_code == expected, (method, target, json, extra, response.text)
            if expected == 403:
                assert_problem(response, 403)
            if expected == 201 and target == "/api/interactions":
                mine = response.json()
                assert mine["id"] != theirs["id"]
                assert mine["user_id"] == str(intruder_id)
            assert await row(db, theirs["id"]) == original, (method, target, json, extra)

    # The refusals were about who asked: the author's own edit goes through.
    edited = await client.put(url, json={"subject": "Still mine"}, headers=author | {"If-Match": '"1"'})
    assert edited.status_code == 200, edited.text
    assert edited.json()["user_id"] == str(author_id)
