"""If-Match on PUT and DELETE (and PUT /api/contacts/:id/primary): current tags pass, anything else is 412.

A 412 is problem+json, carries the current ETag, and leaves the stored row exactly as it was.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import assert_problem, create_customer
from tests.safe_writes.support import CONTACTS, INTERACTIONS, KIND_IDS, KINDS, Headers, Json, Kind, post_ok

# Tags that are never a current strong tag of version 1 (or of any version).
NEVER_MATCH = {
    "weak": 'W/"1"',
    "unquoted": "1",
    "unterminated": '"1',
    "not-a-version": '"abc"',
    "same-number-other-tag": '"01"',
    "space-inside": '" 1"',
    "negative": '"-1"',
    "huge": '"99999999999999999999999"',
    "empty": "",
    "empty-list": ",",
    "no-comma": '"1" "2"',
    "double-star": "**",
}
# Latin-1 bytes, as a client may send them; `\xb9` and `\xb2` are "digits" to str.isdigit().
NON_ASCII = {
    "superscript-one": b'"\xb9"',
    "superscript-two": b'"\xb2"',
    "latin1-bytes": b'"\xff\xfe"',
    "weak-superscript": b'W/"\xb9"',
}


async def _edited(client: httpx.AsyncClient, kind: Kind, admin: Headers) -> Json:
    """A resource at version 2, so that `"1"` is a stale tag of it."""
    resource = await kind.make(client, admin)
    response = await client.put(kind.url(resource), json={kind.field: "edited once"}, headers=admin)
    assert response.status_code == 200, response.text
    data: Json = response.json()
    return data


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_put_with_the_current_tag_succeeds(client: httpx.AsyncClient, admin: Headers, kind: Kind) -> None:
    resource = await _edited(client, kind, admin)

    response = await client.put(kind.url(resource), json={kind.field: "matched"}, headers={**admin, "If-Match": '"2"'})

    assert response.status_code == 200, response.text
    assert response.json()[kind.field] == "matched"
    assert response.headers["ETag"] == '"3"'


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_put_with_a_stale_tag_is_412_and_changes_nothing(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind
) -> None:
    resource = await _edited(client, kind, admin)

    response = await client.put(kind.url(resource), json={kind.field: "lost"}, headers={**admin, "If-Match": '"1"'})

    problem = assert_problem(response, 412)
    assert '"2"' in problem["detail"]
    assert response.headers["ETag"] == '"2"'
    assert await kind.row(db, resource) == {"version": 2, kind.field: "edited once"}


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_delete_honours_if_match(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind
) -> None:
    resource = await _edited(client, kind, admin)

    stale = await client.delete(kind.url(resource), headers={**admin, "If-Match": '"1"'})
    assert_problem(stale, 412)
    assert stale.headers["ETag"] == '"2"'
    assert await kind.row(db, resource) == {"version": 2, kind.field: "edited once"}

    current = await client.delete(kind.url(resource), headers={**admin, "If-Match": '"2"'})
    assert current.status_code == 204, current.text
    assert await kind.row(db, resource) is None


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_star_matches_any_version(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind
) -> None:
    resource = await _edited(client, kind, admin)

    put = await client.put(kind.url(resource), json={kind.field: "starred"}, headers={**admin, "If-Match": "*"})
    assert put.status_code == 200, put.text
    assert put.headers["ETag"] == '"3"'

    delete = await client.delete(kind.url(resource), headers={**admin, "If-Match": " * "})
    assert delete.status_code == 204
    assert await kind.row(db, resource) is None


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_no_if_match_proceeds(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any], kind: Kind
) -> None:
    resource = await _edited(client, kind, admin)

    put = await client.put(kind.url(resource), json={kind.field: "unconditional"}, headers=admin)
    assert put.status_code == 200
    assert await kind.row(db, resource) == {"version": 3, kind.field: "unconditional"}
    assert (await client.delete(kind.url(resource), headers=admin)).status_code == 204


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
async def test_a_list_of_tags_matches_if_any_is_current(client: httpx.AsyncClient, admin: Headers, kind: Kind) -> None:
    resource = await _edited(client, kind, admin)

    response = await client.put(
        kind.url(resource), json={kind.field: "listed"}, headers={**admin, "If-Match": '"7", W/"9",  "2" '}
    )

    assert response.status_code == 200, response.text


async def test_weak_and_malformed_tags_never_match(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    # The resource is at version 1, so each of these would be "current" under a lax comparison.
    customer = await create_customer(client, admin)
    url = f"/api/customers/{customer['id']}"
    tags: dict[str, str | bytes] = {**NEVER_MATCH, **NON_ASCII}

    for name, tag in tags.items():
        headers: dict[str, Any] = {**admin, "If-Match": tag}
        put = await client.put(url, json={"notes": "must not land"}, headers=headers)
        delete = await client.delete(url, headers=headers)
        assert (put.status_code, delete.status_code) == (412, 412), (name, put.text, delete.text)
        assert_problem(put, 412)
        assert_problem(delete, 412)

    stored = await db.fetchrow("SELECT version, notes FROM customers WHERE id = $1", uuid.UUID(customer["id"]))
    assert stored is not None
    assert dict(stored) == {"version": 1, "notes": None}


async def test_set_primary_honours_if_match(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    first = await CONTACTS.make(client, admin)
    second = await post_ok(
        client, "/api/contacts", {"customer_id": first["customer_id"], "first_name": "B", "last_name": "B"}, admin
    )
    url = f"/api/contacts/{second['id']}/primary"

    stale = await client.put(url, headers={**admin, "If-Match": '"2"'})
    assert_problem(stale, 412)
    assert stale.headers["ETag"] == '"1"'
    weak = await client.put(url, headers={**admin, "If-Match": 'W/"1"'})
    assert_problem(weak, 412)
    rows = await db.fetch(
        "SELECT id, is_primary, version FROM contacts WHERE customer_id = $1 ORDER BY created_at",
        uuid.UUID(first["customer_id"]),
    )
    assert [(str(r["id"]), r["is_primary"], r["version"]) for r in rows] == [
        (first["id"], True, 1),
        (second["id"], False, 1),
    ]

    current = await client.put(url, headers={**admin, "If-Match": '"1"'})
    assert current.status_code == 200, current.text
    assert current.json()["is_primary"] is True
    assert current.headers["ETag"] == '"2"'
    # The tag of a primary that stays primary stays valid: nothing was written.
    assert (await client.put(url, headers={**admin, "If-Match": '"2"'})).status_code == 200
    assert_problem(await client.put(url, headers={**admin, "If-Match": '"1"'}), 412)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_missing_resource_is_404_whatever_the_tag(client: httpx.AsyncClient, admin: Headers, method: str) -> None:
    # RFC 9110 13.2.1: preconditions are ignored when the request would fail without them.
    url = f"/api/customers/{uuid.uuid4()}"
    for tag in ('"1"', "*"):
        body = {"notes": "x"} if method == "PUT" else None
        response = await client.request(method, url, json=body, headers={**admin, "If-Match": tag})
        assert_problem(response, 404)


async def test_forbidden_comes_before_the_precondition(
    client: httpx.AsyncClient, admin: Headers, employee: Headers, db: asyncpg.Connection[Any]
) -> None:
    # An employee learns nothing about the version of an interaction they may not touch.
    interaction = await INTERACTIONS.make(client, admin)

    for tag in ('"1"', '"5"'):
        put = await client.put(
            INTERACTIONS.url(interaction), json={"subject": "mine now"}, headers={**employee, "If-Match": tag}
        )
        assert_problem(put, 403)
        assert "ETag" not in put.headers
    assert await INTERACTIONS.row(db, interaction) == {"version": 1, "subject": "Intro call"}


async def test_if_match_over_1024_characters_is_422(client: httpx.AsyncClient, admin: Headers) -> None:
    customer = await create_customer(client, admin)
    tag = '"1", ' + ", ".join(['"2"'] * 400)

    response = await client.put(
        f"/api/customers/{customer['id']}", json={"notes": "x"}, headers={**admin, "If-Match": tag}
    )

    assert_problem(response, 422, "If-Match")


async def test_nested_contact_edit_through_the_customer_moves_its_etag(
    client: httpx.AsyncClient, admin: Headers, db: asyncpg.Connection[Any]
) -> None:
    # GET /api/customers/:id shows the contacts, and PUT /api/customers/:id writes them: a writer
    # who read the customer at "1" and edits a contact there must not overwrite a newer edit.
    customer = await create_customer(client, admin, contacts=[{"first_name": "A", "last_name": "A"}])
    url = f"/api/customers/{customer['id']}"
    contact_id = customer["contacts"][0]["id"]

    first = await client.put(
        url, json={"contacts": [{"id": contact_id, "position": "first"}]}, headers={**admin, "If-Match": '"1"'}
    )
    second = await client.put(
        url, json={"contacts": [{"id": contact_id, "position": "second"}]}, headers={**admin, "If-Match": '"1"'}
    )

    assert first.status_code == 200
    assert first.headers["ETag"] != '"1"'
    assert_problem(second, 412)
    assert await db.fetchval("SELECT position FROM contacts WHERE id = $1", uuid.UUID(contact_id)) == "first"
